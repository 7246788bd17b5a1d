// What tells a `pulumi destroy` of the whole stack from a replacement, a removed entry or a
// `destroy --target`: the engine calls a provider's delete with the resource's id and state only,
// the same call for all of them. The program declares one StackLifetime marker (../stackLifetime.ts)
// that every image resource depends on. Pulumi deletes dependents before what they depend on, and
// the program declares the marker in every `up`, so the engine deletes it only when the whole stack
// goes, and only after every image's delete has returned. So an image delete retires (the safe side)
// and leaves here how to delete that image instead; the marker's delete runs what was left. Every
// dynamic resource of a stack is served by one provider process for the engine run (the default
// pulumi-nodejs provider), and runtime.js loads this module once in it: the list is shared.
// Nothing is durable: an engine run that stops before the marker's delete leaves the images retired
// (the safe side; reaping takes them).

interface Pending {
  what: string;
  remove: () => Promise<void>;
}

const pending: Pending[] = [];

/** An image just retired with no successor (removed from the stack): `remove` deletes it if the stack is being destroyed. */
export function deleteIfStackDestroyed(what: string, remove: () => Promise<void>): void {
  pending.push({ what, remove });
}

/**
 * The marker's delete: the whole stack is going. Deletes every image retired without a successor
 * in this engine run (one at a time: few, and a destroy is not hurried). A failure is reported
 * after the rest, naming what stays retired.
 */
export async function deleteRetiredByDestroy(log: (l: string) => void): Promise<void> {
  const failed: string[] = [];
  for (const p of pending.splice(0)) {
    try {
      await p.remove();
      log(`stack destroyed: deleted ${p.what}`);
    } catch (e) {
      failed.push(`${p.what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (failed.length) throw new Error(`stack destroyed, but these stay retired (reaping takes them once retired 24 h: npm run reap -- --stack <stack> --all after 24 h):\n  ${failed.join("\n  ")}`);
}

/** How many deletes wait for the marker (tests). */
export const pendingDeletes = () => pending.length;
