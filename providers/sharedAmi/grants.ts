// Who holds each grant on an image shared in place (the source, in its own region). Several shares
// can grant on one source image: a replacement is created before the old share is deleted, and two
// shares of a stack may share one source. So each share records its grants as tags on the image
// (./grantRecords.ts) before it grants, and revokes only what no other share's record still names.
// A create's record carries an expiry until it is handed over: a run that died between recording
// and returning leaves a record that `npm run sweep` (or the create's re-run) takes away, with what
// only it granted.
import { ec2Client, ec2Sdk } from "../core/clients";
import { changeLaunchPermissions, changeSnapshotPermissions, describeImage, noPrincipals, retag, snapshotIdsOf } from "../core/images";
import { randomBytes } from "crypto";
import { waitFor } from "../core/wait";
import { asPrincipals, checkKey, expiresKey, Grant, heldByOthers, HolderRecord, MARKER_HEADROOM, MAX_USER_TAGS, principalsIn, readRecords, recordTags } from "./grantRecords";

export type { Grant } from "./grantRecords";

export interface ImageRef {
  imageId: string;
  snapshotIds: string[];
}

/** Sets the record's expiry at a create (until handed over): when a sweep may take it, by which build, of which stack. */
export interface RecordExpiry {
  at: string;
  buildId: string;
  stack: string;
}

export const noGrant: Grant = { launch: noPrincipals, snapshotAccounts: [] };

/** Both grants' principals. */
export function mergeGrants(a: Grant, b: Grant): Grant {
  const u = (x: string[], y: string[]) => [...new Set([...x, ...y])];
  return {
    launch: { accountIds: u(a.launch.accountIds, b.launch.accountIds), organizationArns: u(a.launch.organizationArns, b.launch.organizationArns), organizationalUnitArns: u(a.launch.organizationalUnitArns, b.launch.organizationalUnitArns) },
    snapshotAccounts: u(a.snapshotAccounts, b.snapshotAccounts),
  };
}

const grantOfRecord = (r: HolderRecord): Grant => ({ launch: asPrincipals(r.launch), snapshotAccounts: [...r.volume] });

/**
 * Makes holderId's record name exactly `g` (with an expiry, or none: handed over): the new tags
 * first, then the keys it no longer uses, so a crash between leaves more recorded, never less.
 * Refuses, before any change, a record that grows and would leave fewer than MARKER_HEADROOM of
 * EC2's 50 user tags free (a revocation's marker needs one).
 */
type Tags = { Key?: string; Value?: string }[] | undefined;

async function writeRecord(region: string, imageId: string, tags: Tags, holderId: string, g: Grant, expires?: RecordExpiry): Promise<Tags> {
  const ec2 = await ec2Client(region);
  const old = readRecords(tags).get(holderId)?.keys ?? [];
  const next = principalsIn(g.launch).length || g.snapshotAccounts.length ? recordTags(holderId, g, expires) : {};
  const userTags = (tags ?? []).filter((t) => t.Key && !t.Key.startsWith("aws:") && !old.includes(t.Key)).length;
  // A record that shrinks or keeps its size is always written (a revocation must be able to proceed).
  if (Object.keys(next).length > old.length && userTags + Object.keys(next).length > MAX_USER_TAGS - MARKER_HEADROOM) {
    throw new Error(
      `image ${imageId} in ${region} has ${userTags} tags besides this share's, and this share's grant record needs ${Object.keys(next).length}: EC2 allows ${MAX_USER_TAGS} per image and ${MARKER_HEADROOM} are kept free for revocations' marker tags; ` +
        "remove some of the image's tags, or share copies (set encrypted, or a region other than sourceRegion) instead of the source in place",
    );
  }
  await retag(ec2, [imageId], next, old.filter((k) => !(k in next)));
  // The image's tags now (computed, not read back: a read may not show the write yet).
  return [...(tags ?? []).filter((t) => !old.includes(t.Key ?? "") && !(t.Key! in next)), ...Object.entries(next).map(([Key, Value]) => ({ Key, Value }))];
}

/**
 * What of `add` the image (launch) and its snapshots (volumes, on any of them) grant already: for a
 * warning only. Which of them were granted by hand cannot be told safely from a share's grant in
 * flight or one being revoked (a concurrent share), so nothing is inferred from it: the share
 * records them as its own, and its delete revokes what no other share's record names.
 */
