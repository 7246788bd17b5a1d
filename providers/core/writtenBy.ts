// Which ami-factory release wrote a resource's state: every create and update records it, and every
// operation on stored state (preview's diff, refresh, update, destroy) first checks it, so an older
// checkout never acts on state a newer one wrote (it may not know what that state holds, e.g. a
// record it would leave behind). A newer checkout on older state is the ordinary upgrade
// (./schema.ts brings the shape up to date). package.json's version rarely moves, so the state
// format's revision (./version.ts STATE_REVISION) is recorded and compared too.
import { PACKAGE_VERSION, STATE_REVISION } from "./version";

/** The output that names the release that last wrote the state. */
export const WRITTEN_BY = "amiFactoryVersion";
/** The output that records the state format revision of the checkout that last wrote the state. */
export const WRITTEN_REVISION = "amiFactoryStateRevision";

/** Numeric major.minor.patch; a pre-release or build suffix is ignored. undefined: not a version. */
function parse(v: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? m.slice(1, 4).map(Number) : undefined;
}

/** Negative: a is older than b; 0: the same release; positive: a is newer. */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [parse(a), parse(b)];
  if (!x || !y) throw new Error(`not a version: ${!x ? a : b}`);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/** Throws when the stored state was written by a newer release than `current` (this checkout's), or with a newer state format revision. */
export function refuseNewerWriter(kind: string, stored: Record<string, unknown>, current = PACKAGE_VERSION, revision = STATE_REVISION): void {
  const storedRevision = stored[WRITTEN_REVISION];
  if (storedRevision !== undefined && (typeof storedRevision !== "number" || !Number.isInteger(storedRevision))) {
    throw new Error(`${kind}: the state's ${WRITTEN_REVISION} is ${JSON.stringify(storedRevision)}, not a revision: was the state edited by hand?`);
  }
  if (typeof storedRevision === "number" && storedRevision > revision) {
    throw new Error(`${kind}: the state was written by a newer ami-factory (state format revision ${storedRevision}; this checkout has ${revision}): update this checkout (git pull) before you preview, refresh, update or destroy this stack`);
  }
  const writer = stored[WRITTEN_BY];
  if (writer === undefined) return; // written before this record existed: older
  if (typeof writer !== "string" || !parse(writer)) {
    throw new Error(`${kind}: the state's ${WRITTEN_BY} is ${JSON.stringify(writer)}, not a version: was the state edited by hand?`);
  }
  if (compareVersions(writer, current) > 0) {
    throw new Error(`${kind}: the state was written by ami-factory ${writer}, newer than this checkout (${current}): update this checkout (git pull) before you preview, refresh, update or destroy this stack`);
  }
}

/** The outputs with this release recorded as their writer. */
export function stampWriter<O extends object>(outs: O, current = PACKAGE_VERSION, revision = STATE_REVISION): O {
  return { ...outs, [WRITTEN_BY]: current, [WRITTEN_REVISION]: revision };
}
