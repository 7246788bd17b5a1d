// SurrogateAmi: an empty volume on a temporary worker gets an OS written by a recipe (Packer's
// amazon-ebssurrogate), then snapshot and RegisterImage; the same worker steps as ConvertedHvmAmi.
import { buildIdFor } from "../core/buildId";
import { buildIdInputs } from "../core/fields";
import type { Step } from "../core/steps";
import { GUEST_SCRIPT_TAG, provenanceTags, Tags } from "../core/tags";
import { TOOL_VERSION } from "../core/version";
import { LINEAGE_TAG } from "../core/retire";
import { factsTag } from "../worker/facts";
import { builtImageTag, consumerFieldsOf, keptOnUpdate, retireOrDeleteBuiltImage, updateForConsumers, launchSteps, readBuiltImage, runWorkerBuild, updateBuiltImage } from "../worker/build";
import { guestCommandStep } from "../worker/command";
import type { WorkerBuild } from "../worker/context";
import type { BundledScript } from "../worker/guestScript";
import { nameFreeStep, registerStep, snapshotStep } from "../worker/image";
import { enaFrom } from "../worker/inputs";
import { attachStep, detachStep, volumesStep } from "../worker/volumes";
import { verificationTags, verifyStep } from "../worker/verify";
import { SURROGATE_FIELDS } from "./fields";
import { SCHEMA_VERSION, SurrogateAmiInputs, SurrogateAmiOutputs } from "./inputs";
import { recipeArgs, recipeSources, recipeTags, splitRecipeArgs } from "./recipe";
import { buildSecretStep, SECRET_PARAMETERS_ARG } from "../worker/buildSecret";

interface SurrogateBuild extends WorkerBuild {
  inputs: SurrogateAmiInputs;
}

/** From the scope and the fields that make the image (not the guest script's hash: a tool upgrade is not a new build). */
export function surrogateBuildId(inputs: SurrogateAmiInputs): string {
  return buildIdFor(inputs.scope, buildIdInputs(SURROGATE_FIELDS, inputs));
}

function imageTags(inputs: SurrogateAmiInputs, buildId: string, builtAt: string): Tags {
  return provenanceTags(inputs.tags, buildId, {
    Name: inputs.name,
    ...recipeTags(inputs.recipe),
    [LINEAGE_TAG]: inputs.scope,
    "ami-factory:tool-version": TOOL_VERSION,
    "ami-factory:built-at": builtAt,
    "ami-factory:kind": "SurrogateAmi",
  });
}

/**
 * The arguments of scripts/guest/surrogate.sh for these inputs, as SendCommand carries them: the
 * recipe's URLs and script are read by the guest from the build's secret parameters
 * (worker/buildSecret.ts), named by --secret-args.
 */
export function surrogateArgs(inputs: SurrogateAmiInputs): string[] {
  const { plain, secret } = splitRecipeArgs(recipeArgs(inputs.recipe));
  return [
    "--target", "{volume:target}",
    "--boot-mode", inputs.bootMode,
    "--arch", inputs.architecture,
    ...(inputs.sanitize ? ["--sanitize"] : []),
    ...plain,
    ...(secret.length ? ["--secret-args", SECRET_PARAMETERS_ARG, "--secret-region", inputs.region] : []),
  ];
}

/** The arguments the guest reads from the build's secret parameters. */
export function surrogateSecretArgs(inputs: SurrogateAmiInputs): string[] {
  return splitRecipeArgs(recipeArgs(inputs.recipe)).secret;
}

