// Crash safety: the engine is killed (kill -9, with its plugins) in the middle of a
// ConvertedHvmAmi create (in its guest step, or in its launch verification). After the documented recovery the next `pulumi up` converges to one image
// and nothing is left over; `npm run sweep` finds and removes what a crashed build left.
import * as assert from "assert";
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { describeImage, ec2, imagesTagged, leftovers, seedPvImage, snapshotExists } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { killHard, processTree } from "../support/processes";
import { testStack, TestStack } from "../support/stack";
import { sweep } from "../../scripts/sweep";
import { PV2HVM_FACTS } from "../support/facts";

// A facts line in pv2hvm.sh's declared schema ("# @facts", version 4).
const FACTS = JSON.stringify(PV2HVM_FACTS);

async function until<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Start `pulumi up`, wait until the guest script was sent to the worker, then kill -9 the engine. */
async function crashDuringConversion(emu: Emulator, t: TestStack): Promise<void> {
  await emu.clearSsmRules();
  await emu.failSsmCommands({ match: "pv2hvm", status: "InProgress" }); // the guest step never ends
  const up = t.stack.up({ onOutput: t.onOutput }).then(
    () => "finished",
    () => "failed",
  );
  await until("the guest script to be sent", 120, async () => ((await emu.calls("SendCommand")).length ? true : undefined));
  const tree = processTree(["pulumi", "up", `--stack ${t.stack.name}`]);
  assert.ok(tree.length >= 2, `the engine and its plugins: ${tree}`);
  killHard(tree);
  assert.strictEqual(await up, "failed");
}

