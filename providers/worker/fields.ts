// The fields every worker-built image has (ConvertedHvmAmi, SurrogateAmi): one row each, spread
// into both resources' tables (a row a resource documents otherwise is overridden there).
import { field } from "../core/fields";
import { CONSUMER_FIELDS } from "../core/consumerFields";
import { Checker, isUnknown } from "../core/inputs";
import { checkGivenName } from "../core/naming";
import type { VolumeSpec, WorkerOptions } from "./context";
import { checkVerify, checkVolume, checkWorker, VerifyInputs } from "./inputs";

/** The root volume the user asks for. */
export interface VolumeArgs {
  type?: string;
  iops?: number;
  throughputMiBps?: number;
}

export interface VerifyArgs {
  /** One type or a list (each is verified). Default: chosen from the facts, as `verify` says. */
  instanceType?: string | string[];
  /** How long to wait for the boot signal, per build. Default: 15. */
  timeoutMinutes?: number;
  /** A regular expression (multi-line) for the console line that shows userspace. Default: see `verify`. */
  bootSignal?: string;
}

export const BUILD_FIELDS = {
  /** Where the image is made. Default: `aws:region`, else AWS_REGION. */
  region: field.id<string | undefined, string, "replace">("region", { change: "replace", secret: false }),
  /** Name of the new image. A later change updates the Name tag only (EC2 cannot rename an image). */
  name: field.of<string | undefined, string | undefined, "in-place">({ change: "in-place", config: "imageName", secret: false, check: (c, p, v, raw) => checkGivenName(c, p, v, raw) }),
  /**
   * Register the image with exactly `name`. Default: false, the name gets a build stamp
   * (`legacy-web-hvm-20261126T101005Z`; the Name tag stays `name`) so that a replacement is built
   * before the old image is deleted. With true, a replacement deletes the old image first.
   */
  exactName: field.boolean<boolean, "in-place">({ change: "in-place", fallback: false, secret: false }),
  /** Description of the new image. Default: says how it was made. */
  description: field.string<string | undefined, "in-place">({ change: "in-place", max: 255 }),
  /** Tags for the image and its snapshot. Default: none (provenance tags are always added). */
  tags: field.tags({ change: "in-place" }),
  /** Root volume type of the image. Default: gp3. */
  volume: field.of<VolumeArgs | undefined, VolumeSpec, "replace">({
    change: "replace",
    check: (c, _p, v) => checkVolume(c, v),
    value: (v) => {
      const volume = (v ?? {}) as VolumeArgs;
      return { type: volume.type ?? "gp3", iops: volume.iops, throughputMiBps: volume.throughputMiBps };
    },
  }),
  /** Encrypt the volumes and the image. */
  encrypted: field.boolean<boolean | undefined, "replace">({ change: "replace" }),
  /** KMS key for encryption. Default: the account's default EBS key. */
  kmsKeyId: field.id<string | undefined, string | undefined, "replace">("kmsKey", {
    change: "replace",
    optional: true,
    check: (c, p, v, raw) => {
      if (v !== undefined && raw.encrypted === false) c.fail(p, "kmsKeyId is set but encrypted is false: set encrypted: true or remove kmsKeyId");
    },
  }),
  /** Register with ENA support. Default: "auto", from what the guest script finds in the image. */
  enaSupport: field.of<"auto" | boolean | undefined, "auto" | boolean, "replace">({
    change: "replace",
    check: (c, p, v) => {
      if (v !== undefined && v !== "auto" && typeof v !== "boolean" && !isUnknown(v)) c.fail(p, `enaSupport must be "auto", true or false (got ${JSON.stringify(v)})`);
    },
    value: (v) => (v as "auto" | boolean | undefined) ?? "auto",
  }),
  /** Remove SSH host keys, shell histories, cloud-init state, machine-id, OpsWorks remnants. Default: true. */
  sanitize: field.boolean<boolean, "replace">({ change: "replace", fallback: true }),
  /**
   * The temporary worker. Default: Amazon Linux 2023 of the image's architecture, m6i/m6g.large,
   * default subnet, a temporary role that may do what the SSM agent needs and nothing else
   * (`rolePath` and `permissionsBoundary` set its IAM path and boundary; default "/" and none).
   */
  worker: field.of<WorkerOptions | undefined, WorkerOptions, "in-place">({ change: "in-place", check: (c, _p, v) => checkWorker(c, v), value: (v) => (v ?? {}) as WorkerOptions }),
  /** How long the build may take before it fails and cleans up. Default: 60. */
  timeoutMinutes: field.integer<number, "in-place">({ change: "in-place", min: 1, max: 24 * 60, fallback: 60, secret: false }),
  /**
   * Launch verification before the create succeeds: an instance of the new image must pass both
   * status checks and show userspace on its serial console. Default: on, one instance of a Nitro
   * type (t3.micro / t4g.micro) when the facts say the image is Nitro-ready, else of t2.micro
   * (Xen); 15 minutes (within timeoutMinutes); the boot signal is a login prompt, systemd's
   * multi-user target or cloud-init's "finished" line. `false`: not verified (preview warns).
   * Changing it alone changes nothing: it applies when the image is built.
   */
  verify: field.of<false | VerifyArgs | undefined, false | VerifyInputs, "next-build">({ change: "next-build", check: (c, _p, v) => void checkVerify(c, v), value: (v) => checkVerify(new Checker(), v) }),
  /**
   * Any string; changing it rebuilds the image (a replacement, new image first). Upgrading
   * ami-factory never rebuilds by itself (the guest script's hash is provenance only). Default: none.
   */
  rebuildTrigger: field.string<string | undefined, "replace">({ change: "replace", max: 256 }),
  ...CONSUMER_FIELDS,
  /** project/stack/resource name: makes build ids unique per resource. */
  scope: field.internal((v) => (typeof v === "string" ? v : "")),
  /** The bundled guest script's hash: provenance of a build (output and tag), never a trigger. */
  guestScriptSha256: field.internal((v) => String(v ?? "")),
};
