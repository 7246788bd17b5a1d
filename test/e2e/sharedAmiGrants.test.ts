// SharedAmi grant records on a source shared in place, through the real engine: a create killed
// between recording its grants and making them leaves a record that `npm run sweep` takes away with
// what only it granted (another share's grants stay); 40 principals fit EC2's 50 tags per image; a
// principal granted by hand before the share is the share's once it asks for it (warned; nothing is
// inferred, so no concurrent share's grant is ever made permanent): the share's delete revokes it.
import * as assert from "assert";
import { CreateTagsCommand, DescribeImageAttributeCommand, DescribeSnapshotAttributeCommand, EC2Client, ModifyImageAttributeCommand, ModifySnapshotAttributeCommand } from "@aws-sdk/client-ec2";
import { describeImage, ec2, seedPvImage } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { startGateProxy } from "../support/gateProxy";
import { useEmulator } from "../support/hooks";
import { killHard, processTree } from "../support/processes";
import { resourceOutputs, testStack } from "../support/stack";
import { sweep } from "../../scripts/sweep";
import { readRecords, recordTags } from "../../providers/sharedAmi/grantRecords";
import { grantInPlace, noGrant, revokeInPlace } from "../../providers/sharedAmi/grants";

const A = "111122223333";
const B = "444455556666";
const accounts = (n: number) => Array.from({ length: n }, (_, i) => String(200000000000 + i));

async function launchAccounts(imageId: string): Promise<string[]> {
  const perms = (await ec2().send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
  return perms.map((p) => p.UserId!).sort();
}

async function volumeAccounts(snapshotId: string): Promise<string[]> {
  const out = await ec2().send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: "createVolumePermission" }));
  return (out.CreateVolumePermissions ?? []).map((p) => p.UserId!).sort();
}

const records = async (imageId: string) => readRecords((await describeImage("us-east-1", imageId))?.Tags);

