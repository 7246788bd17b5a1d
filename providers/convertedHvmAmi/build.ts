// ConvertedHvmAmi: the conversion as a list of steps on a temporary worker, and the update,
// delete and read of the image it made.
import { buildIdFor } from "../core/buildId";
import { buildIdInputs } from "../core/fields";
import type { Step } from "../core/steps";
import { registeredName } from "../core/naming";
import { GUEST_SCRIPT_TAG, provenanceTags, Tags } from "../core/tags";
import { TOOL_VERSION } from "../core/version";
import { LINEAGE_TAG } from "../core/retire";
import { factsTag } from "../worker/facts";
import { builtImageTag, consumerFieldsOf, keptOnUpdate, retireOrDeleteBuiltImage, updateForConsumers, launchSteps, readBuiltImage, runWorkerBuild, updateBuiltImage } from "../worker/build";
import { guestCommandStep, guestScriptEnd } from "../worker/command";
import type { WorkerBuild } from "../worker/context";
import type { BundledScript } from "../worker/guestScript";
import { nameFreeStep, registerStep, snapshotStep } from "../worker/image";
import { verificationTags, verifyStep } from "../worker/verify";
import { attachStep, detachStep, discardStep, VolumeRequest, volumesStep } from "../worker/volumes";
import { enaFrom } from "../worker/inputs";
import { CONVERTED_FIELDS } from "./fields";
import { conversionPlan, IN_PLACE_REFUSED_EXIT, refusalReason } from "./conversion";
import { Conversion, ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs, SCHEMA_VERSION } from "./inputs";
import { HVM_ROOT_DEVICE, inspectSource, SourceImage } from "./source";

interface ConversionBuild extends WorkerBuild {
  inputs: ConvertedHvmAmiInputs;
  source?: SourceImage;
  /** In place or copied, and why: planned from the inputs and the source, changed by a refusal. */
  conversion?: Conversion;
  /** The guest declined to convert in place (auto): the target volume is made now. */
  fellBack?: boolean;
  /** In place failed after it may have written (auto): its volume goes, a fresh one from the snapshot is copied. */
  freshSource?: boolean;
}

/** The image tag that says how it was converted, so that a re-run after a crash adopts that too. */
export const CONVERSION_TAG = "ami-factory:conversion";

/** From the scope and the fields that make the image (not the guest script's hash: a tool upgrade is not a new build). */
export function conversionBuildId(inputs: ConvertedHvmAmiInputs): string {
  return buildIdFor(inputs.scope, buildIdInputs(CONVERTED_FIELDS, inputs));
}

export function defaultImageName(sourceName: string): string {
  return `${sourceName}`.slice(0, 124) + "-hvm";
}

/** `baseName`: the given (or default) name, unstamped: the Name tag. */
function imageTags(inputs: ConvertedHvmAmiInputs, buildId: string, baseName: string, builtAt: string): Tags {
  return provenanceTags(inputs.tags, buildId, {
    Name: inputs.name ?? baseName,
    "ami-factory:source-ami": inputs.sourceAmiId,
    // RegisterImage records no source (EC2 sets SourceImageId only for CreateImage and CopyImage): the lineage is in tags.
    "ami-factory:source-ami-region": inputs.region,
    [LINEAGE_TAG]: inputs.scope,
    "ami-factory:tool-version": TOOL_VERSION,
    "ami-factory:built-at": builtAt,
    "ami-factory:kind": "ConvertedHvmAmi",
  });
}

function sourceStep(): Step<ConversionBuild> {
  return {
    name: "check source image",
    async run(b) {
      const source = await inspectSource(b.region, b.inputs.sourceAmiId);
      if (b.inputs.targetSizeGiB !== undefined && b.inputs.targetSizeGiB < source.rootSizeGiB) {
        throw new Error(`targetSizeGiB ${b.inputs.targetSizeGiB} is smaller than the source root volume (${source.rootSizeGiB} GiB): give at least ${source.rootSizeGiB}`);
      }
      b.conversion = conversionPlan(b.inputs, source);
      if (b.conversion.method === "copy") b.log(`copying the root (${b.conversion.reason})`);
      b.source = source;
      b.architecture = source.architecture;
      b.baseName = b.inputs.name ?? defaultImageName(source.name);
      b.imageName = registeredName(b.baseName, b.exactName, b.stamp);
      b.outputTags = {
        ...imageTags(b.inputs, b.buildId, b.baseName, new Date().toISOString()),
        [GUEST_SCRIPT_TAG]: b.guestScriptSha256,
        ...verificationTags(b.inputs.verify, b.temporaryTags),
      };
    },
  };
}

/** What RegisterImage is told about drivers: ENA as the facts (or the input) say; SriovNetSupport only with ixgbevf (it cannot be removed later). */
export function networkSupport(c: { enaSupport: "auto" | boolean }, facts: Record<string, unknown> | undefined, log: (l: string) => void): { EnaSupport: boolean; SriovNetSupport?: string } {
  const ena = enaFrom(c.enaSupport, facts, log);
  return facts?.ixgbevfDriver === true ? { EnaSupport: ena, SriovNetSupport: "simple" } : { EnaSupport: ena };
}

