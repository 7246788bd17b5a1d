// Is the source image convertible? Checked before anything is created; every "no" says why and what to do.
import type { BlockDeviceMapping, Image, Snapshot } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "../core/clients";
import { describeImage } from "../core/images";
import { errorName } from "../core/wait";

/** The device name of the converted image's root. */
export const HVM_ROOT_DEVICE = "/dev/xvda";

export interface SourceImage {
  image: Image;
  name: string;
  architecture: "x86_64";
  /** Every mapping but the root's, as RegisterImage takes it (carriedMappings). */
  otherMappings: BlockDeviceMapping[];
  rootSnapshotId: string;
  rootSizeGiB: number;
  encrypted: boolean;
  /** The root snapshot's KMS key, when encrypted. */
  kmsKeyId?: string;
}

/** The reasons an image cannot be converted (pure: tested without AWS). */
export function conversionBlockers(image: Image, sourceAmiId: string): string[] {
  const problems: string[] = [];
  if (image.VirtualizationType === "hvm") problems.push(`sourceAmiId ${sourceAmiId} is already HVM: use the image as it is`);
  if (image.RootDeviceType === "instance-store") {
    problems.push(`sourceAmiId ${sourceAmiId} is instance-store backed: only EBS-backed images can be converted (move it to EBS first, e.g. launch it and create an EBS-backed image)`);
  }
  const marketplace = (image.ProductCodes ?? []).filter((p) => p.ProductCodeType === "marketplace");
  if (marketplace.length) {
    problems.push(`sourceAmiId ${sourceAmiId} carries Marketplace product codes (${marketplace.map((p) => p.ProductCodeId).join(", ")}): Marketplace images cannot be converted; use the vendor's HVM image`);
  }
  // PV-GRUB exists for x86 only: an arm64 "source" would get i386-pc GRUB and a BIOS boot mode.
  if (image.Architecture !== "x86_64") problems.push(`sourceAmiId ${sourceAmiId} has architecture ${image.Architecture}: only x86_64 paravirtual (PV-GRUB) images can be converted; ${image.Architecture === "arm64" ? "arm64 images are HVM (UEFI) already: use it as it is" : "use an x86_64 image"}`);
  const root = rootMapping(image);
  const clash = (image.BlockDeviceMappings ?? []).find((m) => m !== root && m.DeviceName === HVM_ROOT_DEVICE);
  if (clash) problems.push(`sourceAmiId ${sourceAmiId} maps another device to ${HVM_ROOT_DEVICE}, the converted image's root: register a copy of the source without that mapping (or with it under another name) and convert that`);
  if (image.RootDeviceType !== "instance-store" && !rootMapping(image)?.Ebs?.SnapshotId) problems.push(`sourceAmiId ${sourceAmiId} has no EBS snapshot behind its root device ${image.RootDeviceName}`);
  return problems;
}

/**
 * The source's non-root mappings as RegisterImage takes them: EBS volumes from snapshots (size,
 * type, IOPS and throughput where the type has them, DeleteOnTermination; the snapshot's own
 * encryption), empty EBS volumes (with their encryption), instance-store (ephemeralN) and NoDevice
 * entries. EC2 refuses an encryption value beside a snapshot id ("You can't specify both a snapshot
 * ID and an encryption value", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html),
 * and KmsKeyId is for RunInstances and Spot requests only: neither is sent with a snapshot. Pure.
 */
export function carriedMappings(image: Image): BlockDeviceMapping[] {
  const root = rootMapping(image);
  return (image.BlockDeviceMappings ?? [])
    .filter((m) => m !== root)
    .map((m): BlockDeviceMapping => {
      if (m.VirtualName) return { DeviceName: m.DeviceName, VirtualName: m.VirtualName };
      if (m.NoDevice !== undefined) return { DeviceName: m.DeviceName, NoDevice: "" };
      const e = m.Ebs ?? {};
      const type = e.VolumeType;
      return {
        DeviceName: m.DeviceName,
        Ebs: {
          SnapshotId: e.SnapshotId,
          VolumeSize: e.VolumeSize,
          VolumeType: type,
          Iops: type === "io1" || type === "io2" || type === "gp3" ? e.Iops : undefined,
          Throughput: type === "gp3" ? e.Throughput : undefined,
          DeleteOnTermination: e.DeleteOnTermination,
          Encrypted: e.SnapshotId ? undefined : e.Encrypted,
        },
      };
    });
}

function rootMapping(image: Image) {
  const maps = image.BlockDeviceMappings ?? [];
  return maps.find((m) => m.DeviceName === image.RootDeviceName) ?? (maps.length === 1 ? maps[0] : undefined);
}

export async function inspectSource(region: string, sourceAmiId: string): Promise<SourceImage> {
  const { DescribeSnapshotsCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  const image = await describeImage(ec2, sourceAmiId);
  if (!image) throw new Error(`sourceAmiId ${sourceAmiId} was not found in ${region}: check the id and region (images are regional)`);
  if (image.State !== "available") throw new Error(`sourceAmiId ${sourceAmiId} is ${image.State}: only available images can be converted`);
  const problems = conversionBlockers(image, sourceAmiId);
  if (problems.length) throw new Error(problems.join("; "));
  const root = rootMapping(image)!;
  const rootSnapshotId = root.Ebs!.SnapshotId!;
  let snapshot: Snapshot | undefined;
  try {
    snapshot = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [rootSnapshotId] }))).Snapshots?.[0];
  } catch (e) {
    if (!["InvalidSnapshot.NotFound", "UnauthorizedOperation", "AuthFailure"].includes(errorName(e) ?? "")) throw e;
  }
  if (!snapshot) {
    throw new Error(`the root snapshot ${rootSnapshotId} of ${sourceAmiId} is not readable by this account: ask the image owner to grant createVolumePermission on it`);
  }
  return {
    image,
    name: image.Name ?? sourceAmiId,
    architecture: "x86_64",
    otherMappings: carriedMappings(image),
    rootSnapshotId,
    rootSizeGiB: root.Ebs?.VolumeSize ?? snapshot.VolumeSize ?? 8,
    encrypted: snapshot.Encrypted === true,
    kmsKeyId: snapshot.KmsKeyId,
  };
}
