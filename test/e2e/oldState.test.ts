// State written by the previous release (test/fixtures/state, captured through the engine from
// main before the thin provider) still refreshes, updates and deletes with the current code.
// The fixture's AWS objects are rebuilt on the emulator by an `up` of the same config, and the
// fixture is rebased onto their ids: the stack then holds the old resources exactly as the old
// release wrote them (its serialised provider, its outputs), pointing at live AWS objects.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { DescribeImageAttributeCommand, DisableImageDeregistrationProtectionCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { CloudWatchClient, DescribeAlarmsCommand, ListTagsForResourceCommand } from "@aws-sdk/client-cloudwatch";
import { describeImage, ec2, leftovers, seedHvmImage, seedPvImage, snapshotExists } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { testStack, TestStack } from "../support/stack";
import { fixtureConfig, FixtureIds } from "../fixtures/state/stack";
import { PV2HVM_FACTS } from "../support/facts";

interface StateResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

const FIXTURE = path.join(__dirname, "../fixtures/state/release-ab5b1f3.json");
const fixture = JSON.parse(fs.readFileSync(FIXTURE, "utf8")) as { resources: StateResource[] };
const nameOf = (urn: string) => urn.split("::").pop()!;

/** fixture value → live value, for every string that differs at the same place (ids, ARNs, build ids, scopes). */
function idMap(old: unknown, live: unknown, map: Map<string, string>): Map<string, string> {
  if (typeof old === "string" && typeof live === "string") {
    if (old !== live) map.set(old, live);
  } else if (Array.isArray(old) && Array.isArray(live)) {
    old.forEach((v, i) => idMap(v, live[i], map));
  } else if (old && live && typeof old === "object" && typeof live === "object") {
    for (const [k, v] of Object.entries(old)) if (k !== "__provider" && k in live) idMap(v, (live as Record<string, unknown>)[k], map);
  }
  return map;
}

function rebase<T>(value: T, map: Map<string, string>): T {
  if (typeof value === "string") return (map.get(value) ?? value) as T;
  if (Array.isArray(value)) return value.map((v) => rebase(v, map)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === "__provider" ? v : rebase(v, map)])) as T;
  }
  return value;
}

/** The stack's state with its ami-factory resources replaced by the fixture's, rebased onto the live ids. */
async function importOldState(t: TestStack): Promise<void> {
  const state = await t.stack.exportStack();
  const resources = state.deployment.resources as StateResource[];
  for (const old of fixture.resources) {
    const live = resources.find((r) => r.type === old.type && nameOf(r.urn) === nameOf(old.urn));
    assert.ok(live, `the live stack has ${nameOf(old.urn)}`);
    const map = idMap({ id: old.id, outputs: old.outputs }, { id: live.id, outputs: live.outputs }, new Map());
    Object.assign(live, { id: rebase(old.id, map), inputs: rebase(old.inputs, map), outputs: rebase(old.outputs, map) });
  }
  await t.stack.importStack(state);
}

async function storedProviderSizes(t: TestStack): Promise<Record<string, number>> {
  const state = await t.stack.exportStack();
  return Object.fromEntries(
    // The fixture's resources (the StackLifetime marker is today's).
    (state.deployment.resources as StateResource[]).filter((r) => fixture.resources.some((old) => old.type === r.type && nameOf(old.urn) === nameOf(r.urn))).map((r) => [nameOf(r.urn), String(r.outputs?.__provider ?? "").length]),
  );
}

const cw = () => new CloudWatchClient({ region: "us-east-1" });
const alarmNamed = async (name: string) => (await cw().send(new DescribeAlarmsCommand({ AlarmNames: [name] }))).MetricAlarms?.[0];

