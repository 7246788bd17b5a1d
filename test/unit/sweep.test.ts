import * as assert from "assert";
import { configRegions, parseDuration, parseSweepArgs } from "../../scripts/sweep";
import { resourceUrn, temporaryTags } from "../../providers/core/tags";

describe("npm run sweep", () => {
  it("reads its options, dry run unless --yes", () => {
    assert.deepStrictEqual(parseSweepArgs(["--stack", "dev", "--region", "eu-west-1", "--region", "us-east-1", "--older-than", "2h"]), {
      stack: "dev",
      regions: ["eu-west-1", "us-east-1"],
      olderThanMs: 2 * 3600e3,
      yes: false,
    });
    assert.strictEqual(parseSweepArgs(["--yes"]).yes, true);
    assert.throws(() => parseSweepArgs(["--force"]), /unknown option --force/);
    assert.throws(() => parseSweepArgs(["--stack"]), /--stack needs a value/);
  });

  it("takes durations in s, m, h, d", () => {
    assert.strictEqual(parseDuration("90m"), 90 * 60e3);
    assert.strictEqual(parseDuration("1d"), 86400e3);
    assert.throws(() => parseDuration("2 hours"), /such as 90m, 2h or 1d/);
  });

  it("sweeps every region the stack config names", () => {
    const regions = configRegions({
      "aws:region": "eu-west-1",
      "ami-factory:shares": [{ sourceRegion: "us-east-2", regions: ["eu-west-1", "ap-northeast-1"] }],
      "ami-factory:conversions": [{ region: "us-west-2" }],
      "ami-factory:recoveryAlarms": [{}],
    });
    assert.deepStrictEqual(regions, ["ap-northeast-1", "eu-west-1", "us-east-2", "us-west-2"]);
  });
});

describe("temporary tags", () => {
  it("name the build, the stack, the resource's URN, when they were made and when they expire", () => {
    const tags = temporaryTags("b-0123456789abcdef", "ConvertedHvmAmi", "ami-factory/dev/legacy", new Date("2030-01-01T00:00:00Z"));
    assert.strictEqual(tags["ami-factory:build-id"], "b-0123456789abcdef");
    assert.strictEqual(tags["ami-factory:stack"], "ami-factory/dev");
    assert.strictEqual(tags["ami-factory:urn"], "urn:pulumi:dev::ami-factory::pulumi-nodejs:dynamic/ami-factory:ConvertedHvmAmi::legacy");
    assert.strictEqual(tags["ami-factory:expires-at"], "2030-01-01T00:00:00.000Z");
    assert.strictEqual(tags["ami-factory:temporary"], "true");
    assert.ok(Date.parse(tags["ami-factory:created-at"]) <= Date.now());
    assert.strictEqual(resourceUrn("SharedAmi", "p/s/n"), "urn:pulumi:s::p::pulumi-nodejs:dynamic/ami-factory:SharedAmi::n");
  });
});
