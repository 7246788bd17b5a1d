// The grant records on an image shared in place, as tags (pure: parse, pack, count). Each share
// ("holder") records what it grants in its own tags, so shares that change grants in parallel never
// rewrite each other's: `ami-factory:grants:<holderId>:<n>` = principals, packed (below), and while
// the share is not yet handed to the engine `ami-factory:grants:<holderId>:expires` = when a sweep
// may take the record (and what only it grants) if no run hands it over.
//
// EC2 allows 50 user tags per resource, keys up to 128 and values up to 256 characters ("Tag
// restrictions", Amazon EC2 User Guide, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
// One tag per principal (the first release's records, still read) ran out at about 35 principals;
// packed, 40 accounts take 3 tags.
import { createHash, randomBytes } from "crypto";
import type { Principals } from "../core/images";

/** What one share grants on one image: launch principals, and accounts that may create volumes from its snapshots. */
export interface Grant {
  launch: Principals;
  snapshotAccounts: string[];
}

export const GRANTS_TAG_PREFIX = "ami-factory:grants:";
/** The first release's records: `ami-factory:grant:<holderId>:<principal>` = "launch" | "launch volume". */
export const LEGACY_GRANT_TAG_PREFIX = "ami-factory:grant:";
/** EC2's limits (see above). */
export const MAX_USER_TAGS = 50;
export const MAX_TAG_VALUE = 256;
/**
 * Tags a record write leaves free on the image: a revocation writes a marker tag (checkKey) to read
 * the tags consistently, so an image filled to 50 by a record could never have a share revoked.
 * Two: this share's marker and one of a share revoking in parallel.
 */
export const MARKER_HEADROOM = 2;
/**
 * The most tags one share's record may take, checked at preview: the rest of the image's 50 is
 * left to the image's own tags and other shares (a replacement's record sits beside the old one).
 */
export const RECORD_TAG_BUDGET = 8;

/** One holder's record as read from the tags. */
export interface HolderRecord {
  launch: Set<string>;
  volume: Set<string>;
  /** Set until the share is handed over: ISO time, the build id, the stack (project/stack). */
  expires?: { at: string; buildId?: string; stack?: string };
  /** Every tag key the record uses (packed, expiry and legacy). */
  keys: string[];
}

/**
 * The holder id of a share: from its build id, registered name and `createStamp`, a value made anew
 * at every create (a time and random bytes), so every create has a record of its own: a `--replace`
 * keeps the build id, and with exactName the name, and must not share the old share's record (the
 * old share's delete would clear it and revoke what the new one grants). A crashed create's record
 * is found by its expiry (a sweep, with the build id and stack). Without `createStamp`: the holder
 * id of a share from before creates were stamped (its state has no holderId), read as before.
 */
export function holderIdFor(buildId: string, imageName: string, createStamp?: string): string {
  return createHash("sha256").update(createStamp === undefined ? `${buildId}\0${imageName}` : `${buildId}\0${imageName}\0${createStamp}`).digest("hex").slice(0, 12);
}

/** A create's stamp for holderIdFor: when, and random bytes (two creates in one second differ). */
export function newCreateStamp(now: Date = new Date()): string {
  return `${now.toISOString()}-${randomBytes(6).toString("hex")}`;
}

const ORG_ARN = "arn:aws:organizations::";
const encode = (p: string) => (p.startsWith(ORG_ARN) ? `@${p.slice(ORG_ARN.length)}` : p);
const decode = (t: string) => (t.startsWith("@") ? `${ORG_ARN}${t.slice(1)}` : t);

export const principalsIn = (p: Principals) => [...p.accountIds, ...p.organizationArns, ...p.organizationalUnitArns];

/** A grant's tokens: a principal (org ARNs shortened), "+v" when its account may also create volumes, "+vo" for volumes only. */
function tokens(g: Grant): string[] {
  const launch = principalsIn(g.launch);
  return [
    ...launch.map((p) => encode(p) + (g.snapshotAccounts.includes(p) ? "+v" : "")),
    ...g.snapshotAccounts.filter((a) => !launch.includes(a)).map((a) => `${a}+vo`),
  ].sort();
}

