// ConvertedHvmAmi for real on the twin (AMI_FACTORY_EMULATOR=twin), through the engine: classic PV
// disks (test/support/twinDisks.ts) imported with ImportSnapshot and registered as paravirtual
// images; the worker is a VM booting the twin worker disk, the provider's SSM command runs
// scripts/guest/pv2hvm.sh in it on hot-plugged NVMe volumes, and launch verification boots the
// registered image. No SSM rule, no boot script: every answer comes from the VMs.
// Budget (TCG, 2 cores): one `up` makes three conversions (in place; the copy a size change needs;
// the copy `auto` falls back to when pv2hvm refuses an unclean root in place) with three workers
// (resumed from setup's saved state: seconds, not boots) and three verification boots in parallel;
// the crash and failure cases start workers only (no verification boot).
// Needs root (the disks are built on loop devices) and the worker disk (`setup.sh --twin`).
import * as assert from "assert";
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeInstancesCommand, RegisterImageCommand } from "@aws-sdk/client-ec2";
import { ListCommandsCommand, SSMClient } from "@aws-sdk/client-ssm";
import * as fs from "fs";
import * as path from "path";
import { describeImage, ec2, imagesTagged, leftovers, snapshotExists } from "../support/aws";
import { Emulator, startEmulator } from "../support/emulator";
import { killHard, processTree } from "../support/processes";
import { resourceOutputs, testStack } from "../support/stack";
import { twinDisks, TwinDisks } from "../support/twinDisks";
import { importSnapshot, putObject } from "../../scripts/local/twinImport";
import { sweep } from "../../scripts/sweep";
import { filesUnder } from "../support/host";

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


/** Instances not terminated (pending, running, stopping, stopped): none may outlive a build. */
async function liveInstances(): Promise<string[]> {
  const out = await ec2().send(new DescribeInstancesCommand({ Filters: [{ Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] }] }));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
}

