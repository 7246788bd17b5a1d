// State written by the previous release (test/fixtures/state) read through each resource's upgrade:
// today's shape, no change against the same inputs, and refresh that keeps the stored schema.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { dynamicProvider } from "../../providers/core/provider";
import { PACKAGE_VERSION, STATE_REVISION } from "../../providers/core/version";
import { compareVersions } from "../../providers/core/writtenBy";
import { checkConvertedHvmAmi, diffConvertedHvmAmi } from "../../providers/convertedHvmAmi/inputs";
import { upgradeConversion } from "../../providers/convertedHvmAmi/upgrade";
import { checkSharedAmi } from "../../providers/sharedAmi/inputs";
import { diffSharedAmi } from "../../providers/sharedAmi/diff";
import { fromState } from "../../providers/sharedAmi/state";
import { upgradeSharedAmi } from "../../providers/sharedAmi/upgrade";
import { checkRecoveryAlarm, diffRecoveryAlarm } from "../../providers/recoveryAlarm/inputs";
import { upgradeRecoveryAlarm } from "../../providers/recoveryAlarm/upgrade";
import { checkSurrogateAmi } from "../../providers/surrogateAmi/inputs";
import { upgradeSurrogate } from "../../providers/surrogateAmi/upgrade";

type Raw = Record<string, unknown>;
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/state/release-ab5b1f3.json"), "utf8")) as { resources: { type: string; inputs: Raw; outputs: Raw }[] };
const stored = (kind: string) => {
  const r = fixture.resources.find((x) => x.type.endsWith(`:${kind}`))!;
  const { __provider: _i, ...inputs } = r.inputs;
  const { __provider: _o, ...outputs } = r.outputs;
  return { inputs, outputs };
};

describe("state upgrades", () => {
  it("bring a ConvertedHvmAmi of schema 1 to today's (3): exact name as the Name tag, new inputs unset, no change against the same inputs", () => {
    const { inputs, outputs } = stored("ConvertedHvmAmi");
    const state = upgradeConversion(outputs);
    assert.strictEqual(outputs.schemaVersion, 1);
    assert.strictEqual(state.schemaVersion, 3);
    assert.strictEqual(state.conversion, undefined, "schema 1 and 2 did not record how they converted");
    assert.strictEqual(state.baseName, outputs.imageName);
    assert.strictEqual(state.exactName, false);
    assert.strictEqual(state.method, "auto");
    assert.strictEqual(state.buildId, outputs.buildId);
    // A tool upgrade: today's guest script hash, the same inputs otherwise.
    const news = checkConvertedHvmAmi({ ...inputs, guestScriptSha256: "f".repeat(64) }).inputs!;
    assert.deepStrictEqual(diffConvertedHvmAmi(state, news), { changes: false, replaces: [], deleteBeforeReplace: false, notes: [] });
  });

  it("read a SharedAmi written before exactName and name as unset, with no change against the same inputs", () => {
    const { inputs, outputs } = stored("SharedAmi");
    const state = upgradeSharedAmi(outputs);
    assert.strictEqual(state.exactName, false);
    assert.ok(!("name" in outputs) && state.name === undefined);
    assert.ok(Array.isArray(outputs.copiedRegions) && !("copiedRegions" in state), "schema 1 stored copiedRegions; schema 2 derives it");
    assert.deepStrictEqual(fromState(state).copiedRegions, outputs.copiedRegions);
    const diff = diffSharedAmi(fromState(state), checkSharedAmi(inputs, inputs).inputs!);
    assert.deepStrictEqual({ changes: diff.changes, notes: diff.notes }, { changes: false, notes: [] });
  });

  it("leave a RecoveryAlarm of schema 1 as it is", () => {
    const { inputs, outputs } = stored("RecoveryAlarm");
    assert.deepStrictEqual(upgradeRecoveryAlarm(outputs), outputs);
    assert.strictEqual(diffRecoveryAlarm(upgradeRecoveryAlarm(outputs), checkRecoveryAlarm(inputs).inputs!).changes, false);
  });

  it("give a SurrogateAmi written before build stamps its exact name as the Name tag", () => {
    const inputs = checkSurrogateAmi({ recipe: { kind: "script", script: "true" }, name: "base", region: "us-east-1", scope: "p/s/b", guestScriptSha256: "a" }).inputs!;
    const { exactName: _e, ...old } = { ...inputs, schemaVersion: 1, imageId: "ami-1", snapshotId: "snap-1", imageName: "base", buildId: "b-1", facts: {} };
    const state = upgradeSurrogate(old);
    assert.deepStrictEqual({ baseName: state.baseName, exactName: state.exactName }, { baseName: "base", exactName: false });
  });

  it("change nothing in state of today's schema", () => {
    const today = upgradeConversion(stored("ConvertedHvmAmi").outputs);
    assert.deepStrictEqual(upgradeConversion({ ...today }), today);
  });

  it("refuse state written by a newer ami-factory, naming its schema", () => {
    assert.throws(() => upgradeConversion({ ...stored("ConvertedHvmAmi").outputs, schemaVersion: 4 }), /ConvertedHvmAmi: the state was written by a newer ami-factory \(schema 4; this one reads up to 3\)/);
  });
});

