// ConvertedHvmAmi for real on the twin (AMI_FACTORY_EMULATOR=twin), through the engine: a classic PV
// disk (test/support/twinDisks.ts) imported with ImportSnapshot and registered as a paravirtual
// image; the worker is a VM booting the twin worker disk, the provider's SSM command runs
// scripts/guest/pv2hvm.sh in it on hot-plugged NVMe volumes, and launch verification boots the
// registered image. No SSM rule, no boot script: every answer comes from the VMs.
// Budget (TCG, 2 cores): one `up` makes both conversions of the same source (in place, and the copy
// a size change needs) with two workers (resumed from setup's saved state: seconds, not boots) and
// two verification boots in parallel; the failure cases start a worker only (no verification boot).
// Needs root (the disks are built on loop devices) and the worker disk (`setup.sh --twin`).
import * as assert from "assert";
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeInstancesCommand, RegisterImageCommand } from "@aws-sdk/client-ec2";
import * as fs from "fs";
import * as path from "path";
import { describeImage, ec2, leftovers, snapshotExists } from "../support/aws";
import { Emulator, startEmulator } from "../support/emulator";
import { resourceOutputs, testStack } from "../support/stack";
import { twinDisks, TwinDisks } from "../support/twinDisks";
import { importSnapshot, putObject } from "../../scripts/local/twinImport";

const REGION = "us-east-1";
const BUCKET = "twin-conversion-disks";

/** The disk image into the emulator's S3, then ImportSnapshot (scripts/local/twinImport.ts, as npm start does). */
const importDisk = async (file: string, key: string): Promise<string> => {
  await putObject(REGION, BUCKET, key, file);
  return importSnapshot(REGION, BUCKET, key, key);
};

/** A paravirtual image on the snapshot, as PV estates registered them (PV-GRUB kernel, root /dev/sda1). */
async function registerPv(name: string, snapshotId: string, sizeGiB: number): Promise<string> {
  const out = await ec2().send(new RegisterImageCommand({
    Name: name, Architecture: "x86_64", VirtualizationType: "paravirtual", KernelId: "aki-919dcaf8", RootDeviceName: "/dev/sda1",
    BlockDeviceMappings: [{ DeviceName: "/dev/sda1", Ebs: { SnapshotId: snapshotId, VolumeSize: sizeGiB, VolumeType: "gp3", DeleteOnTermination: true } }],
  }));
  return out.ImageId!;
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe("ConvertedHvmAmi on the twin: the guest script really runs in a worker VM", function () {
  this.timeout(40 * 60_000);
  let emu: Emulator;
  let disks: TwinDisks;
  let runDir: string;
  let savedEnv: NodeJS.ProcessEnv;
  let sourceAmiId = "";
  const began = Date.now();

  before(async function () {
    disks = twinDisks((l) => console.log(`      ${l}`));
    emu = await startEmulator({ mode: "twin", env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } });
    savedEnv = { ...process.env };
    Object.assign(process.env, emu.env);
    runDir = (await emu.control<{ runDir: string }>("GET", "twin")).runDir;
    sourceAmiId = await registerPv("legacy-pv", await importDisk(disks.pv, "legacy-pv.vmdk"), 1);
  });

  after(async function () {
    process.env = savedEnv;
    if (emu) await emu.stop();
    console.log(`      twinConversion: ${Math.round((Date.now() - began) / 1000)} s in all`);
    if (runDir) assert.strictEqual(fs.existsSync(runDir), false, `${runDir} is left after the emulator stopped`);
  });

  it("converts in place (auto) and by copy (a size change) in one up: real facts, images that boot, nothing left behind", async () => {
    const t = await testStack(emu, {
      conversions: [
        { name: "inplace", sourceAmiId },
        { name: "grown", sourceAmiId, targetSizeGiB: 2, imageName: "legacy-pv-grown" },
      ],
    });
    const started = Date.now();
    try {
      await t.stack.up({ onOutput: t.onOutput });
    } catch (e) {
      throw new Error(`${String(e)}\n--- output ---\n${t.output.join("").slice(-6000)}`);
    }
    console.log(`      up of both conversions: ${Math.round((Date.now() - started) / 1000)} s`);
    const inplace = await resourceOutputs(t.stack, "inplace");
    const grown = await resourceOutputs(t.stack, "grown");
    assert.deepStrictEqual(inplace.conversion, { method: "in-place", reason: "" });
    assert.deepStrictEqual(grown.conversion, { method: "copy", reason: "size-change" });
    for (const outs of [inplace, grown]) {
      const facts = outs.facts as Record<string, unknown>;
      assert.strictEqual(facts.script, "pv2hvm");
      assert.strictEqual(facts.partitioned, false, "the source's whole-disk ext4, as the script found it");
      assert.strictEqual(facts.fsType, "ext4");
      assert.strictEqual((outs.verification as { status: string }).status, "passed", "the registered image booted in qemu");
      const image = await describeImage(REGION, outs.imageId as string);
      assert.strictEqual(image?.VirtualizationType, "hvm");
    }
    // No worker, no volume, no temporary resource left; no VM folder left in the run directory.
    assert.deepStrictEqual(await leftovers(), []);
    const running = (await ec2().send(new DescribeInstancesCommand({ Filters: [{ Name: "instance-state-name", Values: ["pending", "running"] }] }))).Reservations ?? [];
    assert.deepStrictEqual(running.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId), []);
    assert.deepStrictEqual(filesUnder(path.join(runDir, "vms")), []);

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await snapshotExists(REGION, inplace.snapshotId as string), false);
  });

  it("a worker whose SSM agent never registers: the build times out and leaves nothing behind (no VM, no volume)", async () => {
    await emu.control("POST", "twin/worker-agent-off", { workers: 1 });
    const t = await testStack(emu, { conversions: [{ name: "mute", sourceAmiId, timeoutMinutes: 1, verify: false }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      assert.match(String(e), /SSM agent on i-[0-9a-f]+/, "the wait for the worker's agent is what failed");
      return true;
    });
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual(filesUnder(path.join(runDir, "vms")), [], "the worker VM is stopped and its files removed");
    await t.stack.destroy({ onOutput: t.onOutput });
  });

  it("a guest script that fails: the error carries its real stderr summary, and nothing is left behind", async () => {
    // A source whose root holds no file system: pv2hvm finds nothing to convert.
    const blank = await ec2().send(new CreateVolumeCommand({ AvailabilityZone: `${REGION}a`, Size: 1 }));
    const snapshotId = (await ec2().send(new CreateSnapshotCommand({ VolumeId: blank.VolumeId! }))).SnapshotId!;
    const blankAmi = await registerPv("blank-pv", snapshotId, 1);
    const t = await testStack(emu, { conversions: [{ name: "blank", sourceAmiId: blankAmi, verify: false }] });
    let message = "";
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      message = String(e);
      return true;
    });
    assert.match(message, /the guest script pv2hvm on worker i-[0-9a-f]+ /);
    assert.match(message, /stderr/, "the script's own stderr");
    assert.match(message, /pv2hvm: /, "a line the script itself wrote");
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual(filesUnder(path.join(runDir, "vms")), []);
    await t.stack.destroy({ onOutput: t.onOutput });
  });
});
