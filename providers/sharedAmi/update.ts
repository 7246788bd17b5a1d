// SharedAmi update: a step list with compensation (core/steps.ts). What widens access runs first,
// what narrows it after, and what cannot be undone (deleting a dropped region's copy) last, so a
// failure halfway never leaves sharing half revoked: the steps that ran are undone (grants taken
// back, revocations granted again, new copies deleted, old tags put back) and AWS matches the
// state the engine keeps, the old one.
import { ec2Client, ec2Sdk } from "../core/clients";
import { mapBounded, REGION_CONCURRENCY } from "../core/concurrency";
import { changeLaunchPermissions, changeSnapshotPermissions, deleteSnapshot, noPrincipals, principalsDelta, retag, setDeprecation } from "../core/images";
import { runSteps, Step } from "../core/steps";
import { changedTags, removedTagKeys, Tags } from "../core/tags";
import { SharedAmiInputs, SharedAmiOutputs } from "./inputs";
import { Grant as Change, grantInPlace, mergeGrants, noGrant, revokeInPlace } from "./grants";
import { holderIdFor } from "./grantRecords";
import { setProtection } from "../core/retire";
import { unpublishImage } from "../core/publish";
import { reapOpportunistically } from "../core/reap";
import { copyTags, grantOf, handOver, ownerOf, retireOrDeleteCopy, protectCopies, publishShare, Log, outputsOf, placeStep, principalsOf, RegionImage, shareStep, ShareContext, sourceStep } from "./operations";

interface UpdateContext extends ShareContext {
  olds: SharedAmiOutputs;
  /** Regions in both the state and the inputs. */
  kept: string[];
  /** Regions in the state only: their images as recorded. */
  dropped: Record<string, RegionImage>;
  /** What each step did, per region, recorded before the call (undoing a change not made is harmless). */
  granted: Record<string, Change>;
  revoked: Record<string, Change>;
  relabelled: string[];
}

const isEmpty = (c: Change) => !c.launch.accountIds.length && !c.launch.organizationArns.length && !c.launch.organizationalUnitArns.length && !c.snapshotAccounts.length;

/**
 * Grants `add` and revokes `remove` on a region's image; a source shared in place goes through this
 * share's grant record, which then names `record` (all it holds after the change).
 */
async function applyChange(ctx: UpdateContext, region: string, img: RegionImage, add: Change | undefined, remove: Change | undefined, record: Change): Promise<void> {
  if (!img.copied) {
    if (add) await grantInPlace(region, img, ctx.holderId, record, add, undefined, ctx.log);
    if (remove) await revokeInPlace(region, img, ctx.holderId, record, remove);
    return;
  }
  const ec2 = await ec2Client(region);
  await changeLaunchPermissions(ec2, img.imageId, add?.launch ?? noPrincipals, remove?.launch ?? noPrincipals);
  await changeSnapshotPermissions(ec2, img.snapshotIds, add?.snapshotAccounts ?? [], remove?.snapshotAccounts ?? []);
}

/** The permission changes of kept regions: what to grant and what to revoke. */
function permissionDelta(olds: SharedAmiOutputs, news: SharedAmiInputs): { grant: Change; revoke: Change } {
  const launch = principalsDelta(principalsOf(olds), principalsOf(news));
  const before = olds.shareSnapshots ? olds.accountIds : [];
  const after = news.shareSnapshots ? news.accountIds : [];
  return {
    grant: { launch: launch.add, snapshotAccounts: after.filter((a) => !before.includes(a)) },
    revoke: { launch: launch.remove, snapshotAccounts: before.filter((a) => !after.includes(a)) },
  };
}

/** Copies deregistered out of band left their snapshots: ours (made by the copy), so they go. */
function lostCopiesStep(): Step<UpdateContext> {
  return {
    name: "delete snapshots of lost copies",
    async run(ctx) {
      await mapBounded(Object.entries(ctx.olds.lostCopies ?? {}), REGION_CONCURRENCY, async ([region, lost]) => {
        const ec2 = await ec2Client(region);
        for (const snapshotId of lost.snapshotIds) await deleteSnapshot(ec2, snapshotId);
        ctx.log(`copy ${lost.imageId} in ${region} was deregistered out of band: deleted its snapshots ${lost.snapshotIds.join(", ") || "(none)"}`);
      });
    },
  };
}

