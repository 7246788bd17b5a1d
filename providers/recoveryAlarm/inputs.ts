// RecoveryAlarm inputs (normalised, validated), outputs and diff: pure.
import { Checker, Failure, sortedUnique } from "../core/inputs";
import type { Tags } from "../core/tags";

export const RECOVERY_ALARM_FIELDS = ["instanceId", "region", "evaluationPeriods", "period", "alarmName", "notifyTopicArns", "tags", "scope"] as const;

export interface RecoveryAlarmInputs {
  instanceId: string;
  region: string;
  evaluationPeriods: number;
  period: number;
  alarmName: string;
  notifyTopicArns: string[];
  tags: Tags;
  scope: string;
}

export interface RecoveryAlarmOutputs extends RecoveryAlarmInputs {
  schemaVersion: number;
  alarmArn: string;
  recoverActionArn: string;
}

export const SCHEMA_VERSION = 1;

/** Inputs whose change makes a new alarm (CloudWatch alarms are keyed by name and region). */
export const REPLACE_FIELDS = ["region", "alarmName"] as const;
export const UPDATE_FIELDS = ["instanceId", "evaluationPeriods", "period", "notifyTopicArns", "tags"] as const;

export function checkRecoveryAlarm(raw: Record<string, unknown>): { inputs?: RecoveryAlarmInputs; failures: Failure[] } {
  const c = new Checker();
  c.knownKeys("", raw, RECOVERY_ALARM_FIELDS);
  c.id("instanceId", raw.instanceId, "instanceId");
  c.id("region", raw.region, "region");
  c.integer("period", raw.period, { min: 10, max: 86400 });
  const period = (raw.period as number | undefined) ?? 60;
  if (typeof raw.period === "number" && ![10, 30].includes(period) && period % 60 !== 0) {
    c.fail("period", `period must be 10, 30 or a multiple of 60 seconds (got ${period})`);
  }
  c.integer("evaluationPeriods", raw.evaluationPeriods, { min: 1, max: 1440 });
  const evaluationPeriods = (raw.evaluationPeriods as number | undefined) ?? 2;
  if (typeof period === "number" && typeof evaluationPeriods === "number" && period * evaluationPeriods > 86400) {
    c.fail("evaluationPeriods", `period × evaluationPeriods is ${period * evaluationPeriods}s: CloudWatch evaluates at most one day (86400s); lower one of them`);
  }
  if (raw.alarmName !== undefined) {
    c.string("alarmName", raw.alarmName, { max: 255 });
    if (typeof raw.alarmName === "string" && !/^[\x20-\x7e]+$/.test(raw.alarmName)) c.fail("alarmName", "alarmName must be printable ASCII");
  }
  const topics = c.idList("notifyTopicArns", raw.notifyTopicArns, "snsTopicArn");
  if (topics.length > 4) c.fail("notifyTopicArns", `CloudWatch allows 5 alarm actions and the recover action is one: give at most 4 topics (got ${topics.length})`);
  c.tags("tags", raw.tags);
  if (c.failures.length) return { failures: c.failures };
  const instanceId = raw.instanceId as string;
  return {
    failures: [],
    inputs: {
      instanceId,
      region: raw.region as string,
      evaluationPeriods,
      period,
      alarmName: (raw.alarmName as string | undefined) ?? `ami-factory-recover-${instanceId}`,
      notifyTopicArns: sortedUnique(topics),
      tags: (raw.tags ?? {}) as Tags,
      scope: typeof raw.scope === "string" ? raw.scope : "",
    },
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function diffRecoveryAlarm(olds: RecoveryAlarmOutputs, news: RecoveryAlarmInputs) {
  const replaces = REPLACE_FIELDS.filter((f) => !same(olds[f], news[f]));
  const changed = UPDATE_FIELDS.filter((f) => !same(olds[f], news[f]));
  return { changes: replaces.length + changed.length > 0, replaces: [...replaces], deleteBeforeReplace: replaces.length > 0 && olds.alarmName === news.alarmName };
}
