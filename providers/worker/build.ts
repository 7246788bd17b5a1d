// Running a worker build (ConvertedHvmAmi, SurrogateAmi) and managing the image it made: adopt a
// finished image of the same build id, clean the leftovers of a run that died, run the steps, and
// later retag, read and delete the image.
import type { Image } from "@aws-sdk/client-ec2";
import { apiCalls, ec2Client, ec2Sdk, partitionOf } from "../core/clients";
import { deleteImageAndSnapshots, deleteSnapshot, describeImage, retag, snapshotIdsOf } from "../core/images";
import { deregisterOnly } from "./image";
import { runSteps, Step } from "../core/steps";
import { deleteLeftovers, findLeftovers } from "../core/sweep";
import { buildStamp, registeredName } from "../core/naming";
import { changedTags, GUEST_SCRIPT_TAG, HANDED_OVER_TAG, removedTagKeys, TAG_PREFIX, Tags, temporaryTags } from "../core/tags";
import { findBuiltImage } from "./adopt";
import { checkFactsTag, FactsSchema } from "./facts";
import type { Verification, WorkerBuild, WorkerOptions } from "./context";
import { instanceProfileStep } from "./iam";
import { launchWorkerStep, workerImageStep } from "./instance";
import { networkStep, securityGroupStep } from "./network";
import { verificationFromTags } from "./verify";
import { protectIfAsked, protectionSeen, retirementOf, RetentionPolicy, retireUnlessDestroyed, setProtection } from "../core/retire";
import { reapOpportunistically } from "../core/reap";
import { publishImage, republish, unpublishImage } from "../core/publish";

/** The worker, from subnet to a running instance: the same first steps for every worker build. */
export function launchSteps(): Step<WorkerBuild>[] {
  return [networkStep(), securityGroupStep(), instanceProfileStep(), workerImageStep(), launchWorkerStep()];
}

export interface BuiltImage {
  imageId: string;
  snapshotId: string;
  /** The registered name: the given name plus the build stamp, or exactly the given name. */
  imageName: string;
  /** The given name (the Name tag); the upgrade of older state, which has none, sets imageName. */
  baseName: string;
  buildId: string;
  /** The hash of the guest script that built this image (provenance, kept across updates). */
  guestScriptSha256: string;
  facts: Record<string, unknown>;
  /** How the image was launch-verified (absent on images built before verification existed). */
  verification?: Verification;
}

export interface WorkerBuildSpec {
  region: string;
  scope: string;
  buildId: string;
  timeoutMinutes: number;
  worker: WorkerOptions;
  architecture: "x86_64" | "arm64";
  /** The given name, known up front (SurrogateAmi); else a step sets the build's names (ConvertedHvmAmi). */
  givenName?: string;
  exactName: boolean;
  guestScriptSha256: string;
  /** Outbound ports beyond HTTPS the build needs (80 for an http:// mirror). Default: none. */
  extraEgressPorts?: number[];
  /** S3 objects the worker reads with its role (a surrogate image recipe's s3:// URL): s3:GetObject on exactly these. */
  readObjects?: { bucket: string; key: string }[];
  /** The image is encrypted (with this key): so is the worker's root volume. */
  workerRootEncryption?: { kmsKeyId?: string };
  /** What the log calls the build: "converted ami-1", "built debian". */
  what: string;
  /** The resource kind, for the URN tag: "ConvertedHvmAmi". */
  kind: string;
  /** The guest script's facts schema: an adopted image's facts tag is checked against it. */
  factsSchema?: FactsSchema;
  /** The resource's deregistrationProtection (false: none on the image). */
  protection?: false;
  /** The SSM parameter the image id is published to. */
  publish?: string;
}

/** What a built image's delete and update read of the consumer fields (../core/consumerFields.ts). */
export interface Retiring {
  scope: string;
  exactName: boolean;
  retirement?: "delete";
  retention?: RetentionPolicy;
  deregistrationProtection?: false;
  publish?: string;
}

/**
 * The consumer fields as the new inputs have them, unset ones included: the engine's inputs carry no
 * undefined, so `{ ...olds, ...news }` would keep a value the user removed (retirement: "delete").
 */
export function consumerFieldsOf(news: Retiring): Pick<Retiring, "retirement" | "retention" | "deregistrationProtection" | "publish"> {
  return { retirement: news.retirement, retention: news.retention, deregistrationProtection: news.deregistrationProtection, publish: news.publish };
}

/** An update's part about consumers: protection switched as asked, the parameter renamed; then reaping of the lineage. */
export async function updateForConsumers(region: string, image: { imageId: string; buildId: string }, olds: Retiring, news: Retiring, log: (l: string) => void): Promise<void> {
  // Every update puts protection as asked, not only a changed field: an image made before protection
  // existed, or lifted out of band (refresh reports it), converges.
  if (olds.deregistrationProtection !== news.deregistrationProtection || news.deregistrationProtection !== false) await setProtection(await ec2Client(region), image.imageId, news.deregistrationProtection !== false);
  await republish(region, image.imageId, image.buildId, news.scope, olds.publish, news.publish, log);
  await reapOpportunistically(region, news.scope, log);
}

