// The facts line of a guest script is a contract: each script declares its schema in a comment
// (`# @facts {"script":"pv2hvm","schemaVersion":2,"fields":{"nitroReady":"boolean",…}}`), the bundle
// carries it to the provider, and the line the script printed (or the facts tag read back when an
// image is adopted) is checked against it before anything is taken from it. Pure.

export type FactType = "boolean" | "string" | "number" | "string[]";

export interface FactsSchema {
  /** The script's identity, also the first field of its facts line. */
  script: string;
  schemaVersion: number;
  /** Every field a facts line must have, with its type. */
  fields: Record<string, FactType>;
}

const TYPES: FactType[] = ["boolean", "string", "number", "string[]"];
const DECLARATION = /^# @facts (\{.*\})\s*$/m;

/** The schema a guest script declares in its `# @facts {…}` line; throws when it has none or it is malformed. */
export function declaredFactsSchema(scriptText: string, file: string): FactsSchema {
  const m = DECLARATION.exec(scriptText);
  if (!m) throw new Error(`${file} declares no facts schema (a line "# @facts {\\"script\\":…,\\"schemaVersion\\":…,\\"fields\\":{…}}")`);
  let raw: unknown;
  try {
    raw = JSON.parse(m[1]);
  } catch (e) {
    throw new Error(`${file}: the "# @facts" line is not JSON: ${(e as Error).message}`);
  }
  const s = raw as Partial<FactsSchema>;
  if (typeof s.script !== "string" || !/^[a-z0-9-]+$/.test(s.script)) throw new Error(`${file}: "# @facts" needs a script name ([a-z0-9-]+)`);
  if (!Number.isInteger(s.schemaVersion) || (s.schemaVersion as number) < 1) throw new Error(`${file}: "# @facts" needs an integer schemaVersion >= 1`);
  if (!s.fields || typeof s.fields !== "object") throw new Error(`${file}: "# @facts" needs fields`);
  for (const [k, t] of Object.entries(s.fields)) {
    if (!TYPES.includes(t as FactType)) throw new Error(`${file}: "# @facts" field ${k} has type ${JSON.stringify(t)}; one of ${TYPES.join(", ")}`);
  }
  return { script: s.script, schemaVersion: s.schemaVersion as number, fields: s.fields as Record<string, FactType> };
}

function typeOf(v: unknown): string {
  if (Array.isArray(v)) return v.every((x) => typeof x === "string") ? "string[]" : "array";
  if (v === null) return "null";
  return typeof v;
}

function fieldProblems(facts: Record<string, unknown>, schema: FactsSchema, keys: string[]): string[] {
  const problems: string[] = [];
  for (const k of keys) {
    const want = schema.fields[k];
    if (!want) continue;
    if (!(k in facts)) problems.push(`${k} is missing`);
    else if (typeOf(facts[k]) !== want || (want === "number" && !Number.isFinite(facts[k]))) problems.push(`${k} is ${JSON.stringify(facts[k])} (${typeOf(facts[k])}), not a ${want}`);
  }
  return problems;
}

/** `olderToo`: an earlier schema version of the same script is fine (an adopted image's tag). */
function identityProblems(facts: Record<string, unknown>, schema: FactsSchema, olderToo = false): string[] {
  if (facts.script !== schema.script) return [`script is ${JSON.stringify(facts.script)}, not "${schema.script}" (the facts line of another script?)`];
  const v = facts.schemaVersion;
  const older = olderToo && Number.isInteger(v) && (v as number) >= 1 && (v as number) < schema.schemaVersion;
  if (v !== schema.schemaVersion && !older) return [`schemaVersion is ${JSON.stringify(v)}, not ${olderToo ? `1 to ${schema.schemaVersion}` : schema.schemaVersion} (a guest script of another version?)`];
  return [];
}

/** The facts line of the script that ran, checked against its schema: every field present and typed. */
export function checkFacts(facts: Record<string, unknown>, schema: FactsSchema): Record<string, unknown> {
  const identity = identityProblems(facts, schema);
  const problems = identity.length ? identity : fieldProblems(facts, schema, Object.keys(schema.fields));
  if (problems.length) {
    throw new Error(`the facts line of ${schema.script} does not match its schema (version ${schema.schemaVersion}): ${problems.join("; ")}`);
  }
  return facts;
}

/** The keys kept in the image's facts tag (a tag value holds at most 256 characters). */
export const FACTS_TAG_KEYS = ["script", "schemaVersion", "partitioned", "fsType", "enaDriver", "nvmeDriver", "nitroReady", "ixgbevfDriver", "defaultKernel"];

/** The facts worth keeping on the image itself, so that a re-run after a crash can adopt it whole. */
export function factsTag(facts: Record<string, unknown> | undefined): string | undefined {
  if (!facts) return undefined;
  const text = JSON.stringify(Object.fromEntries(FACTS_TAG_KEYS.filter((k) => k in facts).map((k) => [k, facts[k]])));
  return text.length <= 256 ? text : undefined;
}

/**
 * The facts tag of an image about to be adopted, checked the same way: the same script, each field
 * it carries typed as the schema says, every tag key that the script's facts have present. An
 * earlier schema version is adopted too: the build id leaves the guest script out (an upgrade
 * rebuilds nothing), so an image finished by the previous release before a crash is this build's
 * image, and the tag keys are those of every version since 2. A later version (a newer release
 * made it) is refused. `imageId` names the image in the error.
 */
export function checkFactsTag(tag: string | undefined, schema: FactsSchema, imageId: string): Record<string, unknown> {
  const fix = `deregister ${imageId} (and its snapshot) so that the build runs again, or set its ami-factory:facts tag right`;
  if (tag === undefined) throw new Error(`the image ${imageId} of this build has no ami-factory:facts tag: ${fix}`);
  let facts: unknown;
  try {
    facts = JSON.parse(tag);
  } catch {
    throw new Error(`the ami-factory:facts tag of ${imageId} is not JSON (${JSON.stringify(tag.slice(0, 80))}): ${fix}`);
  }
  if (!facts || typeof facts !== "object" || Array.isArray(facts)) throw new Error(`the ami-factory:facts tag of ${imageId} is not a JSON object: ${fix}`);
  const f = facts as Record<string, unknown>;
  const identity = identityProblems(f, schema, true);
  const expected = FACTS_TAG_KEYS.filter((k) => k in schema.fields);
  const problems = identity.length ? identity : fieldProblems(f, schema, expected);
  if (problems.length) throw new Error(`the ami-factory:facts tag of ${imageId} does not match the ${schema.script} facts schema (version ${schema.schemaVersion}): ${problems.join("; ")}: ${fix}`);
  return f;
}