describe("a crash in the middle of a create", function () {
  let emu: Emulator;
  useEmulator({ iam: true }, (e) => (emu = e));

  it("converges to one image after recovery, and leaves nothing behind", async () => {
    await emu.reset({ keepMoto: true });
    await emu.recordActions("*");
    const { imageId } = await seedPvImage("us-east-1", "crash-me");
    const t = await testStack(emu, { conversions: [{ name: "legacy", sourceAmiId: imageId }] });
    await crashDuringConversion(emu, t);
    const left = await leftovers();
    assert.ok(left.some((l) => l.startsWith("instance")) && left.some((l) => l.startsWith("volume")), `the crash left the worker behind: ${left}`);

    // The dry-run sweep sees them (they are not expired yet: --older-than 0s).
    const dry = await sweep({ stack: t.stack.name, regions: ["us-east-1"], olderThanMs: 0, yes: false }, () => undefined);
    assert.ok(dry.found.length >= left.length, JSON.stringify(dry.found));
    assert.deepStrictEqual((await leftovers()).length, left.length, "a dry run deletes nothing");

    // Recovery (README, "When things go wrong"): release the dead engine's lock, drop the pending
    // create from the state, then up again.
    await t.stack.cancel();
    await t.stack.refresh({ clearPendingCreates: true, onOutput: t.onOutput });
    await emu.clearSsmRules();
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${FACTS}\n` });
    const up = await t.stack.up({ onOutput: t.onOutput });
    assert.match(t.output.join(""), /cleaning \d+ leftovers of an earlier run of build b-/);
    const converted = (up.outputs.images.value as Record<string, Record<string, string>>).legacy["us-east-1"];
    const built = await imagesTagged("us-east-1", "ami-factory:kind", "ConvertedHvmAmi");
    assert.deepStrictEqual(built.map((i) => i.ImageId), [converted], "exactly one image");
    assert.deepStrictEqual(await leftovers(), []);
    const after = await sweep({ stack: t.stack.name, regions: ["us-east-1"], olderThanMs: 0, yes: false }, () => undefined);
    assert.deepStrictEqual(after.found, []);
    await t.stack.destroy({ onOutput: t.onOutput });
  });

  it("recovers from a crash in the middle of the launch verification: one verified image, and no test instance, image or snapshot left", async () => {
    await emu.reset({ keepMoto: true });
    await emu.recordActions("*");
    const { imageId } = await seedPvImage("us-east-1", "crash-verify");
    await emu.clearSsmRules();
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${FACTS}\n` });
    await emu.scriptBoot({ imageName: "crash-verify-hvm", outcome: "never", afterPolls: 0 }); // the test instance never boots
    const t = await testStack(emu, { conversions: [{ name: "verifying", sourceAmiId: imageId }] });
    const first = t.stack.up({ onOutput: t.onOutput }).then(
      () => "finished",
      () => "failed",
    );
    await until("the verification to poll the test instance's console", 180, async () => ((await emu.calls("GetConsoleOutput")).length ? true : undefined));
    const tree = processTree(["pulumi", "up", `--stack ${t.stack.name}`]);
    assert.ok(tree.length >= 2, `the engine and its plugins: ${tree}`);
    killHard(tree);
    assert.strictEqual(await first, "failed");
    const left = await leftovers();
    const pending = left.filter((l) => /^image ami-\w+ \(verification pending\)$/.test(l));
    assert.strictEqual(pending.length, 1, `the crash left the unverified image: ${left}`);
    assert.ok(left.filter((l) => l.startsWith("instance")).length >= 2, `the worker and the test instance: ${left}`);
    const unverified = pending[0].split(" ")[1];
    const unverifiedSnapshot = (await describeImage("us-east-1", unverified))!.BlockDeviceMappings![0].Ebs!.SnapshotId!;
    // The test instance was tagged as the build's at launch: nothing but the tags knows it now.
    const testInstances = (await ec2().send(new DescribeInstancesCommand({ Filters: [{ Name: "image-id", Values: [unverified] }] }))).Reservations!.flatMap((r) => r.Instances ?? []);
    assert.strictEqual(testInstances.length, 1, "one test instance of the unverified image");
    const testInstance = testInstances[0];
    const tagsOf = Object.fromEntries((testInstance.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tagsOf["ami-factory:temporary"], "true");
    assert.match(tagsOf["ami-factory:build-id"] ?? "", /^b-\w+/);
    const dry = await sweep({ stack: t.stack.name, regions: ["us-east-1"], olderThanMs: 0, yes: false }, () => undefined);
    assert.ok(dry.found.some((f) => f.kind === "image" && f.id === unverified), `the sweep sees the unverified image: ${JSON.stringify(dry.found)}`);
    assert.ok(dry.found.some((f) => f.kind === "instance" && f.id === testInstance.InstanceId), `the sweep sees the test instance: ${JSON.stringify(dry.found)}`);

    // Recovery as the README says; this time the image boots.
    await t.stack.cancel();
    await t.stack.refresh({ clearPendingCreates: true, onOutput: t.onOutput });
    await emu.scriptBoot({ imageName: "crash-verify-hvm", outcome: "boots", afterPolls: 1 });
    const up = await t.stack.up({ onOutput: t.onOutput });
    assert.match(t.output.join(""), new RegExp(`cleaning \\d+ leftovers of an earlier run of build b-\\w+: .*image ${unverified}`));
    assert.match(t.output.join(""), new RegExp(`cleaning \\d+ leftovers of an earlier run of build b-\\w+: .*instance ${testInstance.InstanceId}`), "the re-run terminates the test instance");
    const after1 = (await ec2().send(new DescribeInstancesCommand({ InstanceIds: [testInstance.InstanceId!] }))).Reservations![0].Instances![0];
    assert.strictEqual(after1.State?.Name, "terminated");
    const converted = (up.outputs.images.value as Record<string, Record<string, string>>).verifying["us-east-1"];
    assert.notStrictEqual(converted, unverified, "the unverified image is not adopted");
    const built = await imagesTagged("us-east-1", "ami-factory:kind", "ConvertedHvmAmi");
    assert.deepStrictEqual(built.map((i) => i.ImageId), [converted], "exactly one image");
    const tags = Object.fromEntries((built[0].Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tags["ami-factory:verification"], "passed");
    assert.strictEqual(await describeImage("us-east-1", unverified), undefined);
    assert.strictEqual(await snapshotExists("us-east-1", unverifiedSnapshot), false);
    assert.deepStrictEqual(await leftovers(), []);
    const after = await sweep({ stack: t.stack.name, regions: ["us-east-1"], olderThanMs: 0, yes: false }, () => undefined);
    assert.deepStrictEqual(after.found, []);
    await t.stack.destroy({ onOutput: t.onOutput });
  });

  it("is swept by npm run sweep --yes when nobody runs the stack again", async () => {
    await emu.reset({ keepMoto: true });
    await emu.recordActions("*");
    const { imageId } = await seedPvImage("us-east-1", "abandoned");
    const t = await testStack(emu, { conversions: [{ name: "abandoned", sourceAmiId: imageId }] });
    await crashDuringConversion(emu, t);
    assert.notDeepStrictEqual(await leftovers(), []);
    // Not expired yet: a sweep without --older-than leaves a build that may still be running.
    const early = await sweep({ stack: t.stack.name, regions: ["us-east-1"], yes: true }, () => undefined);
    assert.deepStrictEqual(early.found, []);
    const swept = await sweep({ stack: t.stack.name, regions: ["us-east-1"], olderThanMs: 0, yes: true }, () => undefined);
    assert.deepStrictEqual(swept.failures, []);
    assert.ok(swept.found.some((f) => f.kind === "role") && swept.found.some((f) => f.kind === "security-group"), JSON.stringify(swept.found));
    assert.deepStrictEqual(await leftovers(), []);
  });
});
