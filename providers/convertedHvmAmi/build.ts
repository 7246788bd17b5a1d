// ConvertedHvmAmi: the conversion as a list of steps on a temporary worker, and the update,
// delete and read of the image it made.
import { apiCalls, ec2Client } from "../core/clients";
import { buildIdFor } from "../core/buildId";
import { deleteImageAndSnapshots, describeImage, retag, snapshotIdsOf } from "../core/images";
import { runSteps, Step } from "../core/steps";
import { changedTags, provenanceTags, removedTagKeys, Tags, temporaryTags } from "../core/tags";
import { TOOL_VERSION } from "../core/version";
import { guestCommandStep } from "../worker/command";
import type { WorkerBuild } from "../worker/context";
import { registerStep, snapshotStep } from "../worker/image";
import { instanceProfileStep } from "../worker/iam";
import { launchWorkerStep, workerImageStep } from "../worker/instance";
import { networkStep, securityGroupStep } from "../worker/network";
import { attachStep, detachStep, volumesStep } from "../worker/volumes";
import type { BundledScript } from "../worker/guestScript";
import { ConvertedHvmAmiInputs, ConvertedHvmAmiOutputs, SCHEMA_VERSION } from "./inputs";
import { inspectSource, SourceImage } from "./source";
import { deleteLeftovers, findLeftovers } from "../core/sweep";
import { factsTag, findBuiltImage } from "../worker/adopt";

interface ConversionBuild extends WorkerBuild {
  inputs: ConvertedHvmAmiInputs;
  source?: SourceImage;
  imageName: string;
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
      b.outputTags = imageTags(b.inputs, b.buildId, b.imageName, new Date().toISOString());
    },
  };
}

function conversionSteps(script: BundledScript, sanitize: boolean): Step<ConversionBuild>[] {
  return [
    sourceStep(),
    networkStep(),
    securityGroupStep(),
    instanceProfileStep(),
    workerImageStep(),
    launchWorkerStep(),
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
      const ena = c.inputs.enaSupport === "auto" ? c.facts?.enaDriver === true : c.inputs.enaSupport;
      if (ena && c.facts?.enaDriver === false) c.log("warning: enaSupport is true but the guest found no ENA driver in the image: instances that need ENA will not get a network");
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
  ];
}

function targetSize(b: ConversionBuild): number {
  return b.inputs.targetSizeGiB ?? b.source!.rootSizeGiB + 1;
}

export async function createConversion(inputs: ConvertedHvmAmiInputs, script: BundledScript, log: (l: string) => void): Promise<{ id: string; outs: ConvertedHvmAmiOutputs }> {
  const buildId = conversionBuildId(inputs);
  const started = Date.now();
  const callsBefore = apiCalls.count;
  // A create re-run after a crash adopts the image its first run finished.
  const adopted = await findBuiltImage(inputs.region, buildId);
  if (adopted) {
    log(`adopting ${adopted.ImageId}, finished earlier by build ${buildId}`);
    const tagOf = (k: string) => adopted.Tags?.find((t) => t.Key === k)?.Value;
    const facts = JSON.parse(tagOf("ami-factory:facts") ?? "{}") as Record<string, unknown>;
    return {
      id: adopted.ImageId!,
      outs: { ...inputs, schemaVersion: SCHEMA_VERSION, imageId: adopted.ImageId!, snapshotId: snapshotIdsOf(adopted)[0], imageName: adopted.Name!, buildId, facts },
    };
  }
  // ... or the leftovers of a run that died, before starting over.
  const leftovers = await findLeftovers(inputs.region, { buildId });
  if (leftovers.length) {
    log(`cleaning ${leftovers.length} leftovers of an earlier run of build ${buildId}: ${leftovers.map((l) => `${l.kind} ${l.id}`).join(", ")}`);
    const failures = await deleteLeftovers(leftovers, log);
    if (failures.length) throw new Error(`could not clean the leftovers of an earlier run of build ${buildId}: ${failures.join("; ")}`);
  }
  const expires = new Date(started + (inputs.timeoutMinutes + 60) * 60_000);
  const build: ConversionBuild = {
    inputs,
    region: inputs.region,
    buildId,
    architecture: "x86_64",
    worker: inputs.worker,
    temporaryTags: temporaryTags(buildId, inputs.scope, expires, `ami-factory ${buildId}`),
    outputTags: {},
    deadline: started + inputs.timeoutMinutes * 60_000,
    log,
    volumes: {},
    attachments: {},
    imageName: "",
  };
  await runSteps(conversionSteps(script, inputs.sanitize), build, { log });
  log(`converted ${inputs.sourceAmiId} to ${build.imageId} in ${Math.round((Date.now() - started) / 1000)}s with ${apiCalls.count - callsBefore} AWS API calls`);
  return {
    id: build.imageId!,
    outs: {
      ...inputs,
      schemaVersion: SCHEMA_VERSION,
      imageId: build.imageId!,
      snapshotId: build.snapshotId!,
      imageName: build.imageName,
      buildId,
      facts: build.facts ?? {},
    },
  };
}

/** Tags, the Name tag and the description change in place; the registered AMI name cannot. */
export async function updateConversion(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs): Promise<ConvertedHvmAmiOutputs> {
  const { ModifyImageAttributeCommand } = await import("@aws-sdk/client-ec2");
  const ec2 = await ec2Client(olds.region);
  const builtAt = (await describeImage(ec2, olds.imageId))?.Tags?.find((t) => t.Key === "ami-factory:built-at")?.Value ?? "";
  const before = imageTags(olds, olds.buildId, olds.imageName, builtAt);
  const after = imageTags(news, olds.buildId, olds.imageName, builtAt);
  await retag(ec2, [olds.imageId, olds.snapshotId], changedTags(before, after), removedTagKeys(before, after));
  if ((olds.description ?? "") !== (news.description ?? "") && news.description !== undefined) {
    await ec2.send(new ModifyImageAttributeCommand({ ImageId: olds.imageId, Description: { Value: news.description } }));
  }
  return { ...olds, ...news, imageId: olds.imageId, snapshotId: olds.snapshotId, imageName: olds.imageName, buildId: olds.buildId, facts: olds.facts };
}

export async function deleteConversion(olds: ConvertedHvmAmiOutputs): Promise<void> {
  await deleteImageAndSnapshots(olds.region, olds.imageId, olds.snapshotId ? [olds.snapshotId] : []);
}

export async function readConversion(id: string, olds: ConvertedHvmAmiOutputs): Promise<{ id?: string; props?: ConvertedHvmAmiOutputs }> {
  const image = await describeImage(await ec2Client(olds.region), id);
  return image ? { id, props: { ...olds, snapshotId: snapshotIdsOf(image)[0] ?? olds.snapshotId } } : {};
}
