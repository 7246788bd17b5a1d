// A SharedAmi's stored state in today's schema (providers/core/schema.ts). Schema 1 written before
// exactName and name existed has neither: they read as unset (copies named as the source, stamped).
import { upgradeState, UpgradeSteps } from "../core/schema";
import { SHARED_AMI_FIELDS } from "./fields";
import { SCHEMA_VERSION, SharedAmiOutputs } from "./inputs";

/** One step per schema version (none yet). */
const STEPS: UpgradeSteps = {};

export function upgradeSharedAmi(stored: Record<string, unknown>): SharedAmiOutputs {
  return upgradeState<SharedAmiOutputs>("SharedAmi", SHARED_AMI_FIELDS, stored, SCHEMA_VERSION, STEPS);
}
