// SharedAmi create / update / delete / read against EC2.
import { createHash } from "crypto";
import { ec2Client, ec2Sdk } from "../core/clients";
import {
  changeLaunchPermissions, changeSnapshotPermissions, deleteImageAndSnapshots, describeImage, noPrincipals,
  Principals, retag, setDeprecation, snapshotIdsOf, waitForImageAvailable,
} from "../core/images";
import { buildIdFor } from "../core/buildId";
import { buildIdInputs } from "../core/fields";
import { mapBounded, REGION_CONCURRENCY } from "../core/concurrency";
import { buildStamp, registeredName } from "../core/naming";
import { runSteps, Step } from "../core/steps";
import { isoOrUndefined } from "../core/inputs";
import { BUILD_ID_TAG, EXPIRES_TAG, HANDED_OVER_TAG, STACK_TAG, provenanceTags, tagSpecifications, TAG_PREFIX, Tags } from "../core/tags";
import { Grant, grantInPlace, handOverRecord, noGrant, RecordExpiry, revokeInPlace } from "./grants";
import { holderIdFor, newCreateStamp } from "./grantRecords";
import { LINEAGE_TAG, protectIfAsked, protectionSeen, retirementOf, retireUnlessDestroyed } from "../core/retire";
import { reapOpportunistically } from "../core/reap";
import { republish, unpublishImage } from "../core/publish";
import { needsCopy, SCHEMA_VERSION, SHARED_AMI_FIELDS, SharedAmiInputs, SharedAmiOutputs } from "./inputs";

export type Log = (line: string) => void;

export interface RegionImage {
  imageId: string;
  snapshotIds: string[];
  copied: boolean;
}

/** What a create (or the add-regions part of an update) has done so far: cleanup reads it. */
export interface ShareContext {
  inputs: SharedAmiInputs;
  buildId: string;
  imageName: string;
  /** This share's name in the grant records of a source shared in place (grantRecords.ts): set once the name is known. */
  holderId: string;
  /** A create's record expiry (until handed over); an update's holder is in the state already. */
  recordExpiry?: RecordExpiry;
  sourceSnapshotIds: string[];
  images: Record<string, RegionImage>;
  /** Regions whose image got this build's permissions (revoked on failure where not copied). */
  shared: string[];
  /** region → how many times it was copied (in the client token: a region copied again gets a new copy). */
  placements: Record<string, number>;
  /** region → a copy a dead run of this build finished or started (adopted instead of copying again). */
  adoptable: Record<string, string>;
  log: Log;
}

export const principalsOf = (i: SharedAmiInputs): Principals => ({
  accountIds: i.accountIds,
  organizationArns: i.organizationArns,
  organizationalUnitArns: i.organizationalUnitArns,
});

/** What a share grants on each of its images. */
export const grantOf = (i: SharedAmiInputs): Grant => ({ launch: principalsOf(i), snapshotAccounts: i.shareSnapshots ? i.accountIds : [] });

export function copyTags(inputs: SharedAmiInputs, buildId: string): Tags {
  return provenanceTags(inputs.tags, buildId, { "ami-factory:source-ami": inputs.sourceAmiId, "ami-factory:source-region": inputs.sourceRegion, [LINEAGE_TAG]: inputs.scope });
}

/** Protection on the copies (never on a source shared in place: not ours), as the share asks. */
export async function protectCopies(outs: SharedAmiOutputs, regions: string[] = outs.copiedRegions): Promise<void> {
  await mapBounded(regions.filter((r) => outs.copiedRegions.includes(r)), REGION_CONCURRENCY, (r) => protectIfAsked(r, outs.imageIds[r], outs.deregistrationProtection));
}

/** Who owns a share's parameters: the share itself (its holder id), not its build (a replacement may keep both the id and the image). */
export const ownerOf = (share: Pick<SharedAmiOutputs, "holderId" | "buildId">) => share.holderId ?? share.buildId;

