// A bad stack config through the inline program (npm start, the e2e harness): the program's own
// message, printed once per preview, however many previews one process runs.
import * as assert from "assert";
import { CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { ec2 } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { testStack } from "../support/stack";

describe("a config error on the inline path", function () {
  let emu: Emulator;
  useEmulator({}, (e) => (emu = e));

  it("is printed once per preview, also on the second preview in the same process", async () => {
    const t = await testStack(emu, { sharez: [] });
    for (const round of [1, 2]) {
      t.output.length = 0;
      await assert.rejects(t.stack.preview({ onOutput: t.onOutput }));
      const printed = t.output.join("");
      const times = printed.split("ami-factory:sharez is not a known key: the known keys are ami-factory:shares").length - 1;
      assert.strictEqual(times, 1, `preview ${round} printed the message ${times} times:\n${printed}`);
    }
  });
});

describe("a config error during up on the inline path", function () {
  let emu: Emulator;
  useEmulator({ iam: false }, (e) => (emu = e));

  it("fails the up and deletes nothing the stack has (the program did not declare an empty stack)", async () => {
    const run = await ec2().send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }));
    const instanceId = run.Instances![0].InstanceId!;
    const t = await testStack(emu, { recoveryAlarms: [{ name: "web", instanceId }] });
    const first = await t.stack.up({ onOutput: t.onOutput });
    const alarmName = (first.outputs.alarms.value as Record<string, { alarmName: string }>).web.alarmName;
    t.configure({ recoveryAlarms: [{ name: "web", instanceId }], sharez: [] });
    t.output.length = 0;
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), /ami-factory:sharez is not a known key/);
    assert.doesNotMatch(t.output.join(""), /deleted/, t.output.join(""));
    const alarms = await new CloudWatchClient({ region: "us-east-1" }).send(new DescribeAlarmsCommand({ AlarmNames: [alarmName] }));
    assert.strictEqual(alarms.MetricAlarms?.length, 1, `the alarm ${alarmName} was deleted by a failed up`);
    const state = (await t.stack.exportStack()).deployment.resources ?? [];
    assert.ok(state.some((r: { type: string }) => r.type.endsWith("ami-factory:RecoveryAlarm")), "the alarm left the state");
    t.configure({ recoveryAlarms: [{ name: "web", instanceId }] });
    await t.stack.destroy({ onOutput: t.onOutput });
  });
});
