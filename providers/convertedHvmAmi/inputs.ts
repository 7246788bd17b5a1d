// ConvertedHvmAmi inputs (normalised, validated), outputs and diff: pure, from ./fields.ts.
import { checkFields, InputsOf, valuesOf } from "../core/fields";
import { Checker, Failure } from "../core/inputs";
import type { BuiltImage } from "../worker/build";
import { diffBuiltImage } from "../worker/inputs";
import { CONVERTED_FIELDS } from "./fields";

export type ConvertedHvmAmiInputs = InputsOf<typeof CONVERTED_FIELDS>;

export interface ConvertedHvmAmiOutputs extends ConvertedHvmAmiInputs, BuiltImage {
  schemaVersion: number;
  /** The root can be mounted from NVMe at boot and ENA is there (the guest's facts). Absent in states of schema 1. */
  nitroReady?: boolean;
}

export const SCHEMA_VERSION = 2;

export function checkConvertedHvmAmi(raw: Record<string, unknown>): { inputs?: ConvertedHvmAmiInputs; failures: Failure[] } {
  const c = new Checker();
  checkFields(c, CONVERTED_FIELDS, raw);
  if (c.failures.length) return { failures: c.failures };
  return { failures: [], inputs: valuesOf(CONVERTED_FIELDS, raw) };
}

export function diffConvertedHvmAmi(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs) {
  return diffBuiltImage(CONVERTED_FIELDS, olds, news);
}
