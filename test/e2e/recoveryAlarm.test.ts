// RecoveryAlarm through the real Pulumi engine on the emulator.
import * as assert from "assert";
import { CloudWatchClient, DescribeAlarmsCommand, ListTagsForResourceCommand } from "@aws-sdk/client-cloudwatch";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { ec2 } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { testStack } from "../support/stack";

const cw = () => new CloudWatchClient({ region: "us-east-1" });
const alarmNamed = async (name: string) => (await cw().send(new DescribeAlarmsCommand({ AlarmNames: [name] }))).MetricAlarms?.[0];

async function launch(): Promise<string> {
  const out = await ec2().send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }));
  return out.Instances![0].InstanceId!;
}

describe("RecoveryAlarm on the engine", function () {
  let emu: Emulator;
  useEmulator({ iam: false }, (e) => (emu = e));

  it("creates a StatusCheckFailed_System alarm whose action recovers the instance, updates it in place, deletes it", async () => {
    const instanceId = await launch();
    const t = await testStack(emu, { recoveryAlarms: [{ name: "web", instanceId, tags: { team: "web" } }] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    const out = (up.outputs.alarms.value as Record<string, { alarmName: string; alarmArn: string }>).web;
    const alarm = await alarmNamed(out.alarmName);
    assert.ok(alarm);
    assert.strictEqual(alarm.AlarmArn, out.alarmArn);
    assert.strictEqual(alarm.MetricName, "StatusCheckFailed_System");
    assert.strictEqual(alarm.Namespace, "AWS/EC2");
    assert.strictEqual(alarm.Statistic, "Maximum");
    assert.strictEqual(alarm.Threshold, 1);
    assert.strictEqual(alarm.ComparisonOperator, "GreaterThanOrEqualToThreshold");
    assert.strictEqual(alarm.EvaluationPeriods, 2);
    assert.strictEqual(alarm.Period, 60);
    assert.deepStrictEqual(alarm.Dimensions, [{ Name: "InstanceId", Value: instanceId }]);
    assert.deepStrictEqual(alarm.AlarmActions, ["arn:aws:automate:us-east-1:ec2:recover"]);
    const tags = (await cw().send(new ListTagsForResourceCommand({ ResourceARN: alarm.AlarmArn }))).Tags ?? [];
    assert.ok(tags.some((x) => x.Key === "team" && x.Value === "web"));

    t.configure({ recoveryAlarms: [{ name: "web", instanceId, evaluationPeriods: 3, notifyTopicArns: ["arn:aws:sns:us-east-1:123456789012:ops"] }] });
    const preview = await t.stack.preview({ diff: true });
    assert.deepStrictEqual(preview.changeSummary, { same: 2, update: 1 });
    await t.stack.up({ onOutput: t.onOutput });
    const updated = await alarmNamed(out.alarmName);
    assert.strictEqual(updated?.EvaluationPeriods, 3);
    assert.deepStrictEqual(updated?.AlarmActions, ["arn:aws:automate:us-east-1:ec2:recover", "arn:aws:sns:us-east-1:123456789012:ops"]);
    const tagsAfter = (await cw().send(new ListTagsForResourceCommand({ ResourceARN: alarm.AlarmArn }))).Tags ?? [];
    assert.ok(!tagsAfter.some((x) => x.Key === "team"), "a removed tag is removed");

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await alarmNamed(out.alarmName), undefined);
  });

  it("refuses an instance-store instance before creating the alarm, and says why", async () => {
    const instanceId = await launch();
    await emu.setRootDeviceType("us-east-1", instanceId, "instance-store");
    const t = await testStack(emu, { recoveryAlarms: [{ name: "cache", instanceId }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), /instance-store root volume: EC2 auto-recovery works only for EBS-backed instances/);
    assert.strictEqual(await alarmNamed(`ami-factory-recover-${instanceId}`), undefined);
  });

  it("refuses an instance that does not exist", async () => {
    const t = await testStack(emu, { recoveryAlarms: [{ name: "gone", instanceId: "i-0123456789abcdef0" }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), /instanceId i-0123456789abcdef0 does not exist in us-east-1/);
    assert.strictEqual(await alarmNamed("ami-factory-recover-i-0123456789abcdef0"), undefined);
  });

  it("stops preview on a bad config value, naming the stack, the key and the fix", async () => {
    const t = await testStack(emu, { recoveryAlarms: [{ name: "web", instanceId: "web-1" }] });
    await assert.rejects(t.stack.preview({ onOutput: t.onOutput }), (e: Error) => {
      const text = String(e);
      assert.match(text, /stack t\d+-\d+: the ami-factory config is invalid/);
      assert.doesNotMatch(text, /Unhandled exception/);
      assert.match(text, /ami-factory:recoveryAlarms\[0\]\.instanceId: instanceId "web-1" is not a valid instanceId: use a value like i-0123456789abcdef0/);
      return true;
    });
  });
});
