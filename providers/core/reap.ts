// Reaping: retired images (./retire.ts) are deregistered, with the snapshots their build made, only
// when all of these hold: retired longer ago than the retention's days; not among the newest
// `keep` retired builds of their lineage; nothing refers to them. Images without ami-factory's
// retired tag are never touched.
//
// "In use" is what DescribeImageReferences sees ("How AMI reference checks work", EC2 User Guide:
// instances in any state, launch template versions (all of them: version-depth), SSM parameters whose
// value is the image id, Image Builder recipes) plus LastLaunchedTime for what it cannot see (an
// Auto Scaling launch configuration, another account launching a shared image): a launch within the
// retention (with --all: since it was retired) keeps the image. EC2 reports a launch up to 24 hours
// late (Image.LastLaunchedTime in the API reference): a launch of the last day may not show yet, so
// no image retired less than a day ago is ever reaped, not even with --all, and retention.days is
// at least 1 (a launch just before the retirement has shown by then).
//
// Other accounts: DescribeImageReferences "describes your Amazon Web Services resources that are
// referencing the specified images" (API reference): only this account's. A retired image (or
// SharedAmi copy) shared with other accounts, organizations or OUs is judged by this account's
// references and by LastLaunchedTime, which counts their launches; a launch template or parameter of
// theirs that names it and launched nothing within the retention is not seen. Such consumers are
// covered by the retention (choose retention.days longer than their update cycle) or by following
// `publish`, not by the reference check.
import type { EC2Client, Image } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "./clients";
import { deleteImageAndSnapshots, deregisterProtected, snapshotIdsOf } from "./images";
import { isRetired, LINEAGE_TAG, parseRetention, RETIRED_AT_TAG, RetentionPolicy, tagOf } from "./retire";
import { BUILD_ID_TAG, MANAGED_BY_TAG } from "./tags";

const DAY = 86_400_000;
/** EC2 reports a launch in LastLaunchedTime up to a day late: nothing retired more recently is reaped. */
export const LAUNCH_REPORT_DELAY = DAY;

export interface RetiredImage {
  region: string;
  imageId: string;
  name: string;
  lineage: string;
  retiredAt: Date;
  retention: RetentionPolicy;
  lastLaunched?: Date;
  /** The snapshots its own build made (tagged with its build id): a converted image also maps its source's data snapshots, which stay. */
  ownSnapshotIds: string[];
}

export interface Verdict {
  image: RetiredImage;
  action: "delete" | "keep";
  reason: string;
}

export interface ReapOptions {
  now: Date;
  /** Ignore retention days and keep (never the in-use checks: a launch since the retirement counts; never the day of EC2's reporting delay). */
  all?: boolean;
}

const days = (ms: number) => `${(ms / DAY).toFixed(1)} days`;

