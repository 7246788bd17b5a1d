import * as pulumi from "@pulumi/pulumi";
import type { WorkerOptions } from "./context";

/** The args every worker-built image has (ConvertedHvmAmi, SurrogateAmi). */
export interface BuildArgs {
  /** Where the image is made. Default: `aws:region`, else AWS_REGION. */
  region?: pulumi.Input<string>;
  /** Tags for the image and its snapshot. Default: none (provenance tags are always added). */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Root volume type of the image. Default: gp3. */
  volume?: pulumi.Input<{ type?: pulumi.Input<string>; iops?: pulumi.Input<number>; throughputMiBps?: pulumi.Input<number> }>;
  /** KMS key for encryption. Default: the account's default EBS key. */
  kmsKeyId?: pulumi.Input<string>;
  /** Register with ENA support. Default: "auto", from what the guest script finds in the image. */
  enaSupport?: pulumi.Input<"auto" | boolean>;
  /** Remove SSH host keys, shell histories, cloud-init state, machine-id, OpsWorks remnants. Default: true. */
  sanitize?: pulumi.Input<boolean>;
  /** The temporary worker. Default: Amazon Linux 2023 of the image's architecture, m6i/m6g.large, default subnet, a temporary SSM-only role. */
  worker?: pulumi.Input<WorkerOptions>;
  /** How long the build may take before it fails and cleans up. Default: 60. */
  timeoutMinutes?: pulumi.Input<number>;
  /**
   * Launch verification before the create succeeds: an instance of the new image must pass both
   * status checks and show userspace on its serial console. Default: on, one instance of a Nitro
   * type (t3.micro / t4g.micro) when the facts say the image is Nitro-ready, else of t2.micro
   * (Xen); 15 minutes (within timeoutMinutes); the boot signal is a login prompt, systemd's
   * multi-user target or cloud-init's "finished" line. `false`: not verified (preview warns).
   * Changing it alone changes nothing: it applies when the image is built.
   */
  verify?: pulumi.Input<false | VerifyArgs>;
  /**
   * Any string; changing it rebuilds the image (a replacement, new image first). Upgrading
   * ami-factory never rebuilds by itself (the guest script's hash is provenance only). Default: none.
   */
  rebuildTrigger?: pulumi.Input<string>;
  /**
   * Register the image with exactly `name`. Default: false, the name gets a build stamp
   * (`legacy-web-hvm-20261126T101005Z`; the Name tag stays `name`) so that a replacement is built
   * before the old image is deleted. With true, a replacement deletes the old image first.
   */
  exactName?: pulumi.Input<boolean>;
}

export interface VerifyArgs {
  /** One type or a list (each is verified). Default: chosen from the facts, as above. */
  instanceType?: pulumi.Input<string | string[]>;
  /** How long to wait for the boot signal, per build. Default: 15. */
  timeoutMinutes?: pulumi.Input<number>;
  /** A regular expression (multi-line) for the console line that shows userspace. Default: see `verify`. */
  bootSignal?: pulumi.Input<string>;
}

/** Preview and up say it when an image will be registered without a test launch. */
export function warnIfNotVerified(resource: pulumi.Resource, verify: BuildArgs["verify"]): void {
  pulumi.output(verify).apply((v) => {
    if (v === false) pulumi.log.warn("verify: false: the image will not be verified (no test launch before it counts as created)", resource);
  });
}
