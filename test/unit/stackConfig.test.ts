import * as assert from "assert";
import { parseStackConfig, StackConfigError } from "../../providers/stackConfig";

const share = { name: "base", sourceAmiId: "ami-0123456789abcdef0", regions: ["us-east-1", "eu-west-1"] };
const alarm = { name: "web", instanceId: "i-0123456789abcdef0" };
const cfg = (v: Record<string, unknown>) => Object.fromEntries(Object.entries(v).map(([k, x]) => [`ami-factory:${k}`, JSON.stringify(x)]));

function problemsOf(all: Record<string, string>, region: string | null = "us-east-1"): string[] {
  try {
    parseStackConfig("dev", all, region ?? undefined);
  } catch (e) {
    assert.ok(e instanceof StackConfigError);
    assert.match(e.message, /^stack dev: /);
    return e.problems;
  }
  assert.fail("expected a StackConfigError");
}

describe("stack config", () => {
  it("reads shares and recovery alarms", () => {
    const parsed = parseStackConfig("dev", cfg({ shares: [share], recoveryAlarms: [alarm] }), "us-east-1");
    assert.strictEqual(parsed.shares[0].name, "base");
    assert.strictEqual(parsed.recoveryAlarms[0].instanceId, alarm.instanceId);
  });

  it("is empty when nothing is configured", () => {
    assert.deepStrictEqual(parseStackConfig("dev", {}, undefined), { shares: [], recoveryAlarms: [], conversions: [], builds: [] });
  });

  it("names an unknown key and lists the known ones", () => {
    const [p] = problemsOf({ ...cfg({ share: [share] }) });
    assert.match(p, /ami-factory:share is not a known key.*ami-factory:shares/);
  });

  it("names the item and field of a bad value, with the fix", () => {
    const problems = problemsOf(cfg({ shares: [share, { ...share, name: "other", accountIds: ["all"] }] }));
    assert.deepStrictEqual(problems.length, 1);
    assert.match(problems[0], /^ami-factory:shares\[1\]\.accountIds: .*allowPublic: true/);
  });

  it("calls the image name imageName, as the config does", () => {
    const [p] = problemsOf(cfg({ shares: [{ ...share, imageName: "x" }] }));
    assert.match(p, /shares\[0\]\.imageName/);
  });

  it("refuses a list given as a string, duplicate names and a missing region", () => {
    assert.match(problemsOf({ "ami-factory:shares": "base" })[0], /must be a list/);
    assert.match(problemsOf(cfg({ recoveryAlarms: [alarm, alarm] }))[0], /used twice/);
    assert.ok(problemsOf(cfg({ recoveryAlarms: [alarm] }), null).some((p) => /region/.test(p)));
  });

  it("refuses an alarm for a malformed instance id", () => {
    assert.match(problemsOf(cfg({ recoveryAlarms: [{ ...alarm, instanceId: "web" }] }))[0], /recoveryAlarms\[0\]\.instanceId/);
  });
});

describe("stack config: conversions", () => {
  const conversion = { name: "legacy", sourceAmiId: "ami-0123456789abcdef0" };

  it("reads conversions with their worker and volume options", () => {
    const parsed = parseStackConfig("dev", cfg({ conversions: [{ ...conversion, worker: { instanceType: "c6i.large" }, volume: { type: "gp3" } }] }), "us-east-1");
    assert.strictEqual(parsed.conversions[0].worker?.instanceType, "c6i.large");
  });

  it("refuses a misspelt worker option, naming it", () => {
    assert.match(problemsOf(cfg({ conversions: [{ ...conversion, worker: { instanceTyp: "c6i.large" } }] }))[0], /conversions\[0\]\.worker\.instanceTyp: unknown field/);
  });

  it("refuses a conversion and a share of the same name (one images output)", () => {
    assert.match(problemsOf(cfg({ conversions: [{ ...conversion, name: "base" }], shares: [share] }))[0], /also used in ami-factory:shares/);
  });
});

describe("stack config: unknown fields", () => {
  it("lists the known fields in config terms: name, imageName, no internal fields", () => {
    const [p] = problemsOf(cfg({ conversions: [{ name: "legacy", sourceAmiId: "ami-0123456789abcdef0", sourceAmi: "x" }] }));
    assert.match(p, /conversions\[0\]\.sourceAmi: unknown field "sourceAmi": the known fields are name, sourceAmiId, targetSizeGiB, region, imageName, /);
    assert.doesNotMatch(p, /scope|guestScriptSha256/);
    const [q] = problemsOf(cfg({ recoveryAlarms: [{ ...alarm, periods: 3 }] }));
    assert.match(q, /the known fields are name, instanceId, /);
  });
});
