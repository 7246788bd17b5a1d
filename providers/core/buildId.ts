import { createHash } from "crypto";

/**
 * A build id derived from the resource's scope (project/stack/name) and its inputs: the same
 * create, re-run after a crash, finds its own image and leftovers by this id.
 */
export function buildIdFor(scope: string, inputs: unknown): string {
  return "b-" + createHash("sha256").update(scope).update("\0").update(canonicalJson(inputs)).digest("hex").slice(0, 16);
}

/** JSON with object keys sorted, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}
