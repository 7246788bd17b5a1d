// The inputs every worker build has (image name, tags, root volume, encryption, ENA, sanitize,
// worker, timeout), declared in ./fields.ts: the checks of its nested options, and the diff.
import { changedFields, FieldTable, InputsOf } from "../core/fields";
import { Checker, isUnknown } from "../core/inputs";
import { bootSignalRegex } from "./console";
import { retirementNote } from "../core/retire";
import { publishNote } from "../core/publish";
import type { BUILD_FIELDS } from "./fields";
import { POLICY_ARN, ROLE_PATH } from "./workerPolicy";

const WORKER_FIELDS = ["instanceType", "subnetId", "instanceProfileName", "imageId", "rolePath", "permissionsBoundary"] as const;
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

export type BuildInputs = InputsOf<typeof BUILD_FIELDS>;

/** `volume`: type, iops and throughput as EBS allows them together. */
export function checkVolume(c: Checker, raw: unknown): void {
  if (isUnknown(raw)) return;
  const volume = (raw ?? {}) as Record<string, unknown>;
  c.knownKeys("volume", volume, VOLUME_FIELDS);
  if (volume.type !== undefined && !VOLUME_TYPES.includes(volume.type as string)) c.fail("volume.type", `volume.type must be one of ${VOLUME_TYPES.join(", ")} (got ${JSON.stringify(volume.type)})`);
  c.integer("volume.iops", volume.iops, { min: 100, max: 256000 });
  c.integer("volume.throughputMiBps", volume.throughputMiBps, { min: 125, max: 2000 });
  if (volume.throughputMiBps !== undefined && (volume.type ?? "gp3") !== "gp3") c.fail("volume.throughputMiBps", "volume.throughputMiBps applies to gp3 volumes only: remove it or set volume.type: gp3");
  if (volume.iops !== undefined && !["gp3", "io1", "io2", undefined].includes(volume.type as string)) c.fail("volume.iops", `volume.iops does not apply to ${volume.type} volumes`);
}

/** `worker`: the temporary instance's type, subnet, profile and image. */
export function checkWorker(c: Checker, raw: unknown): void {
  if (isUnknown(raw)) return;
  const worker = (raw ?? {}) as Record<string, unknown>;
  c.knownKeys("worker", worker, WORKER_FIELDS);
  c.id("worker.subnetId", worker.subnetId, "subnetId", false);
  c.id("worker.imageId", worker.imageId, "amiId", false);
  if (worker.instanceType !== undefined && !INSTANCE_TYPE.test(String(worker.instanceType))) c.fail("worker.instanceType", `worker.instanceType ${JSON.stringify(worker.instanceType)} is not an instance type such as m6i.large`);
  c.string("worker.instanceProfileName", worker.instanceProfileName, { max: 128 });
  const { rolePath, permissionsBoundary } = worker;
  if (rolePath !== undefined && !isUnknown(rolePath) && (typeof rolePath !== "string" || !ROLE_PATH.test(rolePath))) {
    c.fail("worker.rolePath", `worker.rolePath must be an IAM path such as "/ami-factory/" (starts and ends with /; got ${JSON.stringify(rolePath)})`);
  }
  if (permissionsBoundary !== undefined && !isUnknown(permissionsBoundary) && (typeof permissionsBoundary !== "string" || !POLICY_ARN.test(permissionsBoundary))) {
    c.fail("worker.permissionsBoundary", `worker.permissionsBoundary must be a managed policy's ARN such as arn:aws:iam::123456789012:policy/ami-factory-boundary (got ${JSON.stringify(permissionsBoundary)})`);
  }
  if (worker.instanceProfileName !== undefined) {
    for (const k of ["rolePath", "permissionsBoundary"] as const) {
      if (worker[k] !== undefined) c.fail(`worker.${k}`, `worker.${k} applies to the temporary role, and worker.instanceProfileName names your own profile: remove one of them`);
    }
  }
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

export interface BuiltImageDiff {
  changes: boolean;
  /** The fields whose change makes a new image. */
  replaces: string[];
  deleteBeforeReplace: boolean;
  /** What preview should say about this change (the fields behind a replacement, a gap in service). */
  notes: string[];
}

/**
 * A built image's diff, from its field table: replace fields make a new image; in-place fields
 * (tags, name, description, …) change it as it is; next-build fields (verify) and the guest
 * script's hash (provenance, not a trigger) change nothing: a tool upgrade is no change.
 */
export function diffBuiltImage<T extends BuildInputs>(table: FieldTable, olds: T & { imageName: string }, news: T): BuiltImageDiff {
  const replaces = changedFields(table, "replace", olds, news);
  const changed = changedFields(table, "in-place", olds, news);
  const notes: string[] = [];
  if (replaces.length) notes.push(`replaces image ${olds.imageName} because ${replaces.join(", ")} changed`);
  // The old image's fate, as the state says (exactName: deleted, warned below).
  if (replaces.length && !news.exactName) notes.push(retirementNote(`image ${olds.imageName}`, (olds as { retirement?: string }).retirement));
  const o = olds as { publish?: string; region?: string };
  const n = news as { publish?: string; region?: string };
  const published = publishNote(o.publish, n.publish, [n.region ?? ""]);
  if (published && !replaces.length) notes.push(published);
  if (replaces.length && n.publish) notes.push(`publish: SSM parameter ${n.publish} then names the new image in ${n.region}`);
  // Names are unique per build unless exactName: only an exact name the new image shares with the
  // old one forces the old image out first.
  const sameName = news.name === undefined ? olds.name === undefined : news.name === olds.imageName;
  const deleteBeforeReplace = replaces.length > 0 && news.exactName && sameName;
  if (deleteBeforeReplace) {
    notes.push(`warning: exactName: image ${olds.imageName} (${(olds as { imageId?: string }).imageId}) is deregistered before its replacement is built, so no image of that name exists until the rebuild finishes (leave exactName unset to build the new image first)`);
  }
  return { changes: replaces.length + changed.length > 0, replaces, deleteBeforeReplace, notes };
}
