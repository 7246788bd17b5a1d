// Who holds each grant on an image shared in place (the source, in its own region). Several shares
// can grant on one source image: a replacement is created before the old share is deleted, and two
// shares of a stack may share one source. So each share records its grants as tags on the image,
// one per principal, `ami-factory:grant:<holderId>:<principal>` = "launch" or "launch volume", before
// it grants; and it revokes only what no other holder's tag still names. One tag per (holder,
// principal) key: shares that change grants in parallel never rewrite each other's tag.
import { randomBytes } from "crypto";
import { ec2Client } from "../core/clients";
import { changeLaunchPermissions, changeSnapshotPermissions, describeImage, noPrincipals, Principals, retag } from "../core/images";

export const GRANT_TAG_PREFIX = "ami-factory:grant:";

/** What one share grants on one image: launch principals, and accounts that may create volumes from its snapshots. */
export interface Grant {
  launch: Principals;
  snapshotAccounts: string[];
}

export interface ImageRef {
  imageId: string;
  snapshotIds: string[];
}

/** A new holder id: one per share (a replacement with the same inputs gets its own). */
export function newHolderId(): string {
  return randomBytes(5).toString("hex");
}

const principalsIn = (p: Principals) => [...p.accountIds, ...p.organizationArns, ...p.organizationalUnitArns];

const keyOf = (holderId: string, principal: string) => `${GRANT_TAG_PREFIX}${holderId}:${principal}`;

/** The holder's tags after it granted `g` (a volume grant alone: an account it already lets launch). */
function grantTags(holderId: string, g: Grant): Record<string, string> {
  const launch = principalsIn(g.launch);
  return Object.fromEntries([
    ...launch.map((p) => [keyOf(holderId, p), g.snapshotAccounts.includes(p) ? "launch volume" : "launch"]),
    ...g.snapshotAccounts.filter((a) => !launch.includes(a)).map((a) => [keyOf(holderId, a), "launch volume"]),
  ]);
}

/** Records the grants under holderId (first: a crash leaves a grant recorded, never one unrecorded), then makes them. */
export async function grantInPlace(region: string, img: ImageRef, holderId: string, g: Grant): Promise<void> {
  const ec2 = await ec2Client(region);
  await recordGrants(region, img.imageId, holderId, g);
  await changeLaunchPermissions(ec2, img.imageId, g.launch, noPrincipals);
  await changeSnapshotPermissions(ec2, img.snapshotIds, g.snapshotAccounts, []);
}

export async function recordGrants(region: string, imageId: string, holderId: string, g: Grant): Promise<void> {
  await retag(await ec2Client(region), [imageId], grantTags(holderId, g), []);
}

export async function forgetGrants(region: string, imageId: string, holderId: string, g: Grant): Promise<void> {
  await retag(await ec2Client(region), [imageId], {}, principalsIn(g.launch).map((p) => keyOf(holderId, p)));
}

/**
 * Drops holderId's record of the grants, then revokes those no other holder's tag names. holderId
 * undefined: a share from a release before this record, which recorded nothing.
 */
export async function revokeInPlace(region: string, img: ImageRef, holderId: string | undefined, g: Grant): Promise<void> {
  const ec2 = await ec2Client(region);
  const image = await describeImage(ec2, img.imageId);
  if (!image) return;
  if (holderId) {
    // A volume grant revoked alone leaves the account launching.
    const launch = principalsIn(g.launch);
    const launchOnly = g.snapshotAccounts.filter((a) => !launch.includes(a)).map((a) => [keyOf(holderId, a), "launch"]);
    await retag(ec2, [img.imageId], Object.fromEntries(launchOnly), launch.map((p) => keyOf(holderId, p)));
  }
  const launchHeld = new Set<string>();
  const volumeHeld = new Set<string>();
  for (const { Key, Value } of image.Tags ?? []) {
    if (!Key?.startsWith(GRANT_TAG_PREFIX) || (holderId && Key.startsWith(keyOf(holderId, "")))) continue;
    const principal = Key.slice(GRANT_TAG_PREFIX.length).replace(/^[^:]*:/, "");
    launchHeld.add(principal);
    if (Value?.split(" ").includes("volume")) volumeHeld.add(principal);
  }
  const free = (list: string[]) => list.filter((p) => !launchHeld.has(p));
  const revoke: Principals = { accountIds: free(g.launch.accountIds), organizationArns: free(g.launch.organizationArns), organizationalUnitArns: free(g.launch.organizationalUnitArns) };
  await changeLaunchPermissions(ec2, img.imageId, noPrincipals, revoke);
  await changeSnapshotPermissions(ec2, img.snapshotIds, [], g.snapshotAccounts.filter((a) => !volumeHeld.has(a)));
}
