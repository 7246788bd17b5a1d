// Per-region work, concurrently but bounded. Every started task settles before the first failure
// is thrown: a step's cleanup must never run while a copy or grant it should undo is in flight.

/** At most this many regions at a time per resource: EC2 limits are per region, this bounds sockets and memory. */
export const REGION_CONCURRENCY = 8;

export async function mapBounded<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length && !errors.length) {
      const i = next++;
      try {
        results[i] = await task(items[i], i);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (errors.length) throw errors[0];
  return results;
}
