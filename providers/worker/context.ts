// The typed state of a worker build (ConvertedHvmAmi, SurrogateAmi): what each step reads and the
// ids each step records as soon as AWS returns them, so cleanup can find them.
import type { Tags } from "../core/tags";

export interface WorkerOptions {
  /** Default: m6i.large (x86_64) / m6g.large (arm64): EBS-optimised, enough for a copy. */
  instanceType?: string;
  /** Default: the default subnet of the default VPC (first AZ). */
  subnetId?: string;
  /** An existing instance profile with SSM permissions (for SurrogateAmi also ssm:GetParameter on parameter/ami-factory/build/*, the build's secrets). Default: a temporary one is made, whose role may do what the SSM agent needs and read its build's secrets, nothing else (worker/workerPolicy.ts). */
  instanceProfileName?: string;
  /** The temporary role's IAM path. Default: "/". */
  rolePath?: string;
  /** A managed policy's ARN set as the temporary role's permissions boundary. Default: none. */
  permissionsBoundary?: string;
  /** Worker image. Default: the current Amazon Linux 2023 (public SSM parameter). */
  imageId?: string;
}

export interface VolumeSpec {
  /** Default gp3. */
  type: string;
  iops?: number;
  throughputMiBps?: number;
}

export interface WorkerBuild {
  region: string;
  buildId: string;
  architecture: "x86_64" | "arm64";
  worker: WorkerOptions;
  /** Tags for temporary resources (build id, expiry, temporary=true). */
  temporaryTags: Tags;
  /** Tags for what the build outputs (snapshot, image). */
  outputTags: Tags;
  /** When the whole build must be done (ms since epoch): waits stop there. */
  deadline: number;
  log: (line: string) => void;
  /** The build stamp (20261126T101005Z): fixed per build id, the suffix of the registered name. */
  stamp: string;
  exactName: boolean;
  /** The given name (the Name tag). */
  baseName: string;
  /** The name the image is registered with: baseName plus the stamp unless exactName. */
  imageName: string;
  /** Outbound TCP ports the worker's security group allows: 443, and 80 for an http:// recipe mirror. */
  egressPorts: number[];
  /** S3 object ARNs the worker role may read (s3:GetObject). */
  readObjectArns?: string[];
  /** Set when the image is encrypted: the worker's root volume is encrypted too (with this key). */
  workerRootEncryption?: { kmsKeyId?: string };
  /** Provenance tag value for the outputs. */
  guestScriptSha256: string;

  // Recorded by the steps.
  subnetId?: string;
  vpcId?: string;
  availabilityZone?: string;
  securityGroupId?: string;
  roleName?: string;
  /** The build's secret SSM parameters (worker/buildSecret.ts): names, and ARNs for the role's policy. */
  secretParameters?: string[];
  secretParameterArns?: string[];
  createdInstanceProfileName?: string;
  workerImageId?: string;
  /** The worker image's root device (read when its root is to be encrypted). */
  workerRoot?: { device: string };
  instanceId?: string;
  /** role (e.g. "source", "target") → volume id. */
  volumes: Record<string, string>;
  /** role → device name it was attached as. */
  attachments: Record<string, string>;
  commandId?: string;
  /** The guest script's last stdout line, parsed. */
  facts?: Record<string, unknown>;
  /** The last stdout line of a guest script that declined (GuestCommand.refusedExitCode), parsed. */
  refusal?: Record<string, unknown>;
  snapshotId?: string;
  imageId?: string;
  /** Launch verification: instance type → test instance id, recorded as each launch returns. */
  testInstances?: Record<string, string>;
  verification?: Verification;
}

/** How the new image was verified (an output of the built image). */
export type Verification =
  | { status: "skipped" }
  | { status: "passed"; results: { instanceType: string; secondsToBootSignal: number; bootLine: string }[] };

/** Seconds left until the build's deadline (at least 1). */
export function secondsLeft(build: WorkerBuild): number {
  return Math.max(1, Math.floor((build.deadline - Date.now()) / 1000));
}
