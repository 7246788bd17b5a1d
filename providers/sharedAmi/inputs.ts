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
  /** The name the copies were registered with (the given name plus the build stamp, unless exactName). */
  imageName: string;
  buildId: string;
}

export const SCHEMA_VERSION = 1;

/** Does a region get a copy (true) or is the source shared where it is (false)? */
export function needsCopy(inputs: Pick<SharedAmiInputs, "sourceRegion" | "encrypted">, region: string): boolean {
  return region !== inputs.sourceRegion || inputs.encrypted;
}

export function checkSharedAmi(raw: Record<string, unknown>): { inputs?: SharedAmiInputs; failures: Failure[] } {
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
