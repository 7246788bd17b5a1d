// ConvertedHvmAmi inputs (normalised, validated), outputs and diff: pure.
import { Checker, Failure, isUnknown } from "../core/inputs";
import type { BuiltImage } from "../worker/build";
import { BUILD_FIELDS, BuildInputs, checkBuildInputs, diffBuiltImage } from "../worker/inputs";

export const CONVERTED_FIELDS = ["sourceAmiId", "targetSizeGiB", ...BUILD_FIELDS, "nitro", "method"] as const;

/** How the root is converted (README "Converting PV images"): in place on a volume of the source snapshot, or copied to a new volume. */
export const METHODS = ["auto", "in-place", "copy"] as const;
export type Method = (typeof METHODS)[number];

export interface ConvertedHvmAmiInputs extends BuildInputs {
  sourceAmiId: string;
  targetSizeGiB?: number;
  /** false: leave the image's initramfs as it is (no NVMe/ENA drivers added). Default true; kept only when false, so that true and unset are the same image. */
  nitro?: false;
  /** Default "auto": in place where the layout allows it, else copied. Neither a replace field nor part of the build id. */
  method: Method;
}

/** What the build did: "in-place", or "copy" and why (a guest refusal code, size-change, encryption-change, requested). */
export interface Conversion {
  method: "in-place" | "copy";
  reason: string;
}

export interface ConvertedHvmAmiOutputs extends ConvertedHvmAmiInputs, BuiltImage {
  schemaVersion: number;
  /** The root can be mounted from NVMe at boot and ENA is there (the guest's facts). Absent in states of schema 1. */
  nitroReady?: boolean;
  /** Absent in states of schema 1 and 2 (always copied) and on an adopted image built before schema 3. */
  conversion?: Conversion;
}

export const SCHEMA_VERSION = 3;

/** Inputs whose change changes the image itself, and the explicit rebuild trigger. Also the build id's inputs. */
export const REPLACE_FIELDS = ["sourceAmiId", "region", "targetSizeGiB", "volume", "encrypted", "kmsKeyId", "enaSupport", "sanitize", "nitro", "rebuildTrigger"] as const;

export function checkConvertedHvmAmi(raw: Record<string, unknown>): { inputs?: ConvertedHvmAmiInputs; failures: Failure[] } {
  const c = new Checker();
  c.knownKeys("", raw, CONVERTED_FIELDS);
  c.id("sourceAmiId", raw.sourceAmiId, "amiId");
  c.integer("targetSizeGiB", raw.targetSizeGiB, { min: 1, max: 16384 });
  c.boolean("nitro", raw.nitro);
  checkMethod(c, raw);
  const build = checkBuildInputs(c, raw);
  if (c.failures.length) return { failures: c.failures };
  const method = (raw.method as Method | undefined) ?? "auto";
  return { failures: [], inputs: { ...build, sourceAmiId: raw.sourceAmiId as string, targetSizeGiB: raw.targetSizeGiB as number | undefined, ...(raw.nitro === false ? { nitro: false } : {}), method } };
}

/**
 * `method`, and what "in-place" cannot do: the image's root is then a volume of the source
 * snapshot, so it keeps that snapshot's size and KMS key. (An encryption the source snapshot does
 * not have is only known from the snapshot: the build's first step refuses it, before anything is made.)
 */
function checkMethod(c: Checker, raw: Record<string, unknown>): void {
  if (raw.method === undefined || isUnknown(raw.method)) return;
  if (!METHODS.includes(raw.method as Method)) return c.fail("method", `method must be one of ${METHODS.map((m) => JSON.stringify(m)).join(", ")} (got ${JSON.stringify(raw.method)})`);
  if (raw.method !== "in-place") return;
  const fix = `remove it, or set method: "auto" (in place when possible, else copied) or "copy"`;
  if (raw.targetSizeGiB !== undefined) c.fail("targetSizeGiB", `targetSizeGiB is set with method "in-place": converted in place, the root keeps the source snapshot's size; ${fix}`);
  if (raw.kmsKeyId !== undefined) c.fail("kmsKeyId", `kmsKeyId is set with method "in-place": converted in place, the root keeps the source snapshot's encryption and key; ${fix}`);
}

export function diffConvertedHvmAmi(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs) {
  const diff = diffBuiltImage(olds, news, REPLACE_FIELDS);
  // How an image was converted does not make another image: a new method only updates the state.
  return (olds.method ?? "auto") !== news.method ? { ...diff, changes: true } : diff;
}
