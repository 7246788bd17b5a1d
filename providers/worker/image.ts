// What a worker build outputs: a snapshot of the target volume and an image registered from it.
// Both stay after success and go on failure.
import type { RegisterImageCommandInput } from "@aws-sdk/client-ec2";
import { ec2Client } from "../core/clients";
import { deleteImageAndSnapshots, deleteSnapshot, waitForImageAvailable } from "../core/images";
import { tagSpecifications } from "../core/tags";
import type { Step } from "../core/steps";
import { waitFor } from "../core/wait";
import { secondsLeft, WorkerBuild } from "./context";

export function snapshotStep(role: string, description: string): Step<WorkerBuild> {
  return {
    name: `snapshot the ${role} volume`,
    async run(b) {
      const { CreateSnapshotCommand, DescribeSnapshotsCommand } = await import("@aws-sdk/client-ec2");
      const ec2 = await ec2Client(b.region);
      const out = await ec2.send(
        new CreateSnapshotCommand({ VolumeId: b.volumes[role], Description: description, TagSpecifications: tagSpecifications(["snapshot"] as const, b.outputTags) }),
      );
      const id = out.SnapshotId!;
      b.snapshotId = id;
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

/** Register the image from the build's snapshot; `params` gives everything but the snapshot. */
export function registerStep(params: (b: WorkerBuild) => RegisterImageCommandInput): Step<WorkerBuild> {
  return {
    name: "register image",
    async run(b) {
      const { RegisterImageCommand } = await import("@aws-sdk/client-ec2");
      const ec2 = await ec2Client(b.region);
      const input = params(b);
      const out = await ec2.send(new RegisterImageCommand({ ...input, TagSpecifications: tagSpecifications(["image"] as const, b.outputTags) }));
      b.imageId = out.ImageId;
      await waitForImageAvailable(ec2, out.ImageId!, `image ${out.ImageId}`, secondsLeft(b), b.log);
      b.log(`registered ${out.ImageId} (${input.Name})`);
    },
    async cleanup(b, failed) {
      if (failed && b.imageId) await deleteImageAndSnapshots(b.region, b.imageId, []);
    },
  };
}
