// ConvertedHvmAmi `method` (issue 12): in place or copied, decided from the inputs and the source,
// and the guest's refusal line when it declines to convert in place. Pure: no AWS.
import * as assert from "assert";
import { refusesEach } from "../support/table";
import { checkConvertedHvmAmi, ConvertedHvmAmiOutputs, diffConvertedHvmAmi } from "../../providers/convertedHvmAmi/inputs";
import { conversionPlan, refusalReason, REFUSAL_CODES } from "../../providers/convertedHvmAmi/conversion";
import { adoptedConversion, conversionBuildId } from "../../providers/convertedHvmAmi/build";
import { checkFactsTag, factsTag } from "../../providers/worker/facts";
import { bundleGuestScript } from "../../providers/worker/guestScript";
import { parseStackConfig, StackConfigError } from "../../providers/stackConfig";

const valid = { sourceAmiId: "ami-0123456789abcdef0", region: "us-east-1", scope: "p/s/legacy", guestScriptSha256: "abc" };
const inputs = (c: Record<string, unknown> = {}) => checkConvertedHvmAmi({ ...valid, ...c }).inputs!;

describe("ConvertedHvmAmi method: check", () => {
  it("defaults to auto and keeps what is given", () => {
    assert.strictEqual(inputs().method, "auto");
    for (const m of ["auto", "in-place", "copy"]) assert.strictEqual(inputs({ method: m }).method, m);
  });

  it("lets auto and copy change the size and the key (they copy)", () => {
    for (const method of ["auto", "copy"]) assert.deepStrictEqual(checkConvertedHvmAmi({ ...valid, method, targetSizeGiB: 20, kmsKeyId: "alias/images" }).failures, []);
  });

  refusesEach(checkConvertedHvmAmi, valid, [
    ["an unknown method", { method: "fast" }, "method", /method must be "auto", "in-place" or "copy" \(got "fast"\)/],
    ["in-place with a target size", { method: "in-place", targetSizeGiB: 20 }, "targetSizeGiB", /with method "in-place": converted in place, the root keeps the source snapshot's size; remove it, or set method: "auto"/],
    ["in-place with a KMS key", { method: "in-place", kmsKeyId: "alias/images" }, "kmsKeyId", /with method "in-place": converted in place, the root keeps the source snapshot's encryption and key/],
  ]);

  it("is spelt in the stack config too, naming the entry and the field", () => {
    const all = { "ami-factory:conversions": JSON.stringify([{ name: "legacy", sourceAmiId: valid.sourceAmiId, method: "inplace" }]) };
    assert.throws(() => parseStackConfig("dev", all, "us-east-1"), (e: unknown) => (assert.ok(e instanceof StackConfigError), assert.match(e.problems[0], /conversions\[0\]\.method: method must be "auto", "in-place" or "copy" \(got "inplace"\)/), true));
    const ok = { "ami-factory:conversions": JSON.stringify([{ name: "legacy", sourceAmiId: valid.sourceAmiId, method: "in-place" }]) };
    assert.strictEqual(parseStackConfig("dev", ok, "us-east-1").conversions[0].method, "in-place");
  });
});

describe("ConvertedHvmAmi method: diff and build id", () => {
  const olds: ConvertedHvmAmiOutputs = { ...inputs(), schemaVersion: 3, imageId: "ami-1", snapshotId: "snap-1", imageName: "src-hvm", baseName: "src-hvm", buildId: "b-1", facts: {}, conversion: { method: "in-place", reason: "" } };

  it("a method change alone changes nothing (it applies at the next build): no replacement, no new build id", () => {
    const d = diffConvertedHvmAmi(olds, inputs({ method: "copy" }));
    assert.strictEqual(d.changes, false);
    assert.deepStrictEqual(d.replaces, []);
    assert.strictEqual(conversionBuildId(inputs({ method: "copy" })), conversionBuildId(inputs({ method: "in-place" })));
  });

  it("reads state written before method existed as auto", () => {
    const { method: _none, ...older } = olds;
    assert.strictEqual(diffConvertedHvmAmi(older as ConvertedHvmAmiOutputs, inputs()).changes, false);
  });
});

describe("ConvertedHvmAmi method: the plan before the worker starts", () => {
  const plain = { rootSizeGiB: 8, encrypted: false };
  const keyed = { rootSizeGiB: 8, encrypted: true, kmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" };
  for (const [what, c, source, plan] of [
    ["auto, nothing changed", { method: "auto" }, plain, { method: "in-place", reason: "" }],
    ["auto, the source's own size", { method: "auto", targetSizeGiB: 8 }, plain, { method: "in-place", reason: "" }],
    ["auto, the source's own key", { method: "auto", encrypted: true, kmsKeyId: keyed.kmsKeyId }, keyed, { method: "in-place", reason: "" }],
    ["auto, encrypted as the source is", { method: "auto", encrypted: true }, keyed, { method: "in-place", reason: "" }],
    ["auto, another size", { method: "auto", targetSizeGiB: 20 }, plain, { method: "copy", reason: "size-change" }],
    ["auto, encrypting a plain source", { method: "auto", encrypted: true }, plain, { method: "copy", reason: "encryption-change" }],
    ["auto, another key", { method: "auto", kmsKeyId: "alias/images" }, keyed, { method: "copy", reason: "encryption-change" }],
    ["copy", { method: "copy" }, plain, { method: "copy", reason: "requested" }],
    ["in-place, nothing changed", { method: "in-place" }, plain, { method: "in-place", reason: "" }],
  ] as const) {
    it(`${what}: ${plan.method}${plan.reason ? ` (${plan.reason})` : ""}`, () => assert.deepStrictEqual(conversionPlan(c, source), plan));
  }

  it("refuses in-place with another size or encryption, naming the field", () => {
    assert.throws(() => conversionPlan({ method: "in-place", targetSizeGiB: 20 }, plain), /method "in-place" keeps the source root's size \(8 GiB\), but targetSizeGiB is 20/);
    assert.throws(() => conversionPlan({ method: "in-place", encrypted: true }, plain), /but encrypted \(the source snapshot is not encrypted\) changes it/);
  });
});

describe("ConvertedHvmAmi method: the guest's refusal line", () => {
  const schema = bundleGuestScript("pv2hvm.sh").factsSchema;
  const line = { script: "pv2hvm", schemaVersion: schema.schemaVersion, refused: "in-place", reason: "xfs-at-sector-0", detail: "XFS starts at sector 0: no room for boot code" };

  it("reads each refusal code of the contract", () => {
    for (const reason of REFUSAL_CODES) assert.deepStrictEqual(refusalReason({ ...line, reason }, schema), { reason, detail: line.detail });
  });

  for (const [what, change, message] of [
    ["a facts line", { refused: undefined }, /refused is undefined, not "in-place"/],
    ["an unknown code", { reason: "too-hard" }, /reason is "too-hard", not one of xfs-at-sector-0/],
    ["another script's line", { script: "surrogate" }, /script is "surrogate", not "pv2hvm"/],
    ["another schema version", { schemaVersion: 99 }, /schemaVersion is 99/],
  ] as const) {
    it(`refuses ${what}`, () => assert.throws(() => refusalReason({ ...line, ...change }, schema), (e: Error) => (assert.match(e.message, /pv2hvm exited 3 \(in place refused\) but its last line is not a refusal line/), assert.match(e.message, message), true)));
  }
});

describe("ConvertedHvmAmi method: adopting an image after a crash", () => {
  const schema = bundleGuestScript("pv2hvm.sh").factsSchema;
  const tagOf = (schemaVersion: number) => factsTag({ script: "pv2hvm", schemaVersion, partitioned: false, fsType: "ext4", enaDriver: true, nvmeDriver: true, nitroReady: true, ixgbevfDriver: false, defaultKernel: "6.1.0-18-amd64" })!;

  it("adopts an image whose facts tag an earlier release wrote (an earlier schema version), and refuses a later one", () => {
    assert.strictEqual(checkFactsTag(tagOf(2), schema, "ami-1").schemaVersion, 2);
    assert.throws(() => checkFactsTag(tagOf(schema.schemaVersion + 1), schema, "ami-1"), new RegExp(`schemaVersion is ${schema.schemaVersion + 1}, not 1 to ${schema.schemaVersion}`));
  });

  it("reads how the image was converted from its tag; none on an image built before the tag existed", () => {
    assert.deepStrictEqual(adoptedConversion('{"method":"copy","reason":"gap-too-small"}'), { method: "copy", reason: "gap-too-small" });
    assert.strictEqual(adoptedConversion(""), undefined);
    assert.throws(() => adoptedConversion('{"method":"dd"}'), /ami-factory:conversion tag of the adopted image is .* not \{"method":"in-place"\|"copy"/);
  });
});
