import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf } from "./core/resource";
import { bundleGuestScript, BundledScript } from "./worker/guestScript";
import { checkConvertedHvmAmi, ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs, diffConvertedHvmAmi } from "./convertedHvmAmi/inputs";
import { createConversion, deleteConversion, readConversion, updateConversion } from "./convertedHvmAmi/build";
import type { BuildArgs } from "./worker/args";

export interface ConvertedHvmAmiArgs extends BuildArgs {
  /** The paravirtual (PV), EBS-backed image to convert. */
  sourceAmiId: pulumi.Input<string>;
  /** Name of the new image. Default: the source's name + "-hvm". A later change updates the Name tag only (EC2 cannot rename an image). */
  name?: pulumi.Input<string>;
  /** Description of the new image. Default: says what it was converted from. */
  description?: pulumi.Input<string>;
  /** Size of the new root volume. Default: the source root size + 1 GiB (room for the partition table and GRUB). */
  targetSizeGiB?: pulumi.Input<number>;
  /** Encrypt the volumes and image. Default: as the source snapshot is. */
  encrypted?: pulumi.Input<boolean>;
}

const OUTPUTS = ["imageId", "snapshotId", "imageName", "baseName", "buildId", "facts", "schemaVersion"] as const;

/** The provider, carrying the bundled guest script in its serialised closure. */
function convertedHvmAmiProvider(pv2hvm: BundledScript) {
  return dynamicProvider<ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs>({
    kind: "ConvertedHvmAmi",
    check: checkConvertedHvmAmi,
    diff: diffConvertedHvmAmi,
    create: (inputs, log) => createConversion(inputs, pv2hvm, log),
    update: updateConversion,
    delete: deleteConversion,
    read: readConversion,
  });
}

/** A paravirtual image converted to HVM on a temporary worker, as stack state. */
export class ConvertedHvmAmi extends pulumi.dynamic.Resource {
  declare readonly imageId: pulumi.Output<string>;
  declare readonly snapshotId: pulumi.Output<string>;
  /** The registered name: `name` plus the build stamp, or exactly `name` with exactName. */
  declare readonly imageName: pulumi.Output<string>;
  /** The hash of the guest script that built this image (provenance: an upgrade does not change it). */
  declare readonly guestScriptSha256: pulumi.Output<string>;
  declare readonly region: pulumi.Output<string>;
  /** What the guest script found: partitioned, fsType, kernels, enaDriver, nvmeDriver, copiedBytes, seconds. */
  declare readonly facts: pulumi.Output<Record<string, unknown>>;

  constructor(name: string, args: ConvertedHvmAmiArgs, opts?: pulumi.CustomResourceOptions) {
    const script = bundleGuestScript("pv2hvm.sh");
    super(
      convertedHvmAmiProvider(script),
      name,
      { ...outputSlots(OUTPUTS), ...args, region: args.region ?? defaultRegion(), scope: scopeOf(name), guestScriptSha256: script.sha256 },
      opts,
      "ami-factory",
      "ConvertedHvmAmi",
    );
  }
}
