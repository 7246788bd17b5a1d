// A bad stack config through the inline program (npm start, the e2e harness): the program's own
// message, printed once per preview, however many previews one process runs.
import * as assert from "assert";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { testStack } from "../support/stack";

describe("a config error on the inline path", function () {
  let emu: Emulator;
  useEmulator({}, (e) => (emu = e));

  it("is printed once per preview, also on the second preview in the same process", async () => {
    const t = await testStack(emu, { sharez: [] });
    for (const round of [1, 2]) {
      t.output.length = 0;
      await assert.rejects(t.stack.preview({ onOutput: t.onOutput }));
      const printed = t.output.join("");
      const times = printed.split("ami-factory:sharez is not a known key: the known keys are ami-factory:shares").length - 1;
      assert.strictEqual(times, 1, `preview ${round} printed the message ${times} times:\n${printed}`);
    }
  });
});
