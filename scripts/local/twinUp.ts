// `npm start` on the twin (the default): the main job for real. A classic PV disk made here, imported
// into the emulator (ImportSnapshot) and registered paravirtual; then the stack of
// Pulumi.local-twin.yaml: ConvertedHvmAmi in place (method auto), a second conversion that needs
// the copy (targetSizeGiB), a RecoveryAlarm; the converted image's bytes read back through the EBS
// direct APIs, compressed to qcow2 and put into the emulator's S3; a second `up` adds a SharedAmi
// of the converted image and a SurrogateAmi whose `image` recipe is that qcow2 (its worker VM
// fetches it with `aws s3 cp`, reaching S3 and IMDS only: scripts/emulator/ami_emulator/twin/
// network.py). Workers run the guest scripts in qemu VMs, every new image is launched and booted
// for real; then a preview that must show no changes.
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { DescribeImagesCommand, EC2Client, Image, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { Stack } from "@pulumi/pulumi/automation";
import { Emulator, startEmulator } from "../emulator/start";
import { demoDisk, demoDiskCached } from "./demoDisk";
import { localStack } from "./engine";
import { readSnapshot } from "./snapshotBytes";
import { REPO_ROOT } from "./toolchain";
import { importSnapshot, putObject, registerPv } from "./twinImport";

const REGION = "us-east-1";
const BUCKET = "ami-factory-local";

/**
 * Sets a structured value (a list of entries) as one key: the program reads every config value as
 * text, objects as their JSON (path keys would turn "111122223333" into a number).
 */
async function setListConfig(stack: Stack, key: string, value: unknown[]): Promise<void> {
  await stack.setConfig(key, { value: JSON.stringify(value) });
}

/** The images of the stack's `images` output: name → region → id. */
type ImagesOutput = Record<string, Record<string, string>>;

async function describe(ids: string[]): Promise<Map<string, Image>> {
  const out = await new EC2Client({ region: REGION }).send(new DescribeImagesCommand({ ImageIds: ids }));
  return new Map((out.Images ?? []).map((i) => [i.ImageId!, i]));
}

function tag(image: Image | undefined, key: string): string | undefined {
  return image?.Tags?.find((t) => t.Key === key)?.Value;
}

export async function twinUp(say: (s: string) => void, opts: { keep: boolean }): Promise<void> {
  const t0 = Date.now();
  const lap = (what: string) => say(`${what} (${((Date.now() - t0) / 1000).toFixed(0)} s since start)`);
  if (!demoDiskCached()) {
    say("NEEDS ROOT: the demo PV disk is not cached yet; test/support/pv-image.sh builds it as root " +
      "(debootstrap of a minimal Debian 12 the first time, then unpacking that root with its ownership; " +
      "the disk itself by mke2fs -d, no loop device or mount). Everything else runs without root.");
  }
  const disk = demoDisk((l) => say(`demo disk: ${l}`));
  say(`demo disk: ${disk.file} (${disk.built ? "built now" : "cached"}): ext4 on the whole disk, PV-GRUB menu.lst, console=hvc0, no boot loader`);

  const emu: Emulator = await startEmulator({
    mode: "twin",
    amisPath: path.join(REPO_ROOT, "scripts/emulator/demo-amis.json"),
    env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", MOTO_IAM_LOAD_MANAGED_POLICIES: "true" },
  });
  try {
    const twin = await emu.control<{ mode: string; runDir: string }>("GET", "twin");
    say(`AWS emulator, TWIN mode, at ${emu.endpoint} (started in ${emu.startupMs} ms): volumes and snapshots are files under ${twin.runDir}, workers and test launches are qemu VMs`);
    Object.assign(process.env, emu.env);

    await putObject(REGION, BUCKET, "legacy-pv.vmdk", disk.file);
    const sourceSnapshot = await importSnapshot(REGION, BUCKET, "legacy-pv.vmdk", "npm start: the legacy PV disk");
    const sourceAmi = await registerPv(REGION, "legacy-pv-debian-12", sourceSnapshot);
    lap(`imported s3://${BUCKET}/legacy-pv.vmdk as ${sourceSnapshot} (ImportSnapshot) and registered it as ${sourceAmi} (paravirtual, PV-GRUB kernel)`);

    // The instance the alarm watches: one of the demo HVM image (no twin bytes: no VM is started for it).
    const run = await new EC2Client({ region: REGION }).send(new RunInstancesCommand({ ImageId: "ami-0a1b2c3d4e5f60001", MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }));
    const instanceId = run.Instances![0].InstanceId!;

    const workDir = path.join(REPO_ROOT, ".local/demo-twin");
    fs.rmSync(workDir, { recursive: true, force: true }); // the emulator starts empty: so does the state
    const stack = await localStack({ stackName: "local-twin", workDir, env: emu.env, configFile: path.join(REPO_ROOT, "Pulumi.local-twin.yaml") });
    await stack.setAllConfig({
      "ami-factory:conversions[0].sourceAmiId": { value: sourceAmi },
      "ami-factory:conversions[1].sourceAmiId": { value: sourceAmi },
      "ami-factory:recoveryAlarms[0].instanceId": { value: instanceId },
    }, true);

    say("pulumi up (1/2): two conversions of the PV image (in place; a copy to a 2 GiB volume) and the recovery alarm");
    const up1 = await stack.up({ onOutput: (s) => process.stdout.write(s) });
    lap("first up done");
    const converted = (up1.outputs.images.value as ImagesOutput)["legacy-hvm"][REGION];
    const convertedSnapshot = (await describe([converted])).get(converted)?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId;
    if (!convertedSnapshot) throw new Error(`the converted image ${converted} has no root snapshot`);

    // Bytes out: the converted image's root snapshot read back block by block (EBS direct APIs).
    // The same bytes as a disk image for a SurrogateAmi's `image` recipe: qcow2 (compressed) in S3.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "npm-start-"));
    const imageKey = "legacy-hvm.qcow2";
    let imageSha256: string;
    try {
      const raw = path.join(tmp, "converted.raw");
      const read = await readSnapshot(REGION, convertedSnapshot, raw);
      const sha256 = crypto.createHash("sha256").update(fs.readFileSync(raw)).digest("hex");
      lap(`read ${convertedSnapshot} (the converted image's root) back with ListSnapshotBlocks/GetSnapshotBlock: ${read.blocks} blocks of ${read.blockSize} bytes, sha256 ${sha256} of its ${read.volumeBytes} bytes`);
      const qcow2 = path.join(tmp, imageKey);
      execFileSync("qemu-img", ["convert", "-q", "-c", "-f", "raw", "-O", "qcow2", raw, qcow2]);
      imageSha256 = crypto.createHash("sha256").update(fs.readFileSync(qcow2)).digest("hex");
      await putObject(REGION, BUCKET, imageKey, qcow2);
      lap(`put it into s3://${BUCKET}/${imageKey} as a compressed qcow2 (${Math.round(fs.statSync(qcow2).size / 2 ** 20)} MiB, sha256 ${imageSha256}) for the SurrogateAmi`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    await setListConfig(stack, "ami-factory:shares", [{
      name: "legacy-hvm-shared", sourceAmiId: converted, imageName: "legacy-hvm-shared",
      regions: [REGION, "eu-west-1"], accountIds: ["111122223333"], tags: { team: "platform" },
    }]);
    await setListConfig(stack, "ami-factory:builds", [{
      name: "from-image", imageName: "legacy-hvm-from-image", bootMode: "legacy-bios", rootSizeGiB: 2,
      recipe: { kind: "image", url: `s3://${BUCKET}/${imageKey}`, sha256: imageSha256, format: "qcow2" }, tags: { team: "platform" },
    }]);

    say(`pulumi up (2/2): a SharedAmi of the converted image (copied to eu-west-1, shared with an account) and a SurrogateAmi from s3://${BUCKET}/${imageKey} (the image recipe: its worker VM fetches it with aws s3 cp, credentials and region from the twin's IMDS)`);
    const up = await stack.up({ onOutput: (s) => process.stdout.write(s) });
    lap("second up done");
    say("pulumi preview (must show no changes)");
    const preview = await stack.preview({ diff: true, onOutput: (s) => process.stdout.write(s) });
    const changes = Object.entries(preview.changeSummary).filter(([op, n]) => op !== "same" && n > 0);
    if (changes.length) throw new Error(`the preview after up wants changes: ${JSON.stringify(preview.changeSummary)}`);
    lap("no-change preview done");

    say("stack outputs:");
    for (const [name, out] of Object.entries(up.outputs)) console.log(`${name}: ${JSON.stringify(out.value, null, 2)}`);
    const images = up.outputs.images.value as ImagesOutput;
    const ids = Object.values(images).flatMap((byRegion) => (byRegion[REGION] ? [byRegion[REGION]] : []));
    const described = await describe(ids);
    say("what proved each image, and where its bytes are:");
    for (const [name, byRegion] of Object.entries(images)) {
      const id = byRegion[REGION];
      const image = described.get(id);
      const snap = image?.BlockDeviceMappings?.find((m) => m.DeviceName === image.RootDeviceName)?.Ebs?.SnapshotId;
      console.log(`  ${name}: ${id} (${image?.VirtualizationType})`);
      console.log(`    verification: ${tag(image, "ami-factory:verification") ?? "(none: a copy or share, verified as its source)"} on ${tag(image, "ami-factory:verified-on") ?? "-"}`);
      const line = tag(image, "ami-factory:boot-line");
      if (line) console.log(`    console line that proved it: ${line}`);
      if (snap) console.log(`    bytes: snapshot ${snap}: aws ebs list-snapshot-blocks --snapshot-id ${snap} --endpoint-url ${emu.endpoint} (then get-snapshot-block)`);
    }
    console.log(`  the twin's files (volumes, snapshots): ${twin.runDir} (removed when the emulator stops)`);
    lap("done");
    if (opts.keep) {
      say(`--keep: the emulator stays up at ${emu.endpoint} (AWS_ENDPOINT_URL=${emu.endpoint}, any credentials); Ctrl-C stops it and removes its files`);
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    }
  } finally {
    await emu.stop();
  }
}
