// The field-table helper (providers/core/fields.ts): what each resource derives from its table.
import * as assert from "assert";
import { buildIdFields, buildIdInputs, checkFields, field, fromConfig, inConfigTerms, inPlaceFields, InputsOf, plainConfigFields, replaceFields, valuesOf } from "../../providers/core/fields";
import { Checker } from "../../providers/core/inputs";
import { CONVERTED_FIELDS } from "../../providers/convertedHvmAmi/fields";
import { SHARED_AMI_FIELDS } from "../../providers/sharedAmi/fields";
import { SURROGATE_FIELDS } from "../../providers/surrogateAmi/fields";
import { RECOVERY_ALARM_FIELDS } from "../../providers/recoveryAlarm/fields";

const TABLE = {
  /** The image. */
  sourceAmiId: field.id<string, string, "replace">("amiId", { change: "replace", secret: false }),
  name: field.string<string | undefined, "in-place">({ change: "in-place", config: "imageName", secret: false }),
  mode: field.oneOf(["fast", "slow"] as const, { change: "next-build", fallback: "fast", explain: { slow: "careful" } }),
  tpm: field.oneOf(["v2.0"] as const, { change: "replace", fallback: undefined }),
  size: field.integer<number, "replace">({ change: "replace", buildId: false, min: 1, max: 10, fallback: 2 }),
  scope: field.internal((v) => String(v ?? "")),
};

const failuresOf = (raw: Record<string, unknown>) => {
  const c = new Checker();
  checkFields(c, TABLE, raw);
  return c.failures;
};

describe("field tables", () => {
  it("check each field by its row and name an unknown one against the fields the user may give", () => {
    assert.deepStrictEqual(failuresOf({ sourceAmiId: "ami-0123456789abcdef0", scope: "p/s/x" }), []);
    const [unknown] = failuresOf({ sourceAmiId: "ami-0123456789abcdef0", sise: 3 });
    assert.deepStrictEqual(unknown, { property: "sise", reason: 'unknown field "sise": the known fields are sourceAmiId, name, mode, tpm, size' });
    assert.deepStrictEqual(failuresOf({ sourceAmiId: "ami-0123456789abcdef0", mode: "medium", tpm: "v1" }).map((f) => f.reason), [
      'mode must be "fast" or "slow" (careful) (got "medium")',
      'tpm must be "v2.0" (got "v1")',
    ]);
    assert.match(failuresOf({})[0].reason, /sourceAmiId is required: give a value like ami-/);
  });

  it("fill defaults, and leave unset what has none", () => {
    const v: InputsOf<typeof TABLE> = valuesOf(TABLE, { sourceAmiId: "ami-1" });
    const mode: "fast" | "slow" = v.mode; // a fallback makes the value always set (a compile-time check)
    assert.deepStrictEqual({ ...v, mode }, { sourceAmiId: "ami-1", name: undefined, mode: "fast", tpm: undefined, size: 2, scope: "" });
  });

  it("list replace, in-place and build-id fields; next-build and internal fields are neither", () => {
    assert.deepStrictEqual(replaceFields(TABLE), ["sourceAmiId", "tpm", "size"]);
    assert.deepStrictEqual(inPlaceFields(TABLE), ["name"]);
    assert.deepStrictEqual(buildIdFields(TABLE), ["sourceAmiId", "tpm"]);
    assert.deepStrictEqual(buildIdInputs(TABLE, { sourceAmiId: "ami-1", name: "n", __provider: "code" }), { sourceAmiId: "ami-1", tpm: undefined });
  });

  it("read a stack config entry as config spells it, and say its failures in config terms", () => {
    assert.deepStrictEqual(fromConfig(TABLE, { name: "logical", imageName: "web", size: 3 }), { name: "web", size: 3 });
    assert.deepStrictEqual(inConfigTerms(TABLE, { property: "name", reason: "name is required" }), { property: "imageName", reason: "imageName is required" });
    assert.strictEqual(inConfigTerms(TABLE, { property: "sise", reason: "unknown field \"sise\": the known fields are sourceAmiId, name, mode" }).reason, 'unknown field "sise": the known fields are name, sourceAmiId, imageName, mode');
    assert.deepStrictEqual(plainConfigFields(TABLE), ["name", "sourceAmiId", "imageName"]);
  });

  it("make the image's own fields a ConvertedHvmAmi's replace fields, and a share's build id all but tags, description and the consumer fields (publish, retirement, retention, protection)", () => {
    assert.deepStrictEqual(replaceFields(CONVERTED_FIELDS).sort(), ["enaSupport", "encrypted", "kmsKeyId", "nitro", "rebuildTrigger", "region", "sanitize", "sourceAmiId", "targetSizeGiB", "volume"]);
    assert.deepStrictEqual(buildIdFields(CONVERTED_FIELDS), replaceFields(CONVERTED_FIELDS));
    assert.deepStrictEqual(Object.keys(SHARED_AMI_FIELDS).filter((f) => !buildIdFields(SHARED_AMI_FIELDS).includes(f)), ["description", "tags", "publish", "retirement", "retention", "deregistrationProtection", "scope"]);
  });

  it("spell in stack config only an image's own name otherwise (imageName), as the config entry types assume", () => {
    for (const table of [CONVERTED_FIELDS, SURROGATE_FIELDS, SHARED_AMI_FIELDS, RECOVERY_ALARM_FIELDS]) {
      const renamed = Object.entries(table).filter(([name, f]) => f.config && f.config !== name).map(([name, f]) => `${name}:${f.config}`);
      assert.deepStrictEqual(renamed, "name" in table ? ["name:imageName"] : []);
    }
  });
});
