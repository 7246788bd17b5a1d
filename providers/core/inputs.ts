// Pure checks of input values. Each returns failures that name the field and say the fix; the
// engine shows them before anything is created.

/** How the engine shows a value that is not known yet (preview of an output of another resource). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export const isUnknown = (v: unknown) => v === UNKNOWN;

export interface Failure {
  property: string;
  reason: string;
}

export const patterns = {
  amiId: /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/,
  instanceId: /^i-([0-9a-f]{8}|[0-9a-f]{17})$/,
  subnetId: /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/,
  accountId: /^\d{12}$/,
  region: /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/,
  organizationArn: /^arn:aws[a-z-]*:organizations::\d{12}:organization\/o-[a-z0-9]{10,32}$/,
  organizationalUnitArn: /^arn:aws[a-z-]*:organizations::\d{12}:ou\/o-[a-z0-9]{10,32}\/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$/,
  snsTopicArn: /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/,
  kmsKey: /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key\/[0-9a-f-]{36}|alias\/[A-Za-z0-9/_-]+)|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|alias\/[A-Za-z0-9/_-]+)$/,
  // EC2 image names: 3-128 characters of letters, numbers, ( ) [ ] space . / - ' @ _
  imageName: /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/,
};

export const examples: Record<keyof typeof patterns, string> = {
  amiId: "ami-0123456789abcdef0",
  instanceId: "i-0123456789abcdef0",
  subnetId: "subnet-0123456789abcdef0",
  accountId: "123456789012",
  region: "eu-west-1",
  organizationArn: "arn:aws:organizations::123456789012:organization/o-abcde12345",
  organizationalUnitArn: "arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12-cdefgh34",
  snsTopicArn: "arn:aws:sns:eu-west-1:123456789012:alerts",
  kmsKey: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab or alias/my-key",
  imageName: "my-image-2026-11-22",
};

/**
 * The most tags a resource's `tags` may give: EC2 allows 50 user tags per image ("Tag restrictions",
 * Amazon EC2 User Guide) and ami-factory's own on an image reach 22 at most: a SurrogateAmi's
 * managed-by, build-id, Name, recipe, recipe-hash, suite or releasever, sources, lineage,
 * tool-version, built-at, kind, guest-script, verification, stack, verified-on, boot-line, facts,
 * handed-over, then at retirement retired-at, retired-image, retired-by and retention (a
 * ConvertedHvmAmi's reach 21: source-ami, source-ami-region and conversion for the recipe's four).
 */
export const MAX_GIVEN_TAGS = 28;

export class Checker {
  readonly failures: Failure[] = [];

  fail(property: string, reason: string): void {
    this.failures.push({ property, reason });
  }

  /** A required string matching one of the known patterns. */
  id(property: string, value: unknown, kind: keyof typeof patterns, required = true): value is string {
    if (isUnknown(value)) return true;
    if (value === undefined || value === null || value === "") {
      if (required) this.fail(property, `${property} is required: give a value like ${examples[kind]}`);
      return false;
    }
    if (typeof value !== "string" || !patterns[kind].test(value)) {
      this.fail(property, `${property} ${JSON.stringify(value)} is not a valid ${kind}: use a value like ${examples[kind]}`);
      return false;
    }
    return true;
  }

  idList(property: string, value: unknown, kind: keyof typeof patterns, opts: { required?: boolean; allow?: string[] } = {}): string[] {
    if (isUnknown(value)) return [];
    if (value === undefined || value === null) {
      if (opts.required) this.fail(property, `${property} is required: a list such as [${JSON.stringify(examples[kind])}]`);
      return [];
    }
    if (!Array.isArray(value)) {
      this.fail(property, `${property} must be a list, such as [${JSON.stringify(examples[kind])}]`);
      return [];
    }
    if (opts.required && value.length === 0) this.fail(property, `${property} must not be empty: name at least one, such as ${examples[kind]}`);
    const seen = new Set<string>();
    value.forEach((v, i) => {
      if (opts.allow?.includes(v)) return;
      this.id(`${property}[${i}]`, v, kind);
      if (seen.has(v)) this.fail(`${property}[${i}]`, `${property} names ${JSON.stringify(v)} twice: list each once`);
      seen.add(v);
    });
    return value as string[];
  }

