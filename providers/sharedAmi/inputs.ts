// SharedAmi inputs: what the provider keeps after check (normalised, validated) and its outputs.
import { Checker, Failure, isoOrUndefined, sortedUnique } from "../core/inputs";
import { maxGivenName } from "../core/naming";
import type { Tags } from "../core/tags";

export const SHARED_AMI_FIELDS = [
  "sourceAmiId", "sourceRegion", "regions", "accountIds", "organizationArns", "organizationalUnitArns",
  "allowPublic", "shareSnapshots", "encrypted", "kmsKeyIds", "name", "exactName", "description", "tags", "deprecateAt",
  "timeoutMinutes", "scope",
] as const;

export interface SharedAmiInputs {
  sourceAmiId: string;
  sourceRegion: string;
  regions: string[];
  accountIds: string[];
  organizationArns: string[];
  organizationalUnitArns: string[];
  allowPublic: boolean;
  shareSnapshots: boolean;
  encrypted: boolean;
  kmsKeyIds: Record<string, string>;
  name?: string;
  /** Copies take exactly `name` (no build stamp); a replacement then deletes the old copies first. */
  exactName: boolean;
  description?: string;
  tags: Tags;
  deprecateAt?: string;
  timeoutMinutes: number;
  /** project/stack/resource name: makes build ids unique per resource (not user-facing). */
  scope: string;
}

export interface SharedAmiOutputs extends SharedAmiInputs {
  schemaVersion: number;
  /** region → image id (the source itself where it is shared in place). */
  imageIds: Record<string, string>;
  /** region → the snapshots behind that image. */
  snapshotIds: Record<string, string[]>;
  /** The regions whose image this resource copied (and so deletes). */
  copiedRegions: string[];
  /** region → how many times it was copied again (part of the CopyImage client token). */
  placements?: Record<string, number>;
  /** Copies refresh found deregistered out of band: their snapshots (ours) are deleted by the next update. */
  lostCopies?: Record<string, { imageId: string; snapshotIds: string[] }>;
  /** The name the copies were registered with (the given name plus the build stamp, unless exactName). */
  imageName: string;
  buildId: string;
  /** This share's name in the grant tags of a source shared in place (grants.ts). None in older state, which recorded no grant tags. */
  holderId?: string;
}

/** 2: copiedRegions derived, not stored (./state.ts). */
export const SCHEMA_VERSION = 2;

/** Does a region get a copy (true) or is the source shared where it is (false)? */
export function needsCopy(inputs: Pick<SharedAmiInputs, "sourceRegion" | "encrypted">, region: string): boolean {
  return region !== inputs.sourceRegion || inputs.encrypted;
}

/**
 * EnableImageDeprecation: "You can't specify a date in the past. The upper limit for DeprecateAt is
 * 10 years from now, except for public AMIs, where the upper limit is 2 years from the creation
 * date." (EC2 API reference). A copy made after the date could not be deprecated.
 */
export const DEPRECATE_AT_MAX_YEARS = 10;
export const DEPRECATE_AT_MAX_YEARS_PUBLIC = 2;

/** AWS's rules for a share that EC2 would refuse only after the copies are made. `olds`: the inputs in the state. */
function checkAwsRules(c: Checker, raw: Record<string, unknown>, regions: string[], accountIds: string[], orgs: string[], ous: string[], olds?: Record<string, unknown>, now = Date.now()): void {
  const deprecateAt = typeof raw.deprecateAt === "string" ? Date.parse(raw.deprecateAt) : NaN;
  if (!Number.isNaN(deprecateAt)) {
    const unchanged = olds !== undefined && isoOrUndefined(olds.deprecateAt) === isoOrUndefined(raw.deprecateAt);
    const oldRegions = Array.isArray(olds?.regions) ? (olds!.regions as string[]) : [];
    const added = regions.filter((r) => !oldRegions.includes(r));
    if (deprecateAt <= now && !unchanged) {
      c.fail("deprecateAt", `deprecateAt ${raw.deprecateAt} is in the past: EC2 deprecates only at a future time; give a later date or remove deprecateAt`);
    } else if (deprecateAt <= now && added.length) {
      c.fail("regions", `regions adds ${added.join(", ")} after deprecateAt (${raw.deprecateAt}) has passed: a new copy cannot be deprecated in the past; move deprecateAt to a future date or leave the regions as they were`);
    }
    const isPublic = accountIds.includes("all");
    const years = isPublic ? DEPRECATE_AT_MAX_YEARS_PUBLIC : DEPRECATE_AT_MAX_YEARS;
    const limit = new Date(now);
    limit.setUTCFullYear(limit.getUTCFullYear() + years);
    if (deprecateAt > limit.getTime()) {
      c.fail("deprecateAt", `deprecateAt ${raw.deprecateAt} is more than ${years} years ahead: EC2 deprecates ${isPublic ? "public images" : "images"} at most ${years} years out; give a date before ${limit.toISOString().slice(0, 10)}`);
    }
  }
  // "You can't share an AMI that has volumes that are encrypted with an AWS managed key" (EC2 User
  // Guide, "Share an AMI with specific AWS accounts"): an encrypted copy shared with anyone needs a
  // customer-managed key in every region that gets a copy.
  const sharedWithOthers = accountIds.length + orgs.length + ous.length > 0;
  if (raw.encrypted === true && sharedWithOthers) {
    const keys = (raw.kmsKeyIds ?? {}) as Record<string, unknown>;
    const missing = regions.filter((r) => typeof keys[r] !== "string" || /(^|:)alias\/aws\/ebs$/.test(keys[r] as string));
    if (missing.length) {
      c.fail("kmsKeyIds", `encrypted copies shared with other accounts need a customer-managed KMS key (the AWS-managed EBS key cannot be shared): set kmsKeyIds for ${missing.join(", ")}, and grant the accounts use of those keys`);
    }
  }
}