/** Pure: what to do with each retired image, given what refers to each (imageId → referring ARNs). */
export function decide(images: RetiredImage[], references: Record<string, string[]>, o: ReapOptions): Verdict[] {
  const rank = new Map<RetiredImage, number>();
  const lineages = new Map<string, RetiredImage[]>();
  for (const i of images) lineages.set(`${i.region} ${i.lineage}`, [...(lineages.get(`${i.region} ${i.lineage}`) ?? []), i]);
  for (const group of lineages.values()) group.sort((a, b) => b.retiredAt.getTime() - a.retiredAt.getTime()).forEach((i, n) => rank.set(i, n));
  return images.map((image): Verdict => {
    const refs = references[image.imageId] ?? [];
    if (refs.length) return { image, action: "keep", reason: `in use: ${refs.join(", ")}` };
    const age = o.now.getTime() - image.retiredAt.getTime();
    // A launch of the last day may not be reported yet: what was retired within it always stays.
    if (age < LAUNCH_REPORT_DELAY) return { image, action: "keep", reason: `retired ${days(age)} ago: EC2 reports a launch up to a day late (LastLaunchedTime), so nothing retired within a day is reaped${o.all ? ", not even with --all" : ""}` };
    // A launch within the retention counts as use; with --all (no retention) a launch since the retirement.
    const since = o.all ? image.retiredAt.getTime() : o.now.getTime() - Math.max(image.retention.days, 1) * DAY;
    if (image.lastLaunched && image.lastLaunched.getTime() >= since) {
      return { image, action: "keep", reason: `launched ${days(o.now.getTime() - image.lastLaunched.getTime())} ago (LastLaunchedTime ${image.lastLaunched.toISOString()})${o.all ? ", after its retirement" : ""}` };
    }
    if (!o.all && age < image.retention.days * DAY) return { image, action: "keep", reason: `retired ${days(age)} ago, retention.days is ${image.retention.days}` };
    const n = rank.get(image)!;
    if (!o.all && n < image.retention.keep) return { image, action: "keep", reason: `one of the ${image.retention.keep} newest retired builds of ${image.lineage} (retention.keep)` };
    return { image, action: "delete", reason: `retired ${days(age)} ago${o.all ? " (--all)" : `, past retention.days ${image.retention.days} and beyond the newest ${image.retention.keep}`}, nothing refers to it` };
  });
}

/** `buildSnapshots`: the region's snapshots tagged with the image's build id. */
export function retiredImage(region: string, image: Image, buildSnapshots: Set<string>): RetiredImage {
  const snapshots = (image.BlockDeviceMappings ?? []).filter((m) => m.Ebs?.SnapshotId).map((m) => m.Ebs!.SnapshotId!);
  return {
    region,
    imageId: image.ImageId!,
    name: image.Name ?? "",
    lineage: tagOf(image, LINEAGE_TAG) ?? "",
    retiredAt: new Date(tagOf(image, RETIRED_AT_TAG)!),
    retention: parseRetention(tagOf(image, "ami-factory:retention")),
    lastLaunched: image.LastLaunchedTime ? new Date(image.LastLaunchedTime) : undefined,
    ownSnapshotIds: snapshots.filter((s) => buildSnapshots.has(s)),
  };
}

/** The retired images ami-factory made in a region (of one lineage, or of lineages under a prefix). */
export async function findRetired(region: string, filter: { lineage?: string; lineagePrefix?: string } = {}): Promise<RetiredImage[]> {
  const { DescribeImagesCommand, DescribeSnapshotsCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  const filters = [{ Name: "tag-key", Values: [RETIRED_AT_TAG] }, { Name: `tag:${MANAGED_BY_TAG}`, Values: ["ami-factory"] }];
  if (filter.lineage) filters.push({ Name: `tag:${LINEAGE_TAG}`, Values: [filter.lineage] });
  const images = ((await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: filters }))).Images ?? [])
    .filter((i) => i.State !== "deregistered" && isRetired(i))
    .filter((i) => !filter.lineagePrefix || (tagOf(i, LINEAGE_TAG) ?? "").startsWith(filter.lineagePrefix));
  const snapshotsOfBuild = new Map<string, Set<string>>();
  const builds = [...new Set(images.map((i) => tagOf(i, BUILD_ID_TAG)).filter((b): b is string => !!b))];
  if (builds.length) {
    const snaps = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: builds }] }))).Snapshots ?? [];
    for (const s of snaps) {
      const b = s.Tags?.find((t) => t.Key === BUILD_ID_TAG)?.Value ?? "";
      snapshotsOfBuild.set(b, new Set([...(snapshotsOfBuild.get(b) ?? []), s.SnapshotId!]));
    }
  }
  return images.map((i) => retiredImage(region, i, snapshotsOfBuild.get(tagOf(i, BUILD_ID_TAG) ?? "") ?? new Set()));
}

