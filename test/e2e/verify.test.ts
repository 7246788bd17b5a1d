// Launch verification on the engine: a built image counts when an instance of it boots to
// userspace. The emulator scripts how instances of each image boot (status checks and serial
// console, test/support/hooks.ts boots every image by default); product code never knows.
import * as assert from "assert";
import { DescribeInstancesCommand, DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import * as fs from "fs";
import * as path from "path";
import { describeImage, ec2, imagesTagged, leftovers, seedPvImage } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack } from "../support/stack";
import { PV2HVM_FACTS } from "../support/facts";

const FACTS = PV2HVM_FACTS;
const PANIC_CONSOLE = fs.readFileSync(path.join(__dirname, "../fixtures/console/no-initramfs-panic.txt"), "utf8");
const BUILD_ID_TAG = "ami-factory:build-id";

type Images = Record<string, Record<string, string>>;

/** Every instance a build launched (terminated or not), with its type and Name tag. */
async function instancesOfBuild(buildId: string) {
  const out = await ec2().send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }] }));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

async function buildIdOfLastRun(emu: Emulator): Promise<string> {
  const run = (await emu.calls("RunInstances")).at(-1)!;
  const key = Object.keys(run).find((k) => run[k] === BUILD_ID_TAG)!;
  return run[key.replace(/Key$/, "Value")];
}

/** Nothing of the build is left: no instance running, no image, no snapshot, no temporary resource. */
async function assertNothingLeft(buildId: string): Promise<void> {
  assert.deepStrictEqual(await leftovers(), []);
  assert.deepStrictEqual((await imagesTagged("us-east-1", BUILD_ID_TAG, buildId)).map((i) => i.ImageId), [], "no image of the build");
  const snaps = await ec2().send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }] }));
  assert.deepStrictEqual((snaps.Snapshots ?? []).map((s) => s.SnapshotId), [], "no snapshot of the build");
  const running = (await instancesOfBuild(buildId)).filter((i) => i.State?.Name !== "terminated");
  assert.deepStrictEqual(running.map((i) => i.InstanceId), [], "no instance of the build");
}

