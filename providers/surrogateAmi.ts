import * as pulumi from "@pulumi/pulumi";
import { compact, defaultRegion, outputSlots, progressLog, scopeOf } from "./core/resource";
import { bundleGuestScript, BundledScript } from "./worker/guestScript";
import type { WorkerOptions } from "./worker/context";
import { checkSurrogateAmi, diffSurrogateAmi, Recipe, SurrogateAmiInputs, SurrogateAmiOutputs } from "./surrogateAmi/inputs";
import { createSurrogate, deleteSurrogate, readSurrogate, updateSurrogate } from "./surrogateAmi/build";

export { Recipe };

export interface SurrogateAmiArgs {
  /** What writes the OS onto the empty volume: debian (debootstrap), el (dnf --installroot), image (a disk image by URL), script (your own). */
  recipe: pulumi.Input<Recipe>;
  /** The image's name. A later change updates the Name tag only (EC2 cannot rename an image). */
  name: pulumi.Input<string>;
  /** Where to build. Default: `aws:region`, else AWS_REGION. */
  region?: pulumi.Input<string>;
  /** Default: says which recipe built it. */
  description?: pulumi.Input<string>;
  /** Tags for the image and its snapshot. Default: none (provenance tags are always added). */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** x86_64 or arm64 (the worker gets the same). Default: x86_64. */
  architecture?: pulumi.Input<"x86_64" | "arm64">;
  /** Root volume size. Default: 8. */
  rootSizeGiB?: pulumi.Input<number>;
  /** Root volume type. Default: gp3. */
  volume?: pulumi.Input<{ type?: pulumi.Input<string>; iops?: pulumi.Input<number>; throughputMiBps?: pulumi.Input<number> }>;
  /** Encrypt the volume and image. Default: false (the account's EBS default encryption still applies). */
  encrypted?: pulumi.Input<boolean>;
  /** KMS key for encryption. Default: the account's default EBS key. */
  kmsKeyId?: pulumi.Input<string>;
  /** legacy-bios or uefi. Default: legacy-bios on x86_64, uefi on arm64. */
  bootMode?: pulumi.Input<"legacy-bios" | "uefi">;
  /** "v2.0": instances from the image require IMDSv2. Default: "v2.0". */
  imdsSupport?: pulumi.Input<"v2.0" | "optional">;
  /** Register with ENA support. Default: "auto", from what the recipe put in the image. */
  enaSupport?: pulumi.Input<"auto" | boolean>;
  /** Remove host keys, histories, cloud-init state, machine-id. Default: true. */
  sanitize?: pulumi.Input<boolean>;
  /** The temporary worker. Default: Amazon Linux 2023 of the architecture, default subnet, temporary SSM role. */
  worker?: pulumi.Input<WorkerOptions>;
  /** How long the build may take before it fails and cleans up. Default: 60. */
  timeoutMinutes?: pulumi.Input<number>;
}

const OUTPUTS = ["imageId", "snapshotId", "imageName", "buildId", "facts", "schemaVersion"] as const;

/** The provider, carrying the bundled guest script in its serialised closure. */
function surrogateAmiProvider(surrogate: BundledScript): pulumi.dynamic.ResourceProvider<SurrogateAmiInputs, SurrogateAmiOutputs> {
  return {
    async check(_olds, news) {
      const { inputs, failures } = checkSurrogateAmi(news as unknown as Record<string, unknown>);
      return failures.length ? { inputs: news, failures } : { inputs: compact(inputs!) };
    },
    async diff(_id, olds, news) {
      return diffSurrogateAmi(olds, news);
    },
    async create(inputs) {
      const { id, outs } = await createSurrogate(inputs, surrogate, progressLog("SurrogateAmi", inputs.scope));
      return { id, outs: compact(outs) };
    },
    async update(_id, olds, news) {
      return { outs: compact(await updateSurrogate(olds, news)) };
    },
    async delete(_id, olds) {
      await deleteSurrogate(olds);
    },
    async read(id, props) {
      const found = await readSurrogate(id, props as SurrogateAmiOutputs);
      return found.props ? { id: found.id, props: compact(found.props) } : {};
    },
  };
}

/** An image built from nothing on an empty EBS volume by a recipe in code, as stack state. */
export class SurrogateAmi extends pulumi.dynamic.Resource {
  declare readonly imageId: pulumi.Output<string>;
  declare readonly snapshotId: pulumi.Output<string>;
  declare readonly imageName: pulumi.Output<string>;
  declare readonly region: pulumi.Output<string>;
  /** What the recipe's guest script reported: kernels, drivers, cloud-init, warnings. */
  declare readonly facts: pulumi.Output<Record<string, unknown>>;

  constructor(name: string, args: SurrogateAmiArgs, opts?: pulumi.CustomResourceOptions) {
    const script = bundleGuestScript("surrogate.sh");
    super(
      surrogateAmiProvider(script),
      name,
      { ...outputSlots(OUTPUTS), ...args, region: args.region ?? defaultRegion(), scope: scopeOf(name), guestScriptSha256: script.sha256 },
      opts,
      "ami-factory",
      "SurrogateAmi",
    );
  }
}