/** A share from an older release recorded no grant tags: it records what it holds now, under a holder id from its build. */
function recordLegacyGrantsStep(): Step<UpdateContext> {
  const inPlace = (ctx: UpdateContext) => Object.entries({ ...ctx.images, ...ctx.dropped }).filter(([, img]) => !img.copied);
  return {
    name: "record the grants of a share from an older release",
    async run(ctx) {
      await mapBounded(inPlace(ctx), REGION_CONCURRENCY, ([region, img]) => grantInPlace(region, img, ctx.holderId, grantOf(ctx.olds), noGrant));
    },
    async cleanup(ctx, failed) {
      if (failed) await mapBounded(inPlace(ctx), REGION_CONCURRENCY, ([region, img]) => revokeInPlace(region, img, ctx.holderId, noGrant, noGrant));
    },
  };
}

function grantStep(grant: Change): Step<UpdateContext> {
  return {
    name: "grant added principals",
    async run(ctx) {
      if (isEmpty(grant)) return;
      await mapBounded(ctx.kept, REGION_CONCURRENCY, async (region) => {
        ctx.granted[region] = grant;
        // Until the revoke step, the share holds what it held and what it adds.
        await applyChange(ctx, region, ctx.images[region], grant, undefined, mergeGrants(grantOf(ctx.olds), grantOf(ctx.inputs)));
      });
    },
    async cleanup(ctx, failed) {
      if (!failed) return;
      await mapBounded(Object.keys(ctx.granted), REGION_CONCURRENCY, (region) => applyChange(ctx, region, ctx.images[region], undefined, ctx.granted[region], grantOf(ctx.olds)));
    },
  };
}

interface Labels {
  tags: Tags;
  description?: string;
  deprecateAt?: string;
}