describe("state written by the previous release", function () {
  let emu: Emulator;
  useEmulator({ iam: true }, (e) => (emu = e));

  /** The fixture's AWS objects, made by an up of the fixture config; the state then replaced by the fixture's. */
  let stacks = 0;
  async function oldStack(): Promise<{ t: TestStack; ids: FixtureIds; outs: Record<string, Record<string, unknown>> }> {
    const n = ++stacks;
    const ids: FixtureIds = {
      shareSource: await seedHvmImage("us-east-1", `fixture-base-${n}`),
      pvSource: (await seedPvImage("us-east-1", `fixture-legacy-${n}`)).imageId,
      instanceId: (await ec2().send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }))).Instances![0].InstanceId!,
    };
    // Today's code makes the AWS objects (so today's facts line); the fixture's state then records them as the old release did.
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(PV2HVM_FACTS)}\n` });
    const t = await testStack(emu, fixtureConfig(ids));
    const made = (await t.stack.up({ onOutput: t.onOutput })).outputs.images.value as Record<string, Record<string, string>>;
    // The old release never protected its images from deregistration (its delete would not lift it).
    await ec2("eu-west-1").send(new DisableImageDeregistrationProtectionCommand({ ImageId: made.base["eu-west-1"] }));
    await ec2("us-east-1").send(new DisableImageDeregistrationProtectionCommand({ ImageId: made.legacy["us-east-1"] }));
    await importOldState(t);
    const sizes = await storedProviderSizes(t);
    for (const [name, size] of Object.entries(sizes)) assert.ok(size > 20_000, `${name} carries the old release's whole serialised provider (${size} bytes)`);
    const state = await t.stack.exportStack();
    const outs = Object.fromEntries((state.deployment.resources as StateResource[]).filter((r) => r.outputs?.__provider).map((r) => [nameOf(r.urn), r.outputs!]));
    return { t, ids, outs };
  }

  async function assertAllGone(ids: FixtureIds, outs: Record<string, Record<string, unknown>>) {
    const share = outs.base as { imageIds: Record<string, string>; snapshotIds: Record<string, string[]> };
    const copy = share.imageIds["eu-west-1"];
    assert.strictEqual(await describeImage("eu-west-1", copy), undefined, `copy ${copy} deleted`);
    for (const s of share.snapshotIds["eu-west-1"]) assert.strictEqual(await snapshotExists("eu-west-1", s), false, `snapshot ${s} deleted`);
    assert.ok(await describeImage("us-east-1", ids.shareSource), "the source stays");
    assert.strictEqual(await alarmNamed(String(outs.web.alarmName)), undefined, "alarm deleted");
    assert.strictEqual(await describeImage("us-east-1", String(outs.legacy.imageId)), undefined, "converted image deleted");
    assert.strictEqual(await snapshotExists("us-east-1", String(outs.legacy.snapshotId)), false, "converted snapshot deleted");
    assert.deepStrictEqual(await leftovers(), []);
  }

  it("refreshes it with no change, previews no replacement, updates it in place with the current code, and destroys it", async () => {
    const { t, ids, outs } = await oldStack();

    const refresh = await t.stack.refresh({ onOutput: t.onOutput });
    const changes = refresh.summary.resourceChanges ?? {};
    // The old release's own stored provider reads them (it knows no protection).
    assert.ok(!changes.delete && !changes.update, `refresh found every old resource as it was: ${JSON.stringify(changes)}`);
    assert.deepStrictEqual((await t.stack.exportStack()).deployment.resources.find((r: StateResource) => nameOf(r.urn) === "base").outputs.imageIds, outs.base.imageIds);

    const preview = await t.stack.preview({ diff: true });
    assert.ok(!preview.changeSummary.replace && !preview.changeSummary.create && !preview.changeSummary.delete, JSON.stringify(preview.changeSummary));

    t.configure(fixtureConfig(ids, { accountIds: ["111122223333", "444455556666"], tags: { team: "images" } }));
    const up = await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual({ update: up.summary.resourceChanges?.update, replace: up.summary.resourceChanges?.replace }, { update: 3, replace: undefined });
    const copy = (outs.base.imageIds as Record<string, string>)["eu-west-1"];
    const perms = (await ec2("eu-west-1").send(new DescribeImageAttributeCommand({ ImageId: copy, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    assert.deepStrictEqual(perms.map((p) => p.UserId).sort(), ["111122223333", "444455556666"]);
    assert.strictEqual((await describeImage("eu-west-1", copy))?.Tags?.find((x) => x.Key === "team")?.Value, "images");
    const alarmTags = (await cw().send(new ListTagsForResourceCommand({ ResourceARN: String(outs.web.alarmArn) }))).Tags ?? [];
    assert.ok(alarmTags.some((x) => x.Key === "team" && x.Value === "images"), JSON.stringify(alarmTags));
    assert.strictEqual((await describeImage("us-east-1", String(outs.legacy.imageId)))?.Tags?.find((x) => x.Key === "team")?.Value, "images");
    // The update protects what the old release left unprotected (the default), and a preview then shows no change.
    assert.strictEqual((await describeImage("us-east-1", String(outs.legacy.imageId)))?.DeregistrationProtection, "enabled-without-cooldown");
    assert.strictEqual((await describeImage("eu-west-1", copy))?.DeregistrationProtection, "enabled-without-cooldown");
    const after = await t.stack.preview({ diff: true });
    assert.ok(!after.changeSummary.update && !after.changeSummary.replace && !after.changeSummary.create, JSON.stringify(after.changeSummary));
    for (const [name, size] of Object.entries(await storedProviderSizes(t))) assert.ok(size < 4_000, `${name} now stores the thin provider (${size} bytes)`);

    await t.stack.destroy({ onOutput: t.onOutput });
    await assertAllGone(ids, outs);
  });

  it("destroys it with the provider it was written with, in today's provider process", async () => {
    const { t, ids, outs } = await oldStack();
    await t.stack.destroy({ onOutput: t.onOutput });
    await assertAllGone(ids, outs);
  });
});