/**
 * Protection and the published parameter, before the image is handed over: if either fails, the
 * create fails with the image not handed over, and a re-run adopts it and tries again.
 */
async function forConsumers(spec: WorkerBuildSpec, imageId: string, log: (l: string) => void): Promise<void> {
  await protectIfAsked(spec.region, imageId, spec.protection);
  if (spec.publish) await publishImage(spec.region, spec.publish, imageId, spec.buildId, spec.scope, log);
}

export async function runWorkerBuild<B extends WorkerBuild>(spec: WorkerBuildSpec, extend: (base: WorkerBuild) => B, steps: Step<B>[], log: (l: string) => void): Promise<BuiltImage> {
  const { buildId, region } = spec;
  const started = Date.now();
  const callsBefore = apiCalls.count;
  // A create re-run after a crash adopts the image its first run finished...
  const adopted = await findBuiltImage(region, buildId);
  if (adopted) {
    log(`adopting ${adopted.ImageId}, finished earlier by build ${buildId}`);
    const tag = (key: string) => adopted.Tags?.find((t) => t.Key === key)?.Value;
    const factsText = tag("ami-factory:facts");
    const facts = spec.factsSchema ? checkFactsTag(factsText, spec.factsSchema, adopted.ImageId!) : factsText ? JSON.parse(factsText) : {};
    const root = rootSnapshotOf(adopted);
    await forConsumers(spec, adopted.ImageId!, log);
    await handOver(region, adopted.ImageId!);
    return {
      imageId: adopted.ImageId!, snapshotId: root ?? snapshotIdsOf(adopted)[0], imageName: adopted.Name!, baseName: tag("Name") ?? adopted.Name!, buildId,
      guestScriptSha256: tag(GUEST_SCRIPT_TAG) ?? spec.guestScriptSha256, facts, verification: verificationFromTags(adopted.Tags),
    };
  }
  // ... or cleans the leftovers of a run that died, before starting over.
  const leftovers = await findLeftovers(region, { buildId });
  // The build stamp belongs to the build id: a re-run takes its first run's start from the
  // leftovers' created-at tags (the clock only when the first run left nothing).
  const firstStart = leftovers.map((l) => Date.parse(l.createdAt ?? "")).filter((t) => !Number.isNaN(t)).sort()[0];
  const stamp = buildStamp(new Date(firstStart ?? started));
  if (leftovers.length) {
    log(`cleaning ${leftovers.length} leftovers of an earlier run of build ${buildId}: ${leftovers.map((l) => `${l.kind} ${l.id}`).join(", ")}`);
    const failures = await deleteLeftovers(leftovers, log);
    if (failures.length) throw new Error(`could not clean the leftovers of an earlier run of build ${buildId}: ${failures.join("; ")}`);
  }
  const build = extend({
    region,
    buildId,
    architecture: spec.architecture,
    worker: spec.worker,
    temporaryTags: temporaryTags(buildId, spec.kind, spec.scope, new Date(started + (spec.timeoutMinutes + 60) * 60_000), `ami-factory ${buildId}`, new Date(firstStart ?? started)),
    outputTags: {},
    deadline: started + spec.timeoutMinutes * 60_000,
    log,
    volumes: {},
    attachments: {},
    stamp,
    exactName: spec.exactName,
    baseName: spec.givenName ?? "",
    imageName: spec.givenName ? registeredName(spec.givenName, spec.exactName, stamp) : "",
    guestScriptSha256: spec.guestScriptSha256,
    egressPorts: [443, ...(spec.extraEgressPorts ?? [])],
    readObjectArns: (spec.readObjects ?? []).map((o) => `arn:${partitionOf(region)}:s3:::${o.bucket}/${o.key}`),
    workerRootEncryption: spec.workerRootEncryption,
  });
  await runSteps(steps, build, { log });
  await forConsumers(spec, build.imageId!, log);
  await handOver(region, build.imageId!);
  await reapOpportunistically(region, spec.scope, log);
  log(`${spec.what}: ${build.imageId} in ${Math.round((Date.now() - started) / 1000)}s with ${apiCalls.count - callsBefore} AWS API calls`);
  return {
    imageId: build.imageId!, snapshotId: build.snapshotId!, imageName: build.imageName, baseName: build.baseName, buildId,
    guestScriptSha256: spec.guestScriptSha256, facts: build.facts ?? {}, verification: build.verification,
  };
}

/**
 * Marks the image as handed to the engine: a later create with the same build id (`pulumi up
 * --replace` with unchanged inputs, which builds before it deletes) must build anew, not adopt the
 * image it is about to replace. Only an image whose create never returned is adopted.
 */
