// Finding and deleting what a crashed build left behind: everything tagged temporary by
// ami-factory, images whose launch verification never finished (with their snapshots), SharedAmi
// copies a dead run never handed over, and snapshots of builds that never registered their image.
// Used by a create that
// re-runs a build id (its own leftovers) and by `npm run sweep` (a stack's or everyone's).
import { ec2Client, iamClient, ec2Sdk, iamSdk } from "./clients";
import { deleteImageAndSnapshots, deleteSnapshot } from "./images";
import { BUILD_ID_TAG, COPY_OF_TAG, CREATED_TAG, EXPIRES_TAG, HANDED_OVER_TAG, MANAGED_BY_TAG, STACK_TAG, TEMPORARY_TAG, VERIFICATION_TAG } from "./tags";
import { errorName, waitFor } from "./wait";
import { dropHolder, expiringRecords } from "../sharedAmi/grants";
import { deleteSecretParameter, findSecretParameters } from "../worker/buildSecret";

export type LeftoverKind = "grant-record" | "instance" | "image" | "volume" | "snapshot" | "security-group" | "instance-profile" | "role" | "parameter";

export interface Leftover {
  kind: LeftoverKind;
  id: string;
  region: string;
  buildId?: string;
  stack?: string;
  /** When it may be swept at the latest (its build's deadline plus a margin). */
  expiresAt?: string;
  /** When its build started (ami-factory:created-at). */
  createdAt?: string;
}

export interface LeftoverFilter {
  buildId?: string;
  /** project/stack */
  stack?: string;
  /** Only leftovers whose expiry (ami-factory:expires-at) is before this time. */
  expiredBy?: Date;
  /** Only leftovers created (ami-factory:created-at) before this time. */
  createdBefore?: Date;
}

/** Deletion order: what holds a thing goes before it. */
export const SWEEP_ORDER: LeftoverKind[] = ["grant-record", "instance", "image", "volume", "snapshot", "security-group", "instance-profile", "role", "parameter"];

type TagList = { Key?: string; Value?: string }[] | undefined;
const tagOf = (tags: TagList, key: string) => tags?.find((t) => t.Key === key)?.Value;

function keep(f: LeftoverFilter, tags: TagList): boolean {
  if (f.buildId && tagOf(tags, BUILD_ID_TAG) !== f.buildId) return false;
  if (f.stack && tagOf(tags, STACK_TAG) !== f.stack) return false;
  if (f.expiredBy) {
    const expires = tagOf(tags, EXPIRES_TAG);
    if (expires && Date.parse(expires) > f.expiredBy.getTime()) return false;
  }
  if (f.createdBefore) {
    const created = tagOf(tags, CREATED_TAG);
    if (created && Date.parse(created) > f.createdBefore.getTime()) return false;
  }
  return true;
}

function leftover(kind: LeftoverKind, id: string, region: string, tags: TagList): Leftover {
  return { kind, id, region, buildId: tagOf(tags, BUILD_ID_TAG), stack: tagOf(tags, STACK_TAG), expiresAt: tagOf(tags, EXPIRES_TAG), createdAt: tagOf(tags, CREATED_TAG) };
}

