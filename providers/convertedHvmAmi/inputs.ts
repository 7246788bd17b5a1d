// ConvertedHvmAmi inputs (normalised, validated), outputs and diff: pure.
import { Checker, Failure } from "../core/inputs";
import type { BuiltImage } from "../worker/build";
import { BUILD_FIELDS, BuildInputs, checkBuildInputs, diffBuiltImage } from "../worker/inputs";

export const CONVERTED_FIELDS = ["sourceAmiId", "targetSizeGiB", ...BUILD_FIELDS] as const;

export interface ConvertedHvmAmiInputs extends BuildInputs {
  sourceAmiId: string;
  targetSizeGiB?: number;
}

export interface ConvertedHvmAmiOutputs extends ConvertedHvmAmiInputs, BuiltImage {
  schemaVersion: number;
}

export const SCHEMA_VERSION = 1;

/** Inputs whose change changes the image itself, and the explicit rebuild trigger. Also the build id's inputs. */
export const REPLACE_FIELDS = ["sourceAmiId", "region", "targetSizeGiB", "volume", "encrypted", "kmsKeyId", "enaSupport", "sanitize", "rebuildTrigger"] as const;

export function checkConvertedHvmAmi(raw: Record<string, unknown>): { inputs?: ConvertedHvmAmiInputs; failures: Failure[] } {
  const c = new Checker();
  c.knownKeys("", raw, CONVERTED_FIELDS);
  c.id("sourceAmiId", raw.sourceAmiId, "amiId");
  c.integer("targetSizeGiB", raw.targetSizeGiB, { min: 1, max: 16384 });
  const build = checkBuildInputs(c, raw);
  if (c.failures.length) return { failures: c.failures };
  return { failures: [], inputs: { ...build, sourceAmiId: raw.sourceAmiId as string, targetSizeGiB: raw.targetSizeGiB as number | undefined } };
}

export function diffConvertedHvmAmi(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs) {
  return diffBuiltImage(olds, news, REPLACE_FIELDS);
}
