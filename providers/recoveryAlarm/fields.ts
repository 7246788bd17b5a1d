// RecoveryAlarm's inputs, one row each (providers/core/fields.ts derives the rest).
import { field } from "../core/fields";

export const RECOVERY_ALARM_FIELDS = {
  /** The EBS-backed instance to recover. */
  instanceId: field.id<string, string, "in-place">("instanceId", { change: "in-place", secret: false }),
  /** The instance's region. Default: `aws:region`, else AWS_REGION. CloudWatch alarms are keyed by name and region: a change makes a new alarm. */
  region: field.id<string | undefined, string, "replace">("region", { change: "replace", secret: false }),
  /** Consecutive failed periods before recovery. Default: 2. */
  evaluationPeriods: field.integer<number, "in-place">({
    change: "in-place",
    min: 1,
    max: 1440,
    fallback: 2,
    check: (c, p, v, raw) => {
      const period = raw.period ?? 60;
      const periods = v ?? 2;
      if (typeof period === "number" && typeof periods === "number" && period * periods > 86400) {
        c.fail(p, `period × evaluationPeriods is ${period * periods}s: CloudWatch evaluates at most one day (86400s); lower one of them`);
      }
    },
  }),
  /** Seconds per period: 10, 30 or a multiple of 60. Default: 60. */
  period: field.integer<number, "in-place">({
    change: "in-place",
    min: 10,
    max: 86400,
    fallback: 60,
    check: (c, p, v) => {
      if (typeof v === "number" && ![10, 30].includes(v) && v % 60 !== 0) c.fail(p, `period must be 10, 30 or a multiple of 60 seconds (got ${v})`);
    },
  }),
  /** Alarm name. Default: `ami-factory-recover-<instanceId>`. A change makes a new alarm. */
  alarmName: field.of<string | undefined, string, "replace">({
    change: "replace",
    secret: false,
    check: (c, p, v) => {
      if (v === undefined) return;
      c.string(p, v, { max: 255 });
      if (typeof v === "string" && !/^[\x20-\x7e]+$/.test(v)) c.fail(p, "alarmName must be printable ASCII");
    },
    value: (v, raw) => (v as string | undefined) ?? `ami-factory-recover-${raw.instanceId}`,
  }),
  /** SNS topics also notified when the alarm fires. Default: none. */
  notifyTopicArns: field.idList<"in-place">("snsTopicArn", {
    change: "in-place",
    check: (c, p, v) => {
      if (Array.isArray(v) && v.length > 4) c.fail(p, `CloudWatch allows 5 alarm actions and the recover action is one: give at most 4 topics (got ${v.length})`);
    },
  }),
  /** Tags for the alarm. Default: none. */
  tags: field.tags({ change: "in-place" }),
  /** project/stack/resource name (not user-facing). */
  scope: field.internal((v) => (typeof v === "string" ? v : "")),
};
