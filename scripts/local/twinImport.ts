// Brings a disk image into the twin as a user brings their own PV image into EC2: the file to S3,
// ImportSnapshot (VM Import), then RegisterImage paravirtual on the snapshot with a PV-GRUB kernel.
// Used by `npm start` (twin) and bench/twinConversion.ts.
import * as fs from "fs";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DescribeImportSnapshotTasksCommand, EC2Client, ImportSnapshotCommand, RegisterImageCommand } from "@aws-sdk/client-ec2";
import { waitFor } from "../../providers/core/wait";

// PV-GRUB for a filesystem on the whole disk, (hd0): pv-grub-hd0_1.05-x86_64.gz in us-east-1 ("Use
// user provided kernels in EC2 paravirtual AMIs", EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/UserProvidedkernels.html). PV images carry it
// as their KernelId; the twin never runs it (a PV image does not launch there), the converter drops it.
export const PV_GRUB_HD0_AKI = "aki-919dcaf8";

export function s3Client(region: string): S3Client {
  // A whole body with its length, no checksum trailer: the SDK's default for a stream (aws-chunked
  // with a CRC32 trailer) takes moto minutes to decode for a few hundred MiB.
  return new S3Client({ region, forcePathStyle: true, requestChecksumCalculation: "WHEN_REQUIRED" });
}

export async function putObject(region: string, bucket: string, key: string, file: string): Promise<void> {
  const s3 = s3Client(region);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if ((e as { name?: string }).name !== "BucketAlreadyOwnedByYou") throw e;
  }
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: fs.readFileSync(file) }));
}

/** ImportSnapshot of s3://bucket/key (VMDK) and its task waited for; the new snapshot's id. */
export async function importSnapshot(region: string, bucket: string, key: string, description: string): Promise<string> {
  const ec2 = new EC2Client({ region });
  const task = await ec2.send(new ImportSnapshotCommand({ Description: description, DiskContainer: { Format: "VMDK", UserBucket: { S3Bucket: bucket, S3Key: key } } }));
  const what = `the import of s3://${bucket}/${key} (${task.ImportTaskId})`;
  // VM Import takes minutes to hours on AWS; a 1 GiB image converts here in seconds. A failed task
  // ends "deleted" with its StatusMessage (SnapshotTaskDetail, EC2 API reference:
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SnapshotTaskDetail.html), which the
  // SDK's SnapshotImported waiter does not take for a failure: hence this check.
  return waitFor({ what, maxWaitSeconds: 30 * 60, minDelaySeconds: 1, maxDelaySeconds: 5 }, async () => {
    const out = await ec2.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [task.ImportTaskId!] }));
    const d = out.ImportSnapshotTasks?.[0]?.SnapshotTaskDetail;
    if (d?.Status === "completed" && d.SnapshotId) return { state: "SUCCESS", value: d.SnapshotId };
    if (d?.Status === "deleted" || d?.Status === "deleting" || d?.Status === "error") return { state: "FAILURE", reason: `${d.Status}: ${d.StatusMessage ?? ""}` };
    return { state: "RETRY", reason: `${d?.Status ?? "?"} ${d?.StatusMessage ?? ""} ${d?.Progress ?? ""}%` };
  });
}

/** A paravirtual image on the snapshot, as EC2 registered PV-GRUB images: root /dev/sda1, a kernel id. */
export async function registerPv(region: string, name: string, snapshotId: string): Promise<string> {
  const out = await new EC2Client({ region }).send(new RegisterImageCommand({
    Name: name, Description: "a classic paravirtual (PV-GRUB) image, imported by npm start", Architecture: "x86_64",
    VirtualizationType: "paravirtual", KernelId: PV_GRUB_HD0_AKI, RootDeviceName: "/dev/sda1",
    BlockDeviceMappings: [{ DeviceName: "/dev/sda1", Ebs: { SnapshotId: snapshotId, VolumeType: "gp3", DeleteOnTermination: true } }],
  }));
  return out.ImageId!;
}
