// Seeding and inspecting the emulator's AWS state through the SDK (what a test asserts on).
import {
  CreateImageCommand, CreateSnapshotCommand, CreateVolumeCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand, DescribeVolumesCommand, EC2Client, RegisterImageCommand, RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import { IAMClient, ListInstanceProfilesCommand, ListRolesCommand } from "@aws-sdk/client-iam";
import { DescribeParametersCommand, SSMClient } from "@aws-sdk/client-ssm";

export const ec2 = (region = "us-east-1") => new EC2Client({ region });

/** A paravirtual EBS-backed image, as moto makes one from an instance of an unknown image. */
export async function seedPvImage(region = "us-east-1", name = "legacy-pv"): Promise<{ imageId: string; instanceId: string }> {
  const client = ec2(region);
  const run = await client.send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1, InstanceType: "m1.small" }));
  const instanceId = run.Instances![0].InstanceId!;
  const image = await client.send(new CreateImageCommand({ InstanceId: instanceId, Name: name }));
  return { imageId: image.ImageId!, instanceId };
}

/**
 * A paravirtual image as PV estates registered them: root /dev/sda1 from a snapshot, a data volume
 * /dev/sdf from an encrypted gp3 snapshot (kept on termination), instance store /dev/sdb and /dev/sdc.
 */
export async function seedPvImageWithDisks(region = "us-east-1", name = "legacy-disks", architecture: "x86_64" | "arm64" = "x86_64"): Promise<{ imageId: string; rootSnapshotId: string; dataSnapshotId: string }> {
  const client = ec2(region);
  const snapshotOf = async (size: number, encrypted: boolean) => {
    const v = await client.send(new CreateVolumeCommand({ AvailabilityZone: `${region}a`, Size: size, Encrypted: encrypted }));
    return (await client.send(new CreateSnapshotCommand({ VolumeId: v.VolumeId! }))).SnapshotId!;
  };
  const rootSnapshotId = await snapshotOf(8, false);
  const dataSnapshotId = await snapshotOf(50, true);
  const out = await client.send(
    new RegisterImageCommand({
      Name: name,
      Architecture: architecture,
      VirtualizationType: "paravirtual",
      KernelId: "aki-919dcaf8",
      RootDeviceName: "/dev/sda1",
      BlockDeviceMappings: [
        { DeviceName: "/dev/sda1", Ebs: { SnapshotId: rootSnapshotId, VolumeSize: 8, VolumeType: "standard", DeleteOnTermination: true } },
        { DeviceName: "/dev/sdf", Ebs: { SnapshotId: dataSnapshotId, VolumeSize: 60, VolumeType: "gp3", Iops: 4000, Throughput: 250, DeleteOnTermination: false } },
        { DeviceName: "/dev/sdb", VirtualName: "ephemeral0" },
        { DeviceName: "/dev/sdc", VirtualName: "ephemeral1" },
      ],
    }),
  );
  return { imageId: out.ImageId!, rootSnapshotId, dataSnapshotId };
}

export async function describeImage(region: string, imageId: string) {
  const out = await ec2(region).send(new DescribeImagesCommand({ ImageIds: [imageId] })).catch(() => ({ Images: [] }));
  return out.Images?.find((i) => i.ImageId === imageId && i.State !== "deregistered");
}

export async function imagesTagged(region: string, key: string, value?: string) {
  const out = await ec2(region).send(new DescribeImagesCommand({ Owners: ["self"], Filters: [value === undefined ? { Name: "tag-key", Values: [key] } : { Name: `tag:${key}`, Values: [value] }] }));
  return (out.Images ?? []).filter((i) => i.State !== "deregistered");
}

export async function snapshotExists(region: string, snapshotId: string): Promise<boolean> {
  const out = await ec2(region).send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })).catch(() => ({ Snapshots: [] }));
  return (out.Snapshots ?? []).length > 0;
}

/** Everything temporary ami-factory left behind in a region (and images never verified): must be empty after every build. */
export async function leftovers(region = "us-east-1"): Promise<string[]> {
  const client = ec2(region);
  const tagged = [{ Name: "tag:ami-factory:temporary", Values: ["true"] }];
  const instances = (await client.send(new DescribeInstancesCommand({ Filters: tagged }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
  const volumes = (await client.send(new DescribeVolumesCommand({ Filters: tagged }))).Volumes ?? [];
  const groups = (await client.send(new DescribeSecurityGroupsCommand({ Filters: tagged }))).SecurityGroups ?? [];
  const pending = (await client.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag:ami-factory:verification", Values: ["pending"] }] }))).Images ?? [];
  const iam = new IAMClient({ region });
  const roles = ((await iam.send(new ListRolesCommand({}))).Roles ?? []).filter((r) => r.RoleName?.startsWith("ami-factory-"));
  const profiles = ((await iam.send(new ListInstanceProfilesCommand({}))).InstanceProfiles ?? []).filter((p) => p.InstanceProfileName?.startsWith("ami-factory-"));
  const parameters = (await buildParameters(region)).map((n) => `parameter ${n}`);
  return [
    ...instances.filter((i) => i.State?.Name !== "terminated").map((i) => `instance ${i.InstanceId} (${i.State?.Name})`),
    ...volumes.map((v) => `volume ${v.VolumeId} (${v.State})`),
    ...groups.map((g) => `security group ${g.GroupId}`),
    ...pending.filter((i) => i.State !== "deregistered").map((i) => `image ${i.ImageId} (verification pending)`),
    ...roles.map((r) => `role ${r.RoleName}`),
    ...profiles.map((p) => `instance profile ${p.InstanceProfileName}`),
    ...parameters,
  ];
}

/** The names of builds' secret parameters (under /ami-factory/build, worker/buildSecret.ts). */
export async function buildParameters(region = "us-east-1"): Promise<string[]> {
  const out = await new SSMClient({ region }).send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: ["/ami-factory/build"] }], MaxResults: 50 }));
  return (out.Parameters ?? []).map((p) => p.Name!);
}

/** An HVM image registered from a fresh snapshot. */
export async function seedHvmImage(region = "us-east-1", name = "modern-hvm"): Promise<string> {
  const { CreateVolumeCommand, CreateSnapshotCommand, RegisterImageCommand } = await import("@aws-sdk/client-ec2");
  const client = ec2(region);
  const vol = await client.send(new CreateVolumeCommand({ AvailabilityZone: `${region}a`, Size: 8 }));
  const snap = await client.send(new CreateSnapshotCommand({ VolumeId: vol.VolumeId }));
  const image = await client.send(
    new RegisterImageCommand({ Name: name, VirtualizationType: "hvm", Architecture: "x86_64", RootDeviceName: "/dev/xvda", BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: snap.SnapshotId } }] }),
  );
  return image.ImageId!;
}
