// Launch = boot on the twin (AMI_FACTORY_EMULATOR=twin): a disk imported from the emulator's S3
// (ImportSnapshot), registered as an HVM image and launched runs as a qemu VM, and the provider's
// own launch verification (providers/worker/verify.ts) reads its real serial console. One real boot
// to userspace in this file (TCG: minutes); the unbootable disk stops in the firmware (seconds).
// Needs root (the disks are built on loop devices, test/support/twinDisks.ts) and qemu.
import * as assert from "assert";
import {
  DescribeInstancesCommand, DescribeVolumesCommand, GetConsoleOutputCommand,
  RegisterImageCommand,
} from "@aws-sdk/client-ec2";
import * as fs from "fs";
import * as path from "path";
import { classifyConsole } from "../../providers/worker/console";
import type { WorkerBuild } from "../../providers/worker/context";
import { verifyStep } from "../../providers/worker/verify";
import { ec2 } from "../support/aws";
import { Emulator, startEmulator } from "../support/emulator";
import { twinDisks, TwinDisks } from "../support/twinDisks";
import { importSnapshot, putObject } from "../../scripts/local/twinImport";
import { filesUnder } from "../support/host";

const REGION = "us-east-1";
const BUCKET = "twin-boot-disks";

/** pids of the qemu processes running an instance (`-name <instance id>`). */
function qemuOf(instanceId: string): number[] {
  return fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      return argv[0].endsWith("qemu-system-x86_64") && argv.includes(instanceId) ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
}



/** The disk image into the emulator's S3, then ImportSnapshot (scripts/local/twinImport.ts, as npm start does). */
const importDisk = async (file: string, key: string): Promise<string> => {
  await putObject(REGION, BUCKET, key, file);
  return importSnapshot(REGION, BUCKET, key, key);
};

async function registerHvm(name: string, snapshotId: string): Promise<string> {
  const out = await ec2().send(new RegisterImageCommand({
    Name: name, Architecture: "x86_64", VirtualizationType: "hvm", RootDeviceName: "/dev/xvda", EnaSupport: true, BootMode: "legacy-bios",
    BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: snapshotId, VolumeSize: 2, VolumeType: "gp3", DeleteOnTermination: true } }],
  }));
  return out.ImageId!;
}

/** The worker build a launch verification reads: the image and what verify.ts needs of the build. */
function buildOf(imageId: string, lines: string[]): WorkerBuild {
  return {
    region: REGION, buildId: `twin-${imageId}`, architecture: "x86_64", worker: {}, temporaryTags: { "ami-factory:temporary": "true" }, outputTags: {},
    deadline: Date.now() + 20 * 60_000, log: (l) => lines.push(l), stamp: "20261207T000000Z", exactName: false, baseName: "twin", imageName: "twin",
    egressPorts: [443], guestScriptSha256: "", volumes: {}, attachments: {}, imageId,
  };
}