  integer(property: string, value: unknown, opts: { min: number; max: number; multipleOf?: number }): void {
    if (value === undefined || isUnknown(value)) return;
    if (typeof value !== "number" || !Number.isInteger(value) || value < opts.min || value > opts.max) {
      this.fail(property, `${property} must be a whole number from ${opts.min} to ${opts.max} (got ${JSON.stringify(value)})`);
      return;
    }
    if (opts.multipleOf && value % opts.multipleOf !== 0) this.fail(property, `${property} must be a multiple of ${opts.multipleOf} (got ${value})`);
  }

  boolean(property: string, value: unknown): void {
    if (value !== undefined && !isUnknown(value) && typeof value !== "boolean") this.fail(property, `${property} must be true or false (got ${JSON.stringify(value)})`);
  }

  string(property: string, value: unknown, opts: { required?: boolean; max?: number; pattern?: keyof typeof patterns } = {}): void {
    if (value === undefined || value === null) {
      if (opts.required) this.fail(property, `${property} is required`);
      return;
    }
    if (isUnknown(value)) return;
    if (typeof value !== "string") return this.fail(property, `${property} must be a string (got ${JSON.stringify(value)})`);
    if (opts.max !== undefined && value.length > opts.max) this.fail(property, `${property} is ${value.length} characters long: at most ${opts.max} are allowed`);
    if (opts.pattern && !patterns[opts.pattern].test(value)) this.fail(property, `${property} ${JSON.stringify(value)} is not valid: use a value like ${examples[opts.pattern]}`);
  }

  tags(property: string, value: unknown): void {
    if (value === undefined || isUnknown(value)) return;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return this.fail(property, `${property} must be a map of tag keys to string values`);
    const entries = Object.entries(value);
    if (entries.length > MAX_GIVEN_TAGS) this.fail(property, `${property} has ${entries.length} tags: EC2 allows 50 per resource and ami-factory adds up to ${50 - MAX_GIVEN_TAGS} of its own to an image (provenance, verification, hand-over and retirement tags), so give at most ${MAX_GIVEN_TAGS}`);
    for (const [k, v] of entries) {
      if (typeof v !== "string") this.fail(`${property}.${k}`, `tag ${JSON.stringify(k)} must have a string value (got ${JSON.stringify(v)})`);
      if (k.length > 128 || k.length === 0) this.fail(`${property}.${k}`, `tag keys must be 1-128 characters long`);
      if (/^aws:/i.test(k)) this.fail(`${property}.${k}`, `tag keys starting with "aws:" are reserved by AWS: rename ${JSON.stringify(k)}`);
      if (k.startsWith("ami-factory:")) this.fail(`${property}.${k}`, `tag keys starting with "ami-factory:" are set by ami-factory itself: rename ${JSON.stringify(k)}`);
      if (typeof v === "string" && v.length > 256) this.fail(`${property}.${k}`, `tag values must be at most 256 characters long`);
    }
  }

  /**
   * Keys of an args object that the resource does not know (a misspelt option is an error, not a
   * no-op). `shown`: the fields to list in the message (not those the resource class sets itself).
   */
  knownKeys(property: string, value: Record<string, unknown>, known: readonly string[], shown: readonly string[] = known): void {
    for (const k of Object.keys(value)) {
      if (k.startsWith("__")) continue; // engine-internal (e.g. __provider)
      if (!known.includes(k)) this.fail(property ? `${property}.${k}` : k, `unknown field ${JSON.stringify(k)}: the known fields are ${shown.join(", ")}`);
    }
  }
}

/** Sorted, de-duplicated copy of a list (for stable diffs and state). */
export function sortedUnique(values: readonly string[] | undefined): string[] {
  return [...new Set(values ?? [])].sort();
}

export function isoOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" && value ? new Date(value).toISOString() : undefined;
}
