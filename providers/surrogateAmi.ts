import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf, suspendStackTraces } from "./core/resource";
import { bundledGuestScript, bundleGuestScript } from "./worker/guestScript";
import type { Verification } from "./worker/context";
import { warnIfNotVerified } from "./worker/args";
import type { ArgsOf } from "./core/fields";
import type { SURROGATE_FIELDS } from "./surrogateAmi/fields";
import { checkSurrogateAmi, diffSurrogateAmi, Recipe, SurrogateAmiInputs, SurrogateAmiOutputs } from "./surrogateAmi/inputs";
import { upgradeSurrogate } from "./surrogateAmi/upgrade";
import { createSurrogate, deleteSurrogate, readSurrogate, updateSurrogate } from "./surrogateAmi/build";

export { Recipe };

/** The args of a SurrogateAmi: each is documented, with its default, in ./surrogateAmi/fields.ts. */
export type SurrogateAmiArgs = ArgsOf<typeof SURROGATE_FIELDS>;

const OUTPUTS = ["imageId", "snapshotId", "imageName", "baseName", "buildId", "facts", "verification", "schemaVersion"] as const;

/** The implementation, loaded in the provider process by the thin provider below; it bundles the guest script there. */
export const surrogateAmiProvider = dynamicProvider<SurrogateAmiInputs, SurrogateAmiOutputs>({
  kind: "SurrogateAmi",
  check: checkSurrogateAmi,
  diff: diffSurrogateAmi,
  create: (inputs, log) => createSurrogate(inputs, bundledGuestScript("surrogate.sh", inputs.guestScriptSha256), log),
  update: updateSurrogate,
  delete: deleteSurrogate,
  read: readSurrogate,
  upgrade: upgradeSurrogate,
});

/** What each SurrogateAmi stores as its provider: no code, no guest script (see thinProvider). */
const serializedProvider = thinProvider("SurrogateAmi");

/** An image built from nothing on an empty EBS volume by a recipe in code, as stack state. */
export class SurrogateAmi extends pulumi.dynamic.Resource {
  declare readonly imageId: pulumi.Output<string>;
  declare readonly snapshotId: pulumi.Output<string>;
  /** The registered name: `name` plus the build stamp, or exactly `name` with exactName. */
  declare readonly imageName: pulumi.Output<string>;
  /** The hash of the guest script that built this image (provenance: an upgrade does not change it). */
  declare readonly guestScriptSha256: pulumi.Output<string>;
  declare readonly region: pulumi.Output<string>;
  /** What the recipe's guest script reported: kernels, drivers, cloud-init, warnings. */
  declare readonly facts: pulumi.Output<Record<string, unknown>>;
  /** The launch verification: { status: "passed", results: [{ instanceType, secondsToBootSignal, bootLine }] } or { status: "skipped" }. */
  declare readonly verification: pulumi.Output<Verification>;

  constructor(name: string, args: SurrogateAmiArgs, opts?: pulumi.CustomResourceOptions) {
    const script = bundleGuestScript("surrogate.sh");
    const stacks = suspendStackTraces();
    try {
      super(
        serializedProvider,
        name,
        { ...outputSlots(OUTPUTS), ...args, region: args.region ?? defaultRegion(), scope: scopeOf(name), guestScriptSha256: script.sha256 },
        opts,
        "ami-factory",
        "SurrogateAmi",
      );
    } catch (e) {
      throw stacks.restack(e);
    } finally {
      stacks.resume();
    }
    warnIfNotVerified("SurrogateAmi", name, args.verify, opts?.parent);
  }
}
