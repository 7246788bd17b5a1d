// ConvertedHvmAmi through the real Pulumi engine on the emulator. moto runs no guest script: the
// emulator answers the SSM command with the facts line a real run prints (the guest script itself
// is proven by the boot test in test/guest).
import * as assert from "assert";
import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { describeImage, ec2, leftovers, seedHvmImage, seedPvImage, seedPvImageWithDisks, snapshotExists } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { egressOf } from "../support/egress";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack } from "../support/stack";
import { PV2HVM_COPY_FACTS, PV2HVM_FACTS, PV2HVM_REFUSAL, SURROGATE_FACTS } from "../support/facts";

// Facts lines in pv2hvm.sh's declared schema ("# @facts", version 4): of a run in place and of a copy.
const IN_PLACE_FACTS = PV2HVM_FACTS;
const COPY_FACTS = PV2HVM_COPY_FACTS;
const FACTS = { ...IN_PLACE_FACTS, ixgbevfDriver: true, fstabNofail: ["/media/ephemeral0"] };

/** What the emulator matches to tell pv2hvm --in-place from the copy: the command's last line runs the script with its arguments. */
const IN_PLACE_COMMAND = ".sh '--in-place' 'vol-";

/** pv2hvm --in-place declining (exit 3, nothing changed), as the contract of issue 12 spells its refusal line. */
const refusal = (reason: string) => ({ ...PV2HVM_REFUSAL, reason, detail: "the layout leaves no room for boot code" });

type Send = { Comment: string; InstanceIds: string[]; Parameters: { commands: string[] } };
/** The guest commands of one build, in the order sent (their comment names the build). */
const sendsOf = async (emu: Emulator, buildId: string) => (await emu.calls<Send>("SendCommand")).filter((c) => c.Comment.startsWith(`ami-factory ${buildId} `));
/** The volumes one build created (tagged with its build id at creation). */
const volumesOf = async (emu: Emulator, buildId: string) => (await emu.calls("CreateVolume")).filter((c) => Object.entries(c).some(([k, v]) => v === "ami-factory:build-id" && c[k.replace(/Key$/, "Value")] === buildId));
/** The volume id an argument of a guest command names. */
const volumeArg = (send: Send, flag: string) => new RegExp(`'${flag}' '(vol-[0-9a-f]+)'`).exec(send.Parameters.commands.at(-1)!)?.[1];

