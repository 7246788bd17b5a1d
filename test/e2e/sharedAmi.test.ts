// SharedAmi through the real Pulumi engine (CLI + dynamic-provider plugin) on the emulator.
import * as assert from "assert";
import {
  DeregisterImageCommand, DisableImageDeregistrationProtectionCommand, DescribeImageAttributeCommand, ModifyImageAttributeCommand, DescribeSnapshotAttributeCommand, DescribeSnapshotsCommand,
} from "@aws-sdk/client-ec2";
import { startEmulator, Emulator } from "../support/emulator";
import { resourceOutputs, testStack, TestStack } from "../support/stack";
import { describeImage, ec2, seedPvImage, snapshotExists } from "../support/aws";
import { readToolchain } from "../../scripts/local/toolchain";

const ORG = "arn:aws:organizations::123456789012:organization/o-abcde12345";

describe("SharedAmi on the engine", function () {
  let emu: Emulator;
  let t: TestStack;
  let sourceAmiId: string;
  const share = () => ({ name: "base", sourceAmiId, regions: ["us-east-1", "eu-west-1", "ap-northeast-1"], accountIds: ["111122223333"], organizationArns: [ORG], tags: { team: "platform" } });

  before(async () => {
    console.log(`      (pulumi ${readToolchain().pulumiVersion} from ${readToolchain().pulumiCli})`);
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false" } });
    Object.assign(process.env, emu.env);
    sourceAmiId = (await seedPvImage("us-east-1", "base-image")).imageId;
    t = await testStack(emu, { shares: [share()] });
  });
  after(async () => {
    await emu?.stop();
  });

  it("copies to every region, shares with the accounts and organization, tags copies and their snapshots", async () => {
    const up = await t.stack.up({ onOutput: t.onOutput });
    const images = (up.outputs.images.value as Record<string, Record<string, string>>).base;
    assert.deepStrictEqual(Object.keys(images).sort(), ["ap-northeast-1", "eu-west-1", "us-east-1"]);
    assert.strictEqual(images["us-east-1"], sourceAmiId, "the source region shares the source in place");
    for (const region of ["eu-west-1", "ap-northeast-1"]) {
      const image = await describeImage(region, images[region]);
      assert.ok(image, `copy in ${region}`);
      assert.match(image.Name!, /^base-image-\d{8}T\d{6}Z$/, "the source name plus the build stamp");
      const tags = Object.fromEntries((image.Tags ?? []).map((x) => [x.Key, x.Value]));
      assert.strictEqual(tags.team, "platform");
      assert.strictEqual(tags["ami-factory:source-ami"], sourceAmiId);
      const perms = (await ec2(region).send(new DescribeImageAttributeCommand({ ImageId: images[region], Attribute: "launchPermission" }))).LaunchPermissions ?? [];
      assert.deepStrictEqual(perms.map((p) => p.UserId ?? p.OrganizationArn).sort(), ["111122223333", ORG]);
      const snapshotId = image.BlockDeviceMappings![0].Ebs!.SnapshotId!;
      const snap = (await ec2(region).send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots![0];
      assert.strictEqual(snap.Tags?.find((x) => x.Key === "team")?.Value, "platform", `snapshot ${snapshotId} tags`);
      const vol = await ec2(region).send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: "createVolumePermission" }));
      assert.deepStrictEqual(vol.CreateVolumePermissions?.map((p) => p.UserId), ["111122223333"]);
    }
    const sourcePerms = (await ec2("us-east-1").send(new DescribeImageAttributeCommand({ ImageId: sourceAmiId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    assert.ok(sourcePerms.some((p) => p.UserId === "111122223333"), "the source is shared in place");
  });

  it("previews an added account as an in-place update, not a replacement, and applies it", async () => {
    t.configure({ shares: [{ ...share(), accountIds: ["111122223333", "444455556666"] }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { same: 2, update: 1 });
    assert.match(preview.stdout, /~ accountIds/);
    await t.stack.up({ onOutput: t.onOutput });
    const ids = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    const perms = (await ec2("eu-west-1").send(new DescribeImageAttributeCommand({ ImageId: ids["eu-west-1"], Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    assert.deepStrictEqual(perms.map((p) => p.UserId).filter(Boolean).sort(), ["111122223333", "444455556666"]);
  });

  it("previews a new source image as a replacement", async () => {
    t.configure({ shares: [{ ...share(), accountIds: ["111122223333", "444455556666"], sourceAmiId: (await seedPvImage("us-east-1", "other")).imageId }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.strictEqual(preview.changeSummary.replace, 1, JSON.stringify(preview.changeSummary));
    t.configure({ shares: [{ ...share(), accountIds: ["111122223333", "444455556666"] }] });
  });

  it("notices on refresh a copy deregistered out of band, and puts it back on the next up", async () => {
    const before = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    const lostSnapshots = ((await resourceOutputs(t.stack, "base")).snapshotIds as Record<string, string[]>)["eu-west-1"];
    // Deregistration protection refuses a plain DeregisterImage: only someone who lifts it first gets through.
    const refused = await ec2("eu-west-1").send(new DeregisterImageCommand({ ImageId: before["eu-west-1"] })).then(() => undefined, (e: Error) => e);
    assert.strictEqual(refused?.name, "OperationNotPermitted", String(refused));
    await ec2("eu-west-1").send(new DisableImageDeregistrationProtectionCommand({ ImageId: before["eu-west-1"] }));
    await ec2("eu-west-1").send(new DeregisterImageCommand({ ImageId: before["eu-west-1"] }));
    const refresh = await t.stack.refresh({ onOutput: t.onOutput });
    assert.strictEqual(refresh.summary.resourceChanges?.update, 1, JSON.stringify(refresh.summary.resourceChanges));
    const drifted = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    assert.strictEqual(drifted["eu-west-1"], undefined);
    const preview = await t.stack.preview({ diff: true });
    assert.strictEqual(preview.changeSummary.update, 1);
    // Which property and region, and what happens to the copy's snapshot (the engine's diagnostics).
    assert.match(preview.stderr, new RegExp(`regions: the copy in eu-west-1 \\(${before["eu-west-1"]}\\) is gone \\(deregistered out of band\\): the update copies it again and deletes its left-over snapshots ${lostSnapshots.join(", ")}`));
    assert.ok(await snapshotExists("eu-west-1", lostSnapshots[0]), "deregistration left the snapshot");
    const up = await t.stack.up({ onOutput: t.onOutput });
    const restored = (up.outputs.images.value as Record<string, Record<string, string>>).base["eu-west-1"];
    assert.ok(restored && restored !== before["eu-west-1"], "a new copy in eu-west-1");
    assert.ok(await describeImage("eu-west-1", restored));
    for (const snap of lostSnapshots) assert.strictEqual(await snapshotExists("eu-west-1", snap), false, `the lost copy's snapshot ${snap} is deleted`);
    assert.strictEqual((await resourceOutputs(t.stack, "base")).lostCopies, undefined);
  });

  it("shows a launch permission removed out of band on refresh (the property named), and the next up restores it", async () => {
    const ids = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    const perms = async () => ((await ec2("ap-northeast-1").send(new DescribeImageAttributeCommand({ ImageId: ids["ap-northeast-1"], Attribute: "launchPermission" }))).LaunchPermissions ?? []).map((p) => p.UserId ?? p.OrganizationArn).sort();
    assert.deepStrictEqual(await perms(), ["111122223333", "444455556666", ORG]);
    await ec2("ap-northeast-1").send(new ModifyImageAttributeCommand({ ImageId: ids["ap-northeast-1"], LaunchPermission: { Remove: [{ UserId: "444455556666" }] } }));
    // (The automation API's refresh has no --diff option: the refresh's own output names the property.)
    const refresh = await t.stack.refresh({ onOutput: t.onOutput });
    assert.strictEqual(refresh.summary.resourceChanges?.update, 1, JSON.stringify(refresh.summary.resourceChanges));
    assert.match(refresh.stdout, /updates accountIds to the inputs/, refresh.stdout);
    assert.deepStrictEqual((await resourceOutputs(t.stack, "base")).accountIds, ["111122223333"]);
    const preview = await t.stack.preview({ diff: true });
    assert.strictEqual(preview.changeSummary.update, 1, preview.stdout);
    assert.match(preview.stderr, /updates accountIds to the inputs/);
    await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual(await perms(), ["111122223333", "444455556666", ORG], "restored");
    assert.deepStrictEqual((await t.stack.preview({ diff: true })).changeSummary, { same: 3 });
  });

  it("retires a region's copy when the region is removed: still launchable by id, deprecated, tagged removed", async () => {
    const before = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    t.configure({ shares: [{ ...share(), accountIds: ["111122223333", "444455556666"], regions: ["us-east-1", "eu-west-1"] }] });
    const preview = await t.stack.preview({ diff: true });
    assert.match(preview.stderr, new RegExp(`the copies of dropped regions \\(${before["ap-northeast-1"]} in ap-northeast-1\\): then retired, not deleted`));
    await t.stack.up({ onOutput: t.onOutput });
    const dropped = await describeImage("ap-northeast-1", before["ap-northeast-1"]);
    assert.strictEqual(dropped?.State, "available");
    assert.ok(dropped.DeprecationTime);
    assert.strictEqual(dropped.Tags?.find((x) => x.Key === "ami-factory:retired-by")?.Value, "removed");
    assert.deepStrictEqual((await t.stack.preview({ diff: true })).changeSummary, { same: 3 });
  });

  it("leaves nothing it made after destroy, and takes back what it granted on the source", async () => {
    const outs = await resourceOutputs(t.stack, "base");
    const ids = outs.imageIds as Record<string, string>;
    const snaps = outs.snapshotIds as Record<string, string[]>;
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await describeImage("eu-west-1", ids["eu-west-1"]), undefined);
    for (const s of snaps["eu-west-1"]) assert.strictEqual(await snapshotExists("eu-west-1", s), false, `snapshot ${s}`);
    assert.ok(await describeImage("us-east-1", sourceAmiId), "the source stays");
    const perms = (await ec2("us-east-1").send(new DescribeImageAttributeCommand({ ImageId: sourceAmiId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    assert.deepStrictEqual(perms, []);
  });
});
