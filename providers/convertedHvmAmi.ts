import * as pulumi from "@pulumi/pulumi";
import { compact, defaultRegion, outputSlots, progressLog, scopeOf } from "./core/resource";
import { bundleGuestScript, BundledScript } from "./worker/guestScript";
import { checkConvertedHvmAmi, ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs, diffConvertedHvmAmi } from "./convertedHvmAmi/inputs";
import { createConversion, deleteConversion, readConversion, updateConversion } from "./convertedHvmAmi/build";
import type { WorkerOptions } from "./worker/context";

export interface ConvertedHvmAmiArgs {
  /** The paravirtual (PV), EBS-backed image to convert. */
  sourceAmiId: pulumi.Input<string>;
  /** The source's region, where the HVM image is made. Default: `aws:region`, else AWS_REGION. */
  region?: pulumi.Input<string>;
  /** Name of the new image. Default: the source's name + "-hvm". A later change updates the Name tag only (EC2 cannot rename an image). */
  name?: pulumi.Input<string>;
  /** Description of the new image. Default: says what it was converted from. */
  description?: pulumi.Input<string>;
  /** Tags for the image and its snapshot. Default: none (provenance tags are always added). */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Size of the new root volume. Default: the source root size + 1 GiB (room for the partition table and GRUB). */
  targetSizeGiB?: pulumi.Input<number>;
  /** Root volume type of the image. Default: gp3. */
  volume?: pulumi.Input<{ type?: pulumi.Input<string>; iops?: pulumi.Input<number>; throughputMiBps?: pulumi.Input<number> }>;
  /** Encrypt the volumes and image. Default: as the source snapshot is. */
  encrypted?: pulumi.Input<boolean>;
  /** KMS key for encryption. Default: the account's default EBS key. */
  kmsKeyId?: pulumi.Input<string>;
  /** Register with ENA support. Default: "auto", from what the guest script finds in the image. */
  enaSupport?: pulumi.Input<"auto" | boolean>;
  /** Remove host keys, shell histories, cloud-init state, machine-id, OpsWorks remnants. Default: true. */
  sanitize?: pulumi.Input<boolean>;
  /** The temporary worker. Default: Amazon Linux 2023, m6i.large, default subnet, temporary SSM role. */
  worker?: pulumi.Input<WorkerOptions>;
  /** How long the conversion may take before it fails and cleans up. Default: 60. */
  timeoutMinutes?: pulumi.Input<number>;
}

const OUTPUTS = ["imageId", "snapshotId", "imageName", "buildId", "facts", "schemaVersion"] as const;

/** The provider, carrying the bundled guest script in its serialised closure. */
function convertedHvmAmiProvider(pv2hvm: BundledScript): pulumi.dynamic.ResourceProvider<ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs> {
  return {
    async check(_olds, news) {
      const { inputs, failures } = checkConvertedHvmAmi(news as unknown as Record<string, unknown>);
      return failures.length ? { inputs: news, failures } : { inputs: compact(inputs!) };
    },
    async diff(_id, olds, news) {
      return diffConvertedHvmAmi(olds, news);
    },
    async create(inputs) {
      const { id, outs } = await createConversion(inputs, pv2hvm, progressLog("ConvertedHvmAmi", inputs.scope));
      return { id, outs: compact(outs) };
    },
    async update(_id, olds, news) {
      return { outs: compact(await updateConversion(olds, news)) };
    },
    async delete(_id, olds) {
      await deleteConversion(olds);
    },
    async read(id, props) {
      const found = await readConversion(id, props as ConvertedHvmAmiOutputs);
      return found.props ? { id: found.id, props: compact(found.props) } : {};
    },
  };
}

/** A paravirtual image converted to HVM on a temporary worker, as stack state. */
export class ConvertedHvmAmi extends pulumi.dynamic.Resource {
  declare readonly imageId: pulumi.Output<string>;
  declare readonly snapshotId: pulumi.Output<string>;
  declare readonly imageName: pulumi.Output<string>;
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