describe("ConvertedHvmAmi on the engine", function () {
  let emu: Emulator;
  useEmulator({ iam: true, recordEachTest: true }, (e) => (emu = e));

  it("converts a PV image in place by default: one volume from the source snapshot, whose snapshot is the image's root; registers an HVM image as asked, leaves no temporary resource, and deletes it on destroy", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "legacy-web");
    await emu.failSsmCommands({ match: "", script: "pv2hvm", status: "Success", output: `copying...\n${JSON.stringify(FACTS)}\n` });
    const t = await testStack(emu, { conversions: [{ name: "legacy", sourceAmiId, tags: { team: "web" } }] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    const imageId = (up.outputs.images.value as Record<string, Record<string, string>>).legacy["us-east-1"];
    assert.match(imageId, /^ami-/);

    const [sent] = await emu.calls("RegisterImage");
    assert.strictEqual(sent.VirtualizationType, "hvm");
    assert.strictEqual(sent.RootDeviceName, "/dev/xvda");
    assert.strictEqual(sent["BlockDeviceMapping.1.DeviceName"], "/dev/xvda");
    assert.strictEqual(sent["BlockDeviceMapping.1.Ebs.DeleteOnTermination"], "true");
    const sourceRoot = (await describeImage("us-east-1", sourceAmiId))!.BlockDeviceMappings![0].Ebs!.VolumeSize!;
    assert.strictEqual(sent["BlockDeviceMapping.1.Ebs.VolumeSize"], String(sourceRoot), "in place: the source root's size");
    assert.strictEqual(sent.EnaSupport, "true", "ENA from the facts");
    assert.strictEqual(sent.SriovNetSupport, "simple", "the image has ixgbevf");
    assert.strictEqual(sent.BootMode, "legacy-bios");
    assert.strictEqual(sent.Architecture, "x86_64");
    assert.match(sent.Name, /^legacy-web-hvm-\d{8}T\d{6}Z$/, "the default name plus the build stamp");

    const outs = await resourceOutputs(t.stack, "legacy");
    assert.strictEqual(sent["BlockDeviceMapping.1.Ebs.SnapshotId"], outs.snapshotId);
    assert.deepStrictEqual(outs.facts, FACTS);
    assert.strictEqual(outs.nitroReady, true);
    assert.strictEqual((outs.verification as { status: string }).status, "passed", "verified by default");
    assert.deepStrictEqual(outs.conversion, { method: "in-place", reason: "" });
    const image = await describeImage("us-east-1", imageId);
    const tags = Object.fromEntries((image?.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tags.team, "web");
    assert.strictEqual(tags["ami-factory:source-ami"], sourceAmiId);
    assert.deepStrictEqual(JSON.parse(tags["ami-factory:conversion"]), { method: "in-place", reason: "" });
    assert.deepStrictEqual(JSON.parse(tags["ami-factory:facts"]), { script: "pv2hvm", schemaVersion: PV2HVM_FACTS.schemaVersion, partitioned: false, fsType: "ext4", enaDriver: true, nvmeDriver: true, nitroReady: true, ixgbevfDriver: true, defaultKernel: "6.1.0-18-amd64" });
    assert.ok(tags["ami-factory:tool-version"] && tags["ami-factory:built-at"] && tags["ami-factory:build-id"]);

    // The worker as the brief asks: IMDSv2, no key pair, the SSM command with --sanitize.
    const runs = await emu.calls("RunInstances");
    assert.strictEqual(runs.length, 3, "the seed, the worker, the launch verification");
    const run = runs[1];
    assert.strictEqual(run["MetadataOptions.HttpTokens"], "required");
    // Tagged at creation with the build id, the stack, the resource's URN and an expiry.
    const tagged = Object.fromEntries(Object.entries(run).filter(([k]) => /^TagSpecification\.1\.Tag\.\d+\.Key$/.test(k)).map(([k, v]) => [v, run[k.replace(/Key$/, "Value")]]));
    const urn = (await t.stack.exportStack()).deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::legacy")).urn;
    assert.strictEqual(tagged["ami-factory:urn"], urn, "the engine's own URN");
    assert.strictEqual(tagged["ami-factory:stack"], `ami-factory/${t.stack.name}`);
    assert.match(tagged["ami-factory:build-id"], /^b-[0-9a-f]{16}$/);
    assert.ok(Date.parse(tagged["ami-factory:expires-at"]) > Date.now());
    assert.strictEqual(run.KeyName, undefined);
    const sends = await emu.calls<Send>("SendCommand");
    assert.strictEqual(sends.length, 1, "one guest command: in place");
    assert.match(sends[0].Parameters.commands.at(-1)!, /'--in-place' 'vol-[0-9a-f]+' '--sanitize'$/);
    // One volume, from the source's root snapshot (no target); the image's snapshot is of that volume.
    const sourceSnapshot = (await describeImage("us-east-1", sourceAmiId))!.BlockDeviceMappings![0].Ebs!.SnapshotId;
    const volumes = await emu.calls("CreateVolume");
    assert.deepStrictEqual(volumes.map((v) => [v.SnapshotId, v.Size]), [[sourceSnapshot, String(sourceRoot)]]);
    assert.deepStrictEqual((await emu.calls("CreateSnapshot")).map((c) => c.VolumeId), [volumeArg(sends[0], "--in-place")]);
    assert.deepStrictEqual(await egressOf(emu), { revoked: ["-1 0.0.0.0/0"], allowed: ["tcp 443 0.0.0.0/0"] }, "outbound HTTPS only");
    assert.deepStrictEqual(await leftovers(), []);

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await describeImage("us-east-1", imageId), undefined);
    assert.strictEqual(await snapshotExists("us-east-1", outs.snapshotId as string), false);
  });

  it("carries every non-root mapping of the source over (data snapshot, instance store), replacing only the root, and keeps the source's data snapshot on destroy", async () => {
    const { imageId: sourceAmiId, rootSnapshotId, dataSnapshotId } = await seedPvImageWithDisks("us-east-1", "legacy-disks");
    const noIxgbevf = { ...FACTS, ixgbevfDriver: false, nitroReady: false, enaDriver: false };
    await emu.failSsmCommands({ match: "", script: "pv2hvm", status: "Success", output: `${JSON.stringify(noIxgbevf)}\n` });
    const t = await testStack(emu, { conversions: [{ name: "disks", sourceAmiId }] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    const imageId = (up.outputs.images.value as Record<string, Record<string, string>>).disks["us-east-1"];

    const sent = (await emu.calls("RegisterImage")).at(-1)!; // the first one seeded the source
    const mappings = Object.fromEntries(Object.entries(sent).filter(([k]) => k.startsWith("BlockDeviceMapping.")));
    const outs = await resourceOutputs(t.stack, "disks");
    assert.deepStrictEqual(mappings, {
      "BlockDeviceMapping.1.DeviceName": "/dev/xvda",
      "BlockDeviceMapping.1.Ebs.SnapshotId": outs.snapshotId,
      "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true",
      "BlockDeviceMapping.1.Ebs.VolumeType": "gp3",
      "BlockDeviceMapping.1.Ebs.VolumeSize": "8", // in place: the source root's size
      "BlockDeviceMapping.2.DeviceName": "/dev/sdf",
      "BlockDeviceMapping.2.Ebs.SnapshotId": dataSnapshotId,
      "BlockDeviceMapping.2.Ebs.VolumeSize": "60",
      "BlockDeviceMapping.2.Ebs.VolumeType": "gp3",
      "BlockDeviceMapping.2.Ebs.Iops": "4000",
      "BlockDeviceMapping.2.Ebs.Throughput": "250",
      "BlockDeviceMapping.2.Ebs.DeleteOnTermination": "false",
      "BlockDeviceMapping.3.DeviceName": "/dev/sdb",
      "BlockDeviceMapping.3.VirtualName": "ephemeral0",
      "BlockDeviceMapping.4.DeviceName": "/dev/sdc",
      "BlockDeviceMapping.4.VirtualName": "ephemeral1",
    }, "the root replaced, every other mapping as registered; no Encrypted beside a snapshot (EC2 refuses it)");
    assert.strictEqual(sent.EnaSupport, "false", "ENA follows the facts");
    assert.strictEqual(sent.SriovNetSupport, undefined, "no ixgbevf: SriovNetSupport (which cannot be removed) is not set");
    assert.strictEqual(outs.nitroReady, false);

    // As DescribeImages shows it: the data volume encrypted as its snapshot is.
    const image = (await describeImage("us-east-1", imageId))!;
    const data = image.BlockDeviceMappings!.find((m) => m.DeviceName === "/dev/sdf")!;
    assert.strictEqual(data.Ebs!.SnapshotId, dataSnapshotId);
    assert.strictEqual(data.Ebs!.Encrypted, true);
    assert.deepStrictEqual(image.BlockDeviceMappings!.filter((m) => m.VirtualName).map((m) => [m.DeviceName, m.VirtualName]), [["/dev/sdb", "ephemeral0"], ["/dev/sdc", "ephemeral1"]]);
    assert.deepStrictEqual(await leftovers(), []);

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await describeImage("us-east-1", imageId), undefined);
    assert.strictEqual(await snapshotExists("us-east-1", outs.snapshotId as string), false, "the conversion's own snapshot goes");
    assert.strictEqual(await snapshotExists("us-east-1", dataSnapshotId), true, "the source's data snapshot stays");
    assert.strictEqual(await snapshotExists("us-east-1", rootSnapshotId), true);
    assert.ok(await describeImage("us-east-1", sourceAmiId), "the source image stays");
  });

  it("fails the create, clearly and with nothing left, when the facts line is another script's or of the wrong shape", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "wrong-facts");
    const { rootUuid: _dropped, ...missing } = FACTS;
    for (const [output, message] of [
      [JSON.stringify(SURROGATE_FACTS), /the facts line of pv2hvm does not match its schema \(version 4\): script is "surrogate", not "pv2hvm"/],
      [JSON.stringify(missing), /rootUuid is missing/],
      [JSON.stringify({ ...FACTS, nitroReady: "yes" }), /nitroReady is "yes" \(string\), not a boolean/],
    ] as const) {
      await emu.clearSsmRules();
      await emu.failSsmCommands({ match: "", script: "pv2hvm", status: "Success", output: `${output}\n` });
      const t = await testStack(emu, { conversions: [{ name: "wrong", sourceAmiId }] });
      await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
        const text = String(e);
        assert.match(text, /step "run pv2hvm --in-place on the worker" failed/);
        assert.match(text, message);
        return true;
      });
      assert.deepStrictEqual(await leftovers(), []);
      assert.deepStrictEqual((await emu.calls("RegisterImage")).filter((c) => c.Name !== "wrong-facts"), []);
      assert.deepStrictEqual(await emu.calls("CreateSnapshot"), []);
    }
  });

  it("fails with the guest script's last lines when it fails (in place, then the copy auto falls back to), and leaves nothing behind", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "broken");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Failed", output: "pv2hvm: copying\n", stderr: "pv2hvm: grub-install: error: disk not found\n", responseCode: 1 });
    const t = await testStack(emu, { conversions: [{ name: "broken", sourceAmiId }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      const text = String(e);
      assert.match(text, /step "run pv2hvm on the worker" failed/);
      // (the engine indents a message's lines under its resource)
      assert.match(text, /the guest script pv2hvm on worker i-[0-9a-f]+ exited with code 1\n +stderr \(last lines\):\n +pv2hvm: grub-install: error: disk not found\n +stdout \(last lines\):\n +pv2hvm: copying/);
      assert.doesNotMatch(text, /can no longer happen/);
      assert.match(text, /cleaned up: .*launch worker/);
      return true;
    });
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual(await emu.calls("RegisterImage"), []);
    const snapshots = await emu.calls("CreateSnapshot");
    assert.deepStrictEqual(snapshots, []);
  });

  it("copies with the same worker when the guest declines to convert in place (XFS, too small a gap), copies at once for a size change, says why, and leaves nothing behind", async () => {
    const [xfs, gap, grown] = await Promise.all(["xfs-root", "tight-gap", "grown-root"].map((n) => seedPvImage("us-east-1", n)));
    await emu.failSsmCommands({ match: "", script: "pv2hvm", status: "Success", output: `${JSON.stringify(COPY_FACTS)}\n` });
    // One refusal per in-place command (the two builds run concurrently: which gets which is open).
    for (const reason of ["xfs-at-sector-0", "gap-too-small"]) {
      await emu.failSsmCommands({ match: IN_PLACE_COMMAND, script: "pv2hvm", status: "Failed", responseCode: 3, output: `checking the layout\n${JSON.stringify(refusal(reason))}\n`, times: 1 });
    }
    const t = await testStack(emu, { conversions: [{ name: "xfs", sourceAmiId: xfs.imageId }, { name: "gap", sourceAmiId: gap.imageId }, { name: "grown", sourceAmiId: grown.imageId, targetSizeGiB: 20 }] });
    await t.stack.up({ onOutput: t.onOutput });

    const reasons: string[] = [];
    for (const name of ["xfs", "gap"]) {
      const outs = await resourceOutputs(t.stack, name);
      const conversion = outs.conversion as { method: string; reason: string };
      assert.strictEqual(conversion.method, "copy", name);
      reasons.push(conversion.reason);
      assert.deepStrictEqual(outs.facts, COPY_FACTS);
      // In place first, declined; then the copy on the same worker, from the same source volume.
      const [inPlace, copy, ...more] = await sendsOf(emu, outs.buildId as string);
      assert.deepStrictEqual(more, []);
      assert.match(inPlace.Comment, / pv2hvm --in-place$/);
      assert.match(copy.Comment, / pv2hvm --source$/);
      assert.deepStrictEqual(copy.InstanceIds, inPlace.InstanceIds, "the same worker");
      assert.strictEqual(volumeArg(copy, "--source"), volumeArg(inPlace, "--in-place"));
      // The source volume first, the empty target only after the refusal; the image is the target's snapshot.
      const volumes = await volumesOf(emu, outs.buildId as string);
      assert.deepStrictEqual(volumes.map((v) => [v.SnapshotId !== undefined, v.Size]), [[true, "8"], [false, "9"]]);
      const snapshot = (await emu.calls("CreateSnapshot")).find((c) => c.VolumeId === volumeArg(copy, "--target"));
      assert.ok(snapshot, "the image's snapshot is of the target volume");
    }
    assert.deepStrictEqual(reasons.sort(), ["gap-too-small", "xfs-at-sector-0"]);

    const grownOuts = await resourceOutputs(t.stack, "grown");
    assert.deepStrictEqual(grownOuts.conversion, { method: "copy", reason: "size-change" });
    const grownSends = await sendsOf(emu, grownOuts.buildId as string);
    assert.deepStrictEqual(grownSends.map((c) => c.Comment.split(" ").at(-1)), ["--source"], "a size change copies without asking the guest");
    assert.deepStrictEqual((await volumesOf(emu, grownOuts.buildId as string)).map((v) => v.Size).sort(), ["20", "8"]);
    const registered = (await emu.calls("RegisterImage")).find((c) => c["BlockDeviceMapping.1.Ebs.SnapshotId"] === grownOuts.snapshotId)!;
    assert.strictEqual(registered["BlockDeviceMapping.1.Ebs.VolumeSize"], "20");
    assert.deepStrictEqual(await leftovers(), []);

    // How an image was converted does not make another image: a new method alone changes nothing.
    t.configure({ conversions: [{ name: "xfs", sourceAmiId: xfs.imageId, method: "copy" }, { name: "gap", sourceAmiId: gap.imageId }, { name: "grown", sourceAmiId: grown.imageId, targetSizeGiB: 20 }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { same: 5 }, preview.stdout);

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("under auto, copies a fresh volume of the source snapshot when in place fails after it may have written, says why, and leaves nothing behind", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "fails-in-place");
    await emu.failSsmCommands({ match: "", script: "pv2hvm", status: "Success", output: `${JSON.stringify(COPY_FACTS)}\n` });
    await emu.failSsmCommands({ match: IN_PLACE_COMMAND, script: "pv2hvm", status: "Failed", responseCode: 1, output: "", stderr: "pv2hvm: error: e2fsck -fn /dev/nvme1n1 found problems after GRUB's boot sector was written\n" });
    const t = await testStack(emu, { conversions: [{ name: "fallback", sourceAmiId }] });
    await t.stack.up({ onOutput: t.onOutput });
    const outs = await resourceOutputs(t.stack, "fallback");
    assert.deepStrictEqual(outs.conversion, { method: "copy", reason: "in-place-failed" });
    assert.deepStrictEqual(outs.facts, COPY_FACTS);
    const tags = Object.fromEntries(((await describeImage("us-east-1", outs.imageId as string))!.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.deepStrictEqual(JSON.parse(tags["ami-factory:conversion"]!), { method: "copy", reason: "in-place-failed" });
    assert.match(t.output.join(""), /pv2hvm --in-place failed; copying a fresh volume of the source snapshot instead[\s\S]*found problems after GRUB's boot sector was written/);
    const [inPlace, copy, ...more] = await sendsOf(emu, outs.buildId as string);
    assert.deepStrictEqual(more, []);
    assert.match(inPlace.Comment, / pv2hvm --in-place$/);
    assert.match(copy.Comment, / pv2hvm --source$/);
    assert.deepStrictEqual(copy.InstanceIds, inPlace.InstanceIds, "the same worker");
    const written = volumeArg(inPlace, "--in-place")!;
    assert.notStrictEqual(volumeArg(copy, "--source"), written, "not the volume in place wrote to");
    // The written volume, then (made together, in either order) a fresh one from the source snapshot and the empty target.
    const [first, ...later] = (await volumesOf(emu, outs.buildId as string)).map((v) => `${v.SnapshotId ? "snapshot" : "empty"} ${v.Size}`);
    assert.deepStrictEqual([first, later.sort()], ["snapshot 8", ["empty 9", "snapshot 8"]]);
    const deletes = (await emu.calls("DeleteVolume")).map((c) => c.VolumeId);
    assert.ok(deletes.includes(written), "the written volume is deleted");
    const snapshot = (await emu.calls("CreateSnapshot")).find((c) => c.VolumeId === volumeArg(copy, "--target"));
    assert.ok(snapshot, "the image's snapshot is of the target volume");
    assert.deepStrictEqual(await leftovers(), []);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("converts with encrypted: true and the default worker (the AL2023 public parameter's image): the worker's root encrypted by its device name alone", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "sealed-source");
    await emu.failSsmCommands({ match: "", script: "pv2hvm", status: "Success", output: `${JSON.stringify(COPY_FACTS)}\n` });
    const t = await testStack(emu, { conversions: [{ name: "sealed", sourceAmiId, encrypted: true }] });
    await t.stack.up({ onOutput: t.onOutput });
    const outs = await resourceOutputs(t.stack, "sealed");
    assert.deepStrictEqual(outs.conversion, { method: "copy", reason: "encryption-change" });
    const al2023 = (await new SSMClient({ region: "us-east-1" }).send(new GetParameterCommand({ Name: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64" }))).Parameter!.Value!;
    const worker = (await emu.calls<Record<string, string>>("RunInstances")).find((c) => c.ImageId === al2023)!;
    assert.ok(worker, "the worker ran the AL2023 parameter's image");
    assert.deepStrictEqual(
      Object.fromEntries(Object.entries(worker).filter(([k]) => k.startsWith("BlockDeviceMapping."))),
      { "BlockDeviceMapping.1.DeviceName": "/dev/xvda", "BlockDeviceMapping.1.Ebs.Encrypted": "true", "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true" },
      "only the root device name and encryption: size and type stay the image's",
    );
    for (const v of await volumesOf(emu, outs.buildId as string)) assert.strictEqual(v.Encrypted, "true");
    assert.deepStrictEqual(await leftovers(), []);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("fails method in-place with the guest's reason when it declines, and leaves nothing behind", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "strict");
    await emu.failSsmCommands({ match: "", script: "pv2hvm", status: "Success", output: `${JSON.stringify(COPY_FACTS)}\n` });
    await emu.failSsmCommands({ match: IN_PLACE_COMMAND, script: "pv2hvm", status: "Failed", responseCode: 3, output: `${JSON.stringify(refusal("unknown-layout"))}\n` });
    const t = await testStack(emu, { conversions: [{ name: "strict", sourceAmiId, method: "in-place" }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      assert.match(String(e), /step "run pv2hvm --in-place on the worker" failed: method "in-place": pv2hvm cannot convert this root in place \(unknown-layout: the layout leaves no room for boot code\); nothing on it was changed\. Set method "auto" or "copy"/);
      return true;
    });
    assert.deepStrictEqual((await emu.calls<Send>("SendCommand")).map((c) => c.Comment.split(" ").at(-1)), ["--in-place"], "no copy");
    assert.strictEqual((await emu.calls("CreateVolume")).length, 1, "no target volume");
    assert.deepStrictEqual(await emu.calls("CreateSnapshot"), []);
    assert.deepStrictEqual((await emu.calls("RegisterImage")).filter((c) => c.Name !== "strict"), []);
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("refuses method in-place with targetSizeGiB at preview, naming the field, before anything is created", async () => {
    const { imageId } = await seedPvImage("us-east-1", "fixed-size");
    await emu.reset({ keepMoto: true });
    await emu.recordActions("*");
    const t = await testStack(emu, { conversions: [{ name: "fixed", sourceAmiId: imageId, method: "in-place", targetSizeGiB: 20 }] });
    await assert.rejects(t.stack.preview({ onOutput: t.onOutput }), /conversions\[0\]\.targetSizeGiB: targetSizeGiB is set with method "in-place": converted in place, the root keeps the source snapshot's size/);
    const created = (await emu.allCalls()).filter((c) => /^(Create|Run|Register|Attach|Send)/.test(c.action));
    assert.deepStrictEqual(created.map((c) => c.action), []);
  });

  it("refuses an HVM image before creating anything", async () => {
    const imageId = await seedHvmImage("us-east-1");
    await emu.reset({ keepMoto: true });
    await emu.recordActions("*");
    const t = await testStack(emu, { conversions: [{ name: "modern", sourceAmiId: imageId }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => (assert.match(String(e), /already HVM: use the image as it is/), true));
    const created = (await emu.allCalls()).filter((c) => /^(Create|Run|Register|Attach)/.test(c.action));
    assert.deepStrictEqual(created.map((c) => c.action), []);
  });

  for (const [what, prepare, message] of [
    ["an instance-store image", async (id: string) => emu.setRootDeviceType("us-east-1", id, "instance-store"), /instance-store backed/],
    ["a Marketplace image", async (id: string) => emu.setProductCodes("us-east-1", id, [{ ProductCodeId: "abc123", ProductCodeType: "marketplace" }]), /Marketplace product codes \(abc123\)/],
  ] as const) {
    it(`refuses ${what} before creating anything`, async () => {
      const { imageId } = await seedPvImage("us-east-1", `refused-${what.length}`);
      await prepare(imageId);
      await emu.reset({ keepMoto: true });
      await emu.recordActions("*");
      const t = await testStack(emu, { conversions: [{ name: "refused", sourceAmiId: imageId }] });
      await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => (assert.match(String(e), message), true));
      const created = (await emu.allCalls()).filter((c) => /^(Create|Run|Register|Attach)/.test(c.action));
      assert.deepStrictEqual(created.map((c) => c.action), []);
    });
  }

  it("refuses an arm64 source before creating anything (PV-GRUB is x86 only)", async () => {
    const { imageId } = await seedPvImageWithDisks("us-east-1", "arm-pv", "arm64");
    await emu.reset({ keepMoto: true });
    await emu.recordActions("*");
    const t = await testStack(emu, { conversions: [{ name: "arm", sourceAmiId: imageId }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => (assert.match(String(e), /has architecture arm64: only x86_64 paravirtual \(PV-GRUB\) images can be converted/), true));
    const created = (await emu.allCalls()).filter((c) => /^(Create|Run|Register|Attach)/.test(c.action));
    assert.deepStrictEqual(created.map((c) => c.action), []);
  });

  it("refuses a source image that does not exist, naming it", async () => {
    const t = await testStack(emu, { conversions: [{ name: "ghost", sourceAmiId: "ami-0123456789abcdef0" }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), /sourceAmiId ami-0123456789abcdef0 was not found in us-east-1/);
    const images = await ec2().send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag-key", Values: ["ami-factory:build-id"] }] }));
    assert.deepStrictEqual(images.Images, []);
  });
});

describe("ConvertedHvmAmi timeouts", function () {
  let emu: Emulator;
  useEmulator({ iam: true }, (e) => (emu = e));

  it("fails at timeoutMinutes with the step that was waiting, and cleans up", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "slow");
    await emu.failSsmCommands({ match: "pv2hvm", status: "InProgress" }); // the guest script never ends
    const t = await testStack(emu, { conversions: [{ name: "slow", sourceAmiId, timeoutMinutes: 1 }] });
    const started = Date.now();
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      assert.match(String(e), /step "run pv2hvm --in-place on the worker" failed: timed out after \d+s waiting for pv2hvm on i-[0-9a-f]+/);
      return true;
    });
    assert.ok(Date.now() - started < 3 * 60_000, "gave up near its deadline");
    assert.deepStrictEqual(await leftovers(), []);
  });
});