/**
 * What counts as a use: instances not terminated (the default is every state, and a terminated
 * instance stays listed for a while), every version of each launch template (version-depth 1 to
 * 10000, default only the 10 newest), SSM parameters, Image Builder recipes (ResourceTypeOption,
 * EC2 API reference).
 */
export const REFERENCE_TYPES = [
  { ResourceType: "ec2:Instance" as const, ResourceTypeOptions: [{ OptionName: "state-name" as const, OptionValues: ["pending", "running", "shutting-down", "stopping", "stopped"] }] },
  { ResourceType: "ec2:LaunchTemplate" as const, ResourceTypeOptions: [{ OptionName: "version-depth" as const, OptionValues: ["10000"] }] },
  { ResourceType: "ssm:Parameter" as const },
  { ResourceType: "imagebuilder:ImageRecipe" as const },
  { ResourceType: "imagebuilder:ContainerRecipe" as const },
];

/** DescribeImageReferences takes ImageId.1 to ImageId.10 (API reference, DescribeImageReferences). */
export const REFERENCES_BATCH = 10;

/** imageId → the ARNs DescribeImageReferences finds referring to it (10 ids a call, every page). */
export async function referencesOf(ec2: Pick<EC2Client, "send">, imageIds: string[]): Promise<Record<string, string[]>> {
  const { DescribeImageReferencesCommand } = ec2Sdk();
  const refs: Record<string, string[]> = {};
  for (let i = 0; i < imageIds.length; i += REFERENCES_BATCH) {
    let NextToken: string | undefined;
    do {
      const out = await ec2.send(new DescribeImageReferencesCommand({ ImageIds: imageIds.slice(i, i + REFERENCES_BATCH), ResourceTypes: REFERENCE_TYPES, NextToken }));
      for (const r of out.ImageReferences ?? []) (refs[r.ImageId!] ??= []).push(r.Arn ?? r.ResourceType ?? "?");
      NextToken = out.NextToken;
    } while (NextToken);
  }
  return refs;
}

/** Decides, and (unless dryRun) deregisters what may go with its own snapshots. */
export async function reap(region: string, filter: { lineage?: string; lineagePrefix?: string }, o: ReapOptions & { dryRun?: boolean; log: (l: string) => void }): Promise<Verdict[]> {
  const images = await findRetired(region, filter);
  if (!images.length) return [];
  const ec2 = await ec2Client(region);
  const verdicts = decide(images, await referencesOf(ec2, images.map((i) => i.imageId)), o);
  for (const v of verdicts) {
    o.log(`${o.dryRun ? "would " : ""}${v.action} ${v.image.imageId} (${v.image.name}) in ${region}: ${v.reason}`);
    if (o.dryRun || v.action !== "delete") continue;
    const { DescribeImagesCommand } = ec2Sdk();
    const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [v.image.imageId] }))).Images?.[0];
    await deleteOwnOnly(region, v.image, image);
  }
  return verdicts;
}

/** Deregisters the image and deletes only its own build's snapshots. */
async function deleteOwnOnly(region: string, r: RetiredImage, image: Image | undefined): Promise<void> {
  // deleteImageAndSnapshots deletes every snapshot the image maps: deregister first when some are not its own.
  // Either way protection is lifted just before DeregisterImage, and back on if it fails.
  if (image && !snapshotIdsOf(image).every((s) => r.ownSnapshotIds.includes(s))) await deregisterProtected(await ec2Client(region), image);
  await deleteImageAndSnapshots(region, r.imageId, r.ownSnapshotIds);
}

/** Reaping of one lineage at a create or update: a failure is a warning, never the resource's. */
export async function reapOpportunistically(region: string, lineage: string, log: (l: string) => void): Promise<void> {
  try {
    await reap(region, { lineage }, { now: new Date(), log });
  } catch (e) {
    log(`warning: reaping retired images of ${lineage} in ${region} failed (the next create, update or \`npm run reap\` tries again): ${e instanceof Error ? e.message : String(e)}`);
  }
}
