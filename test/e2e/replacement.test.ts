// Changes that never take production images away: a tool upgrade is no change, a rebuild is asked
// for (rebuildTrigger), builds the new image first and retires the old one (still launchable,
// deprecated) until reaping finds it unused past its retention; exactName deletes first and says
// so at preview.
import * as assert from "assert";
import { execFile } from "child_process";
import * as path from "path";
import { promisify } from "util";
import { CreateLaunchTemplateCommand, DeleteLaunchTemplateCommand, DeregisterImageCommand, RunInstancesCommand, TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { describeImage, ec2, imagesTagged, leftovers, seedHvmImage, snapshotExists } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { SURROGATE_FACTS } from "../support/facts";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack, TestStack } from "../support/stack";

const FACTS = { ...SURROGATE_FACTS, bootMode: "legacy-bios", partitionTable: "msdos" };
const build = { name: "web", imageName: "web-base", recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" }, retention: { days: 1, keep: 0 }, publish: "/ami-factory/web" };
const REPO = path.resolve(__dirname, "../..");
const DAY = 86_400_000;

/** `npm run reap -- …` as a user runs it (the emulator's environment is this process's). */
async function runReap(...args: string[]): Promise<string> {
  const out = await promisify(execFile)(process.execPath, ["-r", "ts-node/register", "scripts/reap.ts", "--region", "us-east-1", ...args], { cwd: REPO, env: process.env });
  return out.stdout;
}
/** The published parameter's value (undefined: no such parameter). */
const published = async () => (await new SSMClient({ region: "us-east-1" }).send(new GetParameterCommand({ Name: "/ami-factory/web" })).catch(() => undefined))?.Parameter?.Value;
const tag = (image: { Tags?: { Key?: string; Value?: string }[] } | undefined, key: string) => image?.Tags?.find((t) => t.Key === key)?.Value;
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
    assert.deepStrictEqual(preview.changeSummary, { same: 3 }, preview.stdout);
    await t.stack.up({ onOutput: t.onOutput });
    assert.strictEqual((await resourceOutputs(t.stack, "web")).guestScriptSha256, older, "the image was built by the older script");
  });

  let oldId = "";
  let newId = "";
  let oldSnapshot = "";

  it("previews a new rebuildTrigger as a replacement naming the field that retires the old image, and builds the new image first", async () => {
    oldId = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    oldSnapshot = (await resourceOutputs(t.stack, "web")).snapshotId as string;
    assert.strictEqual(await published(), oldId, "published for launch templates (resolve:ssm:/ami-factory/web)");
    // A consumer's launch template still names the old image.
    await ec2().send(new CreateLaunchTemplateCommand({ LaunchTemplateName: "consumer-web", LaunchTemplateData: { ImageId: oldId, InstanceType: "t3.micro" } }));
    t.configure({ builds: [{ ...build, rebuildTrigger: "2026-11-openssl" }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { same: 2, replace: 1 }, preview.stdout);
    // Diagnostics (the engine writes them to stderr in --diff mode) name the field and the old image's fate.
    assert.match(preview.stderr, /replaces image web-base-\d{8}T\d{6}Z because rebuildTrigger changed/);
    assert.match(preview.stderr, /image web-base-\d{8}T\d{6}Z: then retired, not deleted \(deprecated, still launchable by id/);
    assert.match(preview.stderr, /publish: SSM parameter \/ami-factory\/web then names the new image in us-east-1/);
    assert.doesNotMatch(preview.stdout + preview.stderr, /exactName:/);

    // Between the engine's create (of the new image) and its delete (of the old one), both are
    // available; at no sampled moment is neither.
    const seen: { op: string; old: boolean; new: boolean; parameter?: string }[] = [];
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
              checks.push((async () => void seen.push({ op: step.op, old: await available(oldId), new: await available(newId), parameter: await published() }))());
            }
          },
        });
      },
    );
    await Promise.all(checks);
    assert.match(newId, /^ami-/);
    assert.notStrictEqual(newId, oldId);
    // The parameter named the old image until the replacement's create rewrote it, before the old image's delete (which keeps it).
    assert.deepStrictEqual(seen, [{ op: "delete-replaced", old: true, new: true, parameter: newId }], "both available when the engine starts deleting the old image");
    assert.ok(samples.length > 3, `sampled ${samples.length} times`);
    for (const s of samples) assert.ok(Object.values(s).some(Boolean), `a moment with no available image: ${JSON.stringify(samples)}`);

    assert.strictEqual(await published(), newId, "the parameter follows the rebuild");
    // The old image is retired: available, deprecated, tagged by whom, its snapshot kept.
    const old = await describeImage("us-east-1", oldId);
    assert.strictEqual(old?.State, "available", "the old image stays after the rebuild");
    assert.ok(old!.DeprecationTime && Date.parse(old!.DeprecationTime) - Date.now() < 3 * 60_000, `deprecated at once: ${old!.DeprecationTime}`);
    assert.ok(!Number.isNaN(Date.parse(tag(old, "ami-factory:retired-at") ?? "")));
    assert.strictEqual(tag(old, "ami-factory:retired-by"), (await resourceOutputs(t.stack, "web")).buildId, "retired by the build that replaced it");
    assert.strictEqual(tag(old, "ami-factory:lineage"), tag(await describeImage("us-east-1", newId), "ami-factory:lineage"));
    assert.strictEqual(await snapshotExists("us-east-1", oldSnapshot), true, "its snapshot stays");
    // Still launchable by id (the consumer's next scale-out).
    const run = await ec2().send(new RunInstancesCommand({ ImageId: oldId, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }));
    await ec2().send(new TerminateInstancesCommand({ InstanceIds: [run.Instances![0].InstanceId!] }));
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 3 }, "no change after the up");
  });

  it("protects the image in the outputs: an out-of-band DeregisterImage is refused", async () => {
    const refused = await ec2().send(new DeregisterImageCommand({ ImageId: newId })).then(() => undefined, (e: Error) => e);
    assert.strictEqual(refused?.name, "OperationNotPermitted", String(refused));
    assert.strictEqual((await describeImage("us-east-1", newId))?.DeregistrationProtection, "enabled-without-cooldown");
    assert.strictEqual((await describeImage("us-east-1", oldId))?.DeregistrationProtection, "disabled", "retiring lifted it");
  });

  it("reaps a retired image only once nothing refers to it and its retention has passed; a dry run changes nothing; other images are never touched", async () => {
    const unrelated = await seedHvmImage("us-east-1", "not-ours");
    const later = new Date(Date.now() + 3 * DAY).toISOString();
    // The launch template still names it.
    let out = await runReap("--dry-run", "--now", later);
    assert.match(out, new RegExp(`would keep ${oldId} \\(web-base-\\S+\\) in us-east-1: in use: arn:aws:ec2:us-east-1:\\d+:launch-template/lt-`), out);
    assert.doesNotMatch(out, new RegExp(newId), "only retired images are considered");
    await ec2().send(new DeleteLaunchTemplateCommand({ LaunchTemplateName: "consumer-web" }));
    // Unused, but retired less than a day ago: a launch of today may not show in LastLaunchedTime yet.
    out = await runReap("--dry-run");
    assert.match(out, new RegExp(`would keep ${oldId} .*: retired 0\\.0 days ago: EC2 reports a launch up to a day late`), out);
    out = await runReap("--dry-run", "--now", later);
    assert.match(out, new RegExp(`would delete ${oldId} .*: retired 3\\.0 days ago, past retention.days 1 and beyond the newest 0, nothing refers to it`), out);
    assert.match(out, /dry run: nothing changed/);
    assert.strictEqual((await describeImage("us-east-1", oldId))?.State, "available", "the dry run changed nothing");
    assert.strictEqual(await snapshotExists("us-east-1", oldSnapshot), true);

    out = await runReap("--now", later);
    assert.match(out, new RegExp(`delete ${oldId} `), out);
    assert.strictEqual(await describeImage("us-east-1", oldId), undefined, "reaped");
    assert.strictEqual(await snapshotExists("us-east-1", oldSnapshot), false, "with its snapshot");
    assert.strictEqual((await describeImage("us-east-1", newId))?.State, "available", "the live image stays");
    assert.strictEqual((await describeImage("us-east-1", unrelated))?.State, "available", "an image ami-factory did not retire is never touched");
    assert.deepStrictEqual((await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi")).map((i) => i.ImageId), [newId]);
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 3 });
  });

  it("with exactName, replaces by deleting first and warns at preview naming the image that will be missing", async () => {
    // exactName alone changes nothing in AWS; the next rebuild registers the exact name.
    t.configure({ builds: [{ ...build, rebuildTrigger: "2026-11-openssl", exactName: true }] });
    assert.deepStrictEqual((await t.stack.preview({ diff: true, onOutput: t.onOutput })).changeSummary, { same: 2, update: 1 });
    await t.stack.up({ onOutput: t.onOutput });
    t.configure({ builds: [{ ...build, rebuildTrigger: "2026-12", exactName: true }] });
    const exactId = imageOf(await t.stack.up({ onOutput: t.onOutput }));
    assert.strictEqual((await describeImage("us-east-1", exactId))!.Name, "web-base");

    t.configure({ builds: [{ ...build, rebuildTrigger: "2027-01", exactName: true }] });
    const preview = await t.stack.preview({ diff: true, onOutput: t.onOutput });
    assert.deepStrictEqual(preview.changeSummary, { same: 2, replace: 1 }, preview.stdout);
    assert.match(preview.stderr, /warning: exactName: image web-base \(ami-\w+\) is deregistered before its replacement is built/);
    const up = await t.stack.up({ onOutput: t.onOutput });
    const rebuilt = await describeImage("us-east-1", imageOf(up));
    assert.strictEqual(rebuilt!.Name, "web-base");
    assert.strictEqual(await describeImage("us-east-1", exactId), undefined);
    assert.strictEqual(await published(), rebuilt!.ImageId);
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi"), []);
    assert.strictEqual(await published(), undefined, "a removed entry's parameter goes");
  });
});