async function handOver(region: string, imageId: string): Promise<void> {
  await retag(await ec2Client(region), [imageId], { [HANDED_OVER_TAG]: new Date().toISOString() }, []);
}

/** What an in-place update never changes: the image, its names, its build, its provenance and its verification. */
export function keptOnUpdate(olds: BuiltImage): BuiltImage {
  const { imageId, snapshotId, imageName, baseName, buildId, guestScriptSha256, facts, verification } = olds;
  return { imageId, snapshotId, imageName, baseName, buildId, guestScriptSha256, facts, verification };
}

/** Tags and description of a built image change in place (its registered name cannot). */
export async function updateBuiltImage(region: string, image: BuiltImage, before: Tags, after: Tags, description?: { before?: string; after?: string }): Promise<void> {
  const { ModifyImageAttributeCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  await retag(ec2, [image.imageId, image.snapshotId].filter(Boolean), changedTags(before, after), removedTagKeys(before, after));
  if (description && description.after !== undefined && description.after !== description.before) {
    await ec2.send(new ModifyImageAttributeCommand({ ImageId: image.imageId, Description: { Value: description.after } }));
  }
}

/** The tag a built image was stamped with at build time (kept across updates). */
export async function builtImageTag(region: string, imageId: string, key: string): Promise<string> {
  return (await describeImage(await ec2Client(region), imageId))?.Tags?.find((t) => t.Key === key)?.Value ?? "";
}

/**
 * What a delete does with a built image (./core/retire.ts): retired (the default), or deregistered
 * with its snapshot. An exactName image is deleted: EC2 cannot rename an image, and its
 * replacement needs the name (preview warns of the gap).
 */
export async function retireOrDeleteBuiltImage(region: string, image: BuiltImage & Retiring, onlyOwnSnapshot: boolean, log: (l: string) => void): Promise<void> {
  // A replacement has rewritten the parameter to its image by now (it stays); a removed entry's goes.
  if (image.publish) await unpublishImage(region, image.publish, image.imageId, image.buildId, log);
  if (!image.exactName && retirementOf(image.retirement) === "retire") {
    return retireUnlessDestroyed(region, image.imageId, { lineage: image.scope, retention: image.retention }, log, () => deleteBuiltImage(region, image, onlyOwnSnapshot));
  }
  await deleteBuiltImage(region, image, onlyOwnSnapshot);
  log(`deleted ${image.imageId} in ${region}${image.exactName ? " (exactName: an image with an exact name is deleted, not retired)" : ""}`);
}

/**
 * Deregisters a built image and deletes the snapshot the build made. With `onlyOwnSnapshot`, the
 * image's other snapshots are left alone: a converted image also maps the source's data snapshots.
 */
export async function deleteBuiltImage(region: string, image: { imageId: string; snapshotId?: string }, onlyOwnSnapshot = false): Promise<void> {
  if (!onlyOwnSnapshot) return deleteImageAndSnapshots(region, image.imageId, image.snapshotId ? [image.snapshotId] : []);
  await deregisterOnly(region, image.imageId);
  if (image.snapshotId) await deleteSnapshot(await ec2Client(region), image.snapshotId);
}

/**
 * Refresh: gone when deregistered out of band; else the user's tags and description as the image
 * has them, so a change made out of band shows on refresh and the next `up` puts the inputs back.
 * (Provenance tags, ami-factory:*, and the Name tag ami-factory sets are not the user's.)
 */
export async function readBuiltImage<T extends { snapshotId: string; tags: Tags; description?: string; deregistrationProtection?: false }>(region: string, id: string, olds: T): Promise<{ id?: string; props?: T }> {
  const image = await describeImage(await ec2Client(region), id);
  if (!image) return {};
  const userTag = (key: string) => !key.startsWith(TAG_PREFIX) && (key !== "Name" || "Name" in (olds.tags ?? {}));
  const tags = Object.fromEntries((image.Tags ?? []).filter((t) => t.Key && userTag(t.Key)).map((t) => [t.Key!, t.Value ?? ""]));
  return {
    id,
    props: {
      ...olds,
      // The root's: a converted image also maps its source's data snapshots, which are not ours.
      snapshotId: rootSnapshotOf(image) ?? olds.snapshotId,
      tags,
      // A description ami-factory wrote by default is not an input to compare with.
      ...(olds.description !== undefined ? { description: image.Description ?? "" } : {}),
      ...protectionSeen([image]),
    },
  };
}

/** The snapshot of the image's root device (by RootDeviceName), not whichever mapping comes first. */
export function rootSnapshotOf(image: Image): string | undefined {
  return image.BlockDeviceMappings?.find((m) => m.DeviceName === image.RootDeviceName)?.Ebs?.SnapshotId;
}