export async function findLeftovers(region: string, f: LeftoverFilter, opts: { iam?: boolean } = {}): Promise<Leftover[]> {
  const { DescribeInstancesCommand, DescribeVolumesCommand, DescribeSecurityGroupsCommand, DescribeSnapshotsCommand, DescribeImagesCommand } = ec2Sdk();
  const ec2 = await ec2Client(region);
  const temporary = [{ Name: `tag:${TEMPORARY_TAG}`, Values: ["true"] }, ...(f.buildId ? [{ Name: `tag:${BUILD_ID_TAG}`, Values: [f.buildId] }] : [])];
  const found: Leftover[] = [];
  const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: temporary }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
  for (const i of instances) if (i.State?.Name !== "terminated" && keep(f, i.Tags)) found.push(leftover("instance", i.InstanceId!, region, i.Tags));
  for (const v of (await ec2.send(new DescribeVolumesCommand({ Filters: temporary }))).Volumes ?? []) if (keep(f, v.Tags)) found.push(leftover("volume", v.VolumeId!, region, v.Tags));
  for (const g of (await ec2.send(new DescribeSecurityGroupsCommand({ Filters: temporary }))).SecurityGroups ?? []) if (keep(f, g.Tags)) found.push(leftover("security-group", g.GroupId!, region, g.Tags));
  // An image is an output, but one whose verification is still pending when its build is gone
  // never became one (it carries the build's expiry while pending).
  const pending = [{ Name: `tag:${VERIFICATION_TAG}`, Values: ["pending"] }, ...(f.buildId ? [{ Name: `tag:${BUILD_ID_TAG}`, Values: [f.buildId] }] : [])];
  for (const i of (await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: pending }))).Images ?? []) {
    if (i.State !== "deregistered" && keep(f, i.Tags)) found.push(leftover("image", i.ImageId!, region, i.Tags));
  }
  // Snapshots are outputs, not temporary: a build's snapshot is left over when no image of the
  // build uses it (the build died between snapshot and register).
  const built = [{ Name: `tag:${MANAGED_BY_TAG}`, Values: ["ami-factory"] }, ...(f.buildId ? [{ Name: `tag:${BUILD_ID_TAG}`, Values: [f.buildId] }] : [])];
  const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: built }))).Snapshots ?? [];
  if (snapshots.length) {
    const images = (await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: built }))).Images ?? [];
    const used = new Set(images.filter((i) => i.State !== "deregistered").flatMap((i) => (i.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId)));
    for (const s of snapshots) {
      if (!tagOf(s.Tags, BUILD_ID_TAG) || used.has(s.SnapshotId) || !keep(f, s.Tags)) continue;
      // Only worker builds' snapshots (copies' snapshots belong to their images even while copying).
      if (s.State === "pending" && !f.buildId) continue;
      if (tagOf(s.Tags, "ami-factory:kind")) found.push(leftover("snapshot", s.SnapshotId!, region, s.Tags));
    }
  }
  // SharedAmi copies of a run that died: tagged at CopyImage with the build id and an expiry, and
  // never handed to the engine (handed-over copies are in some stack's state).
  const copies = [{ Name: `tag:${MANAGED_BY_TAG}`, Values: ["ami-factory"] }, { Name: "tag-key", Values: [COPY_OF_TAG] }, ...(f.buildId ? [{ Name: `tag:${BUILD_ID_TAG}`, Values: [f.buildId] }] : [])];
  for (const image of (await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: copies }))).Images ?? []) {
    if (image.State === "deregistered" || tagOf(image.Tags, HANDED_OVER_TAG) || !tagOf(image.Tags, EXPIRES_TAG) || !keep(f, image.Tags)) continue;
    found.push(leftover("image", image.ImageId!, region, image.Tags));
  }
  // Grant records of SharedAmi creates that died before handing over (id: image#holder): the
  // record goes, and what only that holder granted is revoked (sharedAmi/grants.ts).
  for (const r of await expiringRecords(region)) {
    const tags = [{ Key: EXPIRES_TAG, Value: r.expiresAt }, { Key: BUILD_ID_TAG, Value: r.buildId }, { Key: STACK_TAG, Value: r.stack }];
    if (keep(f, tags)) found.push({ ...leftover("grant-record", `${r.imageId}#${r.holderId}`, region, tags) });
  }
  // A build's secret parameters (worker/buildSecret.ts), tagged like its other temporary resources.
  for (const p of await findSecretParameters(region, f.buildId)) {
    if (tagOf(p.tags, TEMPORARY_TAG) === "true" && keep(f, p.tags)) found.push(leftover("parameter", p.name, region, p.tags));
  }
  if (opts.iam !== false) found.push(...(await findIamLeftovers(region, f)));
  return found;
}

async function findIamLeftovers(region: string, f: LeftoverFilter): Promise<Leftover[]> {
  const { ListRolesCommand, ListRoleTagsCommand, GetInstanceProfileCommand } = iamSdk();
  const iam = await iamClient(region);
  const found: Leftover[] = [];
  const roles = (await iam.send(new ListRolesCommand({ MaxItems: 1000 }))).Roles ?? [];
  for (const r of roles.filter((x) => x.RoleName?.startsWith("ami-factory-"))) {
    const tags = (await iam.send(new ListRoleTagsCommand({ RoleName: r.RoleName }))).Tags;
    if (tagOf(tags, TEMPORARY_TAG) !== "true" || !keep(f, tags)) continue;
    found.push(leftover("role", r.RoleName!, region, tags));
    // A build's instance profile has its role's name and is made after the role (worker/iam.ts).
    const profile = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: r.RoleName })).catch((e) => {
      if (errorName(e) !== "NoSuchEntity" && errorName(e) !== "NoSuchEntityException") throw e;
    });
    if (profile?.InstanceProfile) found.push(leftover("instance-profile", r.RoleName!, region, tags));
  }
  return found;
}

