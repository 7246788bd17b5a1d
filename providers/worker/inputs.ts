// The inputs every worker build has (image name, tags, root volume, encryption, ENA, sanitize,
// worker, timeout): checked and normalised once for ConvertedHvmAmi and SurrogateAmi.
import { Checker, isUnknown } from "../core/inputs";
import type { Tags } from "../core/tags";
import { bootSignalRegex } from "./console";
import type { VolumeSpec, WorkerOptions } from "./context";

export const BUILD_FIELDS = ["region", "name", "description", "tags", "volume", "encrypted", "kmsKeyId", "enaSupport", "sanitize", "worker", "timeoutMinutes", "verify", "scope", "guestScriptSha256"] as const;
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
  scope: string;
  guestScriptSha256: string;
}

export function checkBuildInputs(c: Checker, raw: Record<string, unknown>, opts: { nameRequired?: boolean } = {}): BuildInputs {
  c.id("region", raw.region, "region");
  if (raw.name !== undefined || opts.nameRequired) c.string("name", raw.name, { pattern: "imageName", required: opts.nameRequired });
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

/** A built image's diff: `replaceFields` make a new image; tags, name and description change in place. */
export function diffBuiltImage<T extends BuildInputs>(olds: T & { imageName: string }, news: T, replaceFields: readonly (keyof T)[]) {
  const replaces = replaceFields.filter((f) => !same(olds[f], news[f])).map(String);
  const changed = (["tags", "name", "description", "worker", "timeoutMinutes"] as const).filter((f) => !same(olds[f], news[f]));
  // A new image with the same name would collide with the old one: delete the old one first then.
  const sameName = news.name === undefined ? olds.name === undefined : news.name === olds.imageName;
  return { changes: replaces.length + changed.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 && sameName };
}