describe("the twin boots what it launches (AMI_FACTORY_EMULATOR=twin)", function () {
  this.timeout(40 * 60_000);
  let emu: Emulator;
  let disks: TwinDisks;
  let runDir: string;
  let savedEnv: NodeJS.ProcessEnv;
  const snapshots: Record<"hvm" | "pv", string> = { hvm: "", pv: "" };

  before(async function () {
    disks = twinDisks((l) => console.log(`      ${l}`));
    emu = await startEmulator({ mode: "twin" });
    savedEnv = { ...process.env };
    Object.assign(process.env, emu.env);
    runDir = (await emu.control<{ runDir: string }>("GET", "twin")).runDir;
    snapshots.hvm = await importDisk(disks.hvm, "converted.vmdk");
    snapshots.pv = await importDisk(disks.pv, "unconverted-pv.vmdk");
  });

  after(async function () {
    process.env = savedEnv;
    if (emu) await emu.stop();
    // Nothing of the twin outlives the emulator: no VM, no run directory.
    if (runDir) assert.strictEqual(fs.existsSync(runDir), false, `${runDir} is left after the emulator stopped`);
  });

  describe("a converted disk", function () {
    let build: WorkerBuild;
    const lines: string[] = [];
    let failure: unknown;
    let console_ = "";
    let instanceId = "";
    let rootVolumeId = "";
    let layersBefore: string[] = [];
    let layersAfter: string[] = [];

    before(async function () {
      build = buildOf(await registerHvm("twin-converted", snapshots.hvm), lines);
      layersBefore = filesUnder(path.join(runDir, "layers")).sort();
      const step = verifyStep(() => ({ instanceTypes: ["t3.micro"], timeoutMinutes: 20 }));
      try {
        await step.run(build);
      } catch (e) {
        failure = e;
      }
      instanceId = build.testInstances?.["t3.micro"] ?? "";
      if (instanceId) {
        const out = await ec2().send(new GetConsoleOutputCommand({ InstanceId: instanceId, Latest: true }));
        console_ = Buffer.from(out.Output ?? "", "base64").toString("utf8");
        // The root volume, while the instance still runs (a terminated instance lists no attachment).
        const inst = (await ec2().send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0];
        rootVolumeId = inst.BlockDeviceMappings?.find((m) => m.DeviceName === inst.RootDeviceName)?.Ebs?.VolumeId ?? "";
      }
      await step.cleanup!(build, failure !== undefined);
      layersAfter = filesUnder(path.join(runDir, "layers")).sort();
    });

    it("boots to userspace in a VM: the provider's launch verification passes on its real console", function () {
      assert.strictEqual(failure, undefined, `verification failed: ${(failure as Error)?.message}\n${lines.join("\n")}`);
      assert.strictEqual(build.verification?.status, "passed");
      const verdict = classifyConsole(console_);
      assert.strictEqual(verdict.state, "booted", `classifyConsole: ${JSON.stringify(verdict)}`);
    });

    it("runs it as a Nitro type does: the root volume an NVMe disk, the kernel and GRUB of the image itself on the serial console", function () {
      assert.match(console_, /Linux version 6\.1\./);
      assert.match(console_, /nvme0n1/, "the root volume is not an NVMe disk");
      assert.match(console_, /Booting `Debian GNU\/Linux 12/, "GRUB's menu entry (the image's own menu) is not on the console");
    });

    it("stops the VM and removes the root volume when the instance is terminated", async function () {
      assert.ok(instanceId);
      const inst = (await ec2().send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0];
      assert.strictEqual(inst.State?.Name, "terminated");
      assert.deepStrictEqual(qemuOf(instanceId), []);
      assert.match(rootVolumeId, /^vol-/, "the running instance showed no root volume");
      // DeleteOnTermination: the volume is gone (EC2 answers InvalidVolume.NotFound for its id) and so is its file.
      await assert.rejects(ec2().send(new DescribeVolumesCommand({ VolumeIds: [rootVolumeId] })),
        (e: Error) => e.name === "InvalidVolume.NotFound", `volume ${rootVolumeId} is left`);
      assert.deepStrictEqual(layersAfter, layersBefore, "the root volume's file is left");
    });
  });

  describe("an unconverted PV disk registered as HVM", function () {
    it("fails launch verification with its console's last lines, and leaves no instance, VM or volume file behind", async function () {
      const imageId = await registerHvm("twin-unconverted", snapshots.pv);
      const before = filesUnder(path.join(runDir, "layers")).sort();
      const lines: string[] = [];
      const build = buildOf(imageId, lines);
      // A Xen type: the disk is an emulated IDE disk, the console the buffered one (no Latest).
      const step = verifyStep(() => ({ instanceTypes: ["t2.micro"], timeoutMinutes: 10 }));
      let failure: Error | undefined;
      try {
        await step.run(build);
      } catch (e) {
        failure = e as Error;
      }
      const instanceId = build.testInstances?.["t2.micro"];
      assert.ok(instanceId, `no test instance launched:\n${lines.join("\n")}`);
      assert.deepStrictEqual(qemuOf(instanceId).length, 1, "the instance runs as a VM until it is terminated");
      await step.cleanup!(build, true);

      assert.ok(failure, "verification passed for a disk with no boot loader");
      assert.match(failure.message, /did not boot/);
      assert.match(failure.message, /status checks: system ok, instance impaired/);
      assert.match(failure.message, new RegExp(`console tail of ${instanceId}:[\\s\\S]*Booting from Hard Disk\\.\\.\\.[\\s\\S]*No bootable device\\.`));
      const inst = (await ec2().send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0];
      assert.strictEqual(inst.State?.Name, "terminated");
      assert.deepStrictEqual(qemuOf(instanceId), []);
      assert.deepStrictEqual(filesUnder(path.join(runDir, "layers")).sort(), before, "the root volume's file is left");
    });
  });
});
