// Every resource through the real engine while 20% of its AWS calls fail: throttles and 500s before
// the emulator sees the call, and lost answers after it did the work (test/support/faultProxy.ts).
// On top of that the first answer of every write (Create*, Run*, Copy*, Register*, Send*, Delete*,
// ...) in each test is lost, so each write is proven to survive its own retry, whatever the seed.
// The flows must still converge, make no duplicates and leave nothing behind. Only the dynamic
// provider's calls go through the proxy (the stack's AWS_ENDPOINT_URL); this file's own assertions
// go to the emulator directly.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeImageAttributeCommand, DescribeInstancesCommand, DescribeSnapshotsCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { describeImage, ec2, imagesTagged, leftovers, seedPvImage, snapshotExists } from "../support/aws";
import { startEmulator, Emulator } from "../support/emulator";
import { bootByDefault } from "../support/hooks";
import { FaultProxy, startFaultProxy } from "../support/faultProxy";
import { resourceOutputs, testStack } from "../support/stack";
import { REPO_ROOT } from "../../scripts/local/toolchain";
import { PV2HVM_FACTS, SURROGATE_FACTS } from "../support/facts";

const RATE = 0.2;
const SEED = Number(process.env.AMI_FACTORY_FAULT_SEED ?? 20261122);
const REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"];
// Facts lines in the schemas the guest scripts declare ("# @facts" in pv2hvm.sh, surrogate.sh).
const BUILD_ID_TAG = "ami-factory:build-id";
const WRITES = /^(Create|Run|Copy|Register|Attach|Detach|Put|Modify|Send|Add|Remove|Delete|Deregister|Terminate|Enable|Disable|Tag|Untag|Cancel)/;

type Images = Record<string, Record<string, string>>;

/** Images of a build in a region (not deregistered), by the build id tag. */
async function imagesOfBuild(region: string, buildId: string): Promise<string[]> {
  return (await imagesTagged(region, BUILD_ID_TAG, buildId)).map((i) => i.ImageId!).sort();
}

async function snapshotsOfBuild(region: string, buildId: string): Promise<string[]> {
  const out = await ec2(region).send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }] }));
  return (out.Snapshots ?? []).map((s) => s.SnapshotId!).sort();
}

/** The type of every instance ever launched for a build, terminated or not, sorted. */
async function instancesOfBuild(region: string, buildId: string): Promise<string[]> {
  const out = await ec2(region).send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }] }));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceType!).sort();
}

async function allLeftovers(): Promise<string[]> {
  return (await Promise.all(REGIONS.map(async (r) => (await leftovers(r)).map((l) => `${r}: ${l}`)))).flat();
}

