// The `ami-factory:` stack config: parsed and checked before any resource is declared, so that a
// typo stops `pulumi preview` with the stack, the key and the fix.
import { FieldTable, fromConfig, inConfigTerms, PlainArgsOf } from "./core/fields";
import { Failure } from "./core/inputs";
import { checkRecoveryAlarm } from "./recoveryAlarm/inputs";
import { RECOVERY_ALARM_FIELDS } from "./recoveryAlarm/fields";
import { checkConvertedHvmAmi } from "./convertedHvmAmi/inputs";
import { CONVERTED_FIELDS } from "./convertedHvmAmi/fields";
import { checkSurrogateAmi } from "./surrogateAmi/inputs";
import { SURROGATE_FIELDS } from "./surrogateAmi/fields";
import { checkSharedAmi } from "./sharedAmi/inputs";
import { SHARED_AMI_FIELDS } from "./sharedAmi/fields";

export const CONFIG_NAMESPACE = "ami-factory";
export const CONFIG_KEYS = ["shares", "recoveryAlarms", "conversions", "builds"] as const;

/**
 * A config entry: the logical name (the key in the `images` or `alarms` output) and the resource's
 * args as plain values, spelt as the field table says (an image's own `name` is `imageName`).
 */
export type ConfigEntryOf<T extends FieldTable> = { name: string } & { [K in keyof PlainArgsOf<T> as K extends "name" ? "imageName" : K]: PlainArgsOf<T>[K] };

export type ShareConfig = ConfigEntryOf<typeof SHARED_AMI_FIELDS>;
export type RecoveryAlarmConfig = ConfigEntryOf<typeof RECOVERY_ALARM_FIELDS>;
export type ConversionConfig = ConfigEntryOf<typeof CONVERTED_FIELDS>;
export type BuildConfig = ConfigEntryOf<typeof SURROGATE_FIELDS>;

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
  const report = (key: string, i: number, table: FieldTable, failures: Failure[]) => {
    for (const f of failures.map((x) => inConfigTerms(table, x))) problems.push(`${CONFIG_NAMESPACE}:${key}[${i}].${f.property}: ${f.reason}`);
  };

  const shares = list("shares");
  shares.forEach((item, i) => {
    const raw = { ...fromConfig(SHARED_AMI_FIELDS, item), sourceRegion: item.sourceRegion ?? defaultRegion ?? "", scope: String(item.name) };
    // The state is not known here: a passed deprecateAt is judged by the resource's own check,
    // which sees whether it is new (refused) or unchanged on an existing share (kept).
    const { failures } = checkSharedAmi(raw, raw);
    report("shares", i, SHARED_AMI_FIELDS, failures);
    if (!item.sourceRegion && !defaultRegion) problems.push(`${CONFIG_NAMESPACE}:shares[${i}].sourceRegion: not set and the stack has no aws:region: set one of them`);
  });
  const alarms = list("recoveryAlarms");
  alarms.forEach((item, i) => {
    const { failures } = checkRecoveryAlarm({ ...fromConfig(RECOVERY_ALARM_FIELDS, item), region: item.region ?? defaultRegion ?? "", scope: String(item.name) });
    report("recoveryAlarms", i, RECOVERY_ALARM_FIELDS, failures);
  });

  const conversions = list("conversions");
  conversions.forEach((item, i) => {
    const { failures } = checkConvertedHvmAmi({ ...fromConfig(CONVERTED_FIELDS, item), region: item.region ?? defaultRegion ?? "", scope: String(item.name), guestScriptSha256: "-" });
    report("conversions", i, CONVERTED_FIELDS, failures);
  });
  const builds = list("builds");
  builds.forEach((item, i) => {
    const { failures } = checkSurrogateAmi({ ...fromConfig(SURROGATE_FIELDS, item), region: item.region ?? defaultRegion ?? "", scope: String(item.name), guestScriptSha256: "-" });
    report("builds", i, SURROGATE_FIELDS, failures);
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
  problems.push(...duplicatePublishNames({ shares, conversions, builds }, defaultRegion));

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

/**
 * Two entries publishing to one SSM parameter in one region: each write would take the other's
 * image (and each retirement delete it), so the parameter would name whichever ran last.
 */
export function duplicatePublishNames(lists: Record<"shares" | "conversions" | "builds", Record<string, unknown>[]>, defaultRegion: string | undefined): string[] {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  const place = (where: string, publish: unknown, region: unknown) => {
    if (typeof publish !== "string" || !publish || typeof region !== "string" || !region) return;
    const key = `${region}\0${publish}`;
    const first = seen.get(key);
    if (first) problems.push(`${where}.publish: ${JSON.stringify(publish)} in ${region} is also published by ${first}: one SSM parameter names one image, so choose another publish name for one of them`);
    else seen.set(key, where);
  };
  for (const key of ["builds", "conversions"] as const) {
    lists[key].forEach((item, i) => place(`${CONFIG_NAMESPACE}:${key}[${i}] (${item.name})`, item.publish, item.region ?? defaultRegion));
  }
  lists.shares.forEach((item, i) => {
    const regions = Array.isArray(item.regions) ? [...new Set(item.regions as unknown[])] : [];
    for (const region of regions) place(`${CONFIG_NAMESPACE}:shares[${i}] (${item.name})`, item.publish, region);
  });
  return problems;
}
