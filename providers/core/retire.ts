// Retirement: an image that leaves the stack (a replacement, a removed entry or SharedAmi region, a
// `pulumi destroy --target` of it) stays launchable by id for the consumers that still name it,
// deprecated at once and tagged retired, until reaping (./reap.ts) deregisters it by policy. While it
// is in the stack's outputs it carries deregistration protection.
//
// Pulumi calls a provider's delete with the resource's id and state only: the same call for the old
// image of a replacement, a removed entry and `pulumi destroy`. So a delete retires, and a
// `pulumi destroy` of the whole stack turns that into deleting through the stack's StackLifetime
// marker (./stackDestroy.ts), deleted after every image. Deleting at once is asked for with the
// resource's `retirement: "delete"` only: nothing in the environment of an ordinary `pulumi up` can
// make a removed entry or region delete an image a consumer may still launch.
import type { EC2Client, Image } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "./clients";
import { describeImage, liftProtection, retag } from "./images";
import { deleteIfStackDestroyed } from "./stackDestroy";
import { BUILD_ID_TAG } from "./tags";

/** When the image was retired (ISO 8601). Only images with this tag are ever reaped. */
export const RETIRED_AT_TAG = "ami-factory:retired-at";
/** The build id of the image that replaced it, or "removed" (entry, region or stack gone). */
export const RETIRED_BY_TAG = "ami-factory:retired-by";
/**
 * The id of the image that was retired. CopyImage can copy an image's tags (CopyImageTags), so a copy
 * of a retired image made out of band carries the retired tags too: an image is retired only when
 * this names the image itself (isRetired).
 */
export const RETIRED_IMAGE_TAG = "ami-factory:retired-image";
/** The retention it was retired with: "days=14 keep=2". */
export const RETENTION_TAG = "ami-factory:retention";
/** project/stack/resource: every image a resource ever made (its builds, its copies) shares it. */
export const LINEAGE_TAG = "ami-factory:lineage";

export interface RetentionPolicy {
  days: number;
  keep: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { days: 14, keep: 2 };
export const RETENTION_LIMITS = { days: { min: 1, max: 3650 }, keep: { min: 0, max: 100 } };

export type Retirement = "retire" | "delete";

/** What a delete does with an image: as the resource says (a whole-stack destroy deletes through the StackLifetime marker). */
export function retirementOf(stored: string | undefined): Retirement {
  return stored === "delete" ? "delete" : "retire";
}

/**
 * The lineage's own builds and copies among images tagged with it: not a copy of one of them (a
 * CopyImage made out of band with CopyImageTags carries the lineage's tags; SourceImageId names the
 * image it copied, "Image" in the EC2 API reference), which is neither a successor nor retired.
 */
export function builds(lineageImages: Image[]): Image[] {
  const ids = new Set(lineageImages.map((i) => i.ImageId));
  return lineageImages.filter((i) => !(i.SourceImageId && ids.has(i.SourceImageId)));
}

export function retentionTag(p: RetentionPolicy | undefined): string {
  const r = p ?? DEFAULT_RETENTION;
  return `days=${r.days} keep=${r.keep}`;
}

/** The retention an image was retired with (defaults for a tag that is missing or unreadable). */
export function parseRetention(tag: string | undefined): RetentionPolicy {
  const days = /(?:^|\s)days=(\d+)/.exec(tag ?? "")?.[1];
  const keep = /(?:^|\s)keep=(\d+)/.exec(tag ?? "")?.[1];
  return { days: days === undefined ? DEFAULT_RETENTION.days : Number(days), keep: keep === undefined ? DEFAULT_RETENTION.keep : Number(keep) };
}

export const tagOf = (image: Pick<Image, "Tags"> | undefined, key: string) => image?.Tags?.find((t) => t.Key === key)?.Value;

/**
 * Whether ami-factory retired this very image: a readable retired-at, and retired-image naming its
 * own id (a copy's tags name the image it was copied from). An image retired before retired-image
 * was written has none: it is retired only if it existed when it was retired (CreationDate not after
 * retired-at); a CopyImage of it made later with its tags is not, and one of unknown age is not.
 */
export function isRetired(image: Pick<Image, "Tags" | "ImageId" | "CreationDate">): boolean {
  const retiredAt = Date.parse(tagOf(image, RETIRED_AT_TAG) ?? "");
  if (Number.isNaN(retiredAt)) return false;
  const retired = tagOf(image, RETIRED_IMAGE_TAG);
  if (retired !== undefined) return retired === image.ImageId;
  const created = Date.parse(image.CreationDate ?? "");
  return !Number.isNaN(created) && created <= retiredAt;
}

/**
 * Deregistration protection on or off. Always without the 24-hour cooldown (WithCooldown): retiring
 * and deleting lift it, and with a cooldown a `retirement: "delete"` replacement or a reap right
 * after the first day could not deregister for another day ("Protect an Amazon EC2 AMI from
 * deregistration", EC2 User Guide; EnableImageDeregistrationProtection, WithCooldown: "enforces
 * deregistration protection for 24 hours after deregistration protection is disabled").
 */
export async function setProtection(ec2: EC2Client, imageId: string, on: boolean): Promise<void> {
  const { EnableImageDeregistrationProtectionCommand, DisableImageDeregistrationProtectionCommand } = ec2Sdk();
  if (on) await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: imageId, WithCooldown: false }));
  else await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: imageId }));
}

