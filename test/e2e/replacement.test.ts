// Changes that never take production images away: a tool upgrade is no change, a rebuild is asked
// for (rebuildTrigger) and builds the new image before the old one goes, exactName deletes first
// and says so at preview.
import * as assert from "assert";
import { describeImage, imagesTagged, leftovers, snapshotExists } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { SURROGATE_FACTS } from "../support/facts";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack, TestStack } from "../support/stack";

const FACTS = { ...SURROGATE_FACTS, bootMode: "legacy-bios", partitionTable: "msdos" };
const build = { name: "web", imageName: "web-base", recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" } };
const STAMPED = /^web-base-\d{8}T\d{6}Z$/;

const imageOf = (up: { outputs: Record<string, { value: unknown }> }) => (up.outputs.images.value as Record<string, Record<string, string>>).web["us-east-1"];
const available = async (id: string) => (await describeImage("us-east-1", id))?.State === "available";

/** Samples the images' states every 100 ms while `run` goes on: [time, state per id]. */
async function timeline(ids: () => string[] | Promise<string[]>, run: () => Promise<void>): Promise<Record<string, boolean>[]> {
  const samples: Record<string, boolean>[] = [];
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const sample: Record<string, boolean> = {};
      for (const id of await ids()) sample[id] = await available(id);
      samples.push(sample);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await run();
  } finally {
    done = true;
    await sampler;
  }
  return samples;
}

describe("replacements on the engine", function () {
  let emu: Emulator;
  let t: TestStack;
  useEmulator({ iam: true }, (e) => (emu = e));

  it("registers a name unique per build: the given name plus the build stamp; the Name tag and images key stay the given name", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    t = await testStack(emu, { builds: [build] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    const image = await describeImage("us-east-1", imageOf(up));
    assert.match(image!.Name!, STAMPED);
    assert.strictEqual(image!.Tags?.find((x) => x.Key === "Name")?.Value, "web-base");
    const outs = await resourceOutputs(t.stack, "web");
    assert.match(outs.guestScriptSha256 as string, /^[0-9a-f]{64}$/);
    assert.strictEqual(image!.Tags?.find((x) => x.Key === "ami-factory:guest-script-sha256")?.Value, outs.guestScriptSha256, "the script's hash is a tag of the image");
  });

  it("previews a tool upgrade (other guest script bytes) as no change, and keeps the image's provenance", async () => {
    // The state as an older ami-factory (another guest script) wrote it.
    const state = await t.stack.exportStack();
    const res = state.deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::web"));
    const older = "0".repeat(64);
    res.inputs.guestScriptSha256 = older;
    res.outputs.guestScriptSha256 = older;
    await t.stack.importStack(state);
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { same: 2 }, preview.stdout);
    await t.stack.up({ onOutput: t.onOutput });
    assert.strictEqual((await resourceOutputs(t.stack, "web")).guestScriptSha256, older, "the image was built by the older script");
  });

  it("previews a new rebuildTrigger as a replacement naming the field, and builds the new image before deleting the old one", async () => {
    const oldId = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    const oldSnapshot = (await resourceOutputs(t.stack, "web")).snapshotId as string;
    t.configure({ builds: [{ ...build, rebuildTrigger: "2026-11-openssl" }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { same: 1, replace: 1 }, preview.stdout);
    // Diagnostics (the engine writes them to stderr in --diff mode) name the field.
    assert.match(preview.stderr, /replaces image web-base-\d{8}T\d{6}Z because rebuildTrigger changed/);
    assert.doesNotMatch(preview.stdout + preview.stderr, /exactName:/);

    // Between the engine's create (of the new image) and its delete (of the old one), both are
    // available; at no sampled moment is neither.
    let newId = "";
    const seen: { op: string; old: boolean; new: boolean }[] = [];
    const checks: Promise<void>[] = [];
    const samples = await timeline(
      // Every SurrogateAmi image as soon as it is registered (the engine names the new one only
      // once its create returns, and then deletes the old one at once).
      async () => [...new Set([oldId, ...(await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi")).map((i) => i.ImageId!)])],
      async () => {
        await t.stack.up({
          onOutput: t.onOutput,
          onEvent: (e) => {
            const step = e.resOutputsEvent?.metadata ?? e.resourcePreEvent?.metadata;
            if (!step?.urn.endsWith("::web")) return;
            if (e.resOutputsEvent && step.op === "create-replacement") newId = String(step.new?.outputs?.imageId ?? "");
            if (e.resourcePreEvent && step.op === "delete-replaced") {
              checks.push((async () => void seen.push({ op: step.op, old: await available(oldId), new: await available(newId) }))());
            }
          },
        });
      },
    );
    await Promise.all(checks);
    assert.match(newId, /^ami-/);
    assert.notStrictEqual(newId, oldId);
    assert.deepStrictEqual(seen, [{ op: "delete-replaced", old: true, new: true }], "both available when the engine starts deleting the old image");
    assert.ok(samples.length > 3, `sampled ${samples.length} times`);
    for (const s of samples) assert.ok(Object.values(s).some(Boolean), `a moment with no available image: ${JSON.stringify(samples)}`);
    assert.ok(samples.some((s) => s[oldId] && s[newId]), "the new image was available while the old one still was");
    assert.strictEqual(await describeImage("us-east-1", oldId), undefined, "the old image is gone afterwards");
    assert.strictEqual(await snapshotExists("us-east-1", oldSnapshot), false, "and its snapshot");
    assert.deepStrictEqual((await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi")).map((i) => i.ImageId), [newId]);
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("with exactName, replaces by deleting first and warns at preview naming the image that will be missing", async () => {
    // exactName alone changes nothing in AWS; the next rebuild registers the exact name.
    t.configure({ builds: [{ ...build, rebuildTrigger: "2026-11-openssl", exactName: true }] });
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 1, update: 1 });
    await t.stack.up({ onOutput: t.onOutput });
    t.configure({ builds: [{ ...build, rebuildTrigger: "2026-12", exactName: true }] });
    const exactId = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    assert.strictEqual((await describeImage("us-east-1", exactId))!.Name, "web-base");

    t.configure({ builds: [{ ...build, rebuildTrigger: "2027-01", exactName: true }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { same: 1, replace: 1 }, preview.stdout);
    assert.match(preview.stderr, /warning: exactName: image web-base \(ami-\w+\) is deregistered before its replacement is built/);
    const up = await t.stack.up({ onOutput: t.onOutput });
    const rebuilt = await describeImage("us-east-1", imageOf(up));
    assert.strictEqual(rebuilt!.Name, "web-base");
    assert.strictEqual(await describeImage("us-east-1", exactId), undefined);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi"), []);
  });
});