async function relabel(region: string, img: RegionImage, from: Labels, to: Labels): Promise<void> {
  const { ModifyImageAttributeCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  await retag(ec2, [img.imageId, ...img.snapshotIds], changedTags(from.tags, to.tags), removedTagKeys(from.tags, to.tags));
  if ((from.description ?? "") !== (to.description ?? "")) {
    await ec2.send(new ModifyImageAttributeCommand({ ImageId: img.imageId, Description: { Value: to.description ?? "" } }));
  }
  if (from.deprecateAt !== to.deprecateAt) await setDeprecation(ec2, img.imageId, to.deprecateAt);
}

/** Tags, description and deprecation of the kept copies (a source shared in place is not ours to label). */
function relabelStep(): Step<UpdateContext> {
  const labels = (i: SharedAmiInputs, buildId: string): Labels => ({ tags: copyTags(i, buildId), description: i.description, deprecateAt: i.deprecateAt });
  return {
    name: "update tags, description and deprecation",
    async run(ctx) {
      const from = labels(ctx.olds, ctx.buildId);
      const to = labels(ctx.inputs, ctx.buildId);
      await mapBounded(ctx.kept.filter((r) => ctx.images[r].copied), REGION_CONCURRENCY, async (region) => {
        ctx.relabelled.push(region);
        await relabel(region, ctx.images[region], from, to);
      });
    },
    async cleanup(ctx, failed) {
      if (!failed) return;
      const from = labels(ctx.inputs, ctx.buildId);
      const to = labels(ctx.olds, ctx.buildId);
      await mapBounded(ctx.relabelled, REGION_CONCURRENCY, (region) => relabel(region, ctx.images[region], from, to));
    },
  };
}

/** Revoke removed principals on kept regions, and everything granted on a source dropped from regions. */
function revokeStep(revoke: Change): Step<UpdateContext> {
  return {
    name: "revoke removed principals",
    async run(ctx) {
      const all = grantOf(ctx.olds);
      const targets: [string, RegionImage, Change][] = [
        ...(isEmpty(revoke) ? [] : ctx.kept.map((r): [string, RegionImage, Change] => [r, ctx.images[r], revoke])),
        ...Object.entries(ctx.dropped).filter(([, img]) => !img.copied).map(([r, img]): [string, RegionImage, Change] => [r, img, all]),
      ];
      await mapBounded(targets, REGION_CONCURRENCY, async ([region, img, change]) => {
        ctx.revoked[region] = change;
        await applyChange(ctx, region, img, undefined, change, ctx.dropped[region] ? noGrant : grantOf(ctx.inputs));
        if (ctx.dropped[region]) ctx.log(`region ${region} dropped: revoked sharing of ${img.imageId}`);
      });
    },
    async cleanup(ctx, failed) {
      if (!failed) return;
      await mapBounded(Object.keys(ctx.revoked), REGION_CONCURRENCY, (region) =>
        applyChange(ctx, region, ctx.dropped[region] ?? ctx.images[region], ctx.revoked[region], undefined, grantOf(ctx.olds)));
    },
  };
}

/** Last, as a deletion cannot be undone: a failure here leaves the old state naming a deleted copy, which refresh reports and the next update finishes. */
function retireDroppedStep(): Step<UpdateContext> {
  return {
    name: "retire (or delete) copies of dropped regions",
    async run(ctx) {
      await mapBounded(Object.entries(ctx.dropped).filter(([, img]) => img.copied), REGION_CONCURRENCY, async ([region, img]) => {
        ctx.log(`region ${region} dropped: its copy ${img.imageId} leaves the stack`);
        await retireOrDeleteCopy(ctx.olds, region, img, ctx.log);
      });
    },
  };
}

export async function updateSharedAmi(olds: SharedAmiOutputs, news: SharedAmiInputs, log: Log): Promise<SharedAmiOutputs> {
  const images: Record<string, RegionImage> = {};
  for (const [region, imageId] of Object.entries(olds.imageIds)) {
    images[region] = { imageId, snapshotIds: olds.snapshotIds[region] ?? [], copied: olds.copiedRegions.includes(region) };
  }
  const kept = Object.keys(images).filter((r) => news.regions.includes(r));
  const dropped = Object.fromEntries(Object.keys(images).filter((r) => !news.regions.includes(r)).map((r) => [r, images[r]]));
  for (const r of Object.keys(dropped)) delete images[r];
  // Regions added (or lost out of band) are placed and shared like a create. A region copied before
  // (dropped and added back, or lost out of band) gets a new client token.
  const placements = { ...(olds.placements ?? {}) };
  const missing = news.regions.filter((r) => !images[r]);
  for (const r of missing) if (olds.copiedRegions.includes(r) || olds.lostCopies?.[r] || placements[r] !== undefined) placements[r] = (placements[r] ?? 0) + 1;
  const ctx: UpdateContext = {
    inputs: news, buildId: olds.buildId, imageName: olds.imageName, holderId: olds.holderId ?? holderIdFor(olds.buildId, olds.imageName), sourceSnapshotIds: [], images, shared: [], placements, adoptable: {}, log,
    olds, kept, dropped, granted: {}, revoked: {}, relabelled: [],
  };
  const { grant, revoke } = permissionDelta(olds, news);
  await runSteps<UpdateContext>([
    lostCopiesStep(),
    ...(olds.holderId ? [] : [recordLegacyGrantsStep()]),
    grantStep(grant),
    ...(missing.length ? [sourceStep(), placeStep(missing), shareStep(missing)] : []),
    relabelStep(),
    revokeStep(revoke),
    retireDroppedStep(),
  ], ctx, { log });
  const outs = outputsOf(ctx);
  delete outs.lostCopies;
  // Before the hand-over (a failure leaves new copies for the re-run to adopt): new copies get
  // protection as asked, and so does every copy (one made before protection existed, or lifted out
  // of band, converges).
  await protectCopies(outs, outs.copiedRegions);
  if (olds.deregistrationProtection !== false && news.deregistrationProtection === false) {
    await mapBounded(outs.copiedRegions, REGION_CONCURRENCY, async (r) => setProtection(await ec2Client(r), outs.imageIds[r], false));
  }
  // The parameter: written in added regions, renamed in kept ones, deleted in dropped ones.
  await publishShare(outs, missing, undefined, log);
  if (olds.publish !== news.publish) await publishShare(outs, kept, olds.publish, log);
  if (olds.publish) await mapBounded(Object.entries(dropped), REGION_CONCURRENCY, ([r, img]) => unpublishImage(r, olds.publish!, img.imageId, ownerOf(outs), log));
  await handOver(outs);
  for (const region of outs.copiedRegions) await reapOpportunistically(region, news.scope, log);
  return outs;
}