function surrogateSteps(inputs: SurrogateAmiInputs, script: BundledScript): Step<SurrogateBuild>[] {
  return [
    {
      name: "prepare",
      async run(b) {
        b.outputTags = {
          ...imageTags(b.inputs, b.buildId, new Date().toISOString()),
          [GUEST_SCRIPT_TAG]: b.guestScriptSha256,
          ...verificationTags(b.inputs.verify, b.temporaryTags),
        };
      },
    },
    nameFreeStep(),
    // Before the worker's role, whose policy names the parameters.
    buildSecretStep<SurrogateBuild>((b) => surrogateSecretArgs(b.inputs)),
    ...launchSteps(),
    volumesStep<SurrogateBuild>(["target"], (b) => [
      { role: "target", sizeGiB: b.inputs.rootSizeGiB, spec: b.inputs.volume, encrypted: b.inputs.encrypted ?? false, kmsKeyId: b.inputs.kmsKeyId },
    ]),
    attachStep(["target"]),
    guestCommandStep({ name: script.name, script: script.content, args: surrogateArgs(inputs) }),
    detachStep(["target"]),
    snapshotStep("target", `ami-factory ${inputs.recipe.kind} build for ${inputs.name}`),
    registerStep((b) => {
      const s = b as SurrogateBuild;
      const facts = factsTag(s.facts);
      if (facts) s.outputTags = { ...s.outputTags, "ami-factory:facts": facts };
      return {
        Name: s.imageName,
        Description: s.inputs.description ?? `${s.inputs.recipe.kind} image built from nothing by ami-factory`,
        Architecture: s.inputs.architecture,
        VirtualizationType: "hvm",
        RootDeviceName: "/dev/xvda",
        BlockDeviceMappings: [
          {
            DeviceName: "/dev/xvda",
            Ebs: {
              SnapshotId: s.snapshotId,
              DeleteOnTermination: true,
              VolumeType: s.inputs.volume.type as never,
              VolumeSize: s.inputs.rootSizeGiB,
              Iops: s.inputs.volume.iops,
              Throughput: s.inputs.volume.throughputMiBps,
            },
          },
        ],
        EnaSupport: enaFrom(s.inputs.enaSupport, s.facts, s.log),
        SriovNetSupport: "simple",
        BootMode: s.inputs.bootMode,
        ImdsSupport: s.inputs.imdsSupport === "v2.0" ? "v2.0" : undefined,
      };
    }),
    verifyStep((b) => (b as SurrogateBuild).inputs.verify),
  ];
}

export async function createSurrogate(inputs: SurrogateAmiInputs, script: BundledScript, log: (l: string) => void): Promise<{ id: string; outs: SurrogateAmiOutputs }> {
  const built = await runWorkerBuild<SurrogateBuild>(
    {
      region: inputs.region,
      scope: inputs.scope,
      buildId: surrogateBuildId(inputs),
      timeoutMinutes: inputs.timeoutMinutes,
      worker: inputs.worker,
      architecture: inputs.architecture,
      givenName: inputs.name,
      extraEgressPorts: recipeSources(inputs.recipe).some((u) => u.startsWith("http://")) ? [80] : [],
      readObjects: recipeSources(inputs.recipe).flatMap((u) => {
        const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(u);
        return m ? [{ bucket: m[1], key: m[2] }] : [];
      }),
      exactName: inputs.exactName,
      protection: inputs.deregistrationProtection,
      publish: inputs.publish,
      workerRootEncryption: inputs.encrypted ? { kmsKeyId: inputs.kmsKeyId } : undefined,
      guestScriptSha256: inputs.guestScriptSha256,
      what: `built ${inputs.name} (${inputs.recipe.kind})`,
      kind: "SurrogateAmi",
      factsSchema: script.factsSchema,
    },
    (base) => ({ ...base, inputs }),
    surrogateSteps(inputs, script),
    log,
  );
  return { id: built.imageId, outs: { ...inputs, ...built, schemaVersion: SCHEMA_VERSION } };
}

export async function updateSurrogate(olds: SurrogateAmiOutputs, news: SurrogateAmiInputs, log: (l: string) => void): Promise<SurrogateAmiOutputs> {
  const builtAt = await builtImageTag(olds.region, olds.imageId, "ami-factory:built-at");
  await updateBuiltImage(olds.region, olds, imageTags(olds, olds.buildId, builtAt), imageTags(news, olds.buildId, builtAt), { before: olds.description, after: news.description });
  await updateForConsumers(olds.region, olds, olds, news, log);
  return { ...olds, ...news, ...consumerFieldsOf(news), ...keptOnUpdate(olds) };
}

export async function deleteSurrogate(olds: SurrogateAmiOutputs, log: (l: string) => void): Promise<void> {
  await retireOrDeleteBuiltImage(olds.region, olds, false, log);
}

export async function readSurrogate(id: string, olds: SurrogateAmiOutputs): Promise<{ id?: string; props?: SurrogateAmiOutputs }> {
  return readBuiltImage(olds.region, id, olds);
}
