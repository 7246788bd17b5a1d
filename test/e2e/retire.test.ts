// What a delete does with an image, through the engine: `retirement: "delete"` deletes the old image
// of a replacement at once; a plain `pulumi destroy` (nothing tells it from a replacement) retires,
// lifts protection and deletes the published parameter; `npm run reap -- --all` then takes the
// retired images and their snapshots.
import * as assert from "assert";
import { execFile } from "child_process";
import * as path from "path";
import { promisify } from "util";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { describeImage, imagesTagged, snapshotExists } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { SURROGATE_FACTS } from "../support/facts";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack } from "../support/stack";

const FACTS = { ...SURROGATE_FACTS, bootMode: "legacy-bios", partitionTable: "msdos" };
const build = { name: "os", imageName: "os-base", recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" }, publish: "/ami-factory/os" };
const imageOf = (up: { outputs: Record<string, { value: unknown }> }) => (up.outputs.images.value as Record<string, Record<string, string>>).os["us-east-1"];
const published = async () => (await new SSMClient({ region: "us-east-1" }).send(new GetParameterCommand({ Name: "/ami-factory/os" })).catch(() => undefined))?.Parameter?.Value;
const tag = (image: { Tags?: { Key?: string; Value?: string }[] } | undefined, key: string) => image?.Tags?.find((t) => t.Key === key)?.Value;

describe("retirement on the engine", function () {
  let emu: Emulator;
  useEmulator({ iam: true }, (e) => (emu = e));

  it("deletes the old image of a replacement at once with retirement: delete, retires it by default even with AMI_FACTORY_DELETE_IMAGES=1, and retires on a plain destroy; reap --all takes what is retired", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    const t = await testStack(emu, { builds: [{ ...build, retirement: "delete" }] }, "us-east-1", { plainDestroy: true });
    const first = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    const firstSnapshot = (await resourceOutputs(t.stack, "os")).snapshotId as string;

    t.configure({ builds: [{ ...build, retirement: "delete", rebuildTrigger: "2027-01" }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.match(preview.stderr, /image os-base-\d{8}T\d{6}Z: then deleted \(retirement: "delete"\)/);
    const second = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    assert.strictEqual(await describeImage("us-east-1", first), undefined, "retirement: delete deleted the old image");
    assert.strictEqual(await snapshotExists("us-east-1", firstSnapshot), false, "and its snapshot");
    assert.strictEqual(await published(), second);

    // Back to the default; a plain destroy then retires (the provider cannot tell it from a replacement).
    t.configure({ builds: [{ ...build, rebuildTrigger: "2027-01" }] });
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 1, update: 1 });
    await t.stack.up({ onOutput: t.onOutput });
    const secondSnapshot = (await resourceOutputs(t.stack, "os")).snapshotId as string;

    // AMI_FACTORY_DELETE_IMAGES=1 left exported (a CI job): a replacement still retires its old image (it has a successor).
    t.configure({ builds: [{ ...build, rebuildTrigger: "2027-02" }] });
    t.stack.workspace.envVars.AMI_FACTORY_DELETE_IMAGES = "1";
    let third: string;
    try {
      assert.match((await t.stack.preview({ diff: true, onOutput: t.onOutput })).stderr, /image os-base-\d{8}T\d{6}Z: then retired, not deleted/);
      third = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    } finally {
      delete t.stack.workspace.envVars.AMI_FACTORY_DELETE_IMAGES;
    }
    const replaced = await describeImage("us-east-1", second);
    assert.strictEqual(replaced?.State, "available", "the replaced image is retired, not deleted, despite the variable");
    assert.strictEqual(tag(replaced, "ami-factory:retired-by"), tag(await describeImage("us-east-1", third), "ami-factory:build-id"));
    assert.strictEqual(await snapshotExists("us-east-1", secondSnapshot), true);
    const thirdSnapshot = (await resourceOutputs(t.stack, "os")).snapshotId as string;

    await t.stack.destroy({ onOutput: t.onOutput });
    const retired = await describeImage("us-east-1", third);
    assert.strictEqual(retired?.State, "available", "a plain destroy retires");
    assert.strictEqual(tag(retired, "ami-factory:retired-by"), "removed");
    assert.strictEqual(retired.DeregistrationProtection, "disabled", "its protection lifted");
    assert.strictEqual(await published(), undefined, "the removed entry's parameter is deleted");

    const reap = async (...args: string[]) => (await promisify(execFile)(process.execPath, ["-r", "ts-node/register", "scripts/reap.ts", "--region", "us-east-1", "--all", ...args], { cwd: path.resolve(__dirname, "../.."), env: process.env })).stdout;
    // --all ignores retention, never the day EC2 may report a launch late: retired a moment ago, it stays.
    let out = await reap();
    assert.match(out, new RegExp(`keep ${third} .*: retired 0\\.0 days ago: EC2 reports a launch up to a day late.*not even with --all`), out);
    out = await reap("--now", new Date(Date.now() + 2 * 86_400_000).toISOString());
    for (const image of [second, third]) assert.match(out, new RegExp(`delete ${image} .*\\(--all\\)`), out);
    assert.strictEqual(await describeImage("us-east-1", second), undefined);
    assert.strictEqual(await describeImage("us-east-1", third), undefined);
    assert.strictEqual(await snapshotExists("us-east-1", secondSnapshot), false);
    assert.strictEqual(await snapshotExists("us-east-1", thirdSnapshot), false);
    assert.deepStrictEqual(await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi"), []);
  });
});
