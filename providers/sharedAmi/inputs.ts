// SharedAmi inputs: what the provider keeps after check (normalised, validated, from ./fields.ts)
// and its outputs.
import { checkFields, InputsOf, valuesOf } from "../core/fields";
import { Checker, Failure, isoOrUndefined } from "../core/inputs";
import { SHARED_AMI_FIELDS } from "./fields";
import { RECORD_TAG_BUDGET, recordTagCount } from "./grantRecords";

export { SHARED_AMI_FIELDS };

export type SharedAmiInputs = InputsOf<typeof SHARED_AMI_FIELDS>;

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

/**
 * A source shared in place records its grants in tags on the image (./grantRecords.ts), within
 * EC2's 50 tags per image: a share whose record alone would take more than its budget is refused
 * here, before anything is granted.
 */
function checkRecordBudget(c: Checker, i: SharedAmiInputs): void {
  if (!i.regions.some((r) => !needsCopy(i, r))) return;
  const principals = { accountIds: i.accountIds, organizationArns: i.organizationArns, organizationalUnitArns: i.organizationalUnitArns };
  const needed = recordTagCount({ launch: principals, snapshotAccounts: i.shareSnapshots ? i.accountIds : [] });
  if (needed > RECORD_TAG_BUDGET) {
    c.fail("accountIds", `sharing the source in place with ${i.accountIds.length + i.organizationArns.length + i.organizationalUnitArns.length} principals needs ${needed} grant-record tags on it, more than the ${RECORD_TAG_BUDGET} a share may take of EC2's 50 per image (its revocation's marker tag counted): share with organizationArns or organizationalUnitArns instead of many accounts, or leave sourceRegion out of regions (copies hold their own grants)`);
  }
}

export function checkSharedAmi(raw: Record<string, unknown>, olds?: Record<string, unknown>): { inputs?: SharedAmiInputs; failures: Failure[] } {
  const c = new Checker();
  checkFields(c, SHARED_AMI_FIELDS, raw);
  if (c.failures.length) return { failures: c.failures };
  const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);
  checkAwsRules(c, raw, list(raw.regions), list(raw.accountIds), list(raw.organizationArns), list(raw.organizationalUnitArns), olds);
  if (c.failures.length) return { failures: c.failures };
  const inputs = valuesOf(SHARED_AMI_FIELDS, raw);
  checkRecordBudget(c, inputs);
  if (c.failures.length) return { failures: c.failures };
  return { failures: [], inputs };
}