/**
 * deregistrationProtection as the images have it, for refresh: false when one is unprotected (an
 * image made before protection existed, or lifted out of band), so the next up's diff sees the
 * field differ and its update protects them; nothing when EC2 does not say.
 */
export function protectionSeen(images: Pick<Image, "DeregistrationProtection">[]): { deregistrationProtection?: false } {
  const seen = images.map((i) => i.DeregistrationProtection).filter((p): p is string => !!p);
  if (seen.length < images.length || !images.length) return {};
  return { deregistrationProtection: seen.includes("disabled") ? false : undefined };
}

/** Protection of an image in the outputs, as the resource asks (default on). */
export async function protectIfAsked(region: string, imageId: string, protection: false | undefined): Promise<void> {
  if (protection !== false) await setProtection(await ec2Client(region), imageId, true);
}

/** The newest other image of the lineage not retired: the build that replaced `imageId` ("removed" when none). */
export async function successorOf(ec2: Pick<EC2Client, "send">, lineage: string, imageId: string): Promise<string> {
  const { DescribeImagesCommand } = ec2Sdk();
  const out = await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: `tag:${LINEAGE_TAG}`, Values: [lineage] }] }));
  const live = builds(out.Images ?? [])
    .filter((i) => i.ImageId !== imageId && i.State !== "deregistered" && !isRetired(i))
    .sort((a, b) => (b.CreationDate ?? "").localeCompare(a.CreationDate ?? ""));
  return tagOf(live[0], BUILD_ID_TAG) ?? "removed";
}

/**
 * Retires an image: deprecated at once (EnableImageDeprecation; a deprecated
 * image still launches by id, "Deprecate an Amazon EC2 AMI", EC2 User Guide), tagged when, by which
 * build, with which retention and lineage, then its protection lifted. Launch permissions and
 * snapshots stay. Gone is fine.
 */
export async function retireImage(region: string, imageId: string, o: { lineage: string; retention?: RetentionPolicy }, log: (l: string) => void): Promise<RetiredBy> {
  return retireWith(await ec2Client(region), region, imageId, o, log);
}

/** What retired an image: the build id of its successor, "removed" when it has none, undefined when it was gone already. */
export type RetiredBy = string | undefined;

/**
 * A delete that retires: the image retired, and, when it has no successor (a removed entry, region
 * or a destroy), `remove` left for the StackLifetime marker to run if the whole stack is being
 * destroyed (./stackDestroy.ts).
 */
export async function retireUnlessDestroyed(region: string, imageId: string, o: { lineage: string; retention?: RetentionPolicy }, log: (l: string) => void, remove: () => Promise<void>): Promise<void> {
  if ((await retireImage(region, imageId, o, log)) === "removed") deleteIfStackDestroyed(`${imageId} in ${region}`, remove);
}

/** retireImage with a given client. Deprecated and tagged first, protection lifted last: a failure half-way leaves it protected. */
export async function retireWith(ec2: Pick<EC2Client, "send">, region: string, imageId: string, o: { lineage: string; retention?: RetentionPolicy }, log: (l: string) => void): Promise<RetiredBy> {
  const { EnableImageDeprecationCommand } = ec2Sdk();
  const image = await describeImage(ec2 as EC2Client, imageId);
  if (!image) {
    log(`${imageId} in ${region} is gone already: nothing to retire`);
    return undefined;
  }
  const now = new Date();
  // DeprecateAt may not be in the past (EnableImageDeprecation) and EC2 rounds it to the minute: the next minute.
  await ec2.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: new Date(now.getTime() + 60_000) }));
  const by = await successorOf(ec2, o.lineage, imageId);
  await retag(ec2 as EC2Client, [imageId], { [RETIRED_AT_TAG]: now.toISOString(), [RETIRED_IMAGE_TAG]: imageId, [RETIRED_BY_TAG]: by, [RETENTION_TAG]: retentionTag(o.retention), [LINEAGE_TAG]: tagOf(image, LINEAGE_TAG) ?? o.lineage }, []);
  await liftProtection(ec2, image);
  log(`retired ${imageId} in ${region} (${by === "removed" ? "removed from the stack" : `replaced by build ${by}`}): deprecated, still launchable by id, reaped by retention ${retentionTag(o.retention)} once unused`);
  return by;
}

/** What preview says about an image a replacement (`replaced`) or removal takes out of the stack. */
export function retirementNote(what: string, stored: string | undefined): string {
  return retirementOf(stored) === "delete"
    ? `${what}: then deleted (retirement: "delete")`
    : `${what}: then retired, not deleted (deprecated, still launchable by id, reaped once unused past its retention; retirement: "delete" deletes it)`;
}
