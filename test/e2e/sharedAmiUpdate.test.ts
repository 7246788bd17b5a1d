// SharedAmi updates that fail halfway, through the real engine: the emulator fails one AWS call
// (calls/fail) in the middle of an update, and afterwards AWS grants exactly what the old state says.
// Then shares of one source shared in place: a replacement, and two shares, each revoking only what
// the other does not hold.
import * as assert from "assert";
import { execFile } from "child_process";
import * as path from "path";
import { promisify } from "util";
import { DescribeImageAttributeCommand, DescribeSnapshotAttributeCommand } from "@aws-sdk/client-ec2";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { startEmulator, Emulator } from "../support/emulator";
import { resourceOutputs, testStack, TestStack } from "../support/stack";
import { describeImage, ec2, imagesTagged, seedPvImage } from "../support/aws";
import { readRecords } from "../../providers/sharedAmi/grantRecords";

const A = "111122223333";
const B = "444455556666";
const C = "777788889999";
const BUILD_ID_TAG = "ami-factory:build-id";

async function launchAccounts(region: string, imageId: string): Promise<string[]> {
  const perms = (await ec2(region).send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: "launchPermission" }))).LaunchPermissions ?? [];
  return perms.map((p) => p.UserId!).sort();
}

/** The grant records on an image (providers/sharedAmi/grantRecords.ts): holder id → principal → "launch" | "launch volume". */
async function grantTags(region: string, imageId: string): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [holder, r] of readRecords((await describeImage(region, imageId))?.Tags)) {
    out[holder] = Object.fromEntries([...r.launch].map((p) => [p, r.volume.has(p) ? "launch volume" : "launch"]));
  }
  return out;
}

async function snapshotAccounts(region: string, snapshotId: string): Promise<string[]> {
  const out = await ec2(region).send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: "createVolumePermission" }));
  return (out.CreateVolumePermissions ?? []).map((p) => p.UserId!).sort();
}

