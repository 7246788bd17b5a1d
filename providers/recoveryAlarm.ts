import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf, suspendStackTraces } from "./core/resource";
import type { ArgsOf } from "./core/fields";
import type { RECOVERY_ALARM_FIELDS } from "./recoveryAlarm/fields";
import { checkRecoveryAlarm, diffRecoveryAlarm, RecoveryAlarmInputs, RecoveryAlarmOutputs } from "./recoveryAlarm/inputs";
import { upgradeRecoveryAlarm } from "./recoveryAlarm/upgrade";
import { createRecoveryAlarm, deleteRecoveryAlarm, readRecoveryAlarm, updateRecoveryAlarm } from "./recoveryAlarm/operations";

/** The args of a RecoveryAlarm: each is documented, with its default, in ./recoveryAlarm/fields.ts. */
export type RecoveryAlarmArgs = ArgsOf<typeof RECOVERY_ALARM_FIELDS>;

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
  upgrade: upgradeRecoveryAlarm,
});

/** What each RecoveryAlarm stores as its provider (a few hundred bytes, see thinProvider). */
const serializedProvider = thinProvider("RecoveryAlarm");

/** A CloudWatch alarm that auto-recovers an EC2 instance when its system status check fails. */
export class RecoveryAlarm extends pulumi.dynamic.Resource {
  declare readonly alarmArn: pulumi.Output<string>;
  declare readonly alarmName: pulumi.Output<string>;
  declare readonly instanceId: pulumi.Output<string>;

  constructor(name: string, args: RecoveryAlarmArgs, opts?: pulumi.CustomResourceOptions) {
    const stacks = suspendStackTraces();
    try {
      super(
        serializedProvider,
        name,
        { ...outputSlots(OUTPUTS), ...args, region: args.region ?? defaultRegion(), scope: scopeOf(name) },
        opts,
        "ami-factory",
        "RecoveryAlarm",
      );
    } catch (e) {
      throw stacks.restack(e);
    } finally {
      stacks.resume();
    }
  }
}
