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

describe("stack config: mistakes caught at preview", () => {
  const debian = { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" };

  it("refuses two builds, a build and a conversion, or two shares with one image name in one region, naming both entries", () => {
    const builds = [{ name: "a", imageName: "base", recipe: debian }, { name: "b", imageName: "base", recipe: debian }];
    assert.match(problemsOf(cfg({ builds })).join("\n"), /ami-factory:builds\[1\] \(b\)\.imageName: "base" in us-east-1 is also the image name of ami-factory:builds\[0\] \(a\)/);
    const conversions = [{ name: "c", sourceAmiId: "ami-0123456789abcdef0", imageName: "base" }];
    assert.match(problemsOf(cfg({ builds: builds.slice(0, 1), conversions })).join("\n"), /conversions\[0\] \(c\)\.imageName: .* of ami-factory:builds\[0\] \(a\)/);
    const shares = [{ ...share, imageName: "copy" }, { ...share, name: "other", imageName: "copy" }];
    assert.match(problemsOf(cfg({ shares })).join("\n"), /shares\[1\] \(other\)\.imageName: "copy" in eu-west-1 is also the image name of ami-factory:shares\[0\] \(base\)/);
  });

  it("refuses two entries publishing one SSM parameter in one region, naming publish and both entries", () => {
    const builds = [{ name: "a", imageName: "web-a", recipe: debian, publish: "/ami/web" }, { name: "b", imageName: "web-b", recipe: debian, publish: "/ami/web" }];
    assert.match(problemsOf(cfg({ builds })).join("\n"), /ami-factory:builds\[1\] \(b\)\.publish: "\/ami\/web" in us-east-1 is also published by ami-factory:builds\[0\] \(a\)/);
    const shares = [{ ...share, imageName: "web-x", publish: "/ami/web" }];
    assert.match(problemsOf(cfg({ builds: [{ ...builds[0], region: "eu-west-1" }], shares })).join("\n"), /shares\[0\] \(base\)\.publish: "\/ami\/web" in eu-west-1 is also published by ami-factory:builds\[0\] \(a\)/);
    // One name in different regions is fine.
    parseStackConfig("dev", cfg({ builds: [builds[0], { ...builds[1], region: "eu-west-1" }] }), "us-east-1");
  });

  it("accepts one image name in different regions, and a share of the source in place", () => {
    const builds = [{ name: "a", imageName: "base", recipe: debian }, { name: "b", imageName: "base", recipe: debian, region: "eu-west-1" }];
    parseStackConfig("dev", cfg({ builds, shares: [{ ...share, regions: ["us-east-1"], imageName: "base" }] }), "us-east-1");
  });

  it("refuses a namespace close to ami-factory, naming the key and the fix", () => {
    for (const ns of ["ami-factroy", "amifactory", "ami_factory", "ami-factory2", "Ami-Factory"]) {
      const [p] = problemsOf({ [`${ns}:conversions`]: "[]" });
      assert.match(p, new RegExp(`^${ns}:conversions: the namespace "${ns}" looks like a misspelling of ami-factory: rename the key to ami-factory:conversions`));
    }
    parseStackConfig("dev", { "aws:region": "us-east-1", "other-project:x": "1" }, "us-east-1");
  });
});
