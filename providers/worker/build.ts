// Running a worker build (ConvertedHvmAmi, SurrogateAmi) and managing the image it made: adopt a
// finished image of the same build id, clean the leftovers of a run that died, run the steps, and
// later retag, read and delete the image.
import { apiCalls, ec2Client, ec2Sdk } from "../core/clients";
import { deleteImageAndSnapshots, deleteSnapshot, describeImage, retag, snapshotIdsOf } from "../core/images";
import { deregisterOnly } from "./image";
import { runSteps, Step } from "../core/steps";
import { deleteLeftovers, findLeftovers } from "../core/sweep";
import { changedTags, removedTagKeys, Tags, temporaryTags } from "../core/tags";
import { findBuiltImage } from "./adopt";
import { checkFactsTag, FactsSchema } from "./facts";
import type { Verification, WorkerBuild, WorkerOptions } from "./context";
import { instanceProfileStep } from "./iam";
import { launchWorkerStep, workerImageStep } from "./instance";
import { networkStep, securityGroupStep } from "./network";
import { verificationFromTags } from "./verify";

/** The worker, from subnet to a running instance: the same first steps for every worker build. */
export function launchSteps(): Step<WorkerBuild>[] {
  return [networkStep(), securityGroupStep(), instanceProfileStep(), workerImageStep(), launchWorkerStep()];
}

export interface BuiltImage {
  imageId: string;
  snapshotId: string;
  imageName: string;
  buildId: string;
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
  /** Known up front (SurrogateAmi); a step may set it (ConvertedHvmAmi). */
  imageName?: string;
  /** What the log calls the build: "converted ami-1", "built debian". */
  what: string;
  /** The resource kind, for the URN tag: "ConvertedHvmAmi". */
  kind: string;
  /** The guest script's facts schema: an adopted image's facts tag is checked against it. */
  factsSchema?: FactsSchema;
}

export async function runWorkerBuild<B extends WorkerBuild>(spec: WorkerBuildSpec, extend: (base: WorkerBuild) => B, steps: Step<B>[], log: (l: string) => void): Promise<BuiltImage> {
  const { buildId, region } = spec;
  const started = Date.now();
  const callsBefore = apiCalls.count;
  // A create re-run after a crash adopts the image its first run finished...
  const adopted = await findBuiltImage(region, buildId);
  if (adopted) {
    log(`adopting ${adopted.ImageId}, finished earlier by build ${buildId}`);
    const tag = adopted.Tags?.find((t) => t.Key === "ami-factory:facts")?.Value;
    const facts = spec.factsSchema ? checkFactsTag(tag, spec.factsSchema, adopted.ImageId!) : tag ? JSON.parse(tag) : {};
    const root = adopted.BlockDeviceMappings?.find((m) => m.DeviceName === adopted.RootDeviceName)?.Ebs?.SnapshotId;
    return { imageId: adopted.ImageId!, snapshotId: root ?? snapshotIdsOf(adopted)[0], imageName: adopted.Name!, buildId, facts, verification: verificationFromTags(adopted.Tags) };
  }
  // ... or cleans the leftovers of a run that died, before starting over.
  const leftovers = await findLeftovers(region, { buildId });
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
    temporaryTags: temporaryTags(buildId, spec.kind, spec.scope, new Date(started + (spec.timeoutMinutes + 60) * 60_000), `ami-factory ${buildId}`),
    outputTags: {},
    deadline: started + spec.timeoutMinutes * 60_000,
    log,
    volumes: {},
    attachments: {},
    imageName: spec.imageName ?? "",
  });
  await runSteps(steps, build, { log });
  log(`${spec.what}: ${build.imageId} in ${Math.round((Date.now() - started) / 1000)}s with ${apiCalls.count - callsBefore} AWS API calls`);
  return { imageId: build.imageId!, snapshotId: build.snapshotId!, imageName: build.imageName, buildId, facts: build.facts ?? {}, verification: build.verification };
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
 * Deregisters a built image and deletes the snapshot the build made. With `onlyOwnSnapshot`, the
 * image's other snapshots are left alone: a converted image also maps the source's data snapshots.
 */
export async function deleteBuiltImage(region: string, image: { imageId: string; snapshotId?: string }, onlyOwnSnapshot = false): Promise<void> {
  if (!onlyOwnSnapshot) return deleteImageAndSnapshots(region, image.imageId, image.snapshotId ? [image.snapshotId] : []);
  await deregisterOnly(region, image.imageId);
  if (image.snapshotId) await deleteSnapshot(await ec2Client(region), image.snapshotId);
}

/** Refresh: gone when deregistered out of band. */
export async function readBuiltImage<T extends { snapshotId: string }>(region: string, id: string, olds: T): Promise<{ id?: string; props?: T }> {
  const image = await describeImage(await ec2Client(region), id);
  return image ? { id, props: { ...olds, snapshotId: snapshotIdsOf(image)[0] ?? olds.snapshotId } } : {};
}