/** `publish` in the given regions: the new name written, an old one (`before`) deleted where it still names the image. */
export async function publishShare(outs: SharedAmiOutputs, regions: string[], before: string | undefined, log: Log): Promise<void> {
  await mapBounded(regions, REGION_CONCURRENCY, (r) => republish(r, outs.imageIds[r], ownerOf(outs), outs.scope, before, outs.publish, log));
}

/** A copy leaving the stack: retired (the default), or deleted with its snapshots. An exact name is deleted (the replacement needs it). */
export async function retireOrDeleteCopy(share: Pick<SharedAmiInputs, "scope" | "exactName" | "retirement" | "retention">, region: string, img: RegionImage, log: Log): Promise<void> {
  if (!share.exactName && retirementOf(share.retirement) === "retire") {
    return retireUnlessDestroyed(region, img.imageId, { lineage: share.scope, retention: share.retention }, log, () => deleteImageAndSnapshots(region, img.imageId, img.snapshotIds));
  }
  await deleteImageAndSnapshots(region, img.imageId, img.snapshotIds);
  log(`deleted copy ${img.imageId} in ${region}`);
}

export function sourceStep(): Step<ShareContext> {
  return {
    name: "describe source image",
    async run(ctx) {
      const { sourceAmiId, sourceRegion } = ctx.inputs;
      const image = await describeImage(await ec2Client(sourceRegion), sourceAmiId);
      if (!image) throw new Error(`sourceAmiId ${sourceAmiId} does not exist in ${sourceRegion} (or is not visible to this account): check the id and sourceRegion`);
      if (image.State !== "available") throw new Error(`sourceAmiId ${sourceAmiId} is ${image.State}, not available: wait for it or pick another image`);
      ctx.sourceSnapshotIds = snapshotIdsOf(image);
      // Copies a dead run of this build made are adopted, and their name (its build stamp) kept.
      const regions = ctx.inputs.regions.filter((r) => needsCopy(ctx.inputs, r) && !ctx.images[r]);
      const copies = await mapBounded(regions, REGION_CONCURRENCY, (region) => unclaimedCopy(region, ctx.buildId));
      regions.forEach((region, i) => {
        const copy = copies[i];
        if (!copy) return;
        ctx.adoptable[region] = copy.ImageId!;
        ctx.imageName ||= copy.Name ?? "";
      });
      ctx.imageName ||= registeredName(ctx.inputs.name ?? image.Name ?? sourceAmiId, ctx.inputs.exactName, buildStamp(new Date()));
      ctx.holderId ||= holderIdFor(ctx.buildId, ctx.imageName, newCreateStamp());
    },
  };
}

/** Copy to (or adopt in place in) the given regions, in parallel; on failure the copies go. */
export function placeStep(regions: string[]): Step<ShareContext> {
  return {
    name: `copy to ${regions.join(", ")}`,
    async run(ctx) {
      const { CopyImageCommand } = ec2Sdk();
      const { inputs } = ctx;
      const maxWaitSeconds = inputs.timeoutMinutes * 60;
      await mapBounded(
        regions, REGION_CONCURRENCY, async (region) => {
          if (!needsCopy(inputs, region)) {
            ctx.images[region] = { imageId: inputs.sourceAmiId, snapshotIds: ctx.sourceSnapshotIds, copied: false };
            return;
          }
          const ec2 = await ec2Client(region);
          const tags = copyTags(inputs, ctx.buildId);
          if (ctx.adoptable[region]) {
            const imageId = ctx.adoptable[region];
            ctx.images[region] = { imageId, snapshotIds: [], copied: true };
            ctx.log(`adopting copy ${imageId} in ${region}, made earlier by build ${ctx.buildId}`);
            ctx.images[region].snapshotIds = snapshotIdsOf(await waitForImageAvailable(ec2, imageId, `copy ${imageId} in ${region}`, maxWaitSeconds, ctx.log));
            return;
          }
          const out = await ec2.send(
            new CopyImageCommand({
              SourceImageId: inputs.sourceAmiId,
              SourceRegion: inputs.sourceRegion,
              Name: ctx.imageName,
              Description: inputs.description,
              Encrypted: inputs.encrypted || undefined,
              KmsKeyId: inputs.kmsKeyIds[region],
              ClientToken: copyToken(ctx, region),
              // Plus, until handed over, what `npm run sweep` needs to find the copy of a run that died.
              TagSpecifications: tagSpecifications(["image", "snapshot"] as const, { ...tags, ...sweepTags(inputs) }),
            }),
          );
          const imageId = out.ImageId!;
          ctx.images[region] = { imageId, snapshotIds: [], copied: true };
          ctx.log(`copy of ${inputs.sourceAmiId} to ${region}: ${imageId}`);
          const image = await waitForImageAvailable(ec2, imageId, `copy ${imageId} in ${region}`, maxWaitSeconds, ctx.log);
          ctx.images[region].snapshotIds = snapshotIdsOf(image);
        },
      );
    },
    async cleanup(ctx, failed) {
      if (!failed) return;
      await mapBounded(regions.filter((r) => ctx.images[r]?.copied), REGION_CONCURRENCY, (r) => deleteImageAndSnapshots(r, ctx.images[r].imageId, ctx.images[r].snapshotIds));
      for (const r of regions) delete ctx.images[r];
    },
  };
}

