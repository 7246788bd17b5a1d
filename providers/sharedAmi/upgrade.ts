// A SharedAmi's stored state in today's schema (providers/core/schema.ts). Schema 1 written before
// exactName and name existed has neither: they read as unset (copies named as the source, stamped).
import { upgradeState, UpgradeSteps } from "../core/schema";
import { SHARED_AMI_FIELDS } from "./fields";
import { SCHEMA_VERSION } from "./inputs";
import type { StoredSharedAmi } from "./state";

/** One step per schema version. */
const STEPS: UpgradeSteps = {
  // 1 stored copiedRegions; from 2 it is derived from imageIds (./state.ts fromState).
  1: ({ copiedRegions: _derived, ...s }) => s,
};

/** The stored state in today's stored shape (schema 2: copiedRegions derived on use, ./state.ts). */
export function upgradeSharedAmi(stored: Record<string, unknown>): StoredSharedAmi {
  return upgradeState<StoredSharedAmi>("SharedAmi", SHARED_AMI_FIELDS, stored, SCHEMA_VERSION, STEPS);
}
