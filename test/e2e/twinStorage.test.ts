// The twin's storage through the AWS SDK: a disk imported from S3 (ImportSnapshot) reads back block
// by block through the EBS direct APIs as it was imported, a copy-on-write volume changed after a
// snapshot leaves the snapshot as it was, ListChangedBlocks lists exactly the blocks written, a
// corrupt image fails its import task as AWS words it, and the emulator leaves nothing on disk.
import * as assert from "assert";
import { execFileSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EBSClient, GetSnapshotBlockCommand, ListChangedBlocksCommand, ListSnapshotBlocksCommand } from "@aws-sdk/client-ebs";
import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeImportSnapshotTasksCommand,
  EC2Client,
  ImportSnapshotCommand,
  SnapshotTaskDetail,
} from "@aws-sdk/client-ec2";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Emulator, startEmulator } from "../support/emulator";

const BLOCK = 512 * 1024;
const DATA_BLOCKS = [0, 2, 3, 6]; // of an 8-block (4 MiB) disk; the others are holes
const REGION = "us-east-1";

function clients(emu: Emulator) {
  const config = { region: REGION, endpoint: emu.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
  return { ec2: new EC2Client(config), ebs: new EBSClient(config), s3: new S3Client({ ...config, forcePathStyle: true }) };
}

/** A synthetic 4 MiB disk: random bytes in DATA_BLOCKS, zeroes elsewhere. */
function rawDisk(): Buffer {
  return Buffer.concat(Array.from({ length: 8 }, (_, i) => (DATA_BLOCKS.includes(i) ? randomBytes(BLOCK) : Buffer.alloc(BLOCK))));
}

async function importDisk(emu: Emulator, image: Buffer, format: "RAW" | "VMDK" | "VHD", key: string): Promise<SnapshotTaskDetail> {
  const { ec2, s3 } = clients(emu);
  await s3.send(new CreateBucketCommand({ Bucket: "images" })).catch(() => undefined);
  await s3.send(new PutObjectCommand({ Bucket: "images", Key: key, Body: image }));
  const started = await ec2.send(new ImportSnapshotCommand({ DiskContainer: { Format: format, UserBucket: { S3Bucket: "images", S3Key: key } } }));
  assert.strictEqual(started.SnapshotTaskDetail?.Status, "active");
  const deadline = Date.now() + 60_000;
  for (;;) {
    const out = await ec2.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [started.ImportTaskId!] }));
    const detail = out.ImportSnapshotTasks![0].SnapshotTaskDetail!;
    if (detail.Status !== "active" || Date.now() > deadline) return detail;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The snapshot's first `size` bytes, block by block, each block's SHA256 checked against x-amz-Checksum. */
async function readBack(emu: Emulator, snapshotId: string, size: number): Promise<{ data: Buffer; listed: number[] }> {
  const { ebs } = clients(emu);
  const blocks: { BlockIndex?: number; BlockToken?: string }[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, NextToken: nextToken }));
    assert.strictEqual(page.BlockSize, BLOCK);
    blocks.push(...(page.Blocks ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  const data = Buffer.alloc(size);
  for (const b of blocks) {
    const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: b.BlockIndex, BlockToken: b.BlockToken }));
    const bytes = Buffer.from(await got.BlockData!.transformToByteArray());
    assert.strictEqual(got.DataLength, BLOCK);
    assert.strictEqual(got.ChecksumAlgorithm, "SHA256");
    assert.strictEqual(got.Checksum, createHash("sha256").update(bytes).digest("base64"));
    bytes.copy(data, b.BlockIndex! * BLOCK, 0, Math.max(0, Math.min(BLOCK, size - b.BlockIndex! * BLOCK)));
  }
  return { data, listed: blocks.map((b) => b.BlockIndex!) };
}

async function runDir(emu: Emulator): Promise<string> {
  return (await emu.control<{ runDir: string }>("GET", "twin")).runDir;
}

