import * as pulumi from "@pulumi/pulumi";
import type { ArgsOf } from "../core/fields";
import type { BUILD_FIELDS, VerifyArgs } from "./fields";

/** The args every worker-built image has (ConvertedHvmAmi, SurrogateAmi), documented in ./fields.ts. */
export type BuildArgs = ArgsOf<typeof BUILD_FIELDS>;
export type { VerifyArgs };

/** Preview and up say it when an image will be registered without a test launch. */
export function warnIfNotVerified(resource: pulumi.Resource, verify: BuildArgs["verify"]): void {
  pulumi.output(verify).apply((v) => {
    if (v === false) pulumi.log.warn("verify: false: the image will not be verified (no test launch before it counts as created)", resource);
  });
}
