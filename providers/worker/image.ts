// What a worker build outputs: a snapshot of the target volume and an image registered from it.
// Both stay after success and go on failure.
import type { RegisterImageCommandInput } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "../core/clients";
import { deleteSnapshot, deregisterProtected, describeImage, waitForImageAvailable } from "../core/images";
import { BUILD_ID_TAG, tagSpecifications } from "../core/tags";
import type { Step } from "../core/steps";
import { errorName, waitFor } from "../core/wait";
import { secondsLeft, WorkerBuild } from "./context";

/** `role`: the volume that becomes the image's root, or a function that picks it when the step runs. */
export function snapshotStep(role: string | ((b: WorkerBuild) => string), description: string): Step<WorkerBuild> {
  return {
    name: typeof role === "string" ? `snapshot the ${role} volume` : "snapshot the new root volume",
    async run(b) {
      const { CreateSnapshotCommand, DescribeSnapshotsCommand } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      const volumeId = b.volumes[typeof role === "string" ? role : role(b)];
      const out = await ec2.send(
        new CreateSnapshotCommand({ VolumeId: volumeId, Description: description, TagSpecifications: tagSpecifications(["snapshot"] as const, b.outputTags) }),
      );
      const id = out.SnapshotId!;
      b.snapshotId = id;
      // CreateSnapshot has no client token: a retry after a lost answer makes a second snapshot of
      // the volume. Keep the one we were told about, delete the others of this build.
      const twins = await ec2.send(
        new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "volume-id", Values: [volumeId] }, { Name: `tag:${BUILD_ID_TAG}`, Values: [b.buildId] }] }),
      );
      for (const twin of twins.Snapshots ?? []) if (twin.SnapshotId !== id) await deleteSnapshot(ec2, twin.SnapshotId!);
      let lastProgress = "";
      await waitFor({ what: `snapshot ${id}`, maxWaitSeconds: secondsLeft(b), minDelaySeconds: 2, maxDelaySeconds: 20 }, async () => {
        const s = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }))).Snapshots?.[0];
        if (s?.State === "completed") return { state: "SUCCESS", value: s };
        if (s?.State === "error") return { state: "FAILURE", reason: s.StateMessage ?? "snapshot error" };
        if (s?.Progress && s.Progress !== lastProgress) b.log(`snapshot ${id}: ${(lastProgress = s.Progress)}`);
        return { state: "RETRY", reason: s?.State };
      });
    },
    async cleanup(b, failed) {
      if (failed && b.snapshotId) await deleteSnapshot(await ec2Client(b.region), b.snapshotId);
    },
  };
}

/** Deregisters an image (lifting its protection; gone already is fine), leaving every snapshot it maps. */
export async function deregisterOnly(region: string, imageId: string): Promise<void> {
  const ec2 = await ec2Client(region);
  const image = await describeImage(ec2, imageId);
  if (image) await deregisterProtected(ec2, image);
}

/** Before any worker starts: the name must be free in the account and region (EC2 names are unique there). */
export function nameFreeStep(): Step<WorkerBuild> {
  return {
    name: "check the image name is free",
    async run(b) {
      const { DescribeImagesCommand } = ec2Sdk();
      const out = await (await ec2Client(b.region)).send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "name", Values: [b.imageName] }] }));
      const taken = out.Images?.find((i) => i.State !== "deregistered");
      if (taken) {
        throw new Error(`an image named ${JSON.stringify(b.imageName)} already exists in ${b.region} (${taken.ImageId}): give the resource another name, or deregister that image`);
      }
    },
  };
}

async function imageOfBuild(b: WorkerBuild, name: string): Promise<string | undefined> {
  const { DescribeImagesCommand } = ec2Sdk();
  const out = await (await ec2Client(b.region)).send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "name", Values: [name] }] }));
  const image = out.Images?.find((i) => i.Tags?.some((t) => t.Key === BUILD_ID_TAG && t.Value === b.buildId) && i.BlockDeviceMappings?.some((m) => m.Ebs?.SnapshotId === b.snapshotId));
  return image?.ImageId;
}

/** Register the image from the build's snapshot; `params` gives everything but the snapshot. */
export function registerStep(params: (b: WorkerBuild) => RegisterImageCommandInput): Step<WorkerBuild> {
  return {
    name: "register image",
    async run(b) {
      const { RegisterImageCommand } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      const input = params(b);
      try {
        b.imageId = (await ec2.send(new RegisterImageCommand({ ...input, TagSpecifications: tagSpecifications(["image"] as const, b.outputTags) }))).ImageId;
      } catch (e) {
        // RegisterImage has no client token: a retry after a lost answer finds the name taken. By
        // an image of this build (same snapshot) it is ours; by anything else it is a real clash.
        if (errorName(e) !== "InvalidAMIName.Duplicate") throw e;
        const mine = await imageOfBuild(b, input.Name!);
        if (!mine) throw new Error(`an image named ${JSON.stringify(input.Name)} already exists in ${b.region}: give the resource another name, or deregister that image`);
        b.imageId = mine;
      }
      await waitForImageAvailable(ec2, b.imageId!, `image ${b.imageId}`, secondsLeft(b), b.log);
      b.log(`registered ${b.imageId} (${input.Name})`);
    },
    async cleanup(b, failed) {
      // Only the image: its snapshot is the snapshot step's to delete, and the other snapshots it
      // maps (a converted image's data volumes) belong to the source image.
      if (failed && b.imageId) await deregisterOnly(b.region, b.imageId);
    },
  };
}
