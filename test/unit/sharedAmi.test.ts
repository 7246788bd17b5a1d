import * as assert from "assert";
import { refusesEach } from "../support/table";
import { checkSharedAmi, SharedAmiOutputs } from "../../providers/sharedAmi/inputs";
import { diffSharedAmi } from "../../providers/sharedAmi/diff";
import { UNKNOWN } from "../../providers/core/inputs";

const KEYS = { "us-east-1": "alias/images", "eu-west-1": "alias/images" };
const valid = {
  sourceAmiId: "ami-0123456789abcdef0",
  sourceRegion: "us-east-1",
  regions: ["us-east-1", "eu-west-1"],
  accountIds: ["111122223333"],
  scope: "p/s/base",
};

function outputsFor(raw: Record<string, unknown>): SharedAmiOutputs {
  const { inputs } = checkSharedAmi(raw);
  assert.ok(inputs);
  return {
    ...inputs,
    schemaVersion: 1,
    imageIds: { "us-east-1": "ami-0123456789abcdef0", "eu-west-1": "ami-0fedcba9876543210" },
    snapshotIds: { "us-east-1": ["snap-1"], "eu-west-1": ["snap-2"] },
    copiedRegions: ["eu-west-1"],
    imageName: "base",
    buildId: "b-1",
  };
}