describe("launch verification on the engine", function () {
  let emu: Emulator;
  useEmulator({ iam: true, recordEachTest: true }, (e) => (emu = e));

  it("passes when the checks are ok and the console shows userspace: outputs and tags record it, the test instance is gone", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "verify-ok");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    // Not visible at first (eventual consistency), then initializing for 3 polls.
    await emu.scriptBoot({ imageName: "verify-ok-hvm", outcome: "boots", afterPolls: 3, notVisibleFor: 2 });
    const t = await testStack(emu, { conversions: [{ name: "ok", sourceAmiId }] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    const imageId = (up.outputs.images.value as Images).ok["us-east-1"];

    const outs = await resourceOutputs(t.stack, "ok");
    const v = outs.verification as { status: string; results: { instanceType: string; secondsToBootSignal: number; bootLine: string }[] };
    assert.strictEqual(v.status, "passed");
    assert.deepStrictEqual(v.results.map((r) => [r.instanceType, r.bootLine]), [["t3.micro", "debian login:"]]);
    assert.ok(v.results[0].secondsToBootSignal >= 0);
    assert.match(t.output.join(""), /verify: on t3\.micro: Nitro-ready: the facts say nitroReady: true/);

    // The test instance as asked: the new image, the worker's subnet and security group, no key
    // pair, IMDSv2 only, tagged as a temporary resource of the build.
    const [worker, test] = (await emu.calls("RunInstances")).slice(-2);
    assert.strictEqual(test.ImageId, imageId);
    assert.strictEqual(test.InstanceType, "t3.micro");
    assert.strictEqual(test.SubnetId, worker.SubnetId);
    assert.strictEqual(test["SecurityGroupId.1"], worker["SecurityGroupId.1"]);
    assert.strictEqual(test.KeyName, undefined);
    assert.strictEqual(test.IamInstanceProfile, undefined);
    assert.strictEqual(test["MetadataOptions.HttpTokens"], "required");
    const testTags = Object.fromEntries(Object.entries(test).filter(([k]) => /^TagSpecification\.1\.Tag\.\d+\.Key$/.test(k)).map(([k, val]) => [val, test[k.replace(/Key$/, "Value")]]));
    assert.strictEqual(testTags["ami-factory:temporary"], "true");
    assert.strictEqual(testTags[BUILD_ID_TAG], outs.buildId);
    assert.ok(Date.parse(testTags["ami-factory:expires-at"]) > Date.now());
    // The latest console (a Nitro type), polled until both checks were ok.
    const consoles = await emu.calls("GetConsoleOutput");
    assert.ok(consoles.length >= 3 && consoles.every((c) => c.Latest === "true"), JSON.stringify(consoles));
    assert.ok((await emu.calls("DescribeInstanceStatus")).length >= 3);

    const tags = Object.fromEntries(((await describeImage("us-east-1", imageId))?.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tags["ami-factory:verification"], "passed");
    assert.match(tags["ami-factory:verified-on"], /^t3\.micro=\d+s$/);
    assert.strictEqual(tags["ami-factory:boot-line"], "debian login:");
    assert.strictEqual(tags["ami-factory:expires-at"], undefined, "a verified image does not expire");
    const terminated = (await instancesOfBuild(outs.buildId as string)).filter((i) => i.InstanceType === "t3.micro");
    assert.deepStrictEqual(terminated.map((i) => i.State?.Name), ["terminated"]);
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("verifies on a Xen type (buffered console) when the image is not Nitro-ready, and on each type of a list", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "verify-xen");
    const xenFacts = { ...FACTS, nvmeInInitramfs: false, nitroReady: false };
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(xenFacts)}\n` });
    const t = await testStack(emu, { conversions: [{ name: "xen", sourceAmiId }, { name: "both", sourceAmiId, imageName: "verify-both", verify: { instanceType: ["t2.micro", "m7i.large"] } }] });
    await t.stack.up({ onOutput: t.onOutput });
    assert.match(t.output.join(""), /verify: on t2\.micro: not Nitro-ready[^:]*: the facts say nitroReady: false/);
    const xen = (await resourceOutputs(t.stack, "xen")).verification as { results: { instanceType: string }[] };
    assert.deepStrictEqual(xen.results.map((r) => r.instanceType), ["t2.micro"]);
    const both = (await resourceOutputs(t.stack, "both")).verification as { results: { instanceType: string }[] };
    assert.deepStrictEqual(both.results.map((r) => r.instanceType).sort(), ["m7i.large", "t2.micro"]);
    const consoles = await emu.calls("GetConsoleOutput");
    assert.ok(consoles.some((c) => c.Latest === undefined), "Xen: the buffered console (Latest is Nitro-only)");
    assert.ok(consoles.some((c) => c.Latest === "true"), "Nitro: the latest console");
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("verifies a not Nitro-ready image on a Xen type the region offers where t2.micro is not (eu-south-2: DescribeInstanceTypeOfferings)", async () => {
    const region = "eu-south-2";
    const { imageId: sourceAmiId } = await seedPvImage(region, "verify-xen-spain");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify({ ...FACTS, nvmeInInitramfs: false, nitroReady: false })}\n` });
    const t = await testStack(emu, { conversions: [{ name: "spain", sourceAmiId }] }, region);
    await t.stack.up({ onOutput: t.onOutput });
    assert.match(t.output.join(""), /verify: on i3\.large: not Nitro-ready[^\n]*; t2\.micro is not offered in eu-south-2: i3\.large, the smallest Xen type it offers that can launch the image/);
    const verification = (await resourceOutputs(t.stack, "spain")).verification as { results: { instanceType: string }[] };
    assert.deepStrictEqual(verification.results.map((r) => r.instanceType), ["i3.large"]);
    assert.deepStrictEqual(await leftovers(region), []);
    await t.stack.destroy({ onOutput: t.onOutput });
  });

  it("fails on a kernel panic with the panic line and the console tail, and leaves no test instance, image or snapshot", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "verify-panic");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    await emu.scriptBoot({ imageName: "verify-panic-hvm", outcome: "panics", afterPolls: 2, console: PANIC_CONSOLE });
    const t = await testStack(emu, { conversions: [{ name: "panic", sourceAmiId }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      const text = String(e);
      assert.match(text, /step "verify the image boots" failed: ami-\w+ did not boot: t3\.micro: .*the console shows kernel panic: .*Kernel panic - not syncing: VFS: Unable to mount root fs/);
      assert.match(text, /console tail of i-\w+:/);
      assert.match(text, /cleaned up: verify the image boots, register image, snapshot the new root volume/);
      return true;
    });
    await assertNothingLeft(await buildIdOfLastRun(emu));
  });

  it("fails when a status check is impaired, and leaves nothing", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "verify-impaired");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    await emu.scriptBoot({ imageName: "verify-impaired-hvm", outcome: "impaired", afterPolls: 1 });
    const t = await testStack(emu, { conversions: [{ name: "impaired", sourceAmiId }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      assert.match(String(e), /did not boot: t3\.micro: .*status checks: system ok, instance impaired/);
      assert.match(String(e), /console tail of i-\w+:\n(.|\n)*Linux version/);
      return true;
    });
    await assertNothingLeft(await buildIdOfLastRun(emu));
  });

  it("fails at verify.timeoutMinutes when the console never shows userspace, and leaves nothing", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "verify-never");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    await emu.scriptBoot({ imageName: "verify-never-hvm", outcome: "never", afterPolls: 0 });
    const t = await testStack(emu, { conversions: [{ name: "never", sourceAmiId, verify: { timeoutMinutes: 1 } }] });
    const started = Date.now();
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      assert.match(String(e), /timed out after \d+s waiting for i-\w+ \(t3\.micro\) to boot ami-\w+ to userspace \(last seen: status checks: system initializing, instance initializing; boot signal not seen yet\)/);
      assert.match(String(e), /console tail of i-\w+:\n(.|\n)*Loading Linux/);
      return true;
    });
    assert.ok(Date.now() - started < 4 * 60_000, "gave up near verify.timeoutMinutes");
    await assertNothingLeft(await buildIdOfLastRun(emu));
  });

  it("verify: false launches nothing, and preview and up say the image will not be verified", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "verify-off");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    const t = await testStack(emu, { conversions: [{ name: "off", sourceAmiId, verify: false }] });
    const preview = await t.stack.preview({ onOutput: t.onOutput });
    assert.match(preview.stdout, /warning: verify: false: the image will not be verified/);
    await t.stack.up({ onOutput: t.onOutput });
    const outs = await resourceOutputs(t.stack, "off");
    assert.deepStrictEqual(outs.verification, { status: "skipped" });
    assert.strictEqual((await emu.calls("RunInstances")).length, 2, "the seed and the worker: no test instance");
    assert.deepStrictEqual(await emu.calls("GetConsoleOutput"), []);
    const tags = Object.fromEntries(((await describeImage("us-east-1", outs.imageId as string))?.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tags["ami-factory:verification"], "skipped");
    assert.deepStrictEqual(await leftovers(), []);
  });
});
