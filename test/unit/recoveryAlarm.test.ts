import * as assert from "assert";
import { refusesEach } from "../support/table";
import { checkRecoveryAlarm, diffRecoveryAlarm, RecoveryAlarmOutputs } from "../../providers/recoveryAlarm/inputs";
import { recoverActionArn } from "../../providers/recoveryAlarm/operations";

const valid = { instanceId: "i-0123456789abcdef0", region: "eu-west-1", scope: "p/s/web" };

describe("RecoveryAlarm check", () => {
  it("fills in the defaults: two periods of 60 s and a name from the instance", () => {
    const { inputs, failures } = checkRecoveryAlarm(valid);
    assert.deepStrictEqual(failures, []);
    assert.strictEqual(inputs!.evaluationPeriods, 2);
    assert.strictEqual(inputs!.period, 60);
    assert.strictEqual(inputs!.alarmName, "ami-factory-recover-i-0123456789abcdef0");
  });

  refusesEach(checkRecoveryAlarm, valid, [
    ["a malformed instance id", { instanceId: "web-1" }, "instanceId", /not a valid instanceId/],
    ["a malformed region", { region: "Frankfurt" }, "region", /not a valid region/],
    ["a period that is not 10, 30 or a multiple of 60", { period: 45 }, "period", /10, 30 or a multiple of 60/],
    ["zero evaluation periods", { evaluationPeriods: 0 }, "evaluationPeriods", /whole number from 1/],
    ["more than a day of evaluation", { period: 3600, evaluationPeriods: 48 }, "evaluationPeriods", /one day/],
    ["a malformed topic ARN", { notifyTopicArns: ["alerts"] }, "notifyTopicArns[0]", /snsTopicArn/],
    ["an unknown field", { periods: 3 }, "periods", /unknown field/],
  ]);
});

describe("RecoveryAlarm diff", () => {
  const olds: RecoveryAlarmOutputs = { ...checkRecoveryAlarm(valid).inputs!, schemaVersion: 1, alarmArn: "arn:x", recoverActionArn: recoverActionArn("eu-west-1") };
  const news = (c: Record<string, unknown>) => checkRecoveryAlarm({ ...valid, ...c }).inputs!;

  it("updates in place when periods, topics or tags change", () => {
    for (const c of [{ period: 300 }, { evaluationPeriods: 3 }, { notifyTopicArns: ["arn:aws:sns:eu-west-1:123456789012:ops"] }, { tags: { a: "b" } }]) {
      const d = diffRecoveryAlarm(olds, news(c));
      assert.strictEqual(d.changes, true, JSON.stringify(c));
      assert.deepStrictEqual(d.replaces, []);
    }
  });

  it("replaces when the region or the alarm name changes", () => {
    assert.deepStrictEqual(diffRecoveryAlarm(olds, news({ region: "us-east-1" })).replaces, ["region"]);
    assert.deepStrictEqual(diffRecoveryAlarm(olds, news({ alarmName: "other" })).replaces, ["alarmName"]);
  });
});

describe("recoverActionArn", () => {
  it("uses the region's partition", () => {
    assert.strictEqual(recoverActionArn("eu-west-1"), "arn:aws:automate:eu-west-1:ec2:recover");
    assert.strictEqual(recoverActionArn("cn-north-1"), "arn:aws-cn:automate:cn-north-1:ec2:recover");
    assert.strictEqual(recoverActionArn("us-gov-west-1"), "arn:aws-us-gov:automate:us-gov-west-1:ec2:recover");
  });
});
