// SharedAmi create / update / delete / read against EC2.
import { ec2Client } from "../core/clients";
import {
  changeLaunchPermissions, changeSnapshotPermissions, deleteImageAndSnapshots, deleteSnapshot, describeImage, noPrincipals,
  Principals, principalsDelta, retag, setDeprecation, snapshotIdsOf, waitForImageAvailable,
} from "../core/images";
import { buildIdFor } from "../core/buildId";
import { buildStamp, registeredName } from "../core/naming";
import { runSteps, Step } from "../core/steps";
import { isoOrUndefined } from "../core/inputs";
import { provenanceTags, removedTagKeys, changedTags, tagSpecifications, TAG_PREFIX, Tags } from "../core/tags";
import { needsCopy, SCHEMA_VERSION, SharedAmiInputs, SharedAmiOutputs } from "./inputs";

type Log = (line: string) => void;

interface RegionImage {
  imageId: string;
  snapshotIds: string[];
  copied: boolean;
}

/** What a create (or the add-regions part of an update) has done so far: cleanup reads it. */
interface ShareContext {
  inputs: SharedAmiInputs;
  buildId: string;
  imageName: string;
  sourceSnapshotIds: string[];
  images: Record<string, RegionImage>;
  /** Regions whose image got this build's permissions (revoked on failure where not copied). */
  shared: string[];
  log: Log;
}

const principalsOf = (i: SharedAmiInputs): Principals => ({
  accountIds: i.accountIds,
  organizationArns: i.organizationArns,
  organizationalUnitArns: i.organizationalUnitArns,
});

function copyTags(inputs: SharedAmiInputs, buildId: string): Tags {
  return provenanceTags(inputs.tags, buildId, { "ami-factory:source-ami": inputs.sourceAmiId, "ami-factory:source-region": inputs.sourceRegion });
}

function sourceStep(): Step<ShareContext> {
  return {
    name: "describe source image",
    async run(ctx) {
      const { sourceAmiId, sourceRegion } = ctx.inputs;
      const image = await describeImage(await ec2Client(sourceRegion), sourceAmiId);
      if (!image) throw new Error(`sourceAmiId ${sourceAmiId} does not exist in ${sourceRegion} (or is not visible to this account): check the id and sourceRegion`);
      if (image.State !== "available") throw new Error(`sourceAmiId ${sourceAmiId} is ${image.State}, not available: wait for it or pick another image`);
      ctx.sourceSnapshotIds = snapshotIdsOf(image);
      ctx.imageName ||= registeredName(ctx.inputs.name ?? image.Name ?? sourceAmiId, ctx.inputs.exactName, buildStamp(new Date()));
    },
  };
}

/** Copy to (or adopt in place in) the given regions, in parallel; on failure the copies go. */
function placeStep(regions: string[]): Step<ShareContext> {
  return {
    name: `copy to ${regions.join(", ")}`,
    async run(ctx) {
      const { CopyImageCommand } = await import("@aws-sdk/client-ec2");
      const { inputs } = ctx;
      const maxWaitSeconds = inputs.timeoutMinutes * 60;
      // Client tokens are idempotent for one placement; a region copied again later (dropped and
      // added back, or lost out of band) must not be answered with the old copy.
      const placedAt = Date.now().toString(36);
      await Promise.all(
        regions.map(async (region) => {
          if (!needsCopy(inputs, region)) {
            ctx.images[region] = { imageId: inputs.sourceAmiId, snapshotIds: ctx.sourceSnapshotIds, copied: false };
            return;
          }
          const ec2 = await ec2Client(region);
          const tags = copyTags(inputs, ctx.buildId);
          const out = await ec2.send(
            new CopyImageCommand({
              SourceImageId: inputs.sourceAmiId,
              SourceRegion: inputs.sourceRegion,
              Name: ctx.imageName,
              Description: inputs.description,
              Encrypted: inputs.encrypted || undefined,
              KmsKeyId: inputs.kmsKeyIds[region],
              // Idempotent on retries: the same build copies to a region once.
              ClientToken: `${ctx.buildId}-${region}-${placedAt}`,
              TagSpecifications: tagSpecifications(["image", "snapshot"] as const, tags),
            }),
          );
          const imageId = out.ImageId!;
          ctx.images[region] = { imageId, snapshotIds: [], copied: true };
          ctx.log(`copy of ${inputs.sourceAmiId} to ${region}: ${imageId}`);
          const image = await waitForImageAvailable(ec2, imageId, `copy ${imageId} in ${region}`, maxWaitSeconds, ctx.log);
          ctx.images[region].snapshotIds = snapshotIdsOf(image);
        }),
      );
    },
    async cleanup(ctx, failed) {
      if (!failed) return;
      await Promise.all(
        regions.filter((r) => ctx.images[r]?.copied).map((r) => deleteImageAndSnapshots(r, ctx.images[r].imageId, ctx.images[r].snapshotIds)),
      );
      for (const r of regions) delete ctx.images[r];
    },
  };
}

