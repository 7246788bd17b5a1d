// Image and snapshot operations shared by every resource that makes or shares images.
import type { EC2Client, Image, LaunchPermission } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "./clients";
import { mapBounded } from "./concurrency";
import { errorName, waitFor } from "./wait";

/** Snapshots of one image (one per EBS volume) whose permissions change at once. */
const SNAPSHOT_CONCURRENCY = 4;

// A plain array, not a Set: module-level values travel in the provider's serialised closure, and a
// Set does not survive that.
const NOT_FOUND = ["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed"];

/** The image, or undefined when it does not exist (any more). Deregistered images count as gone. */
export async function describeImage(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  const { DescribeImagesCommand } = ec2Sdk();
  try {
    const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    const image = out.Images?.find((i) => i.ImageId === imageId);
    return image && image.State !== "deregistered" ? image : undefined;
  } catch (e) {
    if (NOT_FOUND.includes(errorName(e) ?? "")) return undefined;
    throw e;
  }
}

export function snapshotIdsOf(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
}

export async function waitForImageAvailable(ec2: EC2Client, imageId: string, what: string, maxWaitSeconds: number, log?: (l: string) => void): Promise<Image> {
  const started = Date.now();
  return waitFor({ what, maxWaitSeconds, minDelaySeconds: 1, maxDelaySeconds: 20 }, async () => {
    const image = await describeImage(ec2, imageId);
    if (!image) return { state: "RETRY", reason: "not visible yet" };
    if (image.State === "available") return { state: "SUCCESS", value: image };
    if (image.State === "failed" || image.State === "error" || image.State === "invalid") {
      return { state: "FAILURE", reason: `image state ${image.State}${image.StateReason?.Message ? `: ${image.StateReason.Message}` : ""}` };
    }
    log?.(`${what}: ${image.State} after ${Math.round((Date.now() - started) / 1000)}s`);
    return { state: "RETRY", reason: `state ${image.State}` };
  });
}

/**
 * Lifts deregistration protection when the image has it: whatever deregisters an image of ours
 * (a delete, a failed create's cleanup, a sweep, a reap) does so first.
 */
export async function liftProtection(ec2: Pick<EC2Client, "send">, image: Image): Promise<void> {
  const { DisableImageDeregistrationProtectionCommand } = ec2Sdk();
  if (image.DeregistrationProtection && image.DeregistrationProtection !== "disabled") await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: image.ImageId! }));
}

/**
 * Deregisters an image, lifting its protection first; if DeregisterImage then fails (gone already
 * is fine), the protection goes back on (as it was, with or without cooldown) before the error is
 * rethrown: a failed delete never leaves an image in use unprotected.
 */
export async function deregisterProtected(ec2: Pick<EC2Client, "send">, image: Image): Promise<void> {
  const { DeregisterImageCommand, EnableImageDeregistrationProtectionCommand } = ec2Sdk();
  const was = image.DeregistrationProtection;
  await liftProtection(ec2, image);
  try {
    await ec2.send(new DeregisterImageCommand({ ImageId: image.ImageId! }));
  } catch (e) {
    if (NOT_FOUND.includes(errorName(e) ?? "")) return;
    if (was && was !== "disabled") await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: image.ImageId!, WithCooldown: was === "enabled-with-cooldown" }));
    throw e;
  }
}

/** Deregister an image (lifting its protection) and delete the snapshots behind it. Gone already is fine. */
export async function deleteImageAndSnapshots(region: string, imageId: string, knownSnapshotIds: string[] = []): Promise<void> {
  const ec2 = await ec2Client(region);
  const image = await describeImage(ec2, imageId);
  const snapshots = new Set([...knownSnapshotIds, ...(image ? snapshotIdsOf(image) : [])]);
  if (image) await deregisterProtected(ec2, image);
  for (const snapshotId of snapshots) await deleteSnapshot(ec2, snapshotId);
}

