// A snapshot's bytes through the EBS direct APIs (EBSClient: ListSnapshotBlocks, GetSnapshotBlock,
// ListChangedBlocks; "Use EBS direct APIs to access the contents of an EBS snapshot", EBS User Guide,
// https://docs.aws.amazon.com/ebs/latest/userguide/ebs-accessing-snapshot.html). Blocks a snapshot
// does not list hold zeroes; each block read is checked against its SHA256 checksum.
import * as crypto from "crypto";
import * as fs from "fs";
import { ChangedBlock, EBSClient, GetSnapshotBlockCommand, ListChangedBlocksCommand, ListSnapshotBlocksCommand } from "@aws-sdk/client-ebs";

export interface SnapshotRead {
  blocks: number;
  blockSize: number;
  volumeBytes: number;
}

/** Writes the whole volume the snapshot holds into `file` (sparse: unlisted blocks stay holes). */
export async function readSnapshot(region: string, snapshotId: string, file: string): Promise<SnapshotRead> {
  const ebs = new EBSClient({ region });
  const fd = fs.openSync(file, "w");
  try {
    let nextToken: string | undefined;
    let blocks = 0;
    let blockSize = 0;
    let volumeBytes = 0;
    do {
      const page = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, NextToken: nextToken }));
      blockSize = page.BlockSize!;
      volumeBytes = page.VolumeSize! * 1024 ** 3;
      for (const b of page.Blocks ?? []) {
        const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: b.BlockIndex, BlockToken: b.BlockToken }));
        const bytes = Buffer.from(await got.BlockData!.transformToByteArray());
        if (got.Checksum !== crypto.createHash("sha256").update(bytes).digest("base64")) throw new Error(`block ${b.BlockIndex} of ${snapshotId}: checksum mismatch`);
        fs.writeSync(fd, bytes, 0, bytes.length, b.BlockIndex! * blockSize);
        blocks++;
      }
      nextToken = page.NextToken;
    } while (nextToken);
    fs.ftruncateSync(fd, volumeBytes);
    return { blocks, blockSize, volumeBytes };
  } finally {
    fs.closeSync(fd);
  }
}

/** How many blocks the snapshot lists (holds data in), and their size. */
export async function countSnapshotBlocks(region: string, snapshotId: string): Promise<{ blocks: number; blockSize: number }> {
  const ebs = new EBSClient({ region });
  let nextToken: string | undefined;
  let blocks = 0;
  let blockSize = 0;
  do {
    const page = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, NextToken: nextToken }));
    blockSize = page.BlockSize!;
    blocks += page.Blocks?.length ?? 0;
    nextToken = page.NextToken;
  } while (nextToken);
  return { blocks, blockSize };
}

/** The blocks that differ between two snapshots of one lineage (ListChangedBlocks, paginated). */
export async function changedBlocks(region: string, first: string, second: string): Promise<{ blocks: ChangedBlock[]; blockSize: number }> {
  const ebs = new EBSClient({ region });
  const blocks: ChangedBlock[] = [];
  let nextToken: string | undefined;
  let blockSize = 0;
  do {
    const page = await ebs.send(new ListChangedBlocksCommand({ FirstSnapshotId: first, SecondSnapshotId: second, NextToken: nextToken }));
    blockSize = page.BlockSize!;
    blocks.push(...(page.ChangedBlocks ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  return { blocks, blockSize };
}