describe("SharedAmi update that fails halfway", function () {
  let emu: Emulator;
  let t: TestStack;
  let sourceAmiId: string;
  const share = () => ({ name: "base", sourceAmiId, regions: ["us-east-1", "eu-west-1", "eu-central-1"], accountIds: [A, B], tags: { team: "platform" } });

  before(async () => {
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false" } });
    Object.assign(process.env, emu.env);
    sourceAmiId = (await seedPvImage("us-east-1", "base-image")).imageId;
    t = await testStack(emu, { shares: [share()] });
    await t.stack.up({ onOutput: t.onOutput });
  });
  after(async () => {
    await emu?.stop();
  });

  /** AWS grants what the state records (the old sharing), and the old copies keep their tags. */
  async function assertAsBefore(): Promise<void> {
    const outs = await resourceOutputs(t.stack, "base");
    assert.deepStrictEqual(outs.accountIds, [A, B], "the state keeps the old accounts");
    const ids = outs.imageIds as Record<string, string>;
    const snaps = outs.snapshotIds as Record<string, string[]>;
    assert.deepStrictEqual(Object.keys(ids).sort(), ["eu-central-1", "eu-west-1", "us-east-1"]);
    for (const region of Object.keys(ids)) {
      assert.deepStrictEqual(await launchAccounts(region, ids[region]), [A, B], `launch permissions in ${region}`);
      for (const s of snaps[region]) assert.deepStrictEqual(await snapshotAccounts(region, s), [A, B], `snapshot ${s} in ${region}`);
      if (region === "us-east-1") continue;
      const image = await describeImage(region, ids[region]);
      assert.strictEqual(image?.Tags?.find((x) => x.Key === "team")?.Value, "platform", `the copy in ${region} keeps its tags`);
    }
    assert.deepStrictEqual(await imagesTagged("ap-northeast-1", BUILD_ID_TAG, outs.buildId as string), [], "no copy left in the added region");
  }

  it("a region added whose copy fails: the accounts granted are taken back, none revoked", async () => {
    await emu.failCalls({ action: "CopyImage", region: "ap-northeast-1", code: "ResourceLimitExceeded", message: "too many AMI copies in progress" });
    t.configure({ shares: [{ ...share(), regions: [...share().regions, "ap-northeast-1"], accountIds: [A, C], tags: { team: "web" } }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), /too many AMI copies in progress[\s\S]*cleaned up: .*grant added principals/);
    await assertAsBefore();
  });

  it("a dropped region's copy that cannot be retired (the last step): revocations granted again, new copies and tags undone", async () => {
    await emu.failCalls({ action: "EnableImageDeprecation", region: "eu-central-1", code: "InvalidParameter", message: "cannot deprecate now" });
    t.configure({ shares: [{ ...share(), regions: ["us-east-1", "eu-west-1", "ap-northeast-1"], accountIds: [A, C], tags: { team: "web" } }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), /retire \(or delete\) copies of dropped regions[\s\S]*cleaned up: revoke removed principals, update tags/);
    await assertAsBefore();
  });

  it("the same update without the fault converges", async () => {
    const old = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    await t.stack.up({ onOutput: t.onOutput });
    const ids = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    assert.deepStrictEqual(Object.keys(ids).sort(), ["ap-northeast-1", "eu-west-1", "us-east-1"]);
    for (const region of Object.keys(ids)) assert.deepStrictEqual(await launchAccounts(region, ids[region]), [A, C], `launch permissions in ${region}`);
    // The dropped region's copy is retired, not deleted: launchable by id (with its launch permissions), deprecated, tagged.
    const dropped = await describeImage("eu-central-1", old["eu-central-1"]);
    assert.strictEqual(dropped?.State, "available", "the dropped region's copy stays");
    assert.ok(dropped.DeprecationTime, "deprecated");
    assert.strictEqual(dropped.Tags?.find((x) => x.Key === "ami-factory:retired-by")?.Value, "removed");
    assert.deepStrictEqual(await launchAccounts("eu-central-1", old["eu-central-1"]), [A, B], "its launch permissions stay");
    assert.deepStrictEqual((await t.stack.preview({ diff: true })).changeSummary, { same: 3 });
    // Reaped like a built image: kept by retention (14 days, 2 newest), taken by --all once unused.
    const reap = async (...args: string[]) => (await promisify(execFile)(process.execPath, ["-r", "ts-node/register", "scripts/reap.ts", "--region", "eu-central-1", ...args], { cwd: path.resolve(__dirname, "../.."), env: process.env })).stdout;
    assert.match(await reap("--now", new Date(Date.now() + 30 * 86_400_000).toISOString()), new RegExp(`keep ${old["eu-central-1"]} .*one of the 2 newest retired builds`));
    assert.strictEqual((await describeImage("eu-central-1", old["eu-central-1"]))?.State, "available");
    assert.match(await reap("--all", "--now", new Date(Date.now() + 2 * 86_400_000).toISOString()), new RegExp(`delete ${old["eu-central-1"]} .*\\(--all\\)`));
    assert.strictEqual(await describeImage("eu-central-1", old["eu-central-1"]), undefined, "reaped");
  });

  it("a replacement sharing the same source in place keeps its grants when the old share is deleted after it", async () => {
    // Published first (in place): the parameter per region names each region's image.
    const published = async (region: string) => (await new SSMClient({ region }).send(new GetParameterCommand({ Name: "/ami-factory/base" })).catch(() => undefined))?.Parameter?.Value;
    t.configure({ shares: [{ ...share(), regions: ["us-east-1", "eu-west-1", "ap-northeast-1"], accountIds: [A, C], tags: { team: "web" }, publish: "/ami-factory/base" }] });
    const publishing = await t.stack.preview({ diff: true });
    assert.deepStrictEqual(publishing.changeSummary, { same: 2, update: 1 });
    assert.match(publishing.stderr, /publish: writes the image id to SSM parameter \/ami-factory\/base \(DataType aws:ec2:image\) in ap-northeast-1, eu-west-1, us-east-1/);
    await t.stack.up({ onOutput: t.onOutput });
    const before = (await resourceOutputs(t.stack, "base")).imageIds as Record<string, string>;
    for (const region of Object.keys(before)) assert.strictEqual(await published(region), before[region], `published in ${region}`);
    const old = await resourceOutputs(t.stack, "base");
    const sourceSnapshots = (old.snapshotIds as Record<string, string[]>)["us-east-1"];
    assert.deepStrictEqual(await grantTags("us-east-1", sourceAmiId), { [old.holderId as string]: { [A]: "launch volume", [C]: "launch volume" } });
    // imageName is a replace field: the new share is created (granting A on the source again) before the old one is deleted.
    t.configure({ shares: [{ ...share(), imageName: "base-v2", regions: ["us-east-1", "eu-west-1"], accountIds: [A], publish: "/ami-factory/base" }] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    assert.strictEqual(up.summary.resourceChanges?.replace, 1, JSON.stringify(up.summary.resourceChanges));
    const now = await resourceOutputs(t.stack, "base");
    assert.notStrictEqual(now.holderId, old.holderId);
    assert.deepStrictEqual(await launchAccounts("us-east-1", sourceAmiId), [A], "A kept (the replacement holds it), C revoked (no share holds it)");
    for (const s of sourceSnapshots) assert.deepStrictEqual(await snapshotAccounts("us-east-1", s), [A]);
    assert.deepStrictEqual(await grantTags("us-east-1", sourceAmiId), { [now.holderId as string]: { [A]: "launch volume" } }, "only the replacement's grants are recorded");
    assert.deepStrictEqual(await launchAccounts("eu-west-1", (now.imageIds as Record<string, string>)["eu-west-1"]), [A]);
    // The parameters follow the replacement; the old share's delete takes only the one of the region it alone had.
    assert.strictEqual(await published("us-east-1"), sourceAmiId, "the source in place: the same id, now the replacement's, kept");
    assert.strictEqual(await published("eu-west-1"), (now.imageIds as Record<string, string>)["eu-west-1"], "the new copy");
    assert.strictEqual(await published("ap-northeast-1"), undefined, "the dropped region's parameter is deleted");
  });

  it("two shares of one source in place: removing one revokes only what the other does not grant", async () => {
    const other = { name: "other", imageName: "other", sourceAmiId, regions: ["us-east-1"], accountIds: [A, B], shareSnapshots: false };
    t.configure({ shares: [{ ...share(), imageName: "base-v2", regions: ["us-east-1", "eu-west-1"], accountIds: [A] }, other] });
    await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts("us-east-1", sourceAmiId), [A, B]);
    t.configure({ shares: [other] });
    await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts("us-east-1", sourceAmiId), [A, B], "the other share still grants A and B");
    const snaps = ((await resourceOutputs(t.stack, "other")).snapshotIds as Record<string, string[]>)["us-east-1"];
    for (const s of snaps) assert.deepStrictEqual(await snapshotAccounts("us-east-1", s), [], "no share holds a volume grant any more");
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await launchAccounts("us-east-1", sourceAmiId), []);
    assert.deepStrictEqual(await grantTags("us-east-1", sourceAmiId), {});
  });
});
