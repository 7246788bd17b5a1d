import * as pulumi from "@pulumi/pulumi";
import type { ArgsOf } from "../core/fields";
import type { BUILD_FIELDS, VerifyArgs } from "./fields";

/** The args every worker-built image has (ConvertedHvmAmi, SurrogateAmi), documented in ./fields.ts. */
export type BuildArgs = ArgsOf<typeof BUILD_FIELDS>;
export type { VerifyArgs };

/**
 * Preview and up say it when an image will be registered without a test launch. The warning names
 * the resource by the URN it gets (pulumi.createUrn), not by the resource object: the Node SDK sends
 * all log lines of a process in one chain (module state of @pulumi/pulumi/log), a line about a
 * resource object first waits for that resource's URN, and that URN never settles when the
 * registration fails (runtime/resource.js leaves it pending on a gRPC error, e.g. a failed build).
 * Such a line held up every later log line of the process, and every later run waits for its log
 * lines before it ends: where one process runs the program again (an automation API inline
 * program, the e2e tests), the next `pulumi up` never finished. `log.warn` reads only `urn`.
 */
export function warnIfNotVerified(kind: string, name: string, verify: BuildArgs["verify"], parent?: pulumi.Resource): void {
  pulumi.output(verify).apply((v) => {
    if (v !== false) return;
    const urn = pulumi.createUrn(name, `pulumi-nodejs:dynamic/ami-factory:${kind}`, parent);
    pulumi.log.warn("verify: false: the image will not be verified (no test launch before it counts as created)", { urn } as pulumi.Resource);
  });
}