describe("SharedAmi check", () => {
  it("normalises valid inputs: sorted lists, defaults for shareSnapshots, encryption and timeout", () => {
    const { inputs, failures } = checkSharedAmi({ ...valid, accountIds: ["444455556666", "111122223333", "111122223333".slice(0)] });
    assert.deepStrictEqual(failures.map((f) => f.property), ["accountIds[2]"]); // listed twice
    const ok = checkSharedAmi(valid);
    assert.deepStrictEqual(ok.failures, []);
    assert.deepStrictEqual(ok.inputs!.regions, ["eu-west-1", "us-east-1"]);
    assert.strictEqual(ok.inputs!.shareSnapshots, true);
    assert.strictEqual(ok.inputs!.encrypted, false);
    assert.strictEqual(ok.inputs!.timeoutMinutes, 120);
    assert.strictEqual(inputs, undefined);
  });

  refusesEach(checkSharedAmi, valid, [
    ["a malformed source id", { sourceAmiId: "ami-xyz" }, "sourceAmiId", /not a valid amiId.*ami-0123456789abcdef0/],
    ["a missing source id", { sourceAmiId: undefined }, "sourceAmiId", /required/],
    ["no regions", { regions: [] }, "regions", /must not be empty/],
    ["a malformed region", { regions: ["europe"] }, "regions[0]", /not a valid region/],
    ["a malformed account id", { accountIds: ["12345"] }, "accountIds[0]", /not a valid accountId/],
    ["'all' without allowPublic", { accountIds: ["all"] }, "accountIds", /allowPublic: true/],
    ["a malformed organization ARN", { organizationArns: ["o-123"] }, "organizationArns[0]", /organizationArn/],
    ["a malformed OU ARN", { organizationalUnitArns: ["ou-1"] }, "organizationalUnitArns[0]", /organizationalUnitArn/],
    ["a KMS key for a region not copied to", { encrypted: true, kmsKeyIds: { "ap-south-1": "alias/x" } }, "kmsKeyIds.ap-south-1", /not in regions/],
    ["a KMS key from another region", { encrypted: true, kmsKeyIds: { "eu-west-1": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" } }, "kmsKeyIds.eu-west-1", /key of its own region/],
    ["KMS keys without encrypted", { kmsKeyIds: { "eu-west-1": "alias/x" } }, "kmsKeyIds", /set encrypted: true/],
    ["an unknown field", { regionz: ["eu-west-1"] }, "regionz", /unknown field "regionz"/],
    ["a reserved tag key", { tags: { "aws:owner": "x" } }, "tags.aws:owner", /reserved/],
    ["a non-string tag value", { tags: { team: 7 } }, "tags.team", /string value/],
    ["29 tags (ami-factory's own reach 22 of EC2's 50 on an image)", { tags: Object.fromEntries(Array.from({ length: 29 }, (_, i) => [`t${i}`, "v"])) }, "tags", /29 tags: EC2 allows 50 .* adds up to 22 .* give at most 28/],
    ["a bad deprecation time", { deprecateAt: "next year" }, "deprecateAt", /ISO 8601/],
    ["an image name with bad characters", { name: "a*b" }, "name", /not valid/],
    ["a negative timeout", { timeoutMinutes: -5 }, "timeoutMinutes", /whole number from 1/],
  ]);

  it("accepts values that are unknown during preview", () => {
    const { failures } = checkSharedAmi({ ...valid, sourceAmiId: UNKNOWN, accountIds: UNKNOWN });
    assert.deepStrictEqual(failures, []);
  });
});

describe("SharedAmi diff", () => {
  const olds = outputsFor(valid);
  const news = (change: Record<string, unknown>) => checkSharedAmi({ ...valid, ...change }).inputs!;

  it("reports no change for the same inputs", () => {
    assert.deepStrictEqual(diffSharedAmi(olds, news({})).changes, false);
  });

  it("notes at preview that a principal added to a source shared in place and granted by hand already becomes the share's", () => {
    const inPlace = outputsFor({ ...valid, regions: [valid.sourceRegion] });
    const d = diffSharedAmi(inPlace, checkSharedAmi({ ...valid, regions: [valid.sourceRegion], accountIds: [...(valid.accountIds as string[]), "444455556666"] }).inputs!);
    assert.ok(d.notes.some((n) => /^444455556666 on the source shared in place .*already grants by hand becomes this share's, and deleting the share .* revokes it/.test(n)), d.notes.join("\n"));
    const copied = diffSharedAmi(outputsFor({ ...valid, regions: ["eu-west-1"] }), news({ regions: ["eu-west-1"], accountIds: [...(valid.accountIds as string[]), "444455556666"] }));
    assert.ok(!copied.notes.some((n) => /shared in place/.test(n)), "copies hold their own grants");
  });

  for (const [field, value] of [
    ["sourceAmiId", "ami-0aaaaaaaaaaaaaaaa"],
    ["sourceRegion", "us-west-2"],
    ["encrypted", true],
    ["name", "renamed-image"],
  ] as const) {
    it(`replaces when ${field} changes`, () => {
      const extra = field === "sourceRegion" ? { regions: ["us-west-2", "eu-west-1", "us-east-1"] } : field === "encrypted" ? { kmsKeyIds: KEYS } : {};
      const d = diffSharedAmi(olds, news({ [field]: value, ...extra }));
      assert.ok(d.replaces.includes(field), JSON.stringify(d));
    });
  }

  for (const [field, value] of [
    ["accountIds", ["111122223333", "444455556666"]],
    ["organizationArns", ["arn:aws:organizations::123456789012:organization/o-abcde12345"]],
    ["tags", { team: "images" }],
    ["deprecateAt", "2030-01-01T00:00:00Z"],
    ["regions", ["us-east-1", "eu-west-1", "ap-northeast-1"]],
    ["description", "new words"],
  ] as const) {
    it(`updates in place when ${field} changes`, () => {
      const d = diffSharedAmi(olds, news({ [field]: value }));
      assert.strictEqual(d.changes, true);
      assert.deepStrictEqual(d.replaces, []);
    });
  }

  it("sees a copy lost out of band (after refresh) as an update of regions", () => {
    const drifted = { ...olds, imageIds: { "us-east-1": olds.imageIds["us-east-1"] }, copiedRegions: [] };
    const d = diffSharedAmi(drifted, news({}));
    assert.strictEqual(d.changes, true);
    assert.deepStrictEqual(d.replaces, []);
  });

  it("copies before deleting on a replacement (names are unique per build), and names the field", () => {
    const d = diffSharedAmi(olds, news({ sourceAmiId: "ami-0aaaaaaaaaaaaaaaa", name: "base" }));
    assert.strictEqual(d.deleteBeforeReplace, false);
    assert.match(d.notes[0], /replaces the copies named base because sourceAmiId/);
  });

  it("deletes before replacing, with a warning naming the copies, when exactName keeps the same name in the same region", () => {
    const exact = { ...olds, exactName: true };
    const d = diffSharedAmi(exact, news({ sourceAmiId: "ami-0aaaaaaaaaaaaaaaa", name: "base", exactName: true }));
    assert.strictEqual(d.deleteBeforeReplace, true);
    assert.match(d.notes[1], /warning: exactName: the copies ami-\w+ \(eu-west-1\).* named base are deleted before/);
    assert.strictEqual(diffSharedAmi(exact, news({ sourceAmiId: "ami-0aaaaaaaaaaaaaaaa", name: "other-name", exactName: true })).deleteBeforeReplace, false);
  });
});

describe("SharedAmi: AWS's rules at preview", () => {
  const now = Date.now();
  const inYears = (y: number) => new Date(now + y * 365.25 * 86400_000).toISOString();
  const failuresOf = (raw: Record<string, unknown>, olds?: Record<string, unknown>) => checkSharedAmi({ ...valid, ...raw }, olds).failures.map((f) => `${f.property}: ${f.reason}`).join("\n");

  it("refuses sharing encrypted copies with other accounts without a customer-managed key per region", () => {
    assert.match(failuresOf({ encrypted: true }), /kmsKeyIds: encrypted copies shared with other accounts need a customer-managed KMS key .* set kmsKeyIds for us-east-1, eu-west-1/);
    assert.match(failuresOf({ encrypted: true, kmsKeyIds: { ...KEYS, "eu-west-1": "alias/aws/ebs" } }), /set kmsKeyIds for eu-west-1/);
    assert.strictEqual(failuresOf({ encrypted: true, kmsKeyIds: KEYS }), "");
    assert.strictEqual(failuresOf({ encrypted: true, accountIds: [] }), "", "not shared: the account's default key will do");
  });

  it("refuses deprecateAt in the past or beyond AWS's limit (10 years, 2 for public images)", () => {
    assert.match(failuresOf({ deprecateAt: "2020-01-01T00:00:00Z" }), /deprecateAt: deprecateAt 2020-01-01T00:00:00Z is in the past/);
    assert.match(failuresOf({ deprecateAt: inYears(10.5) }), /deprecateAt: .* is more than 10 years ahead/);
    assert.match(failuresOf({ deprecateAt: inYears(3), accountIds: ["all"], allowPublic: true }), /more than 2 years ahead: EC2 deprecates public images/);
    assert.strictEqual(failuresOf({ deprecateAt: inYears(3) }), "");
  });

  it("keeps a passed deprecation date on an existing share, but refuses a region added after it", () => {
    const olds = { ...valid, deprecateAt: "2020-01-01T00:00:00Z" };
    assert.strictEqual(failuresOf({ deprecateAt: "2020-01-01T00:00:00Z" }, olds), "");
    assert.match(failuresOf({ deprecateAt: "2020-01-01T00:00:00Z", regions: [...valid.regions, "ap-northeast-1"] }, olds), /regions: regions adds ap-northeast-1 after deprecateAt .* has passed/);
  });
});
