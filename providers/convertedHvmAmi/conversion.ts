// In place or copied? What the provider decides before the worker starts, and the guest's refusal
// line when it declines to convert in place (pv2hvm.sh --in-place exits 3, changing nothing). Pure.
import type { FactsSchema } from "../worker/facts";
import type { Conversion, Method } from "./inputs";

/** Why pv2hvm.sh --in-place declines (its refusal line's `reason`). */
export const REFUSAL_CODES = ["xfs-at-sector-0", "gap-too-small", "unsupported-filesystem", "unknown-layout", "filesystem-unclean"] as const;

/** The exit status of pv2hvm.sh --in-place when it declines, having changed nothing. */
export const IN_PLACE_REFUSED_EXIT = 3;

export interface SourceRoot {
  rootSizeGiB: number;
  encrypted: boolean;
  /** The source root snapshot's KMS key (ARN), when encrypted. */
  kmsKeyId?: string;
}

/**
 * What the build starts with: in place (the guest may still decline: auto then copies), or a copy
 * and why. A volume of another size, or encrypted where the snapshot is not, or under another KMS
 * key, is not the source snapshot's blocks: its snapshot would not be incremental to the source's.
 * A key given as an alias is compared as written, so it takes the copy (safe, slower).
 * `method: "in-place"` with such inputs throws, naming the field (before anything is created).
 */
export function conversionPlan(c: { method: Method; targetSizeGiB?: number; encrypted?: boolean; kmsKeyId?: string }, source: SourceRoot): Conversion {
  if (c.method === "copy") return { method: "copy", reason: "requested" };
  const sizeChange = c.targetSizeGiB !== undefined && c.targetSizeGiB !== source.rootSizeGiB;
  const encryptionChange = (c.encrypted === true && !source.encrypted) || (c.kmsKeyId !== undefined && c.kmsKeyId !== source.kmsKeyId);
  if (c.method === "in-place") {
    if (sizeChange) throw new Error(`method "in-place" keeps the source root's size (${source.rootSizeGiB} GiB), but targetSizeGiB is ${c.targetSizeGiB}: remove targetSizeGiB, or set method "auto" or "copy"`);
    if (encryptionChange) {
      const field = c.kmsKeyId !== undefined ? `kmsKeyId (${c.kmsKeyId}, the source snapshot's: ${source.kmsKeyId ?? "none"})` : "encrypted (the source snapshot is not encrypted)";
      throw new Error(`method "in-place" keeps the source snapshot's encryption, but ${field} changes it: remove it, or set method "auto" or "copy"`);
    }
  }
  if (sizeChange) return { method: "copy", reason: "size-change" };
  if (encryptionChange) return { method: "copy", reason: "encryption-change" };
  return { method: "in-place", reason: "" };
}

/**
 * The refusal line of pv2hvm.sh --in-place, checked: `{"script":"pv2hvm","schemaVersion":N,
 * "refused":"in-place","reason":CODE,"detail":"…"}` in the script's declared schema version. Returns the code.
 */
export function refusalReason(line: Record<string, unknown>, schema: FactsSchema): { reason: string; detail: string } {
  const problems: string[] = [];
  if (line.script !== schema.script) problems.push(`script is ${JSON.stringify(line.script)}, not "${schema.script}"`);
  if (line.schemaVersion !== schema.schemaVersion) problems.push(`schemaVersion is ${JSON.stringify(line.schemaVersion)}, not ${schema.schemaVersion}`);
  if (line.refused !== "in-place") problems.push(`refused is ${JSON.stringify(line.refused)}, not "in-place"`);
  if (!REFUSAL_CODES.includes(line.reason as (typeof REFUSAL_CODES)[number])) problems.push(`reason is ${JSON.stringify(line.reason)}, not one of ${REFUSAL_CODES.join(", ")}`);
  if (typeof line.detail !== "string") problems.push("detail is not a string");
  if (problems.length) throw new Error(`${schema.script} exited ${IN_PLACE_REFUSED_EXIT} (in place refused) but its last line is not a refusal line: ${problems.join("; ")}`);
  return { reason: line.reason as string, detail: line.detail as string };
}
