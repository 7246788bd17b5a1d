import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf } from "./core/resource";
import { checkRecoveryAlarm, diffRecoveryAlarm, RecoveryAlarmInputs, RecoveryAlarmOutputs } from "./recoveryAlarm/inputs";
import { createRecoveryAlarm, deleteRecoveryAlarm, readRecoveryAlarm, updateRecoveryAlarm } from "./recoveryAlarm/operations";

export interface RecoveryAlarmArgs {
  /** The EBS-backed instance to recover. */
  instanceId: pulumi.Input<string>;
  /** The instance's region. Default: `aws:region`, else AWS_REGION. */
  region?: pulumi.Input<string>;
  /** Consecutive failed periods before recovery. Default: 2. */
  evaluationPeriods?: pulumi.Input<number>;
  /** Seconds per period: 10, 30 or a multiple of 60. Default: 60. */
  period?: pulumi.Input<number>;
  /** Alarm name. Default: `ami-factory-recover-<instanceId>`. */
  alarmName?: pulumi.Input<string>;
  /** SNS topics also notified when the alarm fires. Default: none. */
  notifyTopicArns?: pulumi.Input<pulumi.Input<string>[]>;
  /** Tags for the alarm. Default: none. */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

const OUTPUTS = ["alarmArn", "alarmName", "recoverActionArn", "schemaVersion"] as const;

/** The implementation, loaded in the provider process by the thin provider below. */
export const recoveryAlarmProvider = dynamicProvider<RecoveryAlarmInputs, RecoveryAlarmOutputs>({
  kind: "RecoveryAlarm",
  check: checkRecoveryAlarm,
  diff: diffRecoveryAlarm,
  create: createRecoveryAlarm,
  update: updateRecoveryAlarm,
  delete: deleteRecoveryAlarm,
  read: readRecoveryAlarm,
});

/** What each RecoveryAlarm stores as its provider (a few hundred bytes, see thinProvider). */
const serializedProvider = thinProvider("RecoveryAlarm");

/** A CloudWatch alarm that auto-recovers an EC2 instance when its system status check fails. */
export class RecoveryAlarm extends pulumi.dynamic.Resource {
  declare readonly alarmArn: pulumi.Output<string>;
  declare readonly alarmName: pulumi.Output<string>;
  declare readonly instanceId: pulumi.Output<string>;

  constructor(name: string, args: RecoveryAlarmArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      serializedProvider,
      name,
      { ...outputSlots(OUTPUTS), ...args, region: args.region ?? defaultRegion(), scope: scopeOf(name) },
      opts,
      "ami-factory",
      "RecoveryAlarm",
    );
  }
}