export function shareStep(regions: string[]): Step<ShareContext> {
  return {
    name: "share",
    async run(ctx) {
      const grant = grantOf(ctx.inputs);
      await mapBounded(regions, REGION_CONCURRENCY, async (region) => {
        const img = ctx.images[region];
        const ec2 = await ec2Client(region);
        ctx.shared.push(region);
        if (!img.copied) return grantInPlace(region, img, ctx.holderId, grant, grant, ctx.recordExpiry, ctx.log);
        await changeLaunchPermissions(ec2, img.imageId, grant.launch, noPrincipals);
        await changeSnapshotPermissions(ec2, img.snapshotIds, grant.snapshotAccounts, []);
        if (ctx.inputs.deprecateAt) await setDeprecation(ec2, img.imageId, ctx.inputs.deprecateAt);
      });
    },
    async cleanup(ctx, failed) {
      if (!failed) return;
      // Copies are deleted whole; the source keeps nothing this build granted.
      await mapBounded(ctx.shared.filter((r) => ctx.images[r] && !ctx.images[r].copied), REGION_CONCURRENCY, (region) => revokeInPlace(region, ctx.images[region], ctx.holderId, noGrant, grantOf(ctx.inputs)));
    },
  };
}

async function place(ctx: ShareContext, regions: string[], withSource: boolean): Promise<void> {
  const steps: Step<ShareContext>[] = [...(withSource ? [sourceStep()] : []), placeStep(regions), shareStep(regions)];
  await runSteps(steps, ctx, { log: ctx.log });
}

export function outputsOf(ctx: ShareContext): SharedAmiOutputs {
  const regions = Object.keys(ctx.images).sort();
  return {
    ...ctx.inputs,
    schemaVersion: SCHEMA_VERSION,
    imageIds: Object.fromEntries(regions.map((r) => [r, ctx.images[r].imageId])),
    snapshotIds: Object.fromEntries(regions.map((r) => [r, ctx.images[r].snapshotIds])),
    copiedRegions: regions.filter((r) => ctx.images[r].copied),
    imageName: ctx.imageName,
    buildId: ctx.buildId,
    holderId: ctx.holderId,
    placements: ctx.placements,
  };
}

/**
 * CopyImage's client token: from the build id, not the clock, so a retried call gets the same copy.
 * The registered name (its build stamp) tells a `--replace` with the same inputs from the copies it
 * replaces; a region copied again later (dropped and added back, lost out of band) counts up.
 */
export function copyToken(ctx: Pick<ShareContext, "buildId" | "imageName" | "placements">, region: string): string {
  const digest = createHash("sha256").update(`${ctx.imageName}\0${region}\0${ctx.placements[region] ?? 0}`).digest("hex").slice(0, 24);
  return `${ctx.buildId}-${digest}`;
}