describe("the twin's storage (volumes and snapshots as files)", () => {
  let emu: Emulator;
  let tmp: string;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twin-storage-"));
    emu = await startEmulator({ mode: "twin", env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", AMI_FACTORY_TWIN_DIR: path.join(tmp, "runs") } });
  });
  after(async () => {
    await emu?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("reads back a raw disk imported from S3 block by block, listing only the blocks that hold data", async () => {
    const raw = rawDisk();
    const detail = await importDisk(emu, raw, "RAW", "disk.raw");
    assert.strictEqual(detail.Status, "completed", detail.StatusMessage);
    assert.strictEqual(detail.DiskImageSize, raw.length);
    const { data, listed } = await readBack(emu, detail.SnapshotId!, raw.length);
    assert.deepStrictEqual(listed, DATA_BLOCKS);
    assert.ok(data.equals(raw), "the snapshot's bytes are the imported disk's");
  });

  it("reads back a VMDK made with qemu-img as the raw disk it was made from", async () => {
    const raw = rawDisk();
    fs.writeFileSync(path.join(tmp, "d.raw"), raw);
    execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", path.join(tmp, "d.raw"), path.join(tmp, "d.vmdk")]);
    const detail = await importDisk(emu, fs.readFileSync(path.join(tmp, "d.vmdk")), "VMDK", "disk.vmdk");
    assert.strictEqual(detail.Status, "completed", detail.StatusMessage);
    assert.ok((await readBack(emu, detail.SnapshotId!, raw.length)).data.equals(raw));
  });

  it("fails the import task of a truncated VHD with AWS's status message", async () => {
    fs.writeFileSync(path.join(tmp, "t.raw"), rawDisk());
    execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "vpc", path.join(tmp, "t.raw"), path.join(tmp, "t.vhd")]);
    const vhd = fs.readFileSync(path.join(tmp, "t.vhd"));
    const detail = await importDisk(emu, vhd.subarray(0, Math.floor(vhd.length / 2)), "VHD", "truncated.vhd");
    assert.strictEqual(detail.Status, "deleted");
    assert.strictEqual(detail.StatusMessage, "ClientError: Footers not identical");
    assert.strictEqual(detail.SnapshotId, undefined);
  });

  it("keeps a snapshot as it was when its copy-on-write volume changes, and lists exactly the blocks written since", async () => {
    const { ec2, ebs } = clients(emu);
    const raw = rawDisk();
    const first = (await importDisk(emu, raw, "RAW", "cow.raw")).SnapshotId!;
    const volume = (await ec2.send(new CreateVolumeCommand({ SnapshotId: first, AvailabilityZone: `${REGION}a` }))).VolumeId!;
    const write = (block: number, pattern: number) =>
      emu.control("POST", "twin/volume-write", { volumeId: volume, offset: block * BLOCK, length: 4096, pattern });
    await write(1, 0xa1);
    await write(3, 0xa3);
    const second = (await ec2.send(new CreateSnapshotCommand({ VolumeId: volume }))).SnapshotId!;
    await write(5, 0xa5); // after the snapshot

    assert.ok((await readBack(emu, first, raw.length)).data.equals(raw), "the first snapshot is unchanged");
    const expected = Buffer.from(raw);
    expected.fill(0xa1, BLOCK, BLOCK + 4096);
    expected.fill(0xa3, 3 * BLOCK, 3 * BLOCK + 4096);
    assert.ok((await readBack(emu, second, raw.length)).data.equals(expected), "the second has what was written before it only");

    const changed = await ebs.send(new ListChangedBlocksCommand({ FirstSnapshotId: first, SecondSnapshotId: second }));
    assert.deepStrictEqual(changed.ChangedBlocks?.map((b) => b.BlockIndex), [1, 3]);
    assert.strictEqual(changed.ChangedBlocks?.[0].FirstBlockToken, undefined, "block 1 was a hole of the first snapshot");
    assert.ok(changed.ChangedBlocks?.[1].FirstBlockToken && changed.ChangedBlocks?.[1].SecondBlockToken);
  });

  it("leaves nothing on disk when it stops (SIGTERM), and sweeps what a killed one left", async () => {
    const runs = path.join(tmp, "stop-runs");
    const env = { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", AMI_FACTORY_TWIN_DIR: runs };
    const killed = await startEmulator({ mode: "twin", env });
    const killedDir = await runDir(killed);
    process.kill(killed.pid, "SIGKILL");
    await killed.stop();
    assert.ok(fs.existsSync(killedDir), "nothing can clean up at SIGKILL");

    const other = await startEmulator({ mode: "twin", env });
    const dir = await runDir(other);
    assert.ok(!fs.existsSync(killedDir), "the next start sweeps a dead emulator's run dir");
    const { ec2 } = clients(other);
    const volume = (await ec2.send(new CreateVolumeCommand({ Size: 1, AvailabilityZone: `${REGION}a` }))).VolumeId!;
    await other.control("POST", "twin/volume-write", { volumeId: volume, offset: 0, length: BLOCK, pattern: 1 });
    await ec2.send(new CreateSnapshotCommand({ VolumeId: volume }));
    assert.ok(fs.readdirSync(path.join(dir, "layers")).length > 0);
    process.kill(other.pid, "SIGTERM");
    await other.stop();
    assert.ok(!fs.existsSync(dir), "the run dir is gone");
    assert.deepStrictEqual(fs.readdirSync(runs), []);
  });
});
