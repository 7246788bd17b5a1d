// The `ami-factory:` stack config: parsed and checked before any resource is declared, so that a
// typo stops `pulumi preview` with the stack, the key and the fix.
import { Failure } from "./core/inputs";
import { checkRecoveryAlarm } from "./recoveryAlarm/inputs";
import { checkConvertedHvmAmi } from "./convertedHvmAmi/inputs";
import { checkSurrogateAmi, Recipe } from "./surrogateAmi/inputs";
import { checkSharedAmi } from "./sharedAmi/inputs";

export const CONFIG_NAMESPACE = "ami-factory";
export const CONFIG_KEYS = ["shares", "recoveryAlarms", "conversions", "builds"] as const;

export interface ShareConfig {
  /** Logical name: the key in the `images` output. */
  name: string;
  sourceAmiId: string;
  sourceRegion?: string;
  regions: string[];
  accountIds?: string[];
  organizationArns?: string[];
  organizationalUnitArns?: string[];
  allowPublic?: boolean;
  shareSnapshots?: boolean;
  encrypted?: boolean;
  kmsKeyIds?: Record<string, string>;
  /** The copies' image name (SharedAmi `name`). */
  imageName?: string;
  description?: string;
  tags?: Record<string, string>;
  deprecateAt?: string;
  timeoutMinutes?: number;
}

export interface RecoveryAlarmConfig {
  /** Logical name: the key in the `alarms` output. */
  name: string;
  instanceId: string;
  region?: string;
  evaluationPeriods?: number;
  period?: number;
  alarmName?: string;
  notifyTopicArns?: string[];
  tags?: Record<string, string>;
}

export interface ConversionConfig {
  /** Logical name: the key in the `images` output. */
  name: string;
  sourceAmiId: string;
  region?: string;
  /** The new image's name (ConvertedHvmAmi `name`). */
  imageName?: string;
  description?: string;
  tags?: Record<string, string>;
  targetSizeGiB?: number;
  volume?: { type?: string; iops?: number; throughputMiBps?: number };
  encrypted?: boolean;
  kmsKeyId?: string;
  enaSupport?: "auto" | boolean;
  sanitize?: boolean;
  worker?: { instanceType?: string; subnetId?: string; instanceProfileName?: string; imageId?: string };
  timeoutMinutes?: number;
  /** Launch verification (BuildArgs `verify`). */
  verify?: false | { instanceType?: string | string[]; timeoutMinutes?: number; bootSignal?: string };
  /** Any string; a change rebuilds the image. */
  rebuildTrigger?: string;
  /** Register with exactly imageName (no build stamp); a replacement then deletes first. */
  exactName?: boolean;
  /** false: leave the initramfs as it is (ConvertedHvmAmi `nitro`). */
  nitro?: boolean;
  /** ConvertedHvmAmi `method`: "auto" (default), "in-place" or "copy". */
  method?: "auto" | "in-place" | "copy";
}

export interface BuildConfig {
  /** Logical name: the key in the `images` output. */
  name: string;
  recipe: Recipe;
  /** The image's name (SurrogateAmi `name`). */
  imageName: string;
  region?: string;
  description?: string;
  tags?: Record<string, string>;
  architecture?: "x86_64" | "arm64";
  rootSizeGiB?: number;
  volume?: { type?: string; iops?: number; throughputMiBps?: number };
  encrypted?: boolean;
  kmsKeyId?: string;
  bootMode?: "legacy-bios" | "uefi";
  imdsSupport?: "v2.0" | "optional";
  enaSupport?: "auto" | boolean;
  sanitize?: boolean;
  worker?: { instanceType?: string; subnetId?: string; instanceProfileName?: string; imageId?: string };
  timeoutMinutes?: number;
  /** Launch verification (BuildArgs `verify`). */
  verify?: false | { instanceType?: string | string[]; timeoutMinutes?: number; bootSignal?: string };
  /** Any string; a change rebuilds the image. */
  rebuildTrigger?: string;
  /** Register with exactly imageName (no build stamp); a replacement then deletes first. */
  exactName?: boolean;
}

export interface StackConfig {
  shares: ShareConfig[];
  recoveryAlarms: RecoveryAlarmConfig[];
  conversions: ConversionConfig[];
  builds: BuildConfig[];
}