/** The stack a copy belongs to and when a sweep may take it if no run hands it over (the deadline plus an hour). */
function sweepTags(inputs: SharedAmiInputs): Tags {
  const [project, stack] = inputs.scope.split("/");
  return { [STACK_TAG]: `${project}/${stack}`, [EXPIRES_TAG]: new Date(Date.now() + (inputs.timeoutMinutes + 60) * 60_000).toISOString() };
}

/** A copy tagged with this build id that no create or update handed to the engine. */
async function unclaimedCopy(region: string, buildId: string) {
  const { DescribeImagesCommand } = ec2Sdk();
  const out = await (await ec2Client(region)).send(
    new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }, { Name: "state", Values: ["available", "pending"] }] }),
  );
  return out.Images?.find((i) => !i.Tags?.some((t) => t.Key === HANDED_OVER_TAG));
}

/** Marks the copies as the engine's (never adopted by another create: `--replace` copies anew), and the grant records of the source shared in place (no expiry: no sweep takes them). */
export async function handOver(outs: SharedAmiOutputs): Promise<void> {
  const at = new Date().toISOString();
  await mapBounded(outs.copiedRegions, REGION_CONCURRENCY, async (region) => retag(await ec2Client(region), [outs.imageIds[region]], { [HANDED_OVER_TAG]: at }, []));
  const inPlace = Object.keys(outs.imageIds).filter((r) => !outs.copiedRegions.includes(r));
  if (outs.holderId) await mapBounded(inPlace, REGION_CONCURRENCY, (region) => handOverRecord(region, outs.imageIds[region], outs.holderId!));
}

/**
 * From the scope and the inputs that decide the copies and their sharing (not tags or description,
 * which change in place), named one by one: the engine's inputs also carry `__provider`, the
 * serialised provider code, which must not make every ami-factory upgrade a new build.
 */
export function sharedBuildId(inputs: SharedAmiInputs): string {
  return buildIdFor(inputs.scope, buildIdInputs(SHARED_AMI_FIELDS, inputs));
}

export async function createSharedAmi(inputs: SharedAmiInputs, log: Log): Promise<{ id: string; outs: SharedAmiOutputs }> {
  const buildId = sharedBuildId(inputs);
  // The record's expiry, like a copy's: the deadline plus an hour (sweepTags).
  const recordExpiry = { at: new Date(Date.now() + (inputs.timeoutMinutes + 60) * 60_000).toISOString(), buildId, stack: inputs.scope.split("/").slice(0, 2).join("/") };
  const ctx: ShareContext = { inputs, buildId, imageName: "", holderId: "", recordExpiry, sourceSnapshotIds: [], images: {}, shared: [], placements: {}, adoptable: {}, log };
  await place(ctx, inputs.regions, true);
  const outs = outputsOf(ctx);
  // Before the hand-over: if either fails, a re-run adopts the copies and tries again.
  await protectCopies(outs);
  await publishShare(outs, Object.keys(outs.imageIds), undefined, log);
  await handOver(outs);
  for (const region of outs.copiedRegions) await reapOpportunistically(region, inputs.scope, log);
  return { id: buildId, outs };
}

export async function deleteSharedAmi(olds: SharedAmiOutputs, log: Log): Promise<void> {
  await mapBounded(
    Object.entries(olds.imageIds), REGION_CONCURRENCY, async ([region, imageId]) => {
      // A replacement has rewritten the parameter to its own image by now (it stays); a removed entry's goes.
      if (olds.publish) await unpublishImage(region, olds.publish, imageId, ownerOf(olds), log);
      const img = { imageId, snapshotIds: olds.snapshotIds[region] ?? [], copied: olds.copiedRegions.includes(region) };
      if (img.copied) {
        await retireOrDeleteCopy(olds, region, img, log);
      } else {
        // Only what no other share of this source (e.g. this one's replacement) still holds.
        await revokeInPlace(region, img, olds.holderId, noGrant, grantOf(olds));
        log(`revoked sharing of ${imageId} in ${region} that no other share holds`);
      }
    },
  );
}