/** Delete leftovers in dependency order; returns what could not be deleted, with why. */
export async function deleteLeftovers(items: Leftover[], log: (l: string) => void): Promise<string[]> {
  const failures: string[] = [];
  for (const kind of SWEEP_ORDER) {
    const batch = items.filter((i) => i.kind === kind);
    await Promise.all(
      batch.map(async (item) => {
        try {
          await deleteOne(item);
          log(`deleted ${item.kind} ${item.id} (${item.region}, build ${item.buildId ?? "?"})`);
        } catch (e) {
          failures.push(`${item.kind} ${item.id} (${item.region}): ${e instanceof Error ? e.message : String(e)}`);
        }
      }),
    );
  }
  return failures;
}

async function deleteOne(item: Leftover): Promise<void> {
  const ec2mod = ec2Sdk();
  const gone = (names: string[]) => (e: unknown) => {
    if (!names.includes(errorName(e) ?? "")) throw e;
  };
  if (item.kind === "grant-record") {
    const [imageId, holderId] = item.id.split("#");
    await dropHolder(item.region, imageId, holderId);
  } else if (item.kind === "instance") {
    const ec2 = await ec2Client(item.region);
    await ec2.send(new ec2mod.TerminateInstancesCommand({ InstanceIds: [item.id] })).catch(gone(["InvalidInstanceID.NotFound"]));
    await ec2mod.waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 600, minDelay: 2, maxDelay: 15 }, { InstanceIds: [item.id] });
  } else if (item.kind === "volume") {
    const ec2 = await ec2Client(item.region);
    const vol = (await ec2.send(new ec2mod.DescribeVolumesCommand({ VolumeIds: [item.id] })).catch(() => ({ Volumes: [] }))).Volumes?.[0];
    if (!vol) return;
    if (vol.State === "in-use") {
      await ec2.send(new ec2mod.DetachVolumeCommand({ VolumeId: item.id, Force: true }));
      await ec2mod.waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 600, minDelay: 1, maxDelay: 10 }, { VolumeIds: [item.id] });
    }
    await ec2.send(new ec2mod.DeleteVolumeCommand({ VolumeId: item.id })).catch(gone(["InvalidVolume.NotFound"]));
  } else if (item.kind === "image") {
    await deleteImageAndSnapshots(item.region, item.id);
  } else if (item.kind === "parameter") {
    await deleteSecretParameter(item.region, item.id);
  } else if (item.kind === "snapshot") {
    await deleteSnapshot(await ec2Client(item.region), item.id);
  } else if (item.kind === "security-group") {
    const ec2 = await ec2Client(item.region);
    await waitFor({ what: `deletion of security group ${item.id}`, maxWaitSeconds: 300, minDelaySeconds: 2 }, async () => {
      try {
        await ec2.send(new ec2mod.DeleteSecurityGroupCommand({ GroupId: item.id }));
        return { state: "SUCCESS", value: undefined };
      } catch (e) {
        if (errorName(e) === "InvalidGroup.NotFound") return { state: "SUCCESS", value: undefined };
        if (errorName(e) === "DependencyViolation") return { state: "RETRY", reason: "still in use" };
        throw e;
      }
    });
  } else {
    const iammod = iamSdk();
    const iam = await iamClient(item.region);
    const noEntity = gone(["NoSuchEntity", "NoSuchEntityException"]);
    if (item.kind === "instance-profile") {
      const profile = (await iam.send(new iammod.GetInstanceProfileCommand({ InstanceProfileName: item.id })).catch(noEntity))?.InstanceProfile;
      for (const role of profile?.Roles ?? []) await iam.send(new iammod.RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: item.id, RoleName: role.RoleName })).catch(noEntity);
      await iam.send(new iammod.DeleteInstanceProfileCommand({ InstanceProfileName: item.id })).catch(noEntity);
    } else {
      const attached = (await iam.send(new iammod.ListAttachedRolePoliciesCommand({ RoleName: item.id })).catch(noEntity))?.AttachedPolicies ?? [];
      for (const p of attached) await iam.send(new iammod.DetachRolePolicyCommand({ RoleName: item.id, PolicyArn: p.PolicyArn })).catch(noEntity);
      // IAM deletes a role only without policies: inline ones (today's workers) and attached ones (older releases').
      const inline = (await iam.send(new iammod.ListRolePoliciesCommand({ RoleName: item.id })).catch(noEntity))?.PolicyNames ?? [];
      for (const name of inline) await iam.send(new iammod.DeleteRolePolicyCommand({ RoleName: item.id, PolicyName: name })).catch(noEntity);
      const profiles = (await iam.send(new iammod.ListInstanceProfilesForRoleCommand({ RoleName: item.id })).catch(noEntity))?.InstanceProfiles ?? [];
      for (const p of profiles) await iam.send(new iammod.RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: p.InstanceProfileName, RoleName: item.id })).catch(noEntity);
      await iam.send(new iammod.DeleteRoleCommand({ RoleName: item.id })).catch(noEntity);
    }
  }
}
