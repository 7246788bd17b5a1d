import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf, suspendStackTraces } from "./core/resource";
import { bundledGuestScript, bundleGuestScript } from "./worker/guestScript";
import type { Verification } from "./worker/context";
import { checkConvertedHvmAmi, Conversion, ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs, diffConvertedHvmAmi } from "./convertedHvmAmi/inputs";
import { upgradeConversion } from "./convertedHvmAmi/upgrade";
import { createConversion, deleteConversion, readConversion, updateConversion } from "./convertedHvmAmi/build";
import { warnIfNotVerified } from "./worker/args";
import type { ArgsOf } from "./core/fields";
import type { CONVERTED_FIELDS } from "./convertedHvmAmi/fields";

/** The args of a ConvertedHvmAmi: each is documented, with its default, in ./convertedHvmAmi/fields.ts. */
export type ConvertedHvmAmiArgs = ArgsOf<typeof CONVERTED_FIELDS>;

const OUTPUTS = ["imageId", "snapshotId", "imageName", "baseName", "buildId", "facts", "nitroReady", "verification", "conversion", "schemaVersion"] as const;

/** The implementation, loaded in the provider process by the thin provider below; it bundles the guest script there. */
export const convertedHvmAmiProvider = dynamicProvider<ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs>({
  kind: "ConvertedHvmAmi",
  check: checkConvertedHvmAmi,
  diff: diffConvertedHvmAmi,
  create: (inputs, log) => createConversion(inputs, bundledGuestScript("pv2hvm.sh", inputs.guestScriptSha256), log),
  update: updateConversion,
  delete: deleteConversion,
  read: readConversion,
  upgrade: upgradeConversion,
});

/** What each ConvertedHvmAmi stores as its provider: no code, no guest script (see thinProvider). */
const serializedProvider = thinProvider("ConvertedHvmAmi");

/** A paravirtual image converted to HVM on a temporary worker, as stack state. */
export class ConvertedHvmAmi extends pulumi.dynamic.Resource {
  declare readonly imageId: pulumi.Output<string>;
  declare readonly snapshotId: pulumi.Output<string>;
  /** The registered name: `name` plus the build stamp, or exactly `name` with exactName. */
  declare readonly imageName: pulumi.Output<string>;
  /** The hash of the guest script that built this image (provenance: an upgrade does not change it). */
  declare readonly guestScriptSha256: pulumi.Output<string>;
  declare readonly region: pulumi.Output<string>;
  /** What the guest script found, in its declared schema (scripts/guest/pv2hvm.sh "# @facts"): layout, bootMenu, kernels, drivers, fstab changes, … */
  declare readonly facts: pulumi.Output<Record<string, unknown>>;
  /** The root can be mounted from NVMe at boot and ENA is present: the image runs on Nitro instance types. false: Xen HVM types only (t2, m4, c4, r4, …). */
  declare readonly nitroReady: pulumi.Output<boolean>;
  /** The launch verification: { status: "passed", results: [{ instanceType, secondsToBootSignal, bootLine }] } or { status: "skipped" }. */
  declare readonly verification: pulumi.Output<Verification>;
  /** What the build did: { method: "in-place", reason: "" } or { method: "copy", reason } (the guest's refusal code, size-change, encryption-change or requested). */
  declare readonly conversion: pulumi.Output<Conversion>;

  constructor(name: string, args: ConvertedHvmAmiArgs, opts?: pulumi.CustomResourceOptions) {
    const script = bundleGuestScript("pv2hvm.sh");
    const stacks = suspendStackTraces();
    try {
      super(
        serializedProvider,
        name,
        { ...outputSlots(OUTPUTS), ...args, region: args.region ?? defaultRegion(), scope: scopeOf(name), guestScriptSha256: script.sha256 },
        opts,
        "ami-factory",
        "ConvertedHvmAmi",
      );
    } catch (e) {
      throw stacks.restack(e);
    } finally {
      stacks.resume();
    }
    warnIfNotVerified("ConvertedHvmAmi", name, args.verify, opts?.parent);
  }
}
