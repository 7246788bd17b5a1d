// What a SharedAmi stores in the stack's state, and how state of any release is read back.
// schemaVersion 1 stored `copiedRegions`; from 2 it is derived (issue 13: ≤ 8 KiB for 16 regions):
// a copy never has the source's id, and a source shared in place always does.
import { SCHEMA_VERSION, SharedAmiOutputs } from "./inputs";

export type StoredSharedAmi = Omit<SharedAmiOutputs, "copiedRegions"> & { copiedRegions?: string[] };

/** The regions whose image is a copy made by this share. */
export function copiedRegionsOf(imageIds: Record<string, string> | undefined, sourceAmiId: string): string[] {
  return Object.keys(imageIds ?? {}).filter((r) => imageIds![r] !== sourceAmiId).sort();
}

/** The outputs the provider works with, from what this or an earlier release stored. */
export function fromState(stored: StoredSharedAmi): SharedAmiOutputs {
  return { ...stored, copiedRegions: stored.copiedRegions ?? copiedRegionsOf(stored.imageIds, stored.sourceAmiId) };
}

/** What is stored: nothing derivable, nothing empty that reads back the same. */
export function toState(outs: SharedAmiOutputs): StoredSharedAmi {
  const { copiedRegions: _derived, placements, ...rest } = outs;
  return { ...rest, schemaVersion: SCHEMA_VERSION, ...(placements && Object.keys(placements).length ? { placements } : {}) };
}
