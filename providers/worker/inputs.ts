// The inputs every worker build has (image name, tags, root volume, encryption, ENA, sanitize,
// worker, timeout): checked and normalised once for ConvertedHvmAmi and SurrogateAmi.
import { Checker, isUnknown } from "../core/inputs";
import { maxGivenName } from "../core/naming";
import type { Tags } from "../core/tags";
import { bootSignalRegex } from "./console";
import type { VolumeSpec, WorkerOptions } from "./context";

export const BUILD_FIELDS = [
  "region", "name", "exactName", "description", "tags", "volume", "encrypted", "kmsKeyId", "enaSupport", "sanitize", "worker", "timeoutMinutes",
  "verify", "rebuildTrigger", "scope", "guestScriptSha256",
] as const;
const WORKER_FIELDS = ["instanceType", "subnetId", "instanceProfileName", "imageId"] as const;
const VOLUME_FIELDS = ["type", "iops", "throughputMiBps"] as const;
const VOLUME_TYPES = ["gp3", "gp2", "io1", "io2", "standard"];
const VERIFY_FIELDS = ["instanceType", "timeoutMinutes", "bootSignal"] as const;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
export const DEFAULT_VERIFY_MINUTES = 15;

/** Launch verification of the new image (false: none). */
export interface VerifyInputs {
  /** Default: chosen from the facts (verifyPlan.ts). */
  instanceTypes?: string[];
  timeoutMinutes: number;
  /** A regex (multi-line) over the console; default DEFAULT_BOOT_SIGNAL. */
  bootSignal?: string;
}

export interface BuildInputs {
  region: string;
  name?: string;
  /** Register with exactly `name` (no build stamp): a replacement then deletes the old image first. */
  exactName: boolean;
  description?: string;
  tags: Tags;
  volume: VolumeSpec;
  encrypted?: boolean;
  kmsKeyId?: string;
  enaSupport: "auto" | boolean;
  sanitize: boolean;
  worker: WorkerOptions;
  timeoutMinutes: number;
  verify: VerifyInputs | false;
  /** Any string; a change rebuilds the image (a replacement). */
  rebuildTrigger?: string;
  scope: string;
  /** The bundled guest script's hash: provenance of a build (output and tag), never a trigger. */
  guestScriptSha256: string;
}

export function checkBuildInputs(c: Checker, raw: Record<string, unknown>, opts: { nameRequired?: boolean } = {}): BuildInputs {
  c.id("region", raw.region, "region");
  c.boolean("exactName", raw.exactName);
  if (raw.name !== undefined || opts.nameRequired) c.string("name", raw.name, { pattern: "imageName", required: opts.nameRequired });
  const longest = maxGivenName(raw.exactName === true);
  if (typeof raw.name === "string" && raw.name.length > longest && raw.name.length <= 128) {
    c.fail("name", `name is ${raw.name.length} characters long: with the build stamp ami-factory adds (e.g. -20261126T101005Z) at most ${longest} fit in EC2's 128; shorten it, or set exactName: true`);
  }
  c.string("rebuildTrigger", raw.rebuildTrigger, { max: 256 });
  c.string("description", raw.description, { max: 255 });
  c.tags("tags", raw.tags);
  const volume = (raw.volume ?? {}) as Record<string, unknown>;
  if (!isUnknown(raw.volume)) {
    c.knownKeys("volume", volume, VOLUME_FIELDS);
    if (volume.type !== undefined && !VOLUME_TYPES.includes(volume.type as string)) c.fail("volume.type", `volume.type must be one of ${VOLUME_TYPES.join(", ")} (got ${JSON.stringify(volume.type)})`);
    c.integer("volume.iops", volume.iops, { min: 100, max: 256000 });
    c.integer("volume.throughputMiBps", volume.throughputMiBps, { min: 125, max: 2000 });
    if (volume.throughputMiBps !== undefined && (volume.type ?? "gp3") !== "gp3") c.fail("volume.throughputMiBps", "volume.throughputMiBps applies to gp3 volumes only: remove it or set volume.type: gp3");
    if (volume.iops !== undefined && !["gp3", "io1", "io2", undefined].includes(volume.type as string)) c.fail("volume.iops", `volume.iops does not apply to ${volume.type} volumes`);
  }
  c.boolean("encrypted", raw.encrypted);
  if (raw.kmsKeyId !== undefined) {
    c.id("kmsKeyId", raw.kmsKeyId, "kmsKey");
    if (raw.encrypted === false) c.fail("kmsKeyId", "kmsKeyId is set but encrypted is false: set encrypted: true or remove kmsKeyId");
  }
  if (raw.enaSupport !== undefined && raw.enaSupport !== "auto" && typeof raw.enaSupport !== "boolean" && !isUnknown(raw.enaSupport)) {
    c.fail("enaSupport", `enaSupport must be "auto", true or false (got ${JSON.stringify(raw.enaSupport)})`);
  }
  c.boolean("sanitize", raw.sanitize);
  const worker = (raw.worker ?? {}) as Record<string, unknown>;
  if (!isUnknown(raw.worker)) {
    c.knownKeys("worker", worker, WORKER_FIELDS);
    c.id("worker.subnetId", worker.subnetId, "subnetId", false);
    c.id("worker.imageId", worker.imageId, "amiId", false);
    if (worker.instanceType !== undefined && !/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(String(worker.instanceType))) c.fail("worker.instanceType", `worker.instanceType ${JSON.stringify(worker.instanceType)} is not an instance type such as m6i.large`);
    c.string("worker.instanceProfileName", worker.instanceProfileName, { max: 128 });
  }
  c.integer("timeoutMinutes", raw.timeoutMinutes, { min: 1, max: 24 * 60 });
  const verify = checkVerify(c, raw.verify);
  return {
    region: raw.region as string,
    name: raw.name as string | undefined,
    description: raw.description as string | undefined,
    tags: (raw.tags ?? {}) as Tags,
    volume: { type: (volume.type as string | undefined) ?? "gp3", iops: volume.iops as number | undefined, throughputMiBps: volume.throughputMiBps as number | undefined },
    encrypted: raw.encrypted as boolean | undefined,
    kmsKeyId: raw.kmsKeyId as string | undefined,
    enaSupport: (raw.enaSupport as "auto" | boolean | undefined) ?? "auto",
    sanitize: raw.sanitize !== false,
    worker: worker as WorkerOptions,
    timeoutMinutes: (raw.timeoutMinutes as number | undefined) ?? 60,
    verify,
    exactName: raw.exactName === true,
    rebuildTrigger: raw.rebuildTrigger as string | undefined,
    scope: typeof raw.scope === "string" ? raw.scope : "",
    guestScriptSha256: String(raw.guestScriptSha256 ?? ""),
  };
}

