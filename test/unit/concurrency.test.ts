import * as assert from "assert";
import { mapBounded } from "../../providers/core/concurrency";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("bounded per-region work", () => {
  it("runs at most `limit` tasks at a time and returns results in input order", async () => {
    let running = 0;
    let peak = 0;
    const out = await mapBounded([5, 1, 4, 2, 3, 6, 7], 3, async (n) => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, n * 3));
      running--;
      return n * 10;
    });
    assert.deepStrictEqual(out, [50, 10, 40, 20, 30, 60, 70]);
    assert.strictEqual(peak, 3);
  });

  it("lets every started task settle before it throws the first failure, and starts no new one", async () => {
    const settled: string[] = [];
    await assert.rejects(
      mapBounded(["a", "b", "c", "d"], 2, async (x) => {
        if (x === "a") {
          await tick();
          throw new Error("a broke");
        }
        await tick();
        await tick();
        settled.push(x);
      }),
      /a broke/,
    );
    assert.deepStrictEqual(settled, ["b"], "b was in flight when a failed and finished before the error; c and d never started");
  });

  it("handles no items", async () => {
    assert.deepStrictEqual(await mapBounded([], 4, async () => 1), []);
  });
});