export class StackConfigError extends Error {
  constructor(readonly stackName: string, readonly problems: string[]) {
    super(`stack ${stackName}: the ami-factory config is invalid:\n  - ${problems.join("\n  - ")}\n(fix it with 'pulumi config set --path ...' or in Pulumi.${stackName}.yaml)`);
    this.name = "StackConfigError";
  }
}

/** A resource's failure in config terms: `name` is the logical name, an image's own name is `imageName`. */
function inConfigTerms(f: Failure, hasImageName: boolean): Failure {
  if (hasImageName && f.property === "name") return { property: "imageName", reason: f.reason.replace(/^name\b/, "imageName") };
  const known = /the known fields are (.*)$/.exec(f.reason);
  if (known && !f.property.includes(".")) {
    const fields = ["name", ...known[1].split(", ").map((k) => (hasImageName && k === "name" ? "imageName" : k))];
    return { ...f, reason: f.reason.replace(known[1], fields.join(", ")) };
  }
  return f;
}
const renameImageName = (f: Failure) => inConfigTerms(f, true);

const LOGICAL_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Parse the namespace's config. `all` maps full keys ("ami-factory:shares") to their raw values as
 * the engine gives them (JSON strings for objects and lists).
 */
export function parseStackConfig(stack: string, all: Record<string, string>, defaultRegion: string | undefined): StackConfig {
  const problems: string[] = [];
  const read = (key: string): unknown => {
    const raw = all[`${CONFIG_NAMESPACE}:${key}`];
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      problems.push(`${CONFIG_NAMESPACE}:${key} must be a list (YAML sequence), got the string ${JSON.stringify(raw)}`);
      return undefined;
    }
  };
  for (const key of Object.keys(all)) {
    const [ns, name] = key.split(":", 2);
    if (ns === CONFIG_NAMESPACE && !(CONFIG_KEYS as readonly string[]).includes(name)) {
      problems.push(`${key} is not a known key: the known keys are ${CONFIG_KEYS.map((k) => `${CONFIG_NAMESPACE}:${k}`).join(", ")}`);
    }
    // A misspelt namespace would be ignored silently (nothing to do, the conversion just is not there).
    if (ns !== CONFIG_NAMESPACE && looksLikeNamespace(ns)) {
      problems.push(`${key}: the namespace ${JSON.stringify(ns)} looks like a misspelling of ${CONFIG_NAMESPACE}: rename the key to ${CONFIG_NAMESPACE}:${name} (pulumi config rm ${JSON.stringify(key)}, then set it again)`);
    }
  }
  const names = new Set<string>();
  const list = (key: string): Record<string, unknown>[] => {
    const value = read(key);
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      problems.push(`${CONFIG_NAMESPACE}:${key} must be a list of objects`);
      return [];
    }
    return value.filter((item, i) => {
      const where = `${CONFIG_NAMESPACE}:${key}[${i}]`;
      if (typeof item !== "object" || item === null || Array.isArray(item)) {
        problems.push(`${where} must be an object with at least a name`);
        return false;
      }
      const name = (item as Record<string, unknown>).name;
      if (typeof name !== "string" || !LOGICAL_NAME.test(name)) {
        problems.push(`${where}.name must be a short lower-case name (letters, digits, -), got ${JSON.stringify(name)}`);
        return false;
      }
      if (names.has(`${key}/${name}`)) problems.push(`${where}.name ${JSON.stringify(name)} is used twice in ${CONFIG_NAMESPACE}:${key}: names must be unique`);
      names.add(`${key}/${name}`);
      return true;
    }) as Record<string, unknown>[];
  };
  const report = (key: string, i: number, failures: Failure[]) => {
    for (const f of failures) problems.push(`${CONFIG_NAMESPACE}:${key}[${i}].${f.property}: ${f.reason}`);
  };

  const shares = list("shares");
  shares.forEach((item, i) => {
    const { name, imageName, ...rest } = item;
    const raw = { ...rest, name: imageName, sourceRegion: rest.sourceRegion ?? defaultRegion ?? "", scope: String(name) };
    // The state is not known here: a passed deprecateAt is judged by the resource's own check,
    // which sees whether it is new (refused) or unchanged on an existing share (kept).
    const { failures } = checkSharedAmi(raw, raw);
    report("shares", i, failures.map(renameImageName));
    if (!rest.sourceRegion && !defaultRegion) problems.push(`${CONFIG_NAMESPACE}:shares[${i}].sourceRegion: not set and the stack has no aws:region: set one of them`);
  });
  const alarms = list("recoveryAlarms");
  alarms.forEach((item, i) => {
    const { name, ...rest } = item;
    const { failures } = checkRecoveryAlarm({ ...rest, region: rest.region ?? defaultRegion ?? "", scope: String(name) });
    report("recoveryAlarms", i, failures.map((f) => inConfigTerms(f, false)));
  });

  const conversions = list("conversions");
  conversions.forEach((item, i) => {
    const { name, imageName, ...rest } = item;
    const { failures } = checkConvertedHvmAmi({ ...rest, name: imageName, region: rest.region ?? defaultRegion ?? "", scope: String(name), guestScriptSha256: "-" });
    report("conversions", i, failures.map(renameImageName));
  });
  const builds = list("builds");
  builds.forEach((item, i) => {
    const { name, imageName, ...rest } = item;
    const { failures } = checkSurrogateAmi({ ...rest, name: imageName, region: rest.region ?? defaultRegion ?? "", scope: String(name), guestScriptSha256: "-" });
    report("builds", i, failures.map(renameImageName));
  });
  // One name space for `images`: a share, a conversion and a build may not share a name.
  const imageKeys = ["shares", "conversions", "builds"] as const;
  const lists = { shares, conversions, builds };
  imageKeys.forEach((key, k) => {
    for (const other of imageKeys.slice(k + 1)) {
      for (const item of lists[other]) {
        if (lists[key].some((x) => x.name === item.name)) {
          problems.push(`${CONFIG_NAMESPACE}:${other}: the name ${JSON.stringify(item.name)} is also used in ${CONFIG_NAMESPACE}:${key}: both appear in the images output, so rename one`);
        }
      }
    }
  });

  problems.push(...duplicateImageNames({ shares, conversions, builds }, defaultRegion));

  if (problems.length) throw new StackConfigError(stack, problems);
  return {
    shares: shares as unknown as ShareConfig[],
    recoveryAlarms: alarms as unknown as RecoveryAlarmConfig[],
    conversions: conversions as unknown as ConversionConfig[],
    builds: builds as unknown as BuildConfig[],
  };
}