function shareStep(regions: string[]): Step<ShareContext> {
  return {
    name: "share",
    async run(ctx) {
      const principals = principalsOf(ctx.inputs);
      for (const region of regions) {
        const img = ctx.images[region];
        const ec2 = await ec2Client(region);
        ctx.shared.push(region);
        await changeLaunchPermissions(ec2, img.imageId, principals, noPrincipals);
        if (ctx.inputs.shareSnapshots) await changeSnapshotPermissions(ec2, img.snapshotIds, principals.accountIds, []);
        if (img.copied && ctx.inputs.deprecateAt) await setDeprecation(ec2, img.imageId, ctx.inputs.deprecateAt);
      }
    },
    async cleanup(ctx, failed) {
      if (!failed) return;
      // Copies are deleted whole; the source keeps nothing this build granted.
      for (const region of ctx.shared.filter((r) => ctx.images[r] && !ctx.images[r].copied)) {
        await revokeInPlace(region, ctx.images[region], ctx.inputs);
      }
    },
  };
}

async function revokeInPlace(region: string, img: RegionImage, granted: SharedAmiInputs): Promise<void> {
  const ec2 = await ec2Client(region);
  await changeLaunchPermissions(ec2, img.imageId, noPrincipals, principalsOf(granted));
  if (granted.shareSnapshots) await changeSnapshotPermissions(ec2, img.snapshotIds, [], granted.accountIds);
}

async function place(ctx: ShareContext, regions: string[], withSource: boolean): Promise<void> {
  const steps: Step<ShareContext>[] = [...(withSource ? [sourceStep()] : []), placeStep(regions), shareStep(regions)];
  await runSteps(steps, ctx, { log: ctx.log });
}

function outputsOf(ctx: ShareContext): SharedAmiOutputs {
  const regions = Object.keys(ctx.images).sort();
  return {
    ...ctx.inputs,
    schemaVersion: SCHEMA_VERSION,
    imageIds: Object.fromEntries(regions.map((r) => [r, ctx.images[r].imageId])),
    snapshotIds: Object.fromEntries(regions.map((r) => [r, ctx.images[r].snapshotIds])),
    copiedRegions: regions.filter((r) => ctx.images[r].copied),
    imageName: ctx.imageName,
    buildId: ctx.buildId,
  };
}

export async function createSharedAmi(inputs: SharedAmiInputs, log: Log): Promise<{ id: string; outs: SharedAmiOutputs }> {
  const buildId = buildIdFor(inputs.scope, { ...inputs, tags: undefined, description: undefined });
  const ctx: ShareContext = { inputs, buildId, imageName: "", sourceSnapshotIds: [], images: {}, shared: [], log };
  await place(ctx, inputs.regions, true);
  return { id: buildId, outs: outputsOf(ctx) };
}

