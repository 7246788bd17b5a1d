// ConvertedHvmAmi inputs (normalised, validated), outputs and diff: pure, from ./fields.ts.
import { checkFields, InputsOf, valuesOf } from "../core/fields";
import { Checker, Failure } from "../core/inputs";
import type { BuiltImage } from "../worker/build";
import { diffBuiltImage } from "../worker/inputs";
import { CONVERTED_FIELDS } from "./fields";

export type ConvertedHvmAmiInputs = InputsOf<typeof CONVERTED_FIELDS>;
/** How the root is converted: in place on a volume of the source snapshot, or copied to a new volume (fields.ts `method`). */
export type Method = ConvertedHvmAmiInputs["method"];

export interface ConvertedHvmAmiOutputs extends ConvertedHvmAmiInputs, BuiltImage {
  schemaVersion: number;
  /** The root can be mounted from NVMe at boot and ENA is there (the guest's facts). Absent in states of schema 1. */
  nitroReady?: boolean;
  /** Absent in states of schema 1 and 2 (always copied) and on an adopted image built before schema 3. */
  conversion?: Conversion;
}

/** What the build did: "in-place", or "copy" and why (a guest refusal code, in-place-failed, size-change, encryption-change, requested). */
export interface Conversion {
  method: "in-place" | "copy";
  reason: string;
}

export const SCHEMA_VERSION = 3;

export function checkConvertedHvmAmi(raw: Record<string, unknown>): { inputs?: ConvertedHvmAmiInputs; failures: Failure[] } {
  const c = new Checker();
  checkFields(c, CONVERTED_FIELDS, raw);
  checkInPlace(c, raw);
  if (c.failures.length) return { failures: c.failures };
  return { failures: [], inputs: valuesOf(CONVERTED_FIELDS, raw) };
}

/**
 * What "in-place" cannot do: the image's root is then a volume of the source snapshot, so it keeps
 * that snapshot's size and KMS key. (An encryption the source snapshot does not have is only known
 * from the snapshot: the build's first step refuses it, before anything is made.)
 */
function checkInPlace(c: Checker, raw: Record<string, unknown>): void {
  if (raw.method !== "in-place") return;
  const fix = `remove it, or set method: "auto" (in place when possible, else copied) or "copy"`;
  if (raw.targetSizeGiB !== undefined) c.fail("targetSizeGiB", `targetSizeGiB is set with method "in-place": converted in place, the root keeps the source snapshot's size; ${fix}`);
  if (raw.kmsKeyId !== undefined) c.fail("kmsKeyId", `kmsKeyId is set with method "in-place": converted in place, the root keeps the source snapshot's encryption and key; ${fix}`);
}

export function diffConvertedHvmAmi(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs) {
  return diffBuiltImage(CONVERTED_FIELDS, olds, news);
}
