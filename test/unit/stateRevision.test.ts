// The state format revision (providers/core/version.ts): a change to a field table or a
// SCHEMA_VERSION without a bump of STATE_REVISION fails here, so an older checkout never takes
// newer state for its own (providers/core/writtenBy.ts compares the recorded revision).
import * as assert from "assert";
import { createHash } from "crypto";
import { STATE_FORMAT, STATE_REVISION } from "../../providers/core/version";
import type { FieldTable } from "../../providers/core/fields";
import { CONVERTED_FIELDS } from "../../providers/convertedHvmAmi/fields";
import { SCHEMA_VERSION as CONVERTED_SCHEMA } from "../../providers/convertedHvmAmi/inputs";
import { RECOVERY_ALARM_FIELDS } from "../../providers/recoveryAlarm/fields";
import { SCHEMA_VERSION as ALARM_SCHEMA } from "../../providers/recoveryAlarm/inputs";
import { SHARED_AMI_FIELDS } from "../../providers/sharedAmi/fields";
import { SCHEMA_VERSION as SHARED_SCHEMA } from "../../providers/sharedAmi/inputs";
import { SURROGATE_FIELDS } from "../../providers/surrogateAmi/fields";
import { SCHEMA_VERSION as SURROGATE_SCHEMA } from "../../providers/surrogateAmi/inputs";

/** Each resource's fields (name, change, build id, config key, secret) and schema version, as one hash. */
export function stateFormat(resources: Record<string, { fields: FieldTable; schemaVersion: number }>): string {
  const shape = Object.keys(resources).sort().map((kind) => {
    const { fields, schemaVersion } = resources[kind];
    const rows = Object.keys(fields).sort().map((name) => {
      const f = fields[name];
      return [name, f.change, f.buildId, f.config, f.secret];
    });
    return [kind, schemaVersion, rows];
  });
  return createHash("sha256").update(JSON.stringify(shape)).digest("hex").slice(0, 16);
}

const current = {
  ConvertedHvmAmi: { fields: CONVERTED_FIELDS as FieldTable, schemaVersion: CONVERTED_SCHEMA },
  RecoveryAlarm: { fields: RECOVERY_ALARM_FIELDS as FieldTable, schemaVersion: ALARM_SCHEMA },
  SharedAmi: { fields: SHARED_AMI_FIELDS as FieldTable, schemaVersion: SHARED_SCHEMA },
  SurrogateAmi: { fields: SURROGATE_FIELDS as FieldTable, schemaVersion: SURROGATE_SCHEMA },
};

describe("state format revision", () => {
  it("STATE_FORMAT is the hash of today's field tables and schema versions: a change to them bumps STATE_REVISION", () => {
    const hash = stateFormat(current);
    assert.strictEqual(
      STATE_FORMAT, hash,
      `the field tables or a SCHEMA_VERSION changed: bump STATE_REVISION (now ${STATE_REVISION}) in providers/core/version.ts and set STATE_FORMAT to "${hash}"`,
    );
  });

  it("the hash moves with a field's change kind, a new field, and a schema version", () => {
    const base = stateFormat(current);
    const shared = current.SharedAmi;
    const [first] = Object.keys(shared.fields);
    const edited = { ...current, SharedAmi: { ...shared, fields: { ...shared.fields, [first]: { ...shared.fields[first], change: "in-place" as const } } } };
    assert.notStrictEqual(stateFormat(edited), base);
    assert.notStrictEqual(stateFormat({ ...current, SharedAmi: { ...shared, fields: { ...shared.fields, extra: shared.fields[first] } } }), base);
    assert.notStrictEqual(stateFormat({ ...current, SharedAmi: { ...shared, schemaVersion: shared.schemaVersion + 1 } }), base);
  });
});