export function checkSharedAmi(raw: Record<string, unknown>, olds?: Record<string, unknown>): { inputs?: SharedAmiInputs; failures: Failure[] } {
  const c = new Checker();
  c.knownKeys("", raw, SHARED_AMI_FIELDS);
  c.id("sourceAmiId", raw.sourceAmiId, "amiId");
  c.id("sourceRegion", raw.sourceRegion, "region");
  const regions = c.idList("regions", raw.regions, "region", { required: true });
  const allowPublic = raw.allowPublic === true;
  c.boolean("allowPublic", raw.allowPublic);
  const accountIds = c.idList("accountIds", raw.accountIds, "accountId", { allow: ["all"] });
  if (accountIds.includes("all") && !allowPublic) {
    c.fail("accountIds", `accountIds contains "all", which makes the image public: set allowPublic: true if that is intended, or remove "all"`);
  }
  const organizationArns = c.idList("organizationArns", raw.organizationArns, "organizationArn");
  const organizationalUnitArns = c.idList("organizationalUnitArns", raw.organizationalUnitArns, "organizationalUnitArn");
  c.boolean("shareSnapshots", raw.shareSnapshots);
  c.boolean("encrypted", raw.encrypted);
  const kmsKeyIds = (raw.kmsKeyIds ?? {}) as Record<string, unknown>;
  if (typeof kmsKeyIds !== "object" || Array.isArray(kmsKeyIds)) {
    c.fail("kmsKeyIds", "kmsKeyIds must be a map of region to KMS key (id, ARN or alias)");
  } else {
    for (const [region, key] of Object.entries(kmsKeyIds)) {
      if (!regions.includes(region)) c.fail(`kmsKeyIds.${region}`, `kmsKeyIds names region ${region}, which is not in regions: add it to regions or remove the key`);
      c.id(`kmsKeyIds.${region}`, key, "kmsKey");
      if (typeof key === "string" && key.startsWith("arn:") && !key.includes(`:kms:${region}:`)) {
        c.fail(`kmsKeyIds.${region}`, `the KMS key for ${region} is in another region: a copy can only be encrypted with a key of its own region`);
      }
    }
    if (Object.keys(kmsKeyIds).length && raw.encrypted !== true) c.fail("kmsKeyIds", "kmsKeyIds is set but encrypted is not: set encrypted: true");
  }
  c.boolean("exactName", raw.exactName);
  if (raw.name !== undefined) c.string("name", raw.name, { pattern: "imageName" });
  const longest = maxGivenName(raw.exactName === true);
  if (typeof raw.name === "string" && raw.name.length > longest && raw.name.length <= 128) {
    c.fail("name", `name is ${raw.name.length} characters long: with the build stamp ami-factory adds (e.g. -20261126T101005Z) at most ${longest} fit in EC2's 128; shorten it, or set exactName: true`);
  }
  c.string("description", raw.description, { max: 255 });
  c.tags("tags", raw.tags);
  if (raw.deprecateAt !== undefined) {
    const t = typeof raw.deprecateAt === "string" ? Date.parse(raw.deprecateAt) : NaN;
    if (Number.isNaN(t)) c.fail("deprecateAt", `deprecateAt must be an ISO 8601 time such as 2027-01-01T00:00:00Z (got ${JSON.stringify(raw.deprecateAt)})`);
  }
  c.integer("timeoutMinutes", raw.timeoutMinutes, { min: 1, max: 24 * 60 });
  if (!c.failures.length) checkAwsRules(c, raw, regions, accountIds, organizationArns, organizationalUnitArns, olds);
  if (c.failures.length) return { failures: c.failures };
  return {
    failures: [],
    inputs: {
      sourceAmiId: raw.sourceAmiId as string,
      sourceRegion: raw.sourceRegion as string,
      regions: sortedUnique(regions),
      accountIds: sortedUnique(accountIds),
      organizationArns: sortedUnique(organizationArns),
      organizationalUnitArns: sortedUnique(organizationalUnitArns),
      allowPublic,
      shareSnapshots: raw.shareSnapshots !== false,
      encrypted: raw.encrypted === true,
      kmsKeyIds: Object.fromEntries(Object.entries(kmsKeyIds as Record<string, string>).sort()),
      name: raw.name as string | undefined,
      exactName: raw.exactName === true,
      description: raw.description as string | undefined,
      tags: (raw.tags ?? {}) as Tags,
      deprecateAt: isoOrUndefined(raw.deprecateAt),
      timeoutMinutes: (raw.timeoutMinutes as number | undefined) ?? 120,
      scope: typeof raw.scope === "string" ? raw.scope : "",
    },
  };
}
