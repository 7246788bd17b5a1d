// RecoveryAlarm inputs (normalised, validated), outputs and diff: pure, from ./fields.ts.
import { changedFields, checkFields, InputsOf, valuesOf } from "../core/fields";
import { Checker, Failure } from "../core/inputs";
import { RECOVERY_ALARM_FIELDS } from "./fields";

export type RecoveryAlarmInputs = InputsOf<typeof RECOVERY_ALARM_FIELDS>;

export interface RecoveryAlarmOutputs extends RecoveryAlarmInputs {
  schemaVersion: number;
  alarmArn: string;
  recoverActionArn: string;
}

export const SCHEMA_VERSION = 1;

export function checkRecoveryAlarm(raw: Record<string, unknown>): { inputs?: RecoveryAlarmInputs; failures: Failure[] } {
  const c = new Checker();
  checkFields(c, RECOVERY_ALARM_FIELDS, raw);
  if (c.failures.length) return { failures: c.failures };
  return { failures: [], inputs: valuesOf(RECOVERY_ALARM_FIELDS, raw) };
}

export function diffRecoveryAlarm(olds: RecoveryAlarmOutputs, news: RecoveryAlarmInputs) {
  const replaces = changedFields(RECOVERY_ALARM_FIELDS, "replace", olds, news);
  const changed = changedFields(RECOVERY_ALARM_FIELDS, "in-place", olds, news);
  return { changes: replaces.length + changed.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 && olds.alarmName === news.alarmName };
}