describe("the provider adapter and stored schemas", () => {
  const calls: Raw[] = [];
  const provider = dynamicProvider<{ scope: string }, Raw & { scope: string }>({
    kind: "Test",
    check: (raw) => ({ inputs: raw as { scope: string }, failures: [] }),
    diff: (olds) => (calls.push(olds), { changes: false }),
    create: async () => ({ id: "x", outs: { scope: "s" } }),
    update: async (olds, news) => (calls.push(olds), { ...olds, ...news }),
    delete: async (olds) => void calls.push(olds),
    read: async (_id, olds) => ({ props: { ...olds, tags: { team: "b" } } }),
    upgrade: (s) => ({ ...s, scope: String(s.scope), added: true, schemaVersion: 2 }),
  });
  const old = { scope: "s", schemaVersion: 1, tags: { team: "a" } };

  it("hands diff, update and delete the upgraded state, and update writes today's schema", async () => {
    calls.length = 0;
    await provider.diff!("x", old, { scope: "s" });
    const { outs } = await provider.update!("x", old, { scope: "s" });
    await provider.delete!("x", old);
    assert.deepStrictEqual(calls.map((c) => [c.schemaVersion, c.added]), [[2, true], [2, true], [2, true]]);
    assert.strictEqual(outs!.schemaVersion, 2);
  });

  it("reads with the upgraded state but refreshes only what AWS changed over the stored one", async () => {
    const { props } = await provider.read!("x", old);
    assert.deepStrictEqual(props, { scope: "s", schemaVersion: 1, tags: { team: "b" } });
  });

  it("records the ami-factory version that wrote the state on create and update", async () => {
    const { outs: created } = await provider.create!({ scope: "s" });
    const { outs: updated } = await provider.update!("x", { ...old, amiFactoryVersion: "0.0.1" }, { scope: "s" });
    assert.strictEqual(created!.amiFactoryVersion, PACKAGE_VERSION);
    assert.strictEqual(updated!.amiFactoryVersion, PACKAGE_VERSION);
  });

  it("refuses state a newer ami-factory wrote, at preview, refresh, update and destroy; accepts older and unrecorded", async () => {
    const [major, minor, patch] = PACKAGE_VERSION.split(".").map((x) => parseInt(x, 10));
    const newer = { ...old, amiFactoryVersion: `${major}.${minor}.${patch + 1}` };
    const message = new RegExp(`Test: the state was written by ami-factory ${major}\\.${minor}\\.${patch + 1}, newer than this checkout \\(${PACKAGE_VERSION.replace(/\./g, "\\.")}\\): update this checkout`);
    await assert.rejects(async () => provider.diff!("x", newer, { scope: "s" }), message);
    await assert.rejects(async () => provider.read!("x", newer), message);
    await assert.rejects(async () => provider.update!("x", newer, { scope: "s" }), message);
    await assert.rejects(async () => provider.delete!("x", newer), message);
    await assert.rejects(async () => provider.delete!("x", { ...old, amiFactoryVersion: 7 }), /amiFactoryVersion is 7, not a version/);
    for (const ok of [old, { ...old, amiFactoryVersion: "0.0.1" }, { ...old, amiFactoryVersion: PACKAGE_VERSION }]) {
      await provider.diff!("x", ok, { scope: "s" });
      await provider.delete!("x", ok);
    }
  });

  it("records the state format revision, and refuses state of a newer revision written under the same package version", async () => {
    const { outs: created } = await provider.create!({ scope: "s" });
    assert.strictEqual((created as Raw).amiFactoryStateRevision, STATE_REVISION);
    const newer = { ...old, amiFactoryVersion: PACKAGE_VERSION, amiFactoryStateRevision: STATE_REVISION + 1 };
    const message = new RegExp(`Test: the state was written by a newer ami-factory \\(state format revision ${STATE_REVISION + 1}; this checkout has ${STATE_REVISION}\\): update this checkout`);
    await assert.rejects(async () => provider.diff!("x", newer, { scope: "s" }), message);
    await assert.rejects(async () => provider.read!("x", newer), message);
    await assert.rejects(async () => provider.update!("x", newer, { scope: "s" }), message);
    await assert.rejects(async () => provider.delete!("x", newer), message);
    await assert.rejects(async () => provider.delete!("x", { ...old, amiFactoryStateRevision: "2" }), /amiFactoryStateRevision is "2", not a revision/);
    for (const ok of [{ ...old, amiFactoryStateRevision: STATE_REVISION }, { ...old, amiFactoryStateRevision: STATE_REVISION - 1 }]) {
      await provider.diff!("x", ok, { scope: "s" });
      await provider.delete!("x", ok);
    }
  });

  it("compares versions by number, not as text", () => {
    assert.ok(compareVersions("0.10.0", "0.9.9") > 0);
    assert.ok(compareVersions("1.2.3-rc.1", "1.2.3") === 0);
    assert.ok(compareVersions("1.2.3", "1.3.0") < 0);
  });
});
