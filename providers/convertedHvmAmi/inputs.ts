// ConvertedHvmAmi inputs (normalised, validated), outputs and diff: pure.
import { Checker, Failure } from "../core/inputs";
import type { BuiltImage } from "../worker/build";
import { BUILD_FIELDS, BuildInputs, checkBuildInputs, diffBuiltImage } from "../worker/inputs";

export const CONVERTED_FIELDS = ["sourceAmiId", "targetSizeGiB", ...BUILD_FIELDS, "nitro"] as const;

export interface ConvertedHvmAmiInputs extends BuildInputs {
  sourceAmiId: string;
  targetSizeGiB?: number;
  /** false: leave the image's initramfs as it is (no NVMe/ENA drivers added). Default true; kept only when false, so that true and unset are the same image. */
  nitro?: false;
}

export interface ConvertedHvmAmiOutputs extends ConvertedHvmAmiInputs, BuiltImage {
  schemaVersion: number;
  /** The root can be mounted from NVMe at boot and ENA is there (the guest's facts). Absent in states of schema 1. */
  nitroReady?: boolean;
}

export const SCHEMA_VERSION = 2;

/** Inputs whose change changes the image itself, and the explicit rebuild trigger. Also the build id's inputs. */
export const REPLACE_FIELDS = ["sourceAmiId", "region", "targetSizeGiB", "volume", "encrypted", "kmsKeyId", "enaSupport", "sanitize", "nitro", "rebuildTrigger"] as const;

export function checkConvertedHvmAmi(raw: Record<string, unknown>): { inputs?: ConvertedHvmAmiInputs; failures: Failure[] } {
  const c = new Checker();
  c.knownKeys("", raw, CONVERTED_FIELDS);
  c.id("sourceAmiId", raw.sourceAmiId, "amiId");
  c.integer("targetSizeGiB", raw.targetSizeGiB, { min: 1, max: 16384 });
  c.boolean("nitro", raw.nitro);
  const build = checkBuildInputs(c, raw);
  if (c.failures.length) return { failures: c.failures };
  return { failures: [], inputs: { ...build, sourceAmiId: raw.sourceAmiId as string, targetSizeGiB: raw.targetSizeGiB as number | undefined, ...(raw.nitro === false ? { nitro: false } : {}) } };
}

export function diffConvertedHvmAmi(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs) {
  return diffBuiltImage(olds, news, REPLACE_FIELDS);
}
