import * as assert from "assert";
import { isBuildError, runSteps, Step } from "../../providers/core/steps";

interface Ctx { events: string[] }

const step = (name: string, opts: { fail?: boolean; cleanupFails?: boolean } = {}): Step<Ctx> => ({
  name,
  async run(ctx) {
    ctx.events.push(`run ${name}`);
    if (opts.fail) throw new Error(`${name} broke`);
  },
  async cleanup(ctx, failed) {
    ctx.events.push(`cleanup ${name} failed=${failed}`);
    if (opts.cleanupFails) throw new Error(`cleanup of ${name} broke`);
  },
});

describe("step runner", () => {
  it("skips a step whose when() says it is not needed, asked at its turn: it neither runs nor is cleaned up", async () => {
    const ctx: Ctx & { fellBack?: boolean } = { events: [] };
    const fallBack: Step<typeof ctx> = { name: "decide", async run(c) { c.fellBack = true; } };
    await runSteps<typeof ctx>([{ ...step("a"), when: (c) => c.fellBack === true }, fallBack, { ...step("b"), when: (c) => c.fellBack === true }], ctx);
    assert.deepStrictEqual(ctx.events, ["run b", "cleanup b failed=false"]);
  });

  it("runs every cleanup in reverse after success, told the build did not fail", async () => {
    const ctx: Ctx = { events: [] };
    await runSteps([step("a"), step("b")], ctx);
    assert.deepStrictEqual(ctx.events, ["run a", "run b", "cleanup b failed=false", "cleanup a failed=false"]);
  });

  it("stops at the failing step and cleans up only what ran, last in first out", async () => {
    const ctx: Ctx = { events: [] };
    await assert.rejects(runSteps([step("a"), step("b", { fail: true }), step("c")], ctx), (e: unknown) => {
      assert.ok(isBuildError(e));
      assert.strictEqual(e.failedStep, "b");
      assert.deepStrictEqual(e.cleaned, ["b", "a"]);
      assert.match(e.message, /step "b" failed: b broke; cleaned up: b, a/);
      return true;
    });
    assert.deepStrictEqual(ctx.events, ["run a", "run b", "cleanup b failed=true", "cleanup a failed=true"]);
  });

  it("goes on with the other cleanups when one fails, and reports it", async () => {
    const ctx: Ctx = { events: [] };
    await assert.rejects(runSteps([step("a"), step("b", { cleanupFails: true }), step("c", { fail: true })], ctx), (e: unknown) => {
      assert.ok(isBuildError(e));
      assert.deepStrictEqual(e.cleanupErrors, ["b: cleanup of b broke"]);
      assert.match(e.message, /sweep/);
      return true;
    });
    assert.ok(ctx.events.includes("cleanup a failed=true"));
  });

  it("gives up on a cleanup that outlives its deadline", async () => {
    const stuck: Step<Ctx> = { name: "stuck", run: async () => undefined, cleanup: () => new Promise(() => undefined) };
    await assert.rejects(runSteps([stuck, step("x", { fail: true })], { events: [] }, { cleanupTimeoutSeconds: 0.05 }), /stuck: cleanup of stuck did not finish within 0.05s/);
  });
});
