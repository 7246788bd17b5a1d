// A SurrogateAmi's stored state in today's schema (providers/core/schema.ts).
import { upgradeState } from "../core/schema";
import { SURROGATE_FIELDS } from "./fields";
import { SCHEMA_VERSION, SurrogateAmiOutputs } from "./inputs";

export function upgradeSurrogate(stored: Record<string, unknown>): SurrogateAmiOutputs {
  const state = upgradeState<SurrogateAmiOutputs>("SurrogateAmi", SURROGATE_FIELDS, stored, SCHEMA_VERSION);
  // Schema 1 written before build stamps registered exactly the given name, and kept no baseName.
  return { ...state, baseName: state.baseName ?? state.imageName };
}