/** The volume from the source snapshot: the worker reads it for a copy, or converts it in place (a fresh one after a failed in place: generation 2). */
function sourceVolume(b: ConversionBuild): VolumeRequest {
  return {
    role: "source", snapshotId: b.source!.rootSnapshotId, sizeGiB: b.source!.rootSizeGiB, spec: { type: "gp3" }, encrypted: b.inputs.encrypted ?? b.source!.encrypted, kmsKeyId: b.inputs.kmsKeyId,
    ...(b.freshSource ? { generation: 2 } : {}),
  };
}

/** The empty volume a copy writes. */
function targetVolume(b: ConversionBuild): VolumeRequest {
  return { role: "target", sizeGiB: targetSize(b), spec: b.inputs.volume, encrypted: b.inputs.encrypted ?? b.source!.encrypted, kmsKeyId: b.inputs.kmsKeyId };
}

const copying = (b: ConversionBuild) => b.conversion!.method === "copy";

/** Why `auto` copied after in place failed (the `conversion` output's reason). */
export const IN_PLACE_FAILED = "in-place-failed";

/**
 * pv2hvm --in-place on the source volume. When it declines (exit 3, nothing changed), `auto` takes
 * the copy with the same worker and volume; `in-place` fails with the guest's reason. When it fails
 * (it exited non-zero: it may have written to the volume), `auto` discards that volume and copies
 * a fresh one from the snapshot; `in-place` fails.
 */
function inPlaceStep(script: BundledScript, flags: string[]): Step<ConversionBuild> {
  const guest = guestCommandStep({ name: script.name, script: script.content, args: ["--in-place", "{volume:source}", ...flags], refusedExitCode: IN_PLACE_REFUSED_EXIT });
  return {
    ...guest,
    name: `run ${script.name} --in-place on the worker`,
    when: (b) => !copying(b),
    async run(b) {
      try {
        await guest.run(b);
      } catch (e) {
        // Only a script that ran and exited non-zero: a timeout leaves no time for a copy, and an
        // SSM or worker error would fail the copy too.
        if (b.inputs.method !== "auto" || guestScriptEnd(e)?.status !== "Failed") throw e;
        b.log(`${script.name} --in-place failed; copying a fresh volume of the source snapshot instead (the one it may have written to is discarded):`);
        for (const line of (e as Error).message.split("\n")) b.log(`  ${line}`);
        b.conversion = { method: "copy", reason: IN_PLACE_FAILED };
        b.fellBack = true;
        b.freshSource = true;
        return;
      }
      if (!b.refusal) return;
      const { reason, detail } = refusalReason(b.refusal, script.factsSchema);
      if (b.inputs.method === "in-place") throw new Error(`method "in-place": ${script.name} cannot convert this root in place (${reason}: ${detail}); nothing on it was changed. Set method "auto" or "copy" to copy it instead`);
      b.log(`${script.name} declined to convert in place (${reason}: ${detail}): copying instead`);
      b.conversion = { method: "copy", reason };
      b.fellBack = true;
    },
  };
}

function conversionSteps(script: BundledScript, inputs: ConvertedHvmAmiInputs): Step<ConversionBuild>[] {
  const flags = [...(inputs.sanitize ? ["--sanitize"] : []), ...(inputs.nitro === false ? ["--no-nitro"] : [])];
  const copy = guestCommandStep({ name: script.name, script: script.content, args: ["--source", "{volume:source}", "--target", "{volume:target}", ...flags] });
  const fallback = (b: ConversionBuild) => b.fellBack === true;
  return [
    sourceStep(),
    nameFreeStep(),
    ...launchSteps(),
    // A copy decided up front makes both volumes at once; in place makes the source volume only.
    volumesStep<ConversionBuild>(["source", "target"], (b) => [sourceVolume(b), ...(copying(b) ? [targetVolume(b)] : [])]),
    attachStep(["source", "target"]),
    inPlaceStep(script, flags),
    { ...discardStep(["source"], "in place failed after it may have written to it"), when: (b) => b.freshSource === true },
    { ...volumesStep<ConversionBuild>(["source", "target"], (b) => [...(b.freshSource ? [sourceVolume(b)] : []), targetVolume(b)]), when: fallback },
    { ...attachStep(["source", "target"]), when: fallback },
    { ...copy, when: copying },
    detachStep(["source", "target"]),
    snapshotStep((b) => (copying(b as ConversionBuild) ? "target" : "source"), ""),
    registerStep((b) => {
      const c = b as ConversionBuild;
      // The image carries its facts and how it was converted, so that a re-run after a crash can adopt it whole.
      const facts = factsTag(c.facts);
      if (facts) c.outputTags = { ...c.outputTags, "ami-factory:facts": facts };
      c.outputTags = { ...c.outputTags, [CONVERSION_TAG]: JSON.stringify(c.conversion) };
      if (c.facts?.nitroReady !== true) c.log("warning: the image is not Nitro-ready (no NVMe driver at boot or no ENA): it runs only on Xen HVM instance types (t2, m4, c4, r4, …)");
      return {
        Name: c.imageName,
        Description: c.inputs.description ?? `${c.source!.name} converted to HVM by ami-factory from ${c.inputs.sourceAmiId}`,
        Architecture: c.architecture,
        VirtualizationType: "hvm",
        RootDeviceName: HVM_ROOT_DEVICE,
        BlockDeviceMappings: [
          {
            DeviceName: HVM_ROOT_DEVICE,
            Ebs: {
              SnapshotId: c.snapshotId,
              DeleteOnTermination: true,
              VolumeType: c.inputs.volume.type as never,
              VolumeSize: targetSize(c),
              Iops: c.inputs.volume.iops,
              Throughput: c.inputs.volume.throughputMiBps,
            },
          },
          // Every other disk of the source (data snapshots, instance-store ephemeralN) as it was registered.
          ...c.source!.otherMappings,
        ],
        ...networkSupport(c.inputs, c.facts, c.log),
        BootMode: "legacy-bios",
      };
    }),
    verifyStep((b) => (b as ConversionBuild).inputs.verify),
  ];
}

