// ConvertedHvmAmi: the conversion as a list of steps on a temporary worker, and the update,
// delete and read of the image it made.
import { buildIdFor } from "../core/buildId";
import { buildIdInputs } from "../core/fields";
import type { Step } from "../core/steps";
import { registeredName } from "../core/naming";
import { GUEST_SCRIPT_TAG, provenanceTags, Tags } from "../core/tags";
import { TOOL_VERSION } from "../core/version";
import { factsTag } from "../worker/facts";
import { builtImageTag, deleteBuiltImage, keptOnUpdate, launchSteps, readBuiltImage, runWorkerBuild, updateBuiltImage } from "../worker/build";
import { guestCommandStep } from "../worker/command";
import type { WorkerBuild } from "../worker/context";
import type { BundledScript } from "../worker/guestScript";
import { nameFreeStep, registerStep, snapshotStep } from "../worker/image";
import { verificationTags, verifyStep } from "../worker/verify";
import { attachStep, detachStep, volumesStep } from "../worker/volumes";
import { enaFrom } from "../worker/inputs";
import { CONVERTED_FIELDS } from "./fields";
import { ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs, SCHEMA_VERSION } from "./inputs";
import { HVM_ROOT_DEVICE, inspectSource, SourceImage } from "./source";

interface ConversionBuild extends WorkerBuild {
  inputs: ConvertedHvmAmiInputs;
  source?: SourceImage;
}

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

function conversionSteps(script: BundledScript, inputs: ConvertedHvmAmiInputs): Step<ConversionBuild>[] {
  const flags = [...(inputs.sanitize ? ["--sanitize"] : []), ...(inputs.nitro === false ? ["--no-nitro"] : [])];
  return [
    sourceStep(),
    nameFreeStep(),
    ...launchSteps(),
    volumesStep<ConversionBuild>(["source", "target"], (b) => {
      const encrypted = b.inputs.encrypted ?? b.source!.encrypted;
      const spec = b.inputs.volume;
      return [
        { role: "source", snapshotId: b.source!.rootSnapshotId, sizeGiB: b.source!.rootSizeGiB, spec: { type: "gp3" }, encrypted, kmsKeyId: b.inputs.kmsKeyId },
        { role: "target", sizeGiB: targetSize(b), spec, encrypted, kmsKeyId: b.inputs.kmsKeyId },
      ];
    }),
    attachStep(["source", "target"]),
    guestCommandStep({ name: script.name, script: script.content, args: ["--source", "{volume:source}", "--target", "{volume:target}", ...flags] }),
    detachStep(["source", "target"]),
    snapshotStep("target", ""),
    registerStep((b) => {
      const c = b as ConversionBuild;
      // The image carries its facts, so that a re-run after a crash can adopt it whole.
      const facts = factsTag(c.facts);
      if (facts) c.outputTags = { ...c.outputTags, "ami-factory:facts": facts };
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

function targetSize(b: ConversionBuild): number {
  return b.inputs.targetSizeGiB ?? b.source!.rootSizeGiB + 1;
}

export async function createConversion(inputs: ConvertedHvmAmiInputs, script: BundledScript, log: (l: string) => void): Promise<{ id: string; outs: ConvertedHvmAmiOutputs }> {
  const built = await runWorkerBuild<ConversionBuild>(
    {
      region: inputs.region, scope: inputs.scope, buildId: conversionBuildId(inputs), timeoutMinutes: inputs.timeoutMinutes, worker: inputs.worker, architecture: "x86_64",
      exactName: inputs.exactName,
      guestScriptSha256: inputs.guestScriptSha256,
      workerRootEncryption: inputs.encrypted ? { kmsKeyId: inputs.kmsKeyId } : undefined,
      what: `converted ${inputs.sourceAmiId}`, kind: "ConvertedHvmAmi", factsSchema: script.factsSchema,
    },
    (base) => ({ ...base, inputs }),
    conversionSteps(script, inputs),
    log,
  );
  return { id: built.imageId, outs: { ...inputs, ...built, nitroReady: built.facts.nitroReady === true, schemaVersion: SCHEMA_VERSION } };
}

/** Tags, the Name tag and the description change in place; the registered AMI name cannot. */
export async function updateConversion(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs): Promise<ConvertedHvmAmiOutputs> {
  const builtAt = await builtImageTag(olds.region, olds.imageId, "ami-factory:built-at");
  const baseName = olds.baseName;
  const before = imageTags(olds, olds.buildId, baseName, builtAt);
  const after = imageTags(news, olds.buildId, baseName, builtAt);
  await updateBuiltImage(olds.region, olds, before, after, { before: olds.description, after: news.description });
  return { ...olds, ...news, ...keptOnUpdate(olds), nitroReady: olds.nitroReady };
}

/** The image and the snapshot the conversion made; the source's data snapshots it maps stay. */
export async function deleteConversion(olds: ConvertedHvmAmiOutputs): Promise<void> {
  await deleteBuiltImage(olds.region, olds, true);
}

export async function readConversion(id: string, olds: ConvertedHvmAmiOutputs): Promise<{ id?: string; props?: ConvertedHvmAmiOutputs }> {
  return readBuiltImage(olds.region, id, olds);
}
