// Is the source image convertible? Checked before anything is created; every "no" says why and what to do.
import type { Image, Snapshot } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "../core/clients";
import { describeImage } from "../core/images";
import { errorName } from "../core/wait";

export interface SourceImage {
  image: Image;
  name: string;
  architecture: "x86_64" | "arm64";
  rootSnapshotId: string;
  rootSizeGiB: number;
  encrypted: boolean;
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
  if (image.Architecture !== "x86_64" && image.Architecture !== "arm64") problems.push(`sourceAmiId ${sourceAmiId} has architecture ${image.Architecture}: only x86_64 and arm64 can be converted`);
  if (image.RootDeviceType !== "instance-store" && !rootMapping(image)?.Ebs?.SnapshotId) problems.push(`sourceAmiId ${sourceAmiId} has no EBS snapshot behind its root device ${image.RootDeviceName}`);
  return problems;
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
    architecture: image.Architecture as "x86_64" | "arm64",
    rootSnapshotId,
    rootSizeGiB: root.Ebs?.VolumeSize ?? snapshot.VolumeSize ?? 8,
    encrypted: snapshot.Encrypted === true,
  };
}