describe("every resource under 20% injected AWS faults (throttles, 500s, lost answers)", function () {
  let emu: Emulator;
  let proxy: FaultProxy;
  /** The emulator as the stack sees it: its AWS endpoint is the proxy. */
  let faulty: Emulator;
  /** Faults injected by the tests so far, by mode. */
  const totals = { before: 0, after: 0 };

  before(async () => {
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } });
    Object.assign(process.env, emu.env);
    proxy = await startFaultProxy(emu.endpoint, { rate: RATE, seed: SEED, loseFirstAnswer: WRITES });
    faulty = { ...emu, env: { ...emu.env, AWS_ENDPOINT_URL: proxy.url } };
  });
  beforeEach(async () => {
    await emu.reset({ keepMoto: true });
    await bootByDefault(emu); // the launch verification of the built images passes
    proxy.reset();
  });
  afterEach(function () {
    const injected = proxy.injected();
    totals.before += injected.before;
    totals.after += injected.after;
    const byAction = Object.entries(injected.byAction).map(([a, c]) => `${a} ${c.before}/${c.after}`).join(", ");
    const calls = Object.values(injected.calls).reduce((a, b) => a + b, 0);
    console.log(`      ${injected.total} faults in ${calls} calls (${injected.before} before, ${injected.after} after; before/after by action: ${byAction})`);
  });
  after(async () => {
    await proxy?.stop();
    await emu?.stop();
  });

  /** A stack whose provider talks to AWS through the proxy. */
  async function faultyStack(config: Record<string, unknown>) {
    const t = await testStack(faulty, config);
    // testStack sets the stack's env on this process too (for the inline program, which makes no
    // AWS call): this file's own SDK clients talk to the emulator directly.
    process.env.AWS_ENDPOINT_URL = emu.endpoint;
    return t;
  }

  /** Faults happened in this test, and every write lost its first answer: it cannot pass vacuously. */
  function assertFaultsInjected(): void {
    const injected = proxy.injected();
    assert.ok(injected.total > 0 && injected.after > 0, `faults were injected: ${JSON.stringify(injected)}`);
    const writes = Object.keys(injected.calls).filter((a) => WRITES.test(a));
    assert.ok(writes.length > 0);
    for (const action of writes) assert.ok(injected.byAction[action]?.after > 0, `the first answer of ${action} was lost`);
  }

  it("SharedAmi: copies to 3 regions, updates (a region dropped and its copy retired, one added, an account added) and destroys, once per region", async () => {
    const sourceAmiId = (await seedPvImage("us-east-1", "faulty-base")).imageId;
    const share = { name: "base", sourceAmiId, regions: ["us-east-1", "eu-west-1", "ap-northeast-1"], accountIds: ["111122223333"], tags: { team: "platform" } };
    const t = await faultyStack({ shares: [share] });

    const up = await t.stack.up({ onOutput: t.onOutput });
    const images = (up.outputs.images.value as Images).base;
    assert.deepStrictEqual(Object.keys(images).sort(), ["ap-northeast-1", "eu-west-1", "us-east-1"]);
    assert.strictEqual(images["us-east-1"], sourceAmiId);
    const { buildId } = (await resourceOutputs(t.stack, "base")) as { buildId: string };
    for (const region of ["eu-west-1", "ap-northeast-1"]) {
      assert.deepStrictEqual(await imagesOfBuild(region, buildId), [images[region]], `exactly one copy in ${region}`);
      assert.strictEqual((await snapshotsOfBuild(region, buildId)).length, 1, `exactly one snapshot in ${region}`);
      const perms = (await ec2(region).send(new DescribeImageAttributeCommand({ ImageId: images[region], Attribute: "launchPermission" }))).LaunchPermissions ?? [];
      assert.deepStrictEqual(perms.map((p) => p.UserId), ["111122223333"]);
    }

    // Update: ap-northeast-1 dropped, eu-central-1 added, an account added.
    t.configure({ shares: [{ ...share, regions: ["us-east-1", "eu-west-1", "eu-central-1"], accountIds: ["111122223333", "444455556666"] }] });
    const updated = (await t.stack.up({ onOutput: t.onOutput })).outputs.images.value as Images;
    assert.deepStrictEqual(Object.keys(updated.base).sort(), ["eu-central-1", "eu-west-1", "us-east-1"]);
    assert.strictEqual(updated.base["eu-west-1"], images["eu-west-1"], "a kept region keeps its copy");
    // The dropped region's copy is retired once (not deleted): still one image, deprecated, tagged, its snapshot kept.
    const dropped = await imagesOfBuild("ap-northeast-1", buildId);
    assert.deepStrictEqual(dropped, [images["ap-northeast-1"]], "the dropped region's copy is retired, not deleted");
    assert.strictEqual((await describeImage("ap-northeast-1", images["ap-northeast-1"]))?.Tags?.find((x) => x.Key === "ami-factory:retired-by")?.Value, "removed");
    assert.strictEqual((await snapshotsOfBuild("ap-northeast-1", buildId)).length, 1, "and its snapshot stays");
    assert.deepStrictEqual(await imagesOfBuild("eu-central-1", buildId), [updated.base["eu-central-1"]], "exactly one copy in the added region");
    for (const region of ["us-east-1", "eu-west-1", "eu-central-1"]) {
      const id = updated.base[region];
      const perms = (await ec2(region).send(new DescribeImageAttributeCommand({ ImageId: id, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
      assert.deepStrictEqual(perms.map((p) => p.UserId).sort(), ["111122223333", "444455556666"], `sharing in ${region}`);
    }
    const noChange = await t.stack.preview({ diff: true });
    assert.deepStrictEqual(noChange.changeSummary, { same: 3 }, "converged: nothing left to do");

    await t.stack.destroy({ onOutput: t.onOutput });
    // Destroy deletes what the stack holds; the copy retired earlier is reaping's (npm run reap).
    assert.deepStrictEqual(await imagesOfBuild("ap-northeast-1", buildId), [images["ap-northeast-1"]]);
    for (const region of ["eu-west-1", "eu-central-1"]) {
      assert.deepStrictEqual(await imagesOfBuild(region, buildId), [], `no copy left in ${region}`);
      assert.deepStrictEqual(await snapshotsOfBuild(region, buildId), [], `no snapshot left in ${region}`);
    }
    assert.ok(await describeImage("us-east-1", sourceAmiId), "the source stays");
    const sourcePerms = (await ec2("us-east-1").send(new DescribeImageAttributeCommand({ ImageId: sourceAmiId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
    assert.deepStrictEqual(sourcePerms, [], "what was granted on the source is taken back");
    assert.deepStrictEqual(await allLeftovers(), []);
    assertFaultsInjected();
  });

  it("ConvertedHvmAmi: converts with one worker and one image, and destroys", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "faulty-legacy");
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `copying...\n${JSON.stringify(PV2HVM_FACTS)}\n` });
    const t = await faultyStack({ conversions: [{ name: "legacy", sourceAmiId, tags: { team: "web" } }] });

    const up = await t.stack.up({ onOutput: t.onOutput });
    const imageId = (up.outputs.images.value as Images).legacy["us-east-1"];
    const outs = (await resourceOutputs(t.stack, "legacy")) as { buildId: string; snapshotId: string; facts: unknown };
    assert.deepStrictEqual(await imagesOfBuild("us-east-1", outs.buildId), [imageId], "exactly one image of the build");
    assert.deepStrictEqual(await snapshotsOfBuild("us-east-1", outs.buildId), [outs.snapshotId], "exactly one snapshot of the build");
    assert.deepStrictEqual(await instancesOfBuild("us-east-1", outs.buildId), ["m6i.large", "t3.micro"], "one worker and one test launch for the build");
    assert.deepStrictEqual(outs.facts, PV2HVM_FACTS);
    const image = await describeImage("us-east-1", imageId);
    assert.strictEqual(image?.VirtualizationType, "hvm");
    assert.strictEqual(image?.Tags?.find((x) => x.Key === "team")?.Value, "web");
    assert.deepStrictEqual(await allLeftovers(), []);

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await imagesOfBuild("us-east-1", outs.buildId), []);
    assert.strictEqual(await snapshotExists("us-east-1", outs.snapshotId), false);
    assert.deepStrictEqual(await allLeftovers(), []);
    assertFaultsInjected();
  });

  it("RecoveryAlarm: creates one alarm, updates it in place, deletes it", async () => {
    const run = await ec2().send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }));
    const instanceId = run.Instances![0].InstanceId!;
    const cw = new CloudWatchClient({ region: "us-east-1" });
    const alarms = async () => (await cw.send(new DescribeAlarmsCommand({ AlarmNamePrefix: "ami-factory-recover-" }))).MetricAlarms ?? [];
    const t = await faultyStack({ recoveryAlarms: [{ name: "web", instanceId, tags: { team: "web" } }] });

    const up = await t.stack.up({ onOutput: t.onOutput });
    const { alarmName } = (up.outputs.alarms.value as Record<string, { alarmName: string }>).web;
    assert.deepStrictEqual((await alarms()).map((a) => a.AlarmName), [alarmName]);

    t.configure({ recoveryAlarms: [{ name: "web", instanceId, evaluationPeriods: 3, notifyTopicArns: ["arn:aws:sns:us-east-1:123456789012:ops"] }] });
    await t.stack.up({ onOutput: t.onOutput });
    const [alarm, ...more] = await alarms();
    assert.deepStrictEqual(more, []);
    assert.strictEqual(alarm.EvaluationPeriods, 3);
    assert.deepStrictEqual(alarm.AlarmActions, ["arn:aws:automate:us-east-1:ec2:recover", "arn:aws:sns:us-east-1:123456789012:ops"]);
    assert.deepStrictEqual((await t.stack.preview({ diff: true })).changeSummary, { same: 3 });

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await alarms(), []);
    assertFaultsInjected();
  });

  it("SurrogateAmi: builds with one worker and one image, and destroys", async function () {
    if (!fs.existsSync(path.join(REPO_ROOT, "scripts", "guest", "surrogate.sh"))) {
      throw new Error("scripts/guest/surrogate.sh does not exist yet: SurrogateAmi cannot be built");
    }
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `debootstrap...\n${JSON.stringify(SURROGATE_FACTS)}\n` });
    const build = { name: "debian", imageName: "debian-12-faulty", recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" }, tags: { team: "os" } };
    const t = await faultyStack({ builds: [build] });

    const up = await t.stack.up({ onOutput: t.onOutput });
    const imageId = (up.outputs.images.value as Images).debian["us-east-1"];
    const outs = (await resourceOutputs(t.stack, "debian")) as { buildId: string; snapshotId: string; facts: unknown };
    assert.deepStrictEqual(await imagesOfBuild("us-east-1", outs.buildId), [imageId], "exactly one image of the build");
    assert.deepStrictEqual(await snapshotsOfBuild("us-east-1", outs.buildId), [outs.snapshotId], "exactly one snapshot of the build");
    assert.deepStrictEqual(await instancesOfBuild("us-east-1", outs.buildId), ["m6i.large", "t3.micro"], "one worker and one test launch for the build");
    assert.deepStrictEqual(outs.facts, SURROGATE_FACTS);
    const image = await describeImage("us-east-1", imageId);
    assert.match(image?.Name ?? "", /^debian-12-faulty-\d{8}T\d{6}Z$/);
    assert.strictEqual(image?.Tags?.find((x) => x.Key === "team")?.Value, "os");
    assert.deepStrictEqual(await allLeftovers(), []);

    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await imagesOfBuild("us-east-1", outs.buildId), []);
    assert.strictEqual(await snapshotExists("us-east-1", outs.snapshotId), false);
    assert.deepStrictEqual(await allLeftovers(), []);
    assertFaultsInjected();
  });

  it("injected both throttles and 500s before forwarding and lost answers after, over the file", () => {
    assert.ok(totals.before > 0 && totals.after > 0, JSON.stringify(totals));
  });
});