/**
 * Refresh reads what AWS has: copies deregistered out of band drop out (their snapshots are kept in
 * lostCopies for the next update to delete), and the sharing, tags, description and deprecation
 * seen on the images replace the recorded ones, so `pulumi refresh --diff` shows a change made
 * out of band and the next `up` puts the inputs back.
 */
export async function readSharedAmi(id: string, olds: SharedAmiOutputs): Promise<{ id: string; props: SharedAmiOutputs }> {
  const { DescribeImageAttributeCommand, DescribeSnapshotAttributeCommand } = ec2Sdk();
  // Each region read on its own (bounded), then folded in the recorded order.
  const found = await mapBounded(Object.entries(olds.imageIds), REGION_CONCURRENCY, async ([region, imageId]) => {
    const ec2 = await ec2Client(region);
    const image = await describeImage(ec2, imageId);
    if (!image) return { region, imageId };
    const perms = (await ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    let snapshotsShared = true;
    for (const snapshotId of snapshotIdsOf(image)) {
      const vol = (await ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: "createVolumePermission" }))).CreateVolumePermissions ?? [];
      if (olds.accountIds.some((a) => a !== "all" && !vol.some((v) => v.UserId === a))) snapshotsShared = false;
    }
    return { region, imageId, image, perms, snapshotsShared };
  });
  const imageIds: Record<string, string> = {};
  const snapshotIds: Record<string, string[]> = {};
  const lostCopies = { ...(olds.lostCopies ?? {}) };
  const seen: { accounts: string[]; orgs: string[]; ous: string[]; snapshotsShared: boolean }[] = [];
  let copy: { tags: Tags; description?: string; deprecateAt?: string } | undefined;
  for (const { region, imageId, image, perms, snapshotsShared } of found) {
    if (!image) {
      if (olds.copiedRegions.includes(region)) lostCopies[region] = { imageId, snapshotIds: olds.snapshotIds[region] ?? [] };
      continue;
    }
    imageIds[region] = imageId;
    snapshotIds[region] = snapshotIdsOf(image);
    seen.push({
      accounts: perms.map((p) => (p.Group === "all" ? "all" : p.UserId)).filter((x): x is string => !!x),
      orgs: perms.map((p) => p.OrganizationArn).filter((x): x is string => !!x),
      ous: perms.map((p) => p.OrganizationalUnitArn).filter((x): x is string => !!x),
      snapshotsShared,
    });
    if (!copy && olds.copiedRegions.includes(region)) {
      const tags = Object.fromEntries((image.Tags ?? []).filter((t) => t.Key && !t.Key.startsWith(TAG_PREFIX)).map((t) => [t.Key!, t.Value ?? ""]));
      copy = { tags, description: image.Description || undefined, deprecateAt: isoOrUndefined(image.DeprecationTime) };
    }
  }
  // What every image grants (a principal missing in one region is missing: the update re-grants it).
  const common = (pick: (x: (typeof seen)[number]) => string[], recorded: string[]) => recorded.filter((v) => seen.every((x) => pick(x).includes(v)));
  const copiedRegions = olds.copiedRegions.filter((r) => imageIds[r]);
  const copies = found.filter((f) => f.image && copiedRegions.includes(f.region)).map((f) => f.image!);
  return {
    id,
    props: {
      ...olds,
      imageIds,
      snapshotIds,
      copiedRegions,
      accountIds: common((x) => x.accounts, olds.accountIds),
      organizationArns: common((x) => x.orgs, olds.organizationArns),
      organizationalUnitArns: common((x) => x.ous, olds.organizationalUnitArns),
      shareSnapshots: olds.shareSnapshots && seen.every((x) => x.snapshotsShared),
      ...(copy ? { tags: copy.tags, description: copy.description, deprecateAt: copy.deprecateAt } : {}),
      ...(Object.keys(lostCopies).length ? { lostCopies } : {}),
      ...protectionSeen(copies),
    },
  };
}
