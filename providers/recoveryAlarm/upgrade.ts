// A RecoveryAlarm's stored state in today's schema (providers/core/schema.ts): schema 1 is today's.
import { upgradeState } from "../core/schema";
import { RECOVERY_ALARM_FIELDS } from "./fields";
import { RecoveryAlarmOutputs, SCHEMA_VERSION } from "./inputs";

export function upgradeRecoveryAlarm(stored: Record<string, unknown>): RecoveryAlarmOutputs {
  return upgradeState<RecoveryAlarmOutputs>("RecoveryAlarm", RECOVERY_ALARM_FIELDS, stored, SCHEMA_VERSION);
}