export async function deleteSnapshot(ec2: EC2Client, snapshotId: string): Promise<void> {
  const { DeleteSnapshotCommand } = ec2Sdk();
  try {
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
  } catch (e) {
    if (errorName(e) !== "InvalidSnapshot.NotFound") throw e;
  }
}

export interface Principals {
  accountIds: string[];
  organizationArns: string[];
  organizationalUnitArns: string[];
}

export function launchPermissions(p: Principals): LaunchPermission[] {
  return [
    ...p.accountIds.map((a): LaunchPermission => (a === "all" ? { Group: "all" } : { UserId: a })),
    ...p.organizationArns.map((OrganizationArn) => ({ OrganizationArn })),
    ...p.organizationalUnitArns.map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
  ];
}

export function principalsDelta(before: Principals, after: Principals): { add: Principals; remove: Principals } {
  const minus = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
  return {
    add: {
      accountIds: minus(after.accountIds, before.accountIds),
      organizationArns: minus(after.organizationArns, before.organizationArns),
      organizationalUnitArns: minus(after.organizationalUnitArns, before.organizationalUnitArns),
    },
    remove: {
      accountIds: minus(before.accountIds, after.accountIds),
      organizationArns: minus(before.organizationArns, after.organizationArns),
      organizationalUnitArns: minus(before.organizationalUnitArns, after.organizationalUnitArns),
    },
  };
}

export const noPrincipals: Principals = { accountIds: [], organizationArns: [], organizationalUnitArns: [] };

/** Grant and revoke launch permissions on an image. */
export async function changeLaunchPermissions(ec2: EC2Client, imageId: string, add: Principals, remove: Principals): Promise<void> {
  const { ModifyImageAttributeCommand } = ec2Sdk();
  const Add = launchPermissions(add);
  const Remove = launchPermissions(remove);
  if (!Add.length && !Remove.length) return;
  await ec2.send(new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: Add.length ? Add : undefined, Remove: Remove.length ? Remove : undefined } }));
}

/**
 * Grant and revoke create-volume permissions on snapshots: accounts only (snapshots cannot be
 * shared with organisations), and never the public group.
 */
export async function changeSnapshotPermissions(ec2: EC2Client, snapshotIds: string[], addAccounts: string[], removeAccounts: string[]): Promise<void> {
  const { ModifySnapshotAttributeCommand } = ec2Sdk();
  const add = addAccounts.filter((a) => a !== "all");
  const remove = removeAccounts.filter((a) => a !== "all");
  await mapBounded(snapshotIds, SNAPSHOT_CONCURRENCY, async (SnapshotId) => {
    if (add.length) await ec2.send(new ModifySnapshotAttributeCommand({ SnapshotId, Attribute: "createVolumePermission", OperationType: "add", UserIds: add }));
    if (remove.length) await ec2.send(new ModifySnapshotAttributeCommand({ SnapshotId, Attribute: "createVolumePermission", OperationType: "remove", UserIds: remove }));
  });
}

/** Set or clear an image's deprecation time. */
export async function setDeprecation(ec2: EC2Client, imageId: string, deprecateAt: string | undefined): Promise<void> {
  const { EnableImageDeprecationCommand, DisableImageDeprecationCommand } = ec2Sdk();
  if (deprecateAt) await ec2.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: new Date(deprecateAt) }));
  else await ec2.send(new DisableImageDeprecationCommand({ ImageId: imageId }));
}

/** Add or change tags and remove keys on a set of EC2 resources. */
export async function retag(ec2: EC2Client, resourceIds: string[], set: Record<string, string>, removeKeys: string[]): Promise<void> {
  const { CreateTagsCommand, DeleteTagsCommand } = ec2Sdk();
  if (!resourceIds.length) return;
  const Tags = Object.entries(set).map(([Key, Value]) => ({ Key, Value }));
  if (Tags.length) await ec2.send(new CreateTagsCommand({ Resources: resourceIds, Tags }));
  if (removeKeys.length) await ec2.send(new DeleteTagsCommand({ Resources: resourceIds, Tags: removeKeys.map((Key) => ({ Key })) }));
}