export async function updateSharedAmi(olds: SharedAmiOutputs, news: SharedAmiInputs, log: Log): Promise<SharedAmiOutputs> {
  // Copies deregistered out of band left their snapshots: ours (made by the copy), so they go.
  for (const [region, lost] of Object.entries(olds.lostCopies ?? {})) {
    const ec2 = await ec2Client(region);
    for (const snapshotId of lost.snapshotIds) await deleteSnapshot(ec2, snapshotId);
    log(`copy ${lost.imageId} in ${region} was deregistered out of band: deleted its snapshots ${lost.snapshotIds.join(", ") || "(none)"}`);
  }
  const images: Record<string, RegionImage> = {};
  for (const [region, imageId] of Object.entries(olds.imageIds)) {
    images[region] = { imageId, snapshotIds: olds.snapshotIds[region] ?? [], copied: olds.copiedRegions.includes(region) };
  }
  // Regions dropped: their copies go; a source shared in place loses what we granted.
  for (const region of Object.keys(images).filter((r) => !news.regions.includes(r))) {
    const img = images[region];
    if (img.copied) await deleteImageAndSnapshots(region, img.imageId, img.snapshotIds);
    else await revokeInPlace(region, img, olds);
    log(`region ${region} dropped: ${img.copied ? `deleted copy ${img.imageId}` : `revoked sharing of ${img.imageId}`}`);
    delete images[region];
  }
  // Regions kept: sharing, tags, description and deprecation brought up to date.
  const { ModifyImageAttributeCommand } = await import("@aws-sdk/client-ec2");
  const launch = principalsDelta(principalsOf(olds), principalsOf(news));
  const snapBefore = olds.shareSnapshots ? olds.accountIds : [];
  const snapAfter = news.shareSnapshots ? news.accountIds : [];
  const oldTags = copyTags(olds, olds.buildId);
  const newTags = copyTags(news, olds.buildId);
  for (const [region, img] of Object.entries(images)) {
    const ec2 = await ec2Client(region);
    await changeLaunchPermissions(ec2, img.imageId, launch.add, launch.remove);
    await changeSnapshotPermissions(ec2, img.snapshotIds, snapAfter.filter((a) => !snapBefore.includes(a)), snapBefore.filter((a) => !snapAfter.includes(a)));
    if (!img.copied) continue;
    await retag(ec2, [img.imageId, ...img.snapshotIds], changedTags(oldTags, newTags), removedTagKeys(oldTags, newTags));
    if ((olds.description ?? "") !== (news.description ?? "")) {
      await ec2.send(new ModifyImageAttributeCommand({ ImageId: img.imageId, Description: { Value: news.description ?? "" } }));
    }
    if (olds.deprecateAt !== news.deprecateAt) await setDeprecation(ec2, img.imageId, news.deprecateAt);
  }
  // Regions added (or lost out of band): placed and shared like a create.
  const ctx: ShareContext = { inputs: news, buildId: olds.buildId, imageName: olds.imageName, sourceSnapshotIds: [], images, shared: [], log };
  const missing = news.regions.filter((r) => !images[r]);
  if (missing.length) await place(ctx, missing, true);
  return outputsOf(ctx);
}

export async function deleteSharedAmi(olds: SharedAmiOutputs, log: Log): Promise<void> {
  await Promise.all(
    Object.entries(olds.imageIds).map(async ([region, imageId]) => {
      const img = { imageId, snapshotIds: olds.snapshotIds[region] ?? [], copied: olds.copiedRegions.includes(region) };
      if (img.copied) {
        await deleteImageAndSnapshots(region, imageId, img.snapshotIds);
        log(`deleted copy ${imageId} in ${region}`);
      } else if (await describeImage(await ec2Client(region), imageId)) {
        await revokeInPlace(region, img, olds);
        log(`revoked sharing of ${imageId} in ${region}`);
      }
    }),
  );
}

/**
 * Refresh reads what AWS has: copies deregistered out of band drop out (their snapshots are kept in
 * lostCopies for the next update to delete), and the sharing, tags, description and deprecation
 * seen on the images replace the recorded ones, so `pulumi refresh --diff` shows a change made
 * out of band and the next `up` puts the inputs back.
 */
export async function readSharedAmi(id: string, olds: SharedAmiOutputs): Promise<{ id: string; props: SharedAmiOutputs }> {
  const { DescribeImageAttributeCommand, DescribeSnapshotAttributeCommand } = await import("@aws-sdk/client-ec2");
  const imageIds: Record<string, string> = {};
  const snapshotIds: Record<string, string[]> = {};
  const lostCopies = { ...(olds.lostCopies ?? {}) };
  const seen: { accounts: string[]; orgs: string[]; ous: string[]; snapshotsShared: boolean }[] = [];
  let copy: { tags: Tags; description?: string; deprecateAt?: string } | undefined;
  for (const [region, imageId] of Object.entries(olds.imageIds)) {
    const ec2 = await ec2Client(region);
    const image = await describeImage(ec2, imageId);
    if (!image) {
      if (olds.copiedRegions.includes(region)) lostCopies[region] = { imageId, snapshotIds: olds.snapshotIds[region] ?? [] };
      continue;
    }
    imageIds[region] = imageId;
    snapshotIds[region] = snapshotIdsOf(image);
    const perms = (await ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    let snapshotsShared = true;
    for (const snapshotId of snapshotIds[region]) {
      const vol = (await ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: "createVolumePermission" }))).CreateVolumePermissions ?? [];
      if (olds.accountIds.some((a) => a !== "all" && !vol.some((v) => v.UserId === a))) snapshotsShared = false;
    }
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
    },
  };
}
