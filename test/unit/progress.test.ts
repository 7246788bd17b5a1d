// Progress lines and AWS call counts of a provider operation, outside the dynamic-provider process
// (where lines are printed, labelled with the resource, instead of going to the engine).
import * as assert from "assert";
import { countCall, progressFor, withCallCount } from "../../providers/core/progress";

describe("progress", () => {
  it("prints lines labelled with the kind and the resource's name when no engine started this process", async () => {
    const printed: string[] = [];
    const original = console.log;
    console.log = (s: string) => printed.push(s);
    try {
      const log = progressFor("SharedAmi", "ami-factory/dev/base");
      log("step share: started");
      log.summary("created: ami-1 in us-east-1");
      log.warn("source is deprecated");
      await log.flushed();
    } finally {
      console.log = original;
    }
    assert.deepStrictEqual(printed, ["[SharedAmi base] step share: started", "[SharedAmi base] created: ami-1 in us-east-1", "[SharedAmi base] warning: source is deprecated"]);
  });

  it("counts each operation's AWS calls apart while operations run at once", async () => {
    const tick = () => new Promise((r) => setTimeout(r, 5));
    const op = (n: number) =>
      withCallCount(async (counter) => {
        for (let i = 0; i < n; i++) {
          await tick();
          countCall();
        }
        return counter.count;
      });
    assert.deepStrictEqual(await Promise.all([op(3), op(7), op(1)]), [3, 7, 1]);
    countCall(); // outside an operation: counted nowhere, and no error
  });
});
