// SurrogateAmi inputs (normalised, validated), outputs and diff: pure, from ./fields.ts.
import { checkFields, InputsOf, valuesOf } from "../core/fields";
import { Checker, Failure } from "../core/inputs";
import type { BuiltImage } from "../worker/build";
import { diffBuiltImage } from "../worker/inputs";
import { SURROGATE_FIELDS } from "./fields";

export { checkRecipe, recipeArgs, recipeSources, recipeTags, RECIPE_FIELDS, USER_SCRIPT_MAX_BYTES } from "./recipe";
export type { ElRepo, Recipe } from "./recipe";

export type SurrogateAmiInputs = InputsOf<typeof SURROGATE_FIELDS>;

export interface SurrogateAmiOutputs extends SurrogateAmiInputs, BuiltImage {
  schemaVersion: number;
}

export const SCHEMA_VERSION = 1;

export function checkSurrogateAmi(raw: Record<string, unknown>): { inputs?: SurrogateAmiInputs; failures: Failure[] } {
  const c = new Checker();
  checkFields(c, SURROGATE_FIELDS, raw);
  if (c.failures.length) return { failures: c.failures };
  return { failures: [], inputs: valuesOf(SURROGATE_FIELDS, raw) };
}

export function diffSurrogateAmi(olds: SurrogateAmiOutputs, news: SurrogateAmiInputs) {
  return diffBuiltImage(SURROGATE_FIELDS, olds, news);
}
