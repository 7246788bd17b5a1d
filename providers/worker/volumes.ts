// Volumes for the worker: made in the worker's AZ in parallel, attached, detached and deleted.
import { ec2Client, ec2Sdk } from "../core/clients";
import { tagSpecifications } from "../core/tags";
import type { Step } from "../core/steps";
import { errorName } from "../core/wait";
import { secondsLeft, VolumeSpec, WorkerBuild } from "./context";

export interface VolumeRequest {
  /** What the volume is for: "source", "target". */
  role: string;
  /** Made from this snapshot, or empty when absent. */
  snapshotId?: string;
  sizeGiB: number;
  spec: VolumeSpec;
  encrypted: boolean;
  kmsKeyId?: string;
  /** A later volume of a role whose earlier one was discarded (discardStep): its own client token. */
  generation?: number;
}

export function volumesStep<B extends WorkerBuild>(roles: string[], requestsOf: (b: B) => VolumeRequest[]): Step<B> {
  return {
    name: `create volumes (${roles.join(", ")})`,
    async run(b) {
      const { CreateVolumeCommand, waitUntilVolumeAvailable } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      await Promise.all(
        requestsOf(b).map(async (r) => {
          const out = await ec2.send(
            new CreateVolumeCommand({
              AvailabilityZone: b.availabilityZone,
              SnapshotId: r.snapshotId,
              Size: r.sizeGiB,
              VolumeType: r.spec.type as never,
              Iops: r.spec.iops,
              Throughput: r.spec.throughputMiBps,
              Encrypted: r.encrypted || undefined,
              KmsKeyId: r.kmsKeyId,
              ClientToken: `${b.buildId}-${r.role}${r.generation ? `-${r.generation}` : ""}-${b.deadline}`.slice(0, 64),
              TagSpecifications: tagSpecifications(["volume"] as const, { ...b.temporaryTags, Name: `ami-factory ${b.buildId} ${r.role}` }),
            }),
          );
          b.volumes[r.role] = out.VolumeId!;
          await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: Math.min(1800, secondsLeft(b)), minDelay: 1, maxDelay: 10 }, { VolumeIds: [out.VolumeId!] });
          b.log(`volume ${r.role}: ${out.VolumeId} (${r.sizeGiB} GiB${r.snapshotId ? ` from ${r.snapshotId}` : ""})`);
        }),
      );
    },
    async cleanup(b) {
      const { DeleteVolumeCommand } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      for (const role of roles) {
        const id = b.volumes[role];
        if (!id) continue;
        try {
          await ec2.send(new DeleteVolumeCommand({ VolumeId: id }));
        } catch (e) {
          if (errorName(e) !== "InvalidVolume.NotFound") throw e;
        }
      }
    },
  };
}

/** Device names the worker's volumes are attached as (the guest finds them by volume id anyway). */
const DEVICE_NAMES = ["/dev/sdf", "/dev/sdg", "/dev/sdh", "/dev/sdi"];

export function attachStep(roles: string[]): Step<WorkerBuild> {
  return {
    name: `attach volumes (${roles.join(", ")})`,
    async run(b) {
      const { AttachVolumeCommand, waitUntilVolumeInUse } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      // Only the roles that have a volume not attached yet (a build may make fewer, or attach a
      // role's volume anew after discarding it), each on a device name still free.
      const present = roles.filter((r) => b.volumes[r] && !b.attachments[r]);
      for (const role of present) {
        const device = DEVICE_NAMES.find((d) => !Object.values(b.attachments).includes(d));
        if (!device) throw new Error(`no free device name for the ${role} volume (${DEVICE_NAMES.join(", ")} are taken)`);
        b.attachments[role] = device;
        await ec2.send(new AttachVolumeCommand({ InstanceId: b.instanceId, VolumeId: b.volumes[role], Device: device })).catch((e) => {
          // A retry after a lost answer finds the volume attached already (to our worker: it is new).
          if (errorName(e) !== "VolumeInUse" && !/already attached/i.test(String((e as Error).message))) throw e;
        });
      }
      await waitUntilVolumeInUse({ client: ec2, maxWaitTime: Math.min(600, secondsLeft(b)), minDelay: 1, maxDelay: 10 }, { VolumeIds: present.map((r) => b.volumes[r]) });
    },
    async cleanup(b) {
      await detachVolumes(b, roles);
    },
  };
}

export async function detachVolumes(b: WorkerBuild, roles: string[]): Promise<void> {
  const { DetachVolumeCommand, waitUntilVolumeAvailable } = ec2Sdk();
  const ec2 = await ec2Client(b.region);
  const detached: string[] = [];
  for (const role of roles.filter((r) => b.attachments[r])) {
    try {
      await ec2.send(new DetachVolumeCommand({ VolumeId: b.volumes[role], InstanceId: b.instanceId }));
      detached.push(b.volumes[role]);
    } catch (e) {
      if (errorName(e) !== "IncorrectState" && errorName(e) !== "InvalidAttachment.NotFound" && errorName(e) !== "InvalidVolume.NotFound") throw e;
    }
    delete b.attachments[role];
  }
  if (detached.length) await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 600, minDelay: 1, maxDelay: 10 }, { VolumeIds: detached });
}

export function detachStep(roles: string[]): Step<WorkerBuild> {
  return { name: `detach volumes (${roles.join(", ")})`, run: (b) => detachVolumes(b, roles) };
}

/**
 * Detaches and deletes the volumes of these roles now, and forgets them, so that a later
 * volumesStep can make the roles anew (a volume a failed in-place conversion wrote to). Nothing to
 * clean up afterwards: the volumes are gone, and their temporary tags let a sweep find them if this
 * process dies first.
 */
export function discardStep(roles: string[], why: string): Step<WorkerBuild> {
  return {
    name: `discard volumes (${roles.join(", ")}): ${why}`,
    async run(b) {
      const { DeleteVolumeCommand } = ec2Sdk();
      await detachVolumes(b, roles);
      const ec2 = await ec2Client(b.region);
      for (const role of roles) {
        const id = b.volumes[role];
        if (!id) continue;
        await ec2.send(new DeleteVolumeCommand({ VolumeId: id })).catch((e) => {
          if (errorName(e) !== "InvalidVolume.NotFound") throw e;
        });
        b.log(`volume ${role}: ${id} discarded (${why})`);
        delete b.volumes[role];
      }
    },
  };
}
