// SharedAmi's inputs, one row each (providers/core/fields.ts derives the rest). The build id hashes
// every field that decides the copies and their sharing (not tags or description).
import { field } from "../core/fields";
import { isoOrUndefined } from "../core/inputs";
import { checkGivenName } from "../core/naming";
import { CONSUMER_FIELDS } from "../core/consumerFields";

export const SHARED_AMI_FIELDS = {
  /** The image to copy and share. */
  sourceAmiId: field.id<string, string, "replace">("amiId", { change: "replace", secret: false }),
  /** Where the source image lives. Default: `aws:region`, else AWS_REGION. */
  sourceRegion: field.id<string | undefined, string, "replace">("region", { change: "replace", secret: false }),
  /** Regions that get the image. The source region itself means "share the source in place" (unless `encrypted`). */
  regions: field.idList<"in-place", string[]>("region", { change: "in-place", buildId: true, required: true, secret: false }),
  /** Accounts allowed to launch the image. `"all"` makes it public and needs `allowPublic`. Default: none. */
  accountIds: field.idList<"in-place">("accountId", {
    change: "in-place",
    buildId: true,
    allow: ["all"],
    check: (c, p, v, raw) => {
      if (Array.isArray(v) && v.includes("all") && raw.allowPublic !== true) c.fail(p, `accountIds contains "all", which makes the image public: set allowPublic: true if that is intended, or remove "all"`);
    },
  }),
  /** Organizations (ARNs) allowed to launch the image. Default: none. */
  organizationArns: field.idList<"in-place">("organizationArn", { change: "in-place", buildId: true }),
  /** Organizational units (ARNs) allowed to launch the image. Default: none. */
  organizationalUnitArns: field.idList<"in-place">("organizationalUnitArn", { change: "in-place", buildId: true }),
  /** Must be true for `accountIds: ["all"]`. Default: false. */
  allowPublic: field.boolean<boolean, "in-place">({ change: "in-place", buildId: true, fallback: false }),
  /** Also grant createVolumePermission on the snapshots to the same accounts. Default: true. */
  shareSnapshots: field.boolean<boolean, "in-place">({ change: "in-place", buildId: true, fallback: true }),
  /** Encrypt the copies (also copies in the source region). Default: false (copies keep the source's encryption). */
  encrypted: field.boolean<boolean, "replace">({ change: "replace", fallback: false }),
  /** region → KMS key for the copies there. Default: the account's default EBS key. */
  kmsKeyIds: field.of<Record<string, string> | undefined, Record<string, string>, "replace">({
    change: "replace",
    check: (c, p, v, raw) => {
      const keys = (v ?? {}) as Record<string, unknown>;
      if (typeof keys !== "object" || Array.isArray(keys)) return c.fail(p, "kmsKeyIds must be a map of region to KMS key (id, ARN or alias)");
      const regions = Array.isArray(raw.regions) ? (raw.regions as unknown[]) : [];
      for (const [region, key] of Object.entries(keys)) {
        if (!regions.includes(region)) c.fail(`${p}.${region}`, `kmsKeyIds names region ${region}, which is not in regions: add it to regions or remove the key`);
        c.id(`${p}.${region}`, key, "kmsKey");
        if (typeof key === "string" && key.startsWith("arn:") && !key.includes(`:kms:${region}:`)) {
          c.fail(`${p}.${region}`, `the KMS key for ${region} is in another region: a copy can only be encrypted with a key of its own region`);
        }
      }
      if (Object.keys(keys).length && raw.encrypted !== true) c.fail(p, "kmsKeyIds is set but encrypted is not: set encrypted: true");
    },
    value: (v) => Object.fromEntries(Object.entries((v ?? {}) as Record<string, string>).sort()),
  }),
  /** Name of the copies. Default: the source image's name. A build stamp is added unless `exactName`. */
  name: field.of<string | undefined, string | undefined, "replace">({ change: "replace", config: "imageName", secret: false, check: (c, p, v, raw) => checkGivenName(c, p, v, raw) }),
  /**
   * Copy with exactly `name`. Default: false, copies are named `name-20261126T101005Z` so that a
   * replacement copies before it deletes. With true, a replacement deletes the old copies first.
   */
  exactName: field.boolean<boolean, "in-place">({ change: "in-place", buildId: true, fallback: false, secret: false }),
  /** Description of the copies. Default: none. */
  description: field.string<string | undefined, "in-place">({ change: "in-place", max: 255 }),
  /** Tags for the copies and their snapshots. Default: none (provenance tags are always added). */
  tags: field.tags({ change: "in-place" }),
  /** When the copies are deprecated (ISO 8601). Default: never. */
  deprecateAt: field.of<string | undefined, string | undefined, "in-place">({
    change: "in-place",
    buildId: true,
    check: (c, p, v) => {
      if (v !== undefined && Number.isNaN(typeof v === "string" ? Date.parse(v) : NaN)) c.fail(p, `deprecateAt must be an ISO 8601 time such as 2027-01-01T00:00:00Z (got ${JSON.stringify(v)})`);
    },
    value: (v) => isoOrUndefined(v),
  }),
  /** How long copying may take before the create fails and cleans up. Default: 120. */
  timeoutMinutes: field.integer<number, "in-place">({ change: "in-place", buildId: true, min: 1, max: 24 * 60, fallback: 120, secret: false }),
  /** What becomes of the copies (never the source) once they leave the stack, and their protection meanwhile. */
  ...CONSUMER_FIELDS,
  /** project/stack/resource name: makes build ids unique per resource. */
  scope: field.internal((v) => (typeof v === "string" ? v : "")),
};