/** Polls `probe` every second until it returns a value; fails early when `settled` says the operation it watches ended. */
async function until<T>(what: string, seconds: number, probe: () => Promise<T | undefined>, settled: () => string | undefined): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    const ended = settled();
    if (ended) throw new Error(`${what}: the operation ended first (${ended})`);
    if (Date.now() > end) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe("ConvertedHvmAmi on the twin: the guest script really runs in a worker VM", function () {
  this.timeout(40 * 60_000);
  let emu: Emulator;
  let disks: TwinDisks;
  let runDir: string;
  let savedEnv: NodeJS.ProcessEnv;
  let sourceAmiId = "";
  let uncleanAmiId = "";
  const began = Date.now();
  let testBegan = 0;

  before(async function () {
    disks = twinDisks((l) => console.log(`      ${l}`));
    emu = await startEmulator({ mode: "twin", env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } });
    savedEnv = { ...process.env };
    Object.assign(process.env, emu.env);
    runDir = (await emu.control<{ runDir: string }>("GET", "twin")).runDir;
    const [pvSnapshot, uncleanSnapshot] = await Promise.all([importDisk(disks.pv, "legacy-pv.vmdk"), importDisk(disks.unclean, "legacy-pv-unclean.vmdk")]);
    sourceAmiId = await registerPv("legacy-pv", pvSnapshot, 1);
    uncleanAmiId = await registerPv("legacy-pv-unclean", uncleanSnapshot, 1);
    console.log(`      disks ready and imported: ${Math.round((Date.now() - began) / 1000)} s`);
  });

  beforeEach(() => (testBegan = Date.now()));
  afterEach(function () {
    console.log(`      ${Math.round((Date.now() - testBegan) / 1000)} s: ${this.currentTest?.title.slice(0, 60)}…`);
  });

  after(async function () {
    process.env = savedEnv;
    if (emu) await emu.stop();
    console.log(`      twinConversion: ${Math.round((Date.now() - began) / 1000)} s in all`);
    if (runDir) assert.strictEqual(fs.existsSync(runDir), false, `${runDir} is left after the emulator stopped`);
  });

  it("converts in place (auto), by copy (a size change) and by the copy auto falls back to (a root refused in place) in one up: real facts, images that boot, nothing left behind", async () => {
    const t = await testStack(emu, {
      conversions: [
        { name: "inplace", sourceAmiId },
        { name: "grown", sourceAmiId, targetSizeGiB: 2, imageName: "legacy-pv-grown" },
        { name: "unclean", sourceAmiId: uncleanAmiId },
      ],
    });
    const started = Date.now();
    try {
      await t.stack.up({ onOutput: t.onOutput });
    } catch (e) {
      throw new Error(`${String(e)}\n--- output ---\n${t.output.join("").slice(-6000)}`);
    }
    console.log(`      up of the three conversions: ${Math.round((Date.now() - started) / 1000)} s`);
    const inplace = await resourceOutputs(t.stack, "inplace");
    const grown = await resourceOutputs(t.stack, "grown");
    const unclean = await resourceOutputs(t.stack, "unclean");
    assert.deepStrictEqual(inplace.conversion, { method: "in-place", reason: "" });
    assert.deepStrictEqual(grown.conversion, { method: "copy", reason: "size-change" });
    // The guest refused in place (its ext4 has a journal to replay), and auto copied on the same worker.
    assert.deepStrictEqual(unclean.conversion, { method: "copy", reason: "filesystem-unclean" });
    assert.match(t.output.join(""), /declined to convert in place \(filesystem-unclean: the ext4 filesystem on \S+ has a journal to replay/);
    const uncleanWorkers = new Set([...t.output.join("").matchAll(/ConvertedHvmAmi unclean .*worker (i-[0-9a-f]+) launched/g)].map((m) => m[1]));
    assert.strictEqual(uncleanWorkers.size, 1, `the copy ran on the worker that was refused in place: ${[...uncleanWorkers]}`);
    for (const [name, outs, method] of [["inplace", inplace, "in-place"], ["grown", grown, "copy"], ["unclean", unclean, "copy"]] as const) {
      const facts = outs.facts as Record<string, unknown>;
      console.log(`      ${name}: ${method}, guest script ${facts.seconds} s, copy ${facts.copyMethod}, ${facts.bytesWritten} bytes written`);
      assert.strictEqual(facts.script, "pv2hvm");
      assert.strictEqual(facts.method, method);
      assert.strictEqual(facts.partitioned, false, "the source's whole-disk ext4, as the script found it");
      assert.strictEqual(facts.fsType, "ext4");
      assert.strictEqual((outs.verification as { status: string }).status, "passed", `${name}: the registered image booted in qemu`);
      const image = await describeImage(REGION, outs.imageId as string);
      assert.strictEqual(image?.VirtualizationType, "hvm");
    }
    // A root whose bitmaps cannot be trusted is copied whole, not by its used blocks (lib/copy.sh).
    assert.strictEqual((unclean.facts as Record<string, unknown>).copyMethod, "dd bs=64M");
    assert.strictEqual((grown.facts as Record<string, unknown>).copyMethod, "e2image -ra");
    // The fallback's target has the copy's default size (the source's + 1 GiB).
    assert.strictEqual((await describeImage(REGION, unclean.imageId as string))?.BlockDeviceMappings?.[0].Ebs?.VolumeSize, 2);
    // No worker, no volume, no temporary resource left; no VM folder left in the run directory.
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual(await liveInstances(), []);
    assert.deepStrictEqual(filesUnder(path.join(runDir, "vms")), []);

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await snapshotExists(REGION, inplace.snapshotId as string), false);
    assert.strictEqual(await snapshotExists(REGION, unclean.snapshotId as string), false);
  });

  it("a crash of the engine while the worker runs the guest script: the re-run cleans up the earlier run's worker and converges, nothing left", async () => {
    const t = await testStack(emu, { conversions: [{ name: "crashed", sourceAmiId, verify: false }] });
    let ended: string | undefined;
    const first = t.stack.up({ onOutput: t.onOutput }).then(
      () => (ended = "finished"),
      (e) => (ended = `failed: ${String(e).slice(0, 300)}`),
    );
    // The worker's agent has started pv2hvm (ListCommands is InProgress only once it runs in the VM).
    const ssm = new SSMClient({ region: REGION });
    const worker = await until(
      "the guest script to run on the worker",
      900,
      async () => ((await ssm.send(new ListCommandsCommand({}))).Commands ?? []).find((c) => c.Status === "InProgress")?.InstanceIds?.[0],
      () => ended,
    );
    const tree = processTree(["pulumi", "up", `--stack ${t.stack.name}`]);
    assert.ok(tree.length >= 2, `the engine and its plugins: ${tree}`);
    killHard(tree);
    assert.match(await first, /^failed/);
    const left = await leftovers();
    assert.ok(left.includes(`instance ${worker} (running)`) && left.some((l) => l.startsWith("volume")), `the crash left the worker and its volume: ${left}`);
    assert.ok(fs.existsSync(path.join(runDir, "vms", worker)), "the worker VM still runs");
    const dry = await sweep({ stack: t.stack.name, regions: [REGION], olderThanMs: 0, yes: false }, () => undefined);
    assert.ok(dry.found.some((f) => f.kind === "instance" && f.id === worker), `the sweep sees the worker: ${JSON.stringify(dry.found)}`);

    // Recovery (README, "When things go wrong"): release the dead engine's lock, drop the pending create, up again.
    await t.stack.cancel();
    await t.stack.refresh({ clearPendingCreates: true, onOutput: t.onOutput });
    t.output.length = 0;
    try {
      await t.stack.up({ onOutput: t.onOutput });
    } catch (e) {
      throw new Error(`${String(e)}\n--- output ---\n${t.output.join("").slice(-6000)}`);
    }
    assert.match(t.output.join(""), new RegExp(`cleaning \\d+ leftovers of an earlier run of build b-\\w+: .*instance ${worker}`), "the re-run terminates the crashed run's worker");
    const outs = await resourceOutputs(t.stack, "crashed");
    assert.deepStrictEqual(outs.conversion, { method: "in-place", reason: "" });
    assert.strictEqual((outs.facts as Record<string, unknown>).method, "in-place");
    const built = await imagesTagged(REGION, "ami-factory:kind", "ConvertedHvmAmi");
    assert.deepStrictEqual(built.map((i) => i.ImageId), [outs.imageId], "exactly one image");
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual(await liveInstances(), []);
    assert.deepStrictEqual(filesUnder(path.join(runDir, "vms")), [], "every worker VM stopped and its files removed");
    const after = await sweep({ stack: t.stack.name, regions: [REGION], olderThanMs: 0, yes: false }, () => undefined);
    assert.deepStrictEqual(after.found, []);
    await t.stack.destroy({ onOutput: t.onOutput });
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
