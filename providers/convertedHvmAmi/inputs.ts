// ConvertedHvmAmi inputs (normalised, validated), outputs and diff: pure.
import { Checker, Failure, isUnknown } from "../core/inputs";
import type { Tags } from "../core/tags";
import type { VolumeSpec, WorkerOptions } from "../worker/context";

export const CONVERTED_FIELDS = [
  "sourceAmiId", "region", "name", "description", "tags", "targetSizeGiB", "volume", "encrypted", "kmsKeyId",
  "enaSupport", "sanitize", "worker", "timeoutMinutes", "scope", "guestScriptSha256",
] as const;
const WORKER_FIELDS = ["instanceType", "subnetId", "instanceProfileName", "imageId"] as const;
const VOLUME_FIELDS = ["type", "iops", "throughputMiBps"] as const;
const VOLUME_TYPES = ["gp3", "gp2", "io1", "io2", "standard"];

export interface ConvertedHvmAmiInputs {
  sourceAmiId: string;
  region: string;
  name?: string;
  description?: string;
  tags: Tags;
  targetSizeGiB?: number;
  volume: VolumeSpec;
  encrypted?: boolean;
  kmsKeyId?: string;
  enaSupport: "auto" | boolean;
  sanitize: boolean;
  worker: WorkerOptions;
  timeoutMinutes: number;
  scope: string;
  guestScriptSha256: string;
}

export interface ConvertedHvmAmiOutputs extends ConvertedHvmAmiInputs {
  schemaVersion: number;
  imageId: string;
  snapshotId: string;
  imageName: string;
  buildId: string;
  facts: Record<string, unknown>;
}

export const SCHEMA_VERSION = 1;

/** Inputs whose change changes the image itself. */
export const REPLACE_FIELDS = ["sourceAmiId", "region", "targetSizeGiB", "volume", "encrypted", "kmsKeyId", "enaSupport", "sanitize", "guestScriptSha256"] as const;
/** Inputs that change only how the image is labelled or how a new one would be built. */
export const UPDATE_FIELDS = ["tags", "name", "description", "worker", "timeoutMinutes"] as const;

export function checkConvertedHvmAmi(raw: Record<string, unknown>): { inputs?: ConvertedHvmAmiInputs; failures: Failure[] } {
  const c = new Checker();
  c.knownKeys("", raw, CONVERTED_FIELDS);
  c.id("sourceAmiId", raw.sourceAmiId, "amiId");
  c.id("region", raw.region, "region");
  if (raw.name !== undefined) c.string("name", raw.name, { pattern: "imageName" });
  c.string("description", raw.description, { max: 255 });
  c.tags("tags", raw.tags);
  c.integer("targetSizeGiB", raw.targetSizeGiB, { min: 1, max: 16384 });
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
  c.integer("timeoutMinutes", raw.timeoutMinutes, { min: 5, max: 24 * 60 });
  if (c.failures.length) return { failures: c.failures };
  return {
    failures: [],
    inputs: {
      sourceAmiId: raw.sourceAmiId as string,
      region: raw.region as string,
      name: raw.name as string | undefined,
      description: raw.description as string | undefined,
      tags: (raw.tags ?? {}) as Tags,
      targetSizeGiB: raw.targetSizeGiB as number | undefined,
      volume: { type: (volume.type as string | undefined) ?? "gp3", iops: volume.iops as number | undefined, throughputMiBps: volume.throughputMiBps as number | undefined },
      encrypted: raw.encrypted as boolean | undefined,
      kmsKeyId: raw.kmsKeyId as string | undefined,
      enaSupport: (raw.enaSupport as "auto" | boolean | undefined) ?? "auto",
      sanitize: raw.sanitize !== false,
      worker: worker as WorkerOptions,
      timeoutMinutes: (raw.timeoutMinutes as number | undefined) ?? 60,
      scope: typeof raw.scope === "string" ? raw.scope : "",
      guestScriptSha256: String(raw.guestScriptSha256 ?? ""),
    },
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function diffConvertedHvmAmi(olds: ConvertedHvmAmiOutputs, news: ConvertedHvmAmiInputs) {
  const replaces = REPLACE_FIELDS.filter((f) => !same(olds[f], news[f]));
  const changed = UPDATE_FIELDS.filter((f) => !same(olds[f], news[f]));
  // A new image with the same name would collide with the old one: delete the old one first then.
  const sameName = news.name === undefined ? olds.name === undefined : news.name === olds.imageName;
  return { changes: replaces.length + changed.length > 0, replaces: [...replaces], deleteBeforeReplace: replaces.length > 0 && sameName };
}
