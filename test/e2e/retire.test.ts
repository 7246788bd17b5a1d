// What a delete does with an image, through the engine: `retirement: "delete"` deletes the old image
// of a replacement at once; a replacement, a removed entry and `pulumi destroy --target <image>`
// retire; a plain `pulumi destroy` of the stack deletes its images (through the StackLifetime
// marker, deleted after them) and the published parameter; `npm run reap -- --all` then takes the
// retired images and their snapshots.
import * as assert from "assert";
import { execFile } from "child_process";
import * as path from "path";
import { promisify } from "util";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { CopyImageCommand, DeregisterImageCommand, DisableImageDeregistrationProtectionCommand } from "@aws-sdk/client-ec2";
import { describeImage, ec2, imagesTagged, seedHvmImage, snapshotExists } from "../support/aws";
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

  it("deletes the old image of a replacement at once with retirement: delete, retires it by default (an earlier release's AMI_FACTORY_DELETE_IMAGES=1 changes nothing), and deletes on a plain destroy; reap --all takes what is retired", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    const t = await testStack(emu, { builds: [{ ...build, retirement: "delete" }] });
    const first = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    const firstSnapshot = (await resourceOutputs(t.stack, "os")).snapshotId as string;

    t.configure({ builds: [{ ...build, retirement: "delete", rebuildTrigger: "2027-01" }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.match(preview.stderr, /image os-base-\d{8}T\d{6}Z: then deleted \(retirement: "delete"\)/);
    const second = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    assert.strictEqual(await describeImage("us-east-1", first), undefined, "retirement: delete deleted the old image");
    assert.strictEqual(await snapshotExists("us-east-1", firstSnapshot), false, "and its snapshot");
    assert.strictEqual(await published(), second);

    // Back to the default: retire.
    t.configure({ builds: [{ ...build, rebuildTrigger: "2027-01" }] });
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 2, update: 1 });
    await t.stack.up({ onOutput: t.onOutput });
    const secondSnapshot = (await resourceOutputs(t.stack, "os")).snapshotId as string;

    // AMI_FACTORY_DELETE_IMAGES=1 (an earlier release's switch) left exported: ignored, the old image retires.
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
    assert.strictEqual(await describeImage("us-east-1", third), undefined, "a plain destroy deletes the stack's image");
    assert.strictEqual(await snapshotExists("us-east-1", thirdSnapshot), false, "and its snapshot");
    assert.strictEqual(await published(), undefined, "the removed entry's parameter is deleted");
    assert.strictEqual((await describeImage("us-east-1", second))?.State, "available", "an image retired before the destroy stays retired (reaping takes it)");

    const reap = async (...args: string[]) => (await promisify(execFile)(process.execPath, ["-r", "ts-node/register", "scripts/reap.ts", "--region", "us-east-1", "--all", ...args], { cwd: path.resolve(__dirname, "../.."), env: process.env })).stdout;
    // --all ignores retention, never the day EC2 may report a launch late: retired a moment ago, it stays.
    let out = await reap();
    assert.match(out, new RegExp(`keep ${second} .*: retired 0\\.0 days ago: EC2 reports a launch up to a day late.*not even with --all`), out);
    out = await reap("--now", new Date(Date.now() + 2 * 86_400_000).toISOString());
    assert.match(out, new RegExp(`delete ${second} .*\\(--all\\)`), out);
    assert.strictEqual(await describeImage("us-east-1", second), undefined);
    assert.strictEqual(await snapshotExists("us-east-1", secondSnapshot), false);
    assert.deepStrictEqual(await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi"), []);
  });

  it("retires on a replacement, a removed entry (even with AMI_FACTORY_DELETE_IMAGES=1) and destroy --target of one image; a plain destroy of the stack deletes its images and their snapshots (preview says so)", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    const entry = (name: string, extra: Record<string, unknown> = {}) => ({ name, imageName: `${name}-base`, recipe: build.recipe, ...extra });
    const shareSource = await seedHvmImage("us-east-1", "share-source");
    const share = { name: "s", sourceAmiId: shareSource, regions: ["eu-west-1"] };
    const t = await testStack(emu, { builds: [entry("a"), entry("b"), entry("c")], shares: [share] });
    const images = (up: { outputs: Record<string, { value: unknown }> }) => Object.fromEntries(Object.entries(up.outputs.images.value as Record<string, Record<string, string>>).map(([k, v]) => [k, v["us-east-1"]]));
    const snapshotOf = async (name: string) => (await resourceOutputs(t.stack, name)).snapshotId as string;
    const before = images(await t.stack.up({ onOutput: t.onOutput }));
    const snapshots = { a: await snapshotOf("a"), b: await snapshotOf("b"), c: await snapshotOf("c") };

    // One up: a rebuilt, c removed; with an earlier release's AMI_FACTORY_DELETE_IMAGES=1 exported,
    // which no longer deletes a removed entry's image (a consumer may still launch it).
    t.configure({ builds: [entry("a", { rebuildTrigger: "2027-01" }), entry("b")], shares: [share] });
    t.stack.workspace.envVars.AMI_FACTORY_DELETE_IMAGES = "1";
    let after: Record<string, string>;
    try {
      after = images(await t.stack.up({ onOutput: t.onOutput }));
    } finally {
      delete t.stack.workspace.envVars.AMI_FACTORY_DELETE_IMAGES;
    }
    const newA = await describeImage("us-east-1", after.a);
    const oldA = await describeImage("us-east-1", before.a);
    assert.strictEqual(oldA?.State, "available", "the replaced image is retired, not deleted");
    assert.strictEqual(tag(oldA, "ami-factory:retired-by"), tag(newA, "ami-factory:build-id"));
    const c = await describeImage("us-east-1", before.c);
    assert.strictEqual(c?.State, "available", "the removed entry's image is retired, not deleted");
    assert.strictEqual(tag(c, "ami-factory:retired-by"), "removed");
    assert.strictEqual(await snapshotExists("us-east-1", snapshots.c), true);
    // A copy of the retired image made out of band with its tags (CopyImageTags) is not retired (never
    // reaped) and no successor of a (the destroy below still deletes the new a).
    const outOfBand = (await ec2("us-east-1").send(new CopyImageCommand({ SourceImageId: before.a, SourceRegion: "us-east-1", Name: "copy-of-old-a", CopyImageTags: true }))).ImageId!;
    assert.strictEqual(tag(await describeImage("us-east-1", outOfBand), "ami-factory:retired-at"), tag(oldA, "ami-factory:retired-at"), "the copy carries the retired tags");

    // destroy --target of one image: the marker stays, so the image retires.
    const urnOf = async (name: string) => ((await t.stack.exportStack()).deployment.resources as { urn: string }[]).find((r) => r.urn.endsWith(`::${name}`))!.urn;
    await t.stack.destroy({ target: [await urnOf("b")], onOutput: t.onOutput });
    const b = await describeImage("us-east-1", before.b);
    assert.strictEqual(b?.State, "available", "destroy --target retires the image");
    assert.strictEqual(tag(b, "ami-factory:retired-by"), "removed");
    assert.strictEqual(b.DeregistrationProtection, "disabled");
    assert.strictEqual(await snapshotExists("us-east-1", snapshots.b), true);

    // The destroy's preview lists the images and the marker that makes it delete them.
    const preview = await t.stack.previewDestroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { delete: 4 }, preview.stdout); // a, s, the marker, the stack
    assert.match(preview.stdout, /-\s+\S+:SurrogateAmi\s+a\s+delete/, preview.stdout);
    assert.match(preview.stdout, /-\s+\S+:StackLifetime\s+destroy-deletes-images\s+delete/, preview.stdout);

    const aSnapshot = await snapshotOf("a");
    const shared = await resourceOutputs(t.stack, "s") as { imageIds: Record<string, string>; snapshotIds: Record<string, string[]> };
    const copy = shared.imageIds["eu-west-1"];
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await describeImage("eu-west-1", copy), undefined, "a plain destroy deletes the SharedAmi's copy");
    for (const s of shared.snapshotIds["eu-west-1"]) assert.strictEqual(await snapshotExists("eu-west-1", s), false, `and its snapshot ${s}`);
    assert.strictEqual((await describeImage("us-east-1", shareSource))?.State, "available", "never the source");
    assert.strictEqual(await describeImage("us-east-1", after.a), undefined, "a plain destroy deletes the stack's image");
    assert.strictEqual(await snapshotExists("us-east-1", aSnapshot), false, "and its snapshot");
    for (const [what, id, snapshot] of [["old a", before.a, snapshots.a], ["b", before.b, snapshots.b], ["c", before.c, snapshots.c]]) {
      assert.strictEqual((await describeImage("us-east-1", id))?.State, "available", `${what}, retired before the destroy, stays retired`);
      assert.strictEqual(await snapshotExists("us-east-1", snapshot), true);
    }
    const reaped = (await promisify(execFile)(process.execPath, ["-r", "ts-node/register", "scripts/reap.ts", "--region", "us-east-1", "--all", "--now", new Date(Date.now() + 2 * 86_400_000).toISOString()], { cwd: path.resolve(__dirname, "../.."), env: process.env })).stdout;
    assert.strictEqual((await describeImage("us-east-1", outOfBand))?.State, "available", `the out-of-band copy is not reaped:\n${reaped}`);
    assert.doesNotMatch(reaped, new RegExp(outOfBand));
    await ec2("us-east-1").send(new DeregisterImageCommand({ ImageId: outOfBand }));
    assert.deepStrictEqual(await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi"), []);
  });

  it("puts back deregistration protection lifted out of band (or never set): refresh reports it, the next up protects the image, then no change", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    const t = await testStack(emu, { builds: [{ name: "os", imageName: "os-base", recipe: build.recipe }] });
    const image = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    await ec2("us-east-1").send(new DisableImageDeregistrationProtectionCommand({ ImageId: image }));
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 3 }, "no diff sees it before a refresh");
    const refresh = await t.stack.refresh({ onOutput: t.onOutput });
    assert.strictEqual(refresh.summary.resourceChanges?.update, 1, JSON.stringify(refresh.summary.resourceChanges));
    assert.strictEqual((await resourceOutputs(t.stack, "os")).deregistrationProtection, false, "refresh reports the image unprotected");
    const up = await t.stack.up({ onOutput: t.onOutput });
    assert.strictEqual(up.summary.resourceChanges?.update, 1, JSON.stringify(up.summary.resourceChanges));
    assert.strictEqual((await describeImage("us-east-1", image))?.DeregistrationProtection, "enabled-without-cooldown");
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 3 });
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await describeImage("us-east-1", image), undefined);
  });
});