describe("SharedAmi grant records on a source shared in place", function () {
  let emu: Emulator;
  useEmulator({}, (e) => (emu = e));

  it("a create killed between recording and granting leaves a record that sweep removes, with what only it granted", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "grants-crash");
    const snapshots = ((await describeImage("us-east-1", sourceAmiId))?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    // A live share holds A.
    const live = await testStack(emu, { shares: [{ name: "live", imageName: "live", sourceAmiId, regions: ["us-east-1"], accountIds: [A] }] });
    await live.stack.up({ onOutput: live.onOutput });
    const liveHolder = (await resourceOutputs(live.stack, "live")).holderId as string;

    // Another stack's share of A and B: its volume grant is held at a gate in front of the
    // emulator (after it recorded and granted launch), and the engine is killed there.
    const gate = await startGateProxy(emu.endpoint, /Action=ModifySnapshotAttribute/);
    try {
      const dead = await testStack({ ...emu, env: { ...emu.env, AWS_ENDPOINT_URL: gate.url } }, { shares: [{ name: "dead", imageName: "dead", sourceAmiId, regions: ["us-east-1"], accountIds: [A, B] }] });
      process.env.AWS_ENDPOINT_URL = emu.env.AWS_ENDPOINT_URL; // testStack gave this process the gate's: the sweep below goes straight to the emulator
      const up = dead.stack.up({ onOutput: dead.onOutput }).then(() => "finished", () => "failed");
      const which = await Promise.race([gate.holding.then(() => "held"), up]);
      assert.strictEqual(which, "held", "the create reached its volume grant");
      killHard(processTree(["pulumi", "up", `--stack ${dead.stack.name}`]));
      assert.strictEqual(await up, "failed");

      const held = await records(sourceAmiId);
      const deadHolder = [...held.keys()].find((h) => h !== liveHolder)!;
      assert.ok(held.get(deadHolder)?.expires, `the dead create's record carries an expiry: ${JSON.stringify([...held.keys()])}`);
      assert.deepStrictEqual([...held.get(deadHolder)!.launch].sort(), [A, B]);
      assert.deepStrictEqual(await launchAccounts(sourceAmiId), [A, B], "the dead create granted launch before it died");

      // Not expired: a sweep without --older-than leaves it (its create may still be running).
      const early = await sweep({ regions: ["us-east-1"], yes: true }, () => undefined);
      assert.ok(!early.found.some((f) => f.kind === "grant-record"), JSON.stringify(early.found));
      const swept = await sweep({ stack: dead.stack.name, regions: ["us-east-1"], olderThanMs: 0, yes: true }, () => undefined);
      assert.deepStrictEqual(swept.failures, []);
      assert.deepStrictEqual(swept.found.filter((f) => f.kind === "grant-record").map((f) => f.id), [`${sourceAmiId}#${deadHolder}`]);
    } finally {
      await gate.stop();
    }
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), [A], "B (only the dead create's) revoked, A (the live share's) kept");
    for (const s of snapshots) assert.deepStrictEqual(await volumeAccounts(s), [A], `snapshot ${s}: the live share's volume grant kept`);
    assert.deepStrictEqual([...(await records(sourceAmiId)).keys()], [liveHolder], "only the live share's record is left");
    assert.strictEqual((await records(sourceAmiId)).get(liveHolder)!.expires, undefined, "the live share was handed over: no expiry");
    await live.stack.destroy({ onOutput: live.onOutput });
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), []);
  });

  it("shares a source in place with 40 principals within EC2's 50 tags, through a replacement (two records at once), and takes them all back on destroy", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "grants-forty");
    const forty = accounts(40);
    const t = await testStack(emu, { shares: [{ name: "wide", imageName: "wide", sourceAmiId, regions: ["us-east-1"], accountIds: forty }] });
    await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), forty);
    // imageName is a replace field: the new share records and grants before the old one goes.
    t.configure({ shares: [{ name: "wide", imageName: "wide-v2", sourceAmiId, regions: ["us-east-1"], accountIds: forty }] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    assert.strictEqual(up.summary.resourceChanges?.replace, 1, JSON.stringify(up.summary.resourceChanges));
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), forty, "the replacement holds all 40");
    assert.strictEqual((await records(sourceAmiId)).size, 1);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), []);
    assert.deepStrictEqual([...(await records(sourceAmiId)).keys()], []);
  });

  it("a revocation that races another share granting the same principal: the other share keeps it", async () => {
    const { imageId } = await seedPvImage("us-east-1", "grants-race");
    const snapshotIds = ((await describeImage("us-east-1", imageId))?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    const img = { imageId, snapshotIds };
    const grantA = { launch: { accountIds: [A], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [] };
    await grantInPlace("us-east-1", img, "leaving", grantA, grantA);
    // The leaving share's revocation is held at a gate after it read the records (none other names
    // A); meanwhile another share records A, then grants it (a no-op: A is granted).
    const gate = await startGateProxy(emu.endpoint, /LaunchPermission\.Remove/);
    const direct = new EC2Client({ region: "us-east-1", endpoint: emu.endpoint });
    process.env.AWS_ENDPOINT_URL_EC2 = gate.url;
    try {
      const revoking = revokeInPlace("us-east-1", img, "leaving", noGrant, grantA);
      await gate.holding;
      const tags = Object.entries(recordTags("arriving", grantA)).map(([Key, Value]) => ({ Key, Value }));
      await direct.send(new CreateTagsCommand({ Resources: [imageId], Tags: tags }));
      await direct.send(new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ UserId: A }] } }));
      gate.open();
      await revoking;
    } finally {
      delete process.env.AWS_ENDPOINT_URL_EC2;
      gate.open();
      await gate.stop();
    }
    assert.deepStrictEqual(await launchAccounts(imageId), [A], "granted back after the revocation re-read the records");
    assert.deepStrictEqual([...(await records(imageId)).keys()], ["arriving"]);
  });
  it("a record write that would leave fewer than 2 of EC2's 50 tags free is refused before any change, so a revocation's marker always fits", async () => {
    const { imageId } = await seedPvImage("us-east-1", "grants-full");
    const snapshotIds = ((await describeImage("us-east-1", imageId))?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    const img = { imageId, snapshotIds };
    const grantA = { launch: { accountIds: [A], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [] };
    const grantAB = { launch: { accountIds: [A, B], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [] };
    await grantInPlace("us-east-1", img, "first", grantAB, grantAB);
    // 48 user tags: the first record's 1 and the user's.
    const have = ((await describeImage("us-east-1", imageId))?.Tags ?? []).filter((t) => !t.Key?.startsWith("aws:")).length;
    await ec2().send(new CreateTagsCommand({ Resources: [imageId], Tags: Array.from({ length: 48 - have }, (_, i) => ({ Key: `user-${i}`, Value: "v" })) }));
    // A second record (1 tag) would leave 1 free: refused, nothing written.
    await assert.rejects(grantInPlace("us-east-1", img, "second", grantA, grantA), /2 are kept free for revocations' marker tags/);
    assert.deepStrictEqual([...(await records(imageId)).keys()], ["first"], "nothing written");
    // A revocation whose record keeps its one tag still has room for its marker.
    await revokeInPlace("us-east-1", img, "first", grantA, { launch: { accountIds: [B], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [] });
    assert.deepStrictEqual(await launchAccounts(imageId), [A]);
  });

  it("a revocation whose reads lag EC2's writes (eventual consistency): another share's record written just before still keeps its principal", async () => {
    const { imageId } = await seedPvImage("us-east-1", "grants-lag");
    const snapshotIds = ((await describeImage("us-east-1", imageId))?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    const img = { imageId, snapshotIds };
    const grantA = { launch: { accountIds: [A], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [] };
    await grantInPlace("us-east-1", img, "leaving", grantA, grantA);
    // From here, image tag writes show in reads 3 s late (ec2_tag_lag.py). Another share records A
    // and grants it (a no-op: A is granted); then the leaving share revokes A at once: every read
    // it makes within 3 s misses that record.
    await emu.control("POST", "ec2/tag-lag", { seconds: 3 });
    try {
      const tags = Object.entries(recordTags("arriving", grantA)).map(([Key, Value]) => ({ Key, Value }));
      await ec2().send(new CreateTagsCommand({ Resources: [imageId], Tags: tags }));
      await ec2().send(new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ UserId: A }] } }));
      assert.ok(!(await records(imageId)).has("arriving"), "the read lags: the arriving record is not seen yet (the lag works)");
      const removes = async () => (await emu.calls("ModifyImageAttribute")).filter((c) => Object.keys(c).some((k) => k.startsWith("LaunchPermission.Remove"))).length;
      const removedBefore = await removes();
      await revokeInPlace("us-east-1", img, "leaving", noGrant, grantA);
      assert.strictEqual(await removes(), removedBefore, "A never revoked: the records were read consistently before revoking (no gap in access)");
    } finally {
      await emu.control("POST", "ec2/tag-lag", { seconds: 0 });
    }
    assert.deepStrictEqual(await launchAccounts(imageId), [A], "the arriving share's A kept (seen by a read that shows the revocation's own marker)");
    assert.deepStrictEqual([...(await records(imageId)).keys()], ["arriving"], "the leaving record and the marker are gone");
  });

  it("two shares holding the same principal revoked in parallel, each after reading the other's record: the principal goes", async () => {
    const { imageId } = await seedPvImage("us-east-1", "grants-parallel");
    const snapshotIds = ((await describeImage("us-east-1", imageId))?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    const img = { imageId, snapshotIds };
    const grantA = { launch: { accountIds: [A], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [A] };
    await grantInPlace("us-east-1", img, "sharefirst", grantA, grantA);
    await grantInPlace("us-east-1", img, "sharesecond", grantA, noGrant);
    // The first share's removal of its record is held (it read the records: the second names A);
    // the second share is deleted meanwhile (it reads the first's record: A stays), then the first goes on.
    const gate = await startGateProxy(emu.endpoint, /Action=DeleteTags.*sharefirst/);
    process.env.AWS_ENDPOINT_URL_EC2 = gate.url;
    try {
      const first = revokeInPlace("us-east-1", img, "sharefirst", noGrant, grantA);
      await gate.holding;
      await revokeInPlace("us-east-1", img, "sharesecond", noGrant, grantA);
      assert.deepStrictEqual(await launchAccounts(imageId), [A], "the second saw the first's record");
      gate.open();
      await first;
    } finally {
      delete process.env.AWS_ENDPOINT_URL_EC2;
      gate.open();
      await gate.stop();
    }
    assert.deepStrictEqual([...(await records(imageId)).keys()], []);
    assert.deepStrictEqual(await launchAccounts(imageId), [], "no record names A: revoked");
    for (const s of snapshotIds) assert.deepStrictEqual(await volumeAccounts(s), [], `snapshot ${s}`);
  });

  it("destroys two shares of one source together (in parallel): no grant is left", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "grants-destroy-both");
    const share = (name: string) => ({ name, imageName: name, sourceAmiId, regions: ["us-east-1"], accountIds: [A], shareSnapshots: true });
    const t = await testStack(emu, { shares: [share("one"), share("two")] });
    await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), [A]);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual([...(await records(sourceAmiId)).keys()], []);
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), []);
  });

  it("a principal granted on the source by hand before the share asked for it: warned, recorded as the share's, revoked with it; no record is left", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "grants-out-of-band");
    const snapshots = ((await describeImage("us-east-1", sourceAmiId))?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    // The user shared the source with A (launch and volumes) before ami-factory did.
    await ec2().send(new ModifyImageAttributeCommand({ ImageId: sourceAmiId, LaunchPermission: { Add: [{ UserId: A }] } }));
    for (const s of snapshots) await ec2().send(new ModifySnapshotAttributeCommand({ SnapshotId: s, Attribute: "createVolumePermission", OperationType: "add", UserIds: [A] }));
    const t = await testStack(emu, { shares: [{ name: "over", imageName: "over", sourceAmiId, regions: ["us-east-1"], accountIds: [A, B], shareSnapshots: true }] });
    await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), [A, B]);
    assert.match(t.output.join(""), new RegExp(`grants ${A} already \\(by hand, or by another share\\): this share records them as its own, so deleting it revokes them`));
    const held = await records(sourceAmiId);
    assert.deepStrictEqual([...held.keys()].length, 1, `one record, the share's: ${JSON.stringify([...held.keys()])}`);
    assert.deepStrictEqual([...[...held.values()][0].launch].sort(), [A, B].sort());
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), [], "A is the share's once it asked for it: revoked with it (README: shared in place)");
    for (const s of snapshots) assert.deepStrictEqual(await volumeAccounts(s), [], `snapshot ${s}`);
    assert.deepStrictEqual([...(await records(sourceAmiId)).keys()], [], "no record left to keep a grant forever");
  });

  it("pulumi up --replace of an exactName share in place: the replacement gets its own record, and the old share's delete leaves its grant", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "grants-exact-replace");
    const t = await testStack(emu, { shares: [{ name: "exact", imageName: "exact-share", exactName: true, sourceAmiId, regions: ["us-east-1"], accountIds: [A] }] });
    await t.stack.up({ onOutput: t.onOutput });
    const oldHolder = (await resourceOutputs(t.stack, "exact")).holderId as string;
    const urn = ((await t.stack.exportStack()).deployment.resources ?? []).find((r: { urn: string }) => r.urn.endsWith("::exact"))!.urn as string;
    const up = await t.stack.up({ onOutput: t.onOutput, replace: [urn] });
    assert.strictEqual(up.summary.resourceChanges?.replace, 1, JSON.stringify(up.summary.resourceChanges));
    const outs = await resourceOutputs(t.stack, "exact");
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), [A], "the live share keeps its grant");
    assert.notStrictEqual(outs.holderId, oldHolder, "a holder id of its own");
    assert.deepStrictEqual([...(await records(sourceAmiId)).keys()], [outs.holderId]);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts(sourceAmiId), []);
  });
});
