// State a newer ami-factory wrote, met by this (older) checkout through the real engine: preview,
// refresh and destroy stop with a clear error and change nothing; state this release wrote records
// its version (providers/core/writtenBy.ts).
import * as assert from "assert";
import { describeImage, seedHvmImage } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack } from "../support/stack";
import { PACKAGE_VERSION, STATE_REVISION } from "../../providers/core/version";

describe("state written by a newer ami-factory", function () {
  let emu: Emulator;
  useEmulator({}, (e) => (emu = e));

  it("is refused at preview, refresh and destroy, naming both versions; the images stay", async () => {
    const sourceAmiId = await seedHvmImage("us-east-1", "newer-state");
    const t = await testStack(emu, { shares: [{ name: "base", sourceAmiId, regions: ["eu-west-1"] }] });
    await t.stack.up({ onOutput: t.onOutput });
    const outs = await resourceOutputs(t.stack, "base");
    assert.strictEqual(outs.amiFactoryVersion, PACKAGE_VERSION, "the state records the version that wrote it");
    const copy = (outs.imageIds as Record<string, string>)["eu-west-1"];

    // As if a newer checkout had updated the resource.
    const state = await t.stack.exportStack();
    const share = state.deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::base"));
    share.outputs.amiFactoryVersion = "99.0.0";
    await t.stack.importStack(state);

    const message = new RegExp(`SharedAmi: the state was written by ami-factory 99\\.0\\.0, newer than this checkout \\(${PACKAGE_VERSION.replace(/\./g, "\\.")}\\): update this checkout`);
    await assert.rejects(t.stack.preview({ diff: true }), message);
    await assert.rejects(t.stack.refresh({}), message);
    await assert.rejects(t.stack.destroy({}), message);
    assert.ok(await describeImage("eu-west-1", copy), "the copy is still there");

    // The same package version (it rarely moves), a newer state format revision.
    assert.strictEqual(outs.amiFactoryStateRevision, STATE_REVISION, "the state records its format revision");
    share.outputs.amiFactoryVersion = PACKAGE_VERSION;
    share.outputs.amiFactoryStateRevision = STATE_REVISION + 1;
    await t.stack.importStack(state);
    await assert.rejects(t.stack.preview({ diff: true }), new RegExp(`SharedAmi: the state was written by a newer ami-factory \\(state format revision ${STATE_REVISION + 1}; this checkout has ${STATE_REVISION}\\)`));
    assert.ok(await describeImage("eu-west-1", copy), "the copy is still there");

    share.outputs.amiFactoryStateRevision = STATE_REVISION;
    await t.stack.importStack(state);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await describeImage("eu-west-1", copy), undefined);
  });
});