/** The root size: the source's when converted in place; for a copy, as given or the source's + 1 GiB. */
function targetSize(b: ConversionBuild): number {
  if (!copying(b)) return b.source!.rootSizeGiB;
  return b.inputs.targetSizeGiB ?? b.source!.rootSizeGiB + 1;
}

export async function createConversion(inputs: ConvertedHvmAmiInputs, script: BundledScript, log: (l: string) => void): Promise<{ id: string; outs: ConvertedHvmAmiOutputs }> {
  let build: ConversionBuild | undefined;
  const built = await runWorkerBuild<ConversionBuild>(
    {
      region: inputs.region, scope: inputs.scope, buildId: conversionBuildId(inputs), timeoutMinutes: inputs.timeoutMinutes, worker: inputs.worker, architecture: "x86_64",
      exactName: inputs.exactName,
      protection: inputs.deregistrationProtection,
      publish: inputs.publish,
      guestScriptSha256: inputs.guestScriptSha256,
      workerRootEncryption: inputs.encrypted ? { kmsKeyId: inputs.kmsKeyId } : undefined,
      what: `converted ${inputs.sourceAmiId}`, kind: "ConvertedHvmAmi", factsSchema: script.factsSchema,
    },
    (base) => (build = { ...base, inputs }),
    conversionSteps(script, inputs),
    log,
  );
  // No build: an image this build finished before a crash was adopted, and its tag says how it was made.
  const conversion = build ? build.conversion : adoptedConversion(await builtImageTag(inputs.region, built.imageId, CONVERSION_TAG));
  return { id: built.imageId, outs: { ...inputs, ...built, nitroReady: built.facts.nitroReady === true, ...(conversion ? { conversion } : {}), schemaVersion: SCHEMA_VERSION } };
}

/** The conversion tag of an adopted image; none on an image built before schema 3 (always copied, reason unrecorded). */
export function adoptedConversion(tag: string): Conversion | undefined {
  if (!tag) return undefined;
  try {
    const c = JSON.parse(tag) as Conversion;
    if ((c.method === "in-place" || c.method === "copy") && typeof c.reason === "string") return { method: c.method, reason: c.reason };
  } catch {
    // fall through
  }
  throw new Error(`the ${CONVERSION_TAG} tag of the adopted image is ${JSON.stringify(tag.slice(0, 80))}, not {"method":"in-place"|"copy","reason":"…"}: set it right, or deregister the image (and its snapshot) so that the build runs again`);
}

/** Tags, the Name tag and the description change in place; the registered AMI name cannot. */
export async function updateConversion(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs, log: (l: string) => void): Promise<ConvertedHvmAmiOutputs> {
  const builtAt = await builtImageTag(olds.region, olds.imageId, "ami-factory:built-at");
  const baseName = olds.baseName;
  const before = imageTags(olds, olds.buildId, baseName, builtAt);
  const after = imageTags(news, olds.buildId, baseName, builtAt);
  await updateBuiltImage(olds.region, olds, before, after, { before: olds.description, after: news.description });
  await updateForConsumers(olds.region, olds, olds, news, log);
  // How the image was made stays: a new `method` applies to the next build.
  return { ...olds, ...news, ...consumerFieldsOf(news), ...keptOnUpdate(olds), nitroReady: olds.nitroReady, conversion: olds.conversion };
}

/** Retires the image, or deletes it and the snapshot the conversion made; the source's data snapshots it maps stay. */
export async function deleteConversion(olds: ConvertedHvmAmiOutputs, log: (l: string) => void): Promise<void> {
  await retireOrDeleteBuiltImage(olds.region, olds, true, log);
}

export async function readConversion(id: string, olds: ConvertedHvmAmiOutputs): Promise<{ id?: string; props?: ConvertedHvmAmiOutputs }> {
  return readBuiltImage(olds.region, id, olds);
}