async function grantedAlready(region: string, img: ImageRef, add: Grant): Promise<string[]> {
  const { DescribeImageAttributeCommand, DescribeSnapshotAttributeCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  const wanted = principalsIn(add.launch);
  const seen = new Set<string>();
  if (wanted.length) {
    const perms = (await ec2.send(new DescribeImageAttributeCommand({ ImageId: img.imageId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    for (const p of perms) [p.UserId, p.OrganizationArn, p.OrganizationalUnitArn].forEach((x) => x && wanted.includes(x) && seen.add(x));
  }
  if (add.snapshotAccounts.length) {
    for (const SnapshotId of img.snapshotIds) {
      const perms = (await ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId, Attribute: "createVolumePermission" }))).CreateVolumePermissions ?? [];
      perms.forEach((p) => p.UserId && add.snapshotAccounts.includes(p.UserId) && seen.add(p.UserId));
    }
  }
  return [...seen];
}

/**
 * Records `record` as holderId's whole grant (first: a crash leaves a grant recorded, never one
 * unrecorded), then grants `add`. A principal of `add` the source grants already is recorded as
 * this share's like any other (by hand or by a share in flight cannot be told apart safely): the
 * share's delete revokes it unless another share's record names it; `log` says so.
 */
export async function grantInPlace(region: string, img: ImageRef, holderId: string, record: Grant, add: Grant, expires?: RecordExpiry, log?: (l: string) => void): Promise<void> {
  const ec2 = await ec2Client(region);
  const image = await describeImage(ec2, img.imageId);
  if (!image) throw new Error(`image ${img.imageId} in ${region} is gone: it cannot be shared in place`);
  const already = log ? await grantedAlready(region, img, add) : [];
  if (already.length) {
    log!(`warning: ${img.imageId} in ${region} grants ${already.join(", ")} already (by hand, or by another share): this share records them as its own, so deleting it revokes them unless another share still names them; grant them again by hand after that if they must keep access`);
  }
  await writeRecord(region, img.imageId, image.Tags, holderId, record, expires);
  await changeLaunchPermissions(ec2, img.imageId, add.launch, noPrincipals);
  await changeSnapshotPermissions(ec2, img.snapshotIds, add.snapshotAccounts, []);
}

/** The record's expiry dropped: the share is the engine's now. */
export async function handOverRecord(region: string, imageId: string, holderId: string): Promise<void> {
  await retag(await ec2Client(region), [imageId], {}, [expiresKey(holderId)]);
}

/** How long a revocation waits for the image's tags to show its own marker (EC2: "up to a few minutes"). */
const CONSISTENT_READ_SECONDS = 300;

/**
 * The image's tags as of now: EC2's reads are eventually consistent ("Eventual consistency in the
 * Amazon EC2 API": a command's result "might not be immediately visible to all subsequent
 * commands"), so a read right after a revocation may miss a record another share wrote before its
 * grant. A marker tag (checkKey, a fresh value) is written and the tags are read, with backoff,
 * until they show it: a read that shows a write made after the revocation shows what was written
 * before it. The marker goes again (a leftover is part of the holder's keys: its next record write
 * takes it).
 */
async function readTagsAfter(region: string, imageId: string, holderId: string | undefined): Promise<Tags> {
  const ec2 = await ec2Client(region);
  const nonce = randomBytes(6).toString("hex");
  const key = checkKey(holderId ?? `revoke-${nonce}`);
  await retag(ec2, [imageId], { [key]: nonce }, []);
  const tags = await waitFor({ what: `image ${imageId} in ${region} to show this revocation's marker tag ${key}`, maxWaitSeconds: CONSISTENT_READ_SECONDS, minDelaySeconds: 1, maxDelaySeconds: 15 }, async () => {
    const image = await describeImage(ec2, imageId);
    if (!image) return { state: "SUCCESS", value: [] as Tags };
    return image.Tags?.some((t) => t.Key === key && t.Value === nonce) ? { state: "SUCCESS", value: image.Tags } : { state: "RETRY", reason: "tags without the marker" };
  });
  await retag(ec2, [imageId], {}, [key]);
  return tags?.filter((t) => t.Key !== key);
}

/**
 * Makes holderId's record name `record` (what it still holds), then revokes of `remove` what no
 * other holder's record names at a consistent read (readTagsAfter). Then reads the records again:
 * a share that granted one of those principals in between (recorded before it granted) gets it
 * back, and what `remove` kept only for other records that are gone by now (their shares deleted in
 * parallel with this one: each read the other's record before it went) is revoked too. Every revocation is followed by a re-read that
 * grants back what a record names by then; granters record before they grant, so a grant made after
 * that re-read comes after the revocation; the re-read waits until it shows a marker written after
 * the revocation (readTagsAfter: EC2's reads are eventually consistent). holderId undefined: a
 * share from the release before records, which recorded nothing.
 */
export async function revokeInPlace(region: string, img: ImageRef, holderId: string | undefined, record: Grant, remove: Grant): Promise<void> {
  const ec2 = await ec2Client(region);
  const image = await describeImage(ec2, img.imageId);
  if (!image) return;
  if (holderId) await writeRecord(region, img.imageId, image.Tags, holderId, record);
  const own = new Set(principalsIn(record.launch));
  const ownVolume = new Set(record.snapshotAccounts);
  /** Revokes, then re-reads and grants back what another record names now; returns what others name at that re-read. */
  const revokeThenRecheck = async (launch: string[], volume: string[]) => {
    await changeLaunchPermissions(ec2, img.imageId, noPrincipals, asPrincipals(launch));
    await changeSnapshotPermissions(ec2, img.snapshotIds, [], volume);
    let after: ReturnType<typeof heldByOthers>;
    try {
      after = heldByOthers(readRecords(await readTagsAfter(region, img.imageId, holderId)), holderId);
    } catch (e) {
      // Without a read that comes after the revocation, another share's grant cannot be told
      // apart: what was revoked goes back, and the revocation fails (to be retried).
      await changeLaunchPermissions(ec2, img.imageId, asPrincipals(launch), noPrincipals);
      await changeSnapshotPermissions(ec2, img.snapshotIds, volume, []);
      throw e;
    }
    await changeLaunchPermissions(ec2, img.imageId, asPrincipals(launch.filter((p) => after.launch.has(p))), noPrincipals);
    await changeSnapshotPermissions(ec2, img.snapshotIds, volume.filter((a) => after.volume.has(a)), []);
    return after;
  };
  const candidates = principalsIn(remove.launch).filter((p) => !own.has(p));
  const volumeCandidates = remove.snapshotAccounts.filter((a) => !ownVolume.has(a));
  if (!candidates.length && !volumeCandidates.length) return;
  // A consistent read before revoking too: a record another share wrote before it is seen, so its
  // principal is not revoked at all (a consumer loses no access while the re-read waits).
  const before = heldByOthers(readRecords(await readTagsAfter(region, img.imageId, holderId)), holderId);
  const revoke = candidates.filter((p) => !before.launch.has(p));
  const revokeVolume = volumeCandidates.filter((a) => !before.volume.has(a));
  const after = await revokeThenRecheck(revoke, revokeVolume);
  // Kept for another record at the first read, named by none now: its share went meanwhile.
  const orphaned = candidates.filter((p) => before.launch.has(p) && !after.launch.has(p));
  const orphanedVolume = volumeCandidates.filter((a) => before.volume.has(a) && !after.volume.has(a));
  if (orphaned.length || orphanedVolume.length) await revokeThenRecheck(orphaned, orphanedVolume);
}

/** A record a create left un-handed-over: which image, which holder, when it expires, by which build. */
export interface ExpiringRecord {
  imageId: string;
  holderId: string;
  expiresAt: string;
  buildId?: string;
  stack?: string;
}

/** Records of holders that were never handed over, on this account's images in a region. */
export async function expiringRecords(region: string): Promise<ExpiringRecord[]> {
  const { DescribeImagesCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  // DescribeImages tag-key filter values take * wildcards (EC2 API reference, DescribeImages, Filter).
  const images = (await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag-key", Values: ["ami-factory:grants:*:expires"] }] }))).Images ?? [];
  return images.flatMap((image) =>
    [...readRecords(image.Tags)].filter(([, r]) => r.expires).map(([holderId, r]) => ({ imageId: image.ImageId!, holderId, expiresAt: r.expires!.at, buildId: r.expires!.buildId, stack: r.expires!.stack })),
  );
}

/** A holder that no longer exists: its record goes, and what only it granted is revoked. */
export async function dropHolder(region: string, imageId: string, holderId: string): Promise<void> {
  const image = await describeImage(await ec2Client(region), imageId);
  const record = image && readRecords(image.Tags).get(holderId);
  if (!image || !record) return;
  await revokeInPlace(region, { imageId, snapshotIds: snapshotIdsOf(image) }, holderId, noGrant, grantOfRecord(record));
}