/** Edit distance of two short strings (Levenshtein). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** "ami-factroy", "amifactory", "ami_factory", "Ami-Factory": close to the namespace but not it. */
function looksLikeNamespace(ns: string): boolean {
  const plain = (x: string) => x.toLowerCase().replace(/[^a-z0-9]/g, "");
  return plain(ns) === plain(CONFIG_NAMESPACE) || editDistance(ns.toLowerCase(), CONFIG_NAMESPACE) <= 2;
}

/**
 * Two entries that would register (or copy) an image of the same name in one region: EC2 refuses
 * the second one, an hour into `up`. Only names given in config are known here (a conversion's
 * default name comes from its source image).
 */
export function duplicateImageNames(lists: Record<"shares" | "conversions" | "builds", Record<string, unknown>[]>, defaultRegion: string | undefined): string[] {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  const place = (where: string, imageName: unknown, region: unknown) => {
    if (typeof imageName !== "string" || typeof region !== "string" || !region) return;
    const key = `${region}\0${imageName}`;
    const first = seen.get(key);
    if (first) problems.push(`${where}.imageName: ${JSON.stringify(imageName)} in ${region} is also the image name of ${first}: EC2 names are unique per account and region, so rename one`);
    else seen.set(key, where);
  };
  for (const key of ["builds", "conversions"] as const) {
    lists[key].forEach((item, i) => place(`${CONFIG_NAMESPACE}:${key}[${i}] (${item.name})`, item.imageName, item.region ?? defaultRegion));
  }
  lists.shares.forEach((item, i) => {
    const sourceRegion = (item.sourceRegion as string | undefined) ?? defaultRegion;
    const regions = Array.isArray(item.regions) ? (item.regions as unknown[]) : [];
    // The source region shares the source in place (no copy, no new name) unless encrypted.
    for (const region of regions) if (region !== sourceRegion || item.encrypted === true) place(`${CONFIG_NAMESPACE}:shares[${i}] (${item.name})`, item.imageName, region);
  });
  return problems;
}
