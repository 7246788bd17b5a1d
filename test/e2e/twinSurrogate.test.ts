// SurrogateAmi's `image` recipe for real on the twin (AMI_FACTORY_EMULATOR=twin), through the engine:
// a bootable disk image (test/support/twinImageDisk.ts: the converted HVM disk as qcow2) in the
// emulator's S3; the worker VM runs scripts/guest/surrogate.sh, whose `aws s3 cp` reaches S3 the way
// a worker in a private subnet with an S3 gateway endpoint does (the twin's network: IMDS for the
// region and the instance profile's credentials, https to the S3 endpoint name; twin/network.py),
// writes the image onto the hot-plugged target volume, grows it; the registered image is launched
// and verified by a real boot. No SSM rule, no boot script.
// Budget (TCG, 2 cores): one worker boot and one verification boot, about 6-10 minutes.
// Needs root (the disks are built on loop devices) and the worker disk (`setup.sh --twin`).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { describeImage, leftovers } from "../support/aws";
import { Emulator, startEmulator } from "../support/emulator";
import { resourceOutputs, testStack } from "../support/stack";
import { twinImageDisk, TwinImageDisk } from "../support/twinImageDisk";
import { putObject } from "../../scripts/local/twinImport";
import { filesUnder } from "../support/host";

const REGION = "us-east-1";
const BUCKET = "twin-surrogate-images";


describe("SurrogateAmi on the twin: the image recipe downloads its disk from S3 on a worker VM", function () {
  this.timeout(30 * 60_000);
  let emu: Emulator;
  let disk: TwinImageDisk;
  let runDir: string;
  let savedEnv: NodeJS.ProcessEnv;
  const began = Date.now();

  before(async function () {
    disk = twinImageDisk((l) => console.log(`      ${l}`));
    emu = await startEmulator({ mode: "twin", env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } });
    savedEnv = { ...process.env };
    Object.assign(process.env, emu.env);
    runDir = (await emu.control<{ runDir: string }>("GET", "twin")).runDir;
    await putObject(REGION, BUCKET, "debian-12-hvm.qcow2", disk.file);
  });

  after(async function () {
    process.env = savedEnv;
    if (emu) await emu.stop();
    console.log(`      twinSurrogate: ${Math.round((Date.now() - began) / 1000)} s in all`);
    if (runDir) assert.strictEqual(fs.existsSync(runDir), false, `${runDir} is left after the emulator stopped`);
  });

  it("builds from s3:// (qcow2) with the worker's instance profile, and the image boots", async () => {
    const url = `s3://${BUCKET}/debian-12-hvm.qcow2`;
    const t = await testStack(emu, {
      builds: [{ name: "from-image", imageName: "twin-from-image", recipe: { kind: "image", url, sha256: disk.sha256, format: "qcow2" }, bootMode: "legacy-bios", rootSizeGiB: 2 }],
    });
    const started = Date.now();
    try {
      await t.stack.up({ onOutput: t.onOutput });
    } catch (e) {
      throw new Error(`${String(e)}\n--- output ---\n${t.output.join("").slice(-6000)}`);
    }
    console.log(`      up: ${Math.round((Date.now() - started) / 1000)} s (a ${Math.round(disk.bytes / 2 ** 20)} MiB qcow2 over the twin's S3)`);
    const outs = await resourceOutputs(t.stack, "from-image");
    assert.strictEqual((outs.verification as { status: string }).status, "passed", "the registered image booted in qemu");
    const imageId = outs.imageId as string;
    const image = await describeImage(REGION, imageId);
    const tags = Object.fromEntries((image?.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tags["ami-factory:recipe"], "image");
    assert.strictEqual(tags["ami-factory:sources"], url);
    assert.ok(tags["ami-factory:boot-line"], "the console line that proved the boot");
    assert.strictEqual(image?.BlockDeviceMappings?.[0]?.Ebs?.VolumeSize, 2);
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual(filesUnder(path.join(runDir, "vms")), [], "every VM stopped and its files removed");
  });
});