/** Tokens packed into values of at most 256 characters. */
function pack(list: string[]): string[] {
  const values: string[] = [];
  for (const t of list) {
    const last = values.length - 1;
    if (last >= 0 && values[last].length + 1 + t.length <= MAX_TAG_VALUE) values[last] += ` ${t}`;
    else values.push(t);
  }
  return values;
}

const chunkKey = (holderId: string, n: number) => `${GRANTS_TAG_PREFIX}${holderId}:${n}`;
export const expiresKey = (holderId: string) => `${GRANTS_TAG_PREFIX}${holderId}:expires`;
/** A revocation's read marker (./grants.ts): part of the holder's keys, naming no grant. */
export const checkKey = (holderId: string) => `${GRANTS_TAG_PREFIX}${holderId}:check`;

/** The tags of holderId's record of `g` (an expiry while not handed over). */
export function recordTags(holderId: string, g: Grant, expires?: { at: string; buildId: string; stack: string }): Record<string, string> {
  const tags: Record<string, string> = Object.fromEntries(pack(tokens(g)).map((v, i) => [chunkKey(holderId, i), v]));
  if (expires) tags[expiresKey(holderId)] = `${expires.at} ${expires.buildId} ${expires.stack}`.slice(0, MAX_TAG_VALUE);
  return tags;
}

/** How many tags a share's record of `g` takes at most (with its expiry and its revocation's marker): for the preview check. */
export function recordTagCount(g: Grant): number {
  return pack(tokens(g)).length + 2;
}

/** Every holder's record on an image, from its tags. */
export function readRecords(tags: { Key?: string; Value?: string }[] | undefined): Map<string, HolderRecord> {
  const records = new Map<string, HolderRecord>();
  const of = (holderId: string) => {
    if (!records.has(holderId)) records.set(holderId, { launch: new Set(), volume: new Set(), keys: [] });
    return records.get(holderId)!;
  };
  for (const { Key, Value } of tags ?? []) {
    if (!Key) continue;
    if (Key.startsWith(GRANTS_TAG_PREFIX)) {
      const m = /^([^:]+):(\d+|expires|check)$/.exec(Key.slice(GRANTS_TAG_PREFIX.length));
      if (!m) continue;
      const r = of(m[1]);
      r.keys.push(Key);
      if (m[2] === "check") continue;
      if (m[2] === "expires") {
        const [at, buildId, stack] = (Value ?? "").split(" ");
        r.expires = { at, buildId, stack };
        continue;
      }
      for (const t of (Value ?? "").split(" ").filter(Boolean)) {
        const [p, flag] = t.split("+");
        if (flag !== "vo") r.launch.add(decode(p));
        if (flag === "v" || flag === "vo") r.volume.add(p);
      }
    } else if (Key.startsWith(LEGACY_GRANT_TAG_PREFIX)) {
      const rest = Key.slice(LEGACY_GRANT_TAG_PREFIX.length);
      const at = rest.indexOf(":");
      if (at < 0) continue;
      const r = of(rest.slice(0, at));
      const principal = rest.slice(at + 1);
      r.keys.push(Key);
      r.launch.add(principal);
      if (Value?.split(" ").includes("volume")) r.volume.add(principal);
    }
  }
  return records;
}

/** What the holders other than `except` grant between them. */
export function heldByOthers(records: Map<string, HolderRecord>, except: string | undefined): { launch: Set<string>; volume: Set<string> } {
  const launch = new Set<string>();
  const volume = new Set<string>();
  for (const [holderId, r] of records) {
    if (holderId === except) continue;
    r.launch.forEach((p) => launch.add(p));
    r.volume.forEach((a) => volume.add(a));
  }
  return { launch, volume };
}

/** A principal list as Principals (by its form: an account id, an organisation ARN, an OU ARN). */
export function asPrincipals(list: Iterable<string>): Principals {
  const all = [...list];
  return {
    accountIds: all.filter((p) => !p.startsWith("arn:")),
    organizationArns: all.filter((p) => p.startsWith("arn:") && p.includes(":organization/")),
    organizationalUnitArns: all.filter((p) => p.startsWith("arn:") && p.includes(":ou/")),
  };
}
