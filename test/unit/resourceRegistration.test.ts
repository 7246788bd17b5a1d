// Declaring a resource (providers/core/resource.ts suspendStackTraces): the SDK's per-property
// promises capture no stack trace, and what the engine gets and the program sees afterwards is as
// before. Each kind runs in its own process (test/support/registerWithMocks.ts), since pulumi's
// mocks are global to a process.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";

const REPO_ROOT = path.resolve(__dirname, "../..");
const FILES: Record<string, string> = { SharedAmi: "sharedAmi", RecoveryAlarm: "recoveryAlarm", ConvertedHvmAmi: "convertedHvmAmi", SurrogateAmi: "surrogateAmi" };

/** The line of the `super(` call in the resource's class: where the SDK places a dynamic resource. */
function superLine(file: string): number {
  return fs.readFileSync(path.join(REPO_ROOT, "providers", `${file}.ts`), "utf8").split("\n").findIndex((l) => /^\s*super\($/.test(l)) + 1;
}

describe("declaring a resource (stack traces while it registers)", function () {
  this.timeout(120_000);
  for (const [kind, file] of Object.entries(FILES)) {
    it(`${kind}: one stack trace (the SDK's source position), the limit restored, also after a throw, which keeps a stack`, () => {
      const out = execFileSync(process.execPath, ["-r", "ts-node/register", "test/support/registerWithMocks.ts", kind], { cwd: REPO_ROOT, encoding: "utf8" });
      const r = JSON.parse(out.trim().split("\n").pop()!);
      // 47 for a SharedAmi before: four promises per property, each with a trace.
      assert.strictEqual(r.tracesWhileDeclaring, 1);
      assert.deepStrictEqual([r.limitAfter, r.limitAfterThrow], [r.limitBefore, r.limitBefore]);
      assert.strictEqual(r.thrown, "Missing resource name argument (for URN creation)");
      assert.match(r.thrownFrom, new RegExp(`^${file}\\.ts:\\d+:\\d+$`), "an error thrown while declaring keeps a stack");
      assert.deepStrictEqual(r.positions, [`${file}.ts:${superLine(file)}`]);
      assert.strictEqual(r.id, "web-id");
    });
  }
});
