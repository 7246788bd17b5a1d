// RecoveryAlarm against EC2 (the instance check) and CloudWatch (the alarm).
import { cloudWatchClient, ec2Client, partitionOf, cloudWatchSdk, ec2Sdk } from "../core/clients";
import { awsTags, MANAGED_BY_TAG, removedTagKeys, Tags } from "../core/tags";
import { errorName } from "../core/wait";
import { RecoveryAlarmInputs, RecoveryAlarmOutputs, SCHEMA_VERSION } from "./inputs";

export function recoverActionArn(region: string): string {
  return `arn:${partitionOf(region)}:automate:${region}:ec2:recover`;
}

/** Recovery works only for an existing, EBS-backed instance: say so before the alarm exists. */
export async function checkInstanceRecoverable(region: string, instanceId: string): Promise<void> {
  const { DescribeInstancesCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  let instance;
  try {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    instance = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
  } catch (e) {
    if (errorName(e) !== "InvalidInstanceID.NotFound" && errorName(e) !== "InvalidInstanceID.Malformed") throw e;
  }
  if (!instance || instance.State?.Name === "terminated") {
    throw new Error(`instanceId ${instanceId} does not exist in ${region}${instance ? " (terminated)" : ""}: check the id and region`);
  }
  if (instance.RootDeviceType === "instance-store") {
    throw new Error(`instanceId ${instanceId} has an instance-store root volume: EC2 auto-recovery works only for EBS-backed instances; relaunch it from an EBS-backed AMI or drop this alarm`);
  }
}

function alarmTags(inputs: RecoveryAlarmInputs): Tags {
  return { ...inputs.tags, [MANAGED_BY_TAG]: "ami-factory" };
}

async function putAlarm(inputs: RecoveryAlarmInputs): Promise<RecoveryAlarmOutputs> {
  const { PutMetricAlarmCommand, DescribeAlarmsCommand } = cloudWatchSdk();
  const cw = await cloudWatchClient(inputs.region);
  const recover = recoverActionArn(inputs.region);
  await cw.send(
    new PutMetricAlarmCommand({
      AlarmName: inputs.alarmName,
      AlarmDescription: `Recover ${inputs.instanceId} when the EC2 system status check fails (managed by ami-factory)`,
      Namespace: "AWS/EC2",
      MetricName: "StatusCheckFailed_System",
      Dimensions: [{ Name: "InstanceId", Value: inputs.instanceId }],
      Statistic: "Maximum",
      Period: inputs.period,
      EvaluationPeriods: inputs.evaluationPeriods,
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      TreatMissingData: "missing",
      ActionsEnabled: true,
      AlarmActions: [recover, ...inputs.notifyTopicArns],
      Tags: awsTags(alarmTags(inputs)),
    }),
  );
  const out = await cw.send(new DescribeAlarmsCommand({ AlarmNames: [inputs.alarmName], AlarmTypes: ["MetricAlarm"] }));
  const alarm = out.MetricAlarms?.[0];
  if (!alarm?.AlarmArn) throw new Error(`alarm ${inputs.alarmName} was not found in ${inputs.region} right after PutMetricAlarm`);
  return { ...inputs, schemaVersion: SCHEMA_VERSION, alarmArn: alarm.AlarmArn, recoverActionArn: recover };
}

export async function createRecoveryAlarm(inputs: RecoveryAlarmInputs): Promise<{ id: string; outs: RecoveryAlarmOutputs }> {
  const { DescribeAlarmsCommand } = cloudWatchSdk();
  await checkInstanceRecoverable(inputs.region, inputs.instanceId);
  const existing = await (await cloudWatchClient(inputs.region)).send(new DescribeAlarmsCommand({ AlarmNames: [inputs.alarmName] }));
  if (existing.MetricAlarms?.length || existing.CompositeAlarms?.length) {
    throw new Error(`an alarm named ${inputs.alarmName} already exists in ${inputs.region}: give alarmName another value, or import it`);
  }
  const outs = await putAlarm(inputs);
  return { id: outs.alarmArn, outs };
}

export async function updateRecoveryAlarm(olds: RecoveryAlarmOutputs, news: RecoveryAlarmInputs): Promise<RecoveryAlarmOutputs> {
  if (olds.instanceId !== news.instanceId) await checkInstanceRecoverable(news.region, news.instanceId);
  const outs = await putAlarm(news);
  // PutMetricAlarm adds and overwrites tags but never removes them.
  const removed = removedTagKeys(alarmTags(olds), alarmTags(news));
  if (removed.length) {
    const { UntagResourceCommand } = cloudWatchSdk();
    await (await cloudWatchClient(news.region)).send(new UntagResourceCommand({ ResourceARN: outs.alarmArn, TagKeys: removed }));
  }
  return outs;
}

export async function deleteRecoveryAlarm(olds: RecoveryAlarmOutputs): Promise<void> {
  const { DeleteAlarmsCommand } = cloudWatchSdk();
  await (await cloudWatchClient(olds.region)).send(new DeleteAlarmsCommand({ AlarmNames: [olds.alarmName] }));
}

export async function readRecoveryAlarm(id: string, olds: RecoveryAlarmOutputs): Promise<{ id?: string; props?: RecoveryAlarmOutputs }> {
  const { DescribeAlarmsCommand } = cloudWatchSdk();
  const out = await (await cloudWatchClient(olds.region)).send(new DescribeAlarmsCommand({ AlarmNames: [olds.alarmName], AlarmTypes: ["MetricAlarm"] }));
  const alarm = out.MetricAlarms?.[0];
  if (!alarm) return {};
  const instanceId = alarm.Dimensions?.find((d) => d.Name === "InstanceId")?.Value ?? olds.instanceId;
  const topics = (alarm.AlarmActions ?? []).filter((a) => a.includes(":sns:")).sort();
  return {
    id,
    props: { ...olds, instanceId, period: alarm.Period ?? olds.period, evaluationPeriods: alarm.EvaluationPeriods ?? olds.evaluationPeriods, notifyTopicArns: topics },
  };
}
