// Stored state carries the schemaVersion it was written with; every operation on an existing
// resource (diff, read, update, delete) reads it through its resource's upgrade first, so code
// below sees today's shape and never guesses at missing fields.
import type { FieldTable } from "./fields";

type State = Record<string, unknown>;
/** From one schema version to the next: `steps[1]` makes a version-1 state a version-2 one. */
export type UpgradeSteps = Record<number, (state: State) => State>;

/**
 * The state in today's schema: the version steps from its stored version up, then every input
 * field added since it was written filled as the check fills an unset field, so that it never
 * shows as a change (a tool upgrade must not rebuild, let alone delete, an image).
 */
export function upgradeState<O>(kind: string, table: FieldTable, stored: State, current: number, steps: UpgradeSteps = {}): O {
  const from = typeof stored.schemaVersion === "number" ? stored.schemaVersion : 1;
  if (from > current) {
    throw new Error(`${kind}: the state was written by a newer ami-factory (schema ${from}; this one reads up to ${current}): upgrade ami-factory before you change this stack`);
  }
  let state = { ...stored };
  for (let v = from; v < current; v++) {
    const step = steps[v];
    if (!step) throw new Error(`${kind}: no upgrade of state schema ${v} to ${v + 1}`);
    state = step(state);
  }
  for (const [name, f] of Object.entries(table)) if (!(name in state)) state[name] = f.value(undefined, state);
  return { ...state, schemaVersion: current } as O;
}