/** `verify`: false, or what to launch the new image on and how long to wait for userspace. */
export function checkVerify(c: Checker, raw: unknown): VerifyInputs | false {
  if (raw === false) return false;
  if (raw === undefined || raw === null || raw === true || isUnknown(raw)) return { timeoutMinutes: DEFAULT_VERIFY_MINUTES };
  if (typeof raw !== "object" || Array.isArray(raw)) {
    c.fail("verify", `verify must be false or { instanceType?, timeoutMinutes?, bootSignal? } (got ${JSON.stringify(raw)})`);
    return false;
  }
  const v = raw as Record<string, unknown>;
  c.knownKeys("verify", v, VERIFY_FIELDS);
  let instanceTypes: string[] | undefined;
  if (v.instanceType !== undefined && !isUnknown(v.instanceType)) {
    const list = Array.isArray(v.instanceType) ? v.instanceType : [v.instanceType];
    if (!list.length || list.some((t) => typeof t !== "string" || !INSTANCE_TYPE.test(t))) {
      c.fail("verify.instanceType", `verify.instanceType must be an instance type such as t3.micro, or a list of them (got ${JSON.stringify(v.instanceType)})`);
    } else if (new Set(list).size !== list.length) {
      c.fail("verify.instanceType", "verify.instanceType names a type twice: list each once");
    } else instanceTypes = list as string[];
  }
  c.integer("verify.timeoutMinutes", v.timeoutMinutes, { min: 1, max: 180 });
  if (v.bootSignal !== undefined && !isUnknown(v.bootSignal)) {
    const re = typeof v.bootSignal === "string" && v.bootSignal ? bootSignalRegex(v.bootSignal) : "it is not a non-empty string";
    if (typeof re === "string") c.fail("verify.bootSignal", `verify.bootSignal must be a regular expression that matches the console line of a booted guest, such as "^\\S+ login:" (${re})`);
  }
  return { instanceTypes, timeoutMinutes: (v.timeoutMinutes as number | undefined) ?? DEFAULT_VERIFY_MINUTES, bootSignal: v.bootSignal as string | undefined };
}

/** ENA on the image: as asked, or ("auto") as the guest script found it. */
export function enaFrom(asked: "auto" | boolean, facts: Record<string, unknown> | undefined, log: (l: string) => void): boolean {
  const ena = asked === "auto" ? facts?.enaDriver === true : asked;
  if (ena && facts?.enaDriver === false) log("warning: enaSupport is true but the guest found no ENA driver in the image: instances that need ENA will have no network");
  return ena;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export interface BuiltImageDiff {
  changes: boolean;
  /** The fields whose change makes a new image. */
  replaces: string[];
  deleteBeforeReplace: boolean;
  /** What preview should say about this change (the fields behind a replacement, a gap in service). */
  notes: string[];
}

/**
 * A built image's diff: `replaceFields` make a new image; tags, name and description change in
 * place. The guest script's hash is provenance, not a trigger: a tool upgrade changes nothing.
 */
export function diffBuiltImage<T extends BuildInputs>(olds: T & { imageName: string }, news: T, replaceFields: readonly (keyof T)[]): BuiltImageDiff {
  const replaces = replaceFields.filter((f) => !same(olds[f], news[f])).map(String);
  const changed: string[] = (["tags", "name", "description", "worker", "timeoutMinutes"] as const).filter((f) => !same(olds[f], news[f]));
  // State written before exactName existed has none: read as false (no change, no rebuild).
  if (!same(olds.exactName ?? false, news.exactName)) changed.push("exactName");
  const notes: string[] = [];
  if (replaces.length) notes.push(`replaces image ${olds.imageName} because ${replaces.join(", ")} changed`);
  // Names are unique per build unless exactName: only an exact name the new image shares with the
  // old one forces the old image out first.
  const sameName = news.name === undefined ? olds.name === undefined : news.name === olds.imageName;
  const deleteBeforeReplace = replaces.length > 0 && news.exactName && sameName;
  if (deleteBeforeReplace) {
    notes.push(`warning: exactName: image ${olds.imageName} (${(olds as { imageId?: string }).imageId}) is deregistered before its replacement is built, so no image of that name exists until the rebuild finishes (leave exactName unset to build the new image first)`);
  }
  return { changes: replaces.length + changed.length > 0, replaces, deleteBeforeReplace, notes };
}
