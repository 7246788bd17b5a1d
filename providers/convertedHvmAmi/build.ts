// ConvertedHvmAmi: the conversion as a list of steps on a temporary worker, and the update,
// delete and read of the image it made.
import { buildIdFor } from "../core/buildId";
import type { Step } from "../core/steps";
import { provenanceTags, Tags } from "../core/tags";
import { TOOL_VERSION } from "../core/version";
import { factsTag } from "../worker/adopt";
import { builtImageTag, deleteBuiltImage, launchSteps, readBuiltImage, runWorkerBuild, updateBuiltImage } from "../worker/build";
import { guestCommandStep } from "../worker/command";
import type { WorkerBuild } from "../worker/context";
import type { BundledScript } from "../worker/guestScript";
import { registerStep, snapshotStep } from "../worker/image";
import { verificationTags, verifyStep } from "../worker/verify";
import { attachStep, detachStep, volumesStep } from "../worker/volumes";
import { enaFrom } from "../worker/inputs";
import { ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs, SCHEMA_VERSION } from "./inputs";
import { inspectSource, SourceImage } from "./source";

interface ConversionBuild extends WorkerBuild {
  inputs: ConvertedHvmAmiInputs;
  source?: SourceImage;
}

export function conversionBuildId(inputs: ConvertedHvmAmiInputs): string {
  const { sourceAmiId, region, targetSizeGiB, volume, encrypted, kmsKeyId, enaSupport, sanitize, guestScriptSha256 } = inputs;
  return buildIdFor(inputs.scope, { sourceAmiId, region, targetSizeGiB, volume, encrypted, kmsKeyId, enaSupport, sanitize, guestScriptSha256 });
}

export function defaultImageName(sourceName: string): string {
  return `${sourceName}`.slice(0, 124) + "-hvm";
}

function imageTags(inputs: ConvertedHvmAmiInputs, buildId: string, imageName: string, builtAt: string): Tags {
  return provenanceTags(inputs.tags, buildId, {
    Name: inputs.name ?? imageName,
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
      b.imageName = b.inputs.name ?? defaultImageName(source.name);
      b.outputTags = { ...imageTags(b.inputs, b.buildId, b.imageName, new Date().toISOString()), ...verificationTags(b.inputs.verify, b.temporaryTags) };
    },
  };
}

function conversionSteps(script: BundledScript, sanitize: boolean): Step<ConversionBuild>[] {
  return [
    sourceStep(),
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
    guestCommandStep({ name: script.name, script: script.content, args: ["--source", "{volume:source}", "--target", "{volume:target}", ...(sanitize ? ["--sanitize"] : [])] }),
    detachStep(["source", "target"]),
    snapshotStep("target", ""),
    registerStep((b) => {
      const c = b as ConversionBuild;
      const ena = enaFrom(c.inputs.enaSupport, c.facts, c.log);
      // The image carries its facts, so that a re-run after a crash can adopt it whole.
      const facts = factsTag(c.facts);
      if (facts) c.outputTags = { ...c.outputTags, "ami-factory:facts": facts };
      return {
        Name: c.imageName,
        Description: c.inputs.description ?? `${c.source!.name} converted to HVM by ami-factory from ${c.inputs.sourceAmiId}`,
        Architecture: c.architecture,
        VirtualizationType: "hvm",
        RootDeviceName: "/dev/xvda",
        BlockDeviceMappings: [
          {
            DeviceName: "/dev/xvda",
            Ebs: {
              SnapshotId: c.snapshotId,
              DeleteOnTermination: true,
              VolumeType: c.inputs.volume.type as never,
              VolumeSize: targetSize(c),
              Iops: c.inputs.volume.iops,
              Throughput: c.inputs.volume.throughputMiBps,
            },
          },
        ],
        EnaSupport: ena,
        SriovNetSupport: "simple",
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
    { region: inputs.region, scope: inputs.scope, buildId: conversionBuildId(inputs), timeoutMinutes: inputs.timeoutMinutes, worker: inputs.worker, architecture: "x86_64", what: `converted ${inputs.sourceAmiId}`, kind: "ConvertedHvmAmi" },
    (base) => ({ ...base, inputs }),
    conversionSteps(script, inputs.sanitize),
    log,
  );
  return { id: built.imageId, outs: { ...inputs, ...built, schemaVersion: SCHEMA_VERSION } };
}

/** Tags, the Name tag and the description change in place; the registered AMI name cannot. */
export async function updateConversion(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs): Promise<ConvertedHvmAmiOutputs> {
  const builtAt = await builtImageTag(olds.region, olds.imageId, "ami-factory:built-at");
  const before = imageTags(olds, olds.buildId, olds.imageName, builtAt);
  const after = imageTags(news, olds.buildId, olds.imageName, builtAt);
  await updateBuiltImage(olds.region, olds, before, after, { before: olds.description, after: news.description });
  return { ...olds, ...news, imageId: olds.imageId, snapshotId: olds.snapshotId, imageName: olds.imageName, buildId: olds.buildId, facts: olds.facts, verification: olds.verification };
}

export async function deleteConversion(olds: ConvertedHvmAmiOutputs): Promise<void> {
  await deleteBuiltImage(olds.region, olds);
}

export async function readConversion(id: string, olds: ConvertedHvmAmiOutputs): Promise<{ id?: string; props?: ConvertedHvmAmiOutputs }> {
  return readBuiltImage(olds.region, id, olds);
}
