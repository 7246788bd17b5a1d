// A ConvertedHvmAmi's stored state in today's schema (providers/core/schema.ts).
import { upgradeState } from "../core/schema";
import { CONVERTED_FIELDS } from "./fields";
import { ConvertedHvmAmiOutputs, SCHEMA_VERSION } from "./inputs";

export function upgradeConversion(stored: Record<string, unknown>): ConvertedHvmAmiOutputs {
  return upgradeState<ConvertedHvmAmiOutputs>("ConvertedHvmAmi", CONVERTED_FIELDS, stored, SCHEMA_VERSION, {
    // Schema 1 (release ab5b1f3) registered exactly the given name: that name is the Name tag's.
    // It has no nitroReady (the facts of then did not say it) and no verification (none was made).
    1: (s) => ({ ...s, baseName: s.baseName ?? s.imageName }),
    // Schema 2 always copied and did not record it: no conversion output (ConvertedHvmAmiOutputs.conversion).
    2: (s) => s,
  });
}
