// One process that runs the program again and again (the automation API's inline program, as the
// e2e tests do): after an up whose build failed, the next up still finishes. The "verify: false"
// warning of the failed build once waited for that resource's URN, which never settles when its
// registration fails, and held up every later log line of the process with it, so the next run
// never ended (providers/worker/args.ts).
import * as assert from "assert";
import { seedHvmImage } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { killHard, processTree } from "../support/processes";
import { testStack } from "../support/stack";

/** Far above the ~2 s the engine spends on this up, even on a loaded 2-core machine. */
const NEXT_UP_DEADLINE_MS = 120_000;

describe("the next up in the same process after a build failed", function () {
  let emu: Emulator;
  useEmulator({ iam: true }, (e) => (emu = e));

  it("finishes", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Failed", stderr: "surrogate: debootstrap: E: Couldn't download packages\n", responseCode: 1 });
    const failed = await testStack(emu, { builds: [{ name: "unverified", imageName: "unverified", recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" }, verify: false }] });
    await assert.rejects(failed.stack.up({ onOutput: failed.onOutput }), /Couldn't download packages/);

    const sourceAmiId = await seedHvmImage("us-east-1", "after-failed-build");
    const t = await testStack(emu, { shares: [{ name: "base", sourceAmiId, regions: ["eu-west-1"] }] });
    const up = t.stack.up({ onOutput: t.onOutput }).then(() => "finished", (e) => `failed: ${e}`);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([up, new Promise<string>((r) => (timer = setTimeout(() => r("still running"), NEXT_UP_DEADLINE_MS)))]);
    clearTimeout(timer);
    if (outcome === "still running") {
      killHard(processTree(["pulumi", "up", `--stack ${t.stack.name}`]));
      await up;
    }
    assert.strictEqual(outcome, "finished", `the next up after a failed build: ${outcome} after ${NEXT_UP_DEADLINE_MS / 1000} s`);
    await t.stack.destroy({ onOutput: t.onOutput });
  });
});
