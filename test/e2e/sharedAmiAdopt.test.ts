// SharedAmi copies survive a crash like worker builds: a re-run of the same build adopts the copy a
// dead run made (found by its build-id tag, never handed to the engine) instead of copying again,
// and keeps its name; copies handed over are never adopted.
import * as assert from "assert";
import { CopyImageCommand, DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { describeImage, ec2, seedPvImage } from "../support/aws";
import { sweep } from "../../scripts/sweep";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack } from "../support/stack";
import { checkSharedAmi } from "../../providers/sharedAmi/inputs";
import { copyToken, sharedBuildId } from "../../providers/sharedAmi/operations";

describe("SharedAmi after a crash", function () {
  let emu: Emulator;
  useEmulator({ recordEachTest: true }, (e) => (emu = e));

  it("adopts the copy a dead run made, with its name, and copies only where none was made", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "crash-base");
    const t = await testStack(emu, { shares: [{ name: "base", sourceAmiId, regions: ["eu-west-1", "ap-northeast-1"] }] });
    // The dead run: its copy in eu-west-1, tagged as ami-factory tags copies at creation.
    const { inputs } = checkSharedAmi({ sourceAmiId, sourceRegion: "us-east-1", regions: ["eu-west-1", "ap-northeast-1"], scope: `ami-factory/${t.stack.name}/base` });
    const buildId = sharedBuildId(inputs!);
    const deadName = "crash-base-20261126T000000Z";
    const dead = await ec2("eu-west-1").send(new CopyImageCommand({
      SourceImageId: sourceAmiId, SourceRegion: "us-east-1", Name: deadName, ClientToken: copyToken({ buildId, imageName: deadName, placements: {} }, "eu-west-1"),
      TagSpecifications: [{ ResourceType: "image", Tags: [{ Key: "ami-factory:build-id", Value: buildId }, { Key: "ami-factory:managed-by", Value: "ami-factory" }] }],
    }));
    await emu.reset({ keepMoto: true }); // forget the dead run's own calls
    await emu.recordActions("*");
    const up = await t.stack.up({ onOutput: t.onOutput });
    const ids = (up.outputs.images.value as Record<string, Record<string, string>>).base;
    const outs = await resourceOutputs(t.stack, "base");
    assert.strictEqual(outs.buildId, buildId, "the build id the test derived");
    assert.strictEqual(ids["eu-west-1"], dead.ImageId, "adopted");
    const copies = await emu.calls("CopyImage");
    assert.deepStrictEqual(copies.map((c) => c.Name), [deadName], "one new copy (ap-northeast-1), with the dead run's name");
    const tagged = await ec2("eu-west-1").send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag:ami-factory:build-id", Values: [buildId] }] }));
    assert.strictEqual(tagged.Images?.length, 1, "no second copy in eu-west-1");
    assert.ok(tagged.Images?.[0].Tags?.some((x) => x.Key === "ami-factory:handed-over"), "handed over to the engine");
    await t.stack.destroy({ onOutput: t.onOutput });
  });

  it("are found by npm run sweep when a dead run's copy is past its expiry, never when handed over", async () => {
    const { imageId: sourceAmiId } = await seedPvImage("us-east-1", "sweep-base");
    const t = await testStack(emu, { shares: [{ name: "kept", sourceAmiId, regions: ["eu-west-1"] }] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    const kept = (up.outputs.images.value as Record<string, Record<string, string>>).kept["eu-west-1"];
    const tag = (Key: string, Value: string) => ({ Key, Value });
    const dead = await ec2("eu-west-1").send(new CopyImageCommand({
      SourceImageId: sourceAmiId, SourceRegion: "us-east-1", Name: "sweep-base-20261126T000000Z",
      TagSpecifications: [{ ResourceType: "image", Tags: [
        tag("ami-factory:build-id", "b-0000000000000dead"), tag("ami-factory:managed-by", "ami-factory"), tag("ami-factory:source-region", "us-east-1"),
        tag("ami-factory:stack", `ami-factory/${t.stack.name}`), tag("ami-factory:expires-at", "2026-01-01T00:00:00.000Z"),
      ] }],
    }));
    const swept = await sweep({ stack: t.stack.name, regions: ["eu-west-1"], yes: true }, () => undefined);
    assert.deepStrictEqual(swept.found.filter((f) => f.kind === "image").map((f) => f.id), [dead.ImageId]);
    assert.deepStrictEqual(swept.failures, []);
    assert.strictEqual(await describeImage("eu-west-1", dead.ImageId!), undefined, "the dead run's copy is gone");
    assert.ok(await describeImage("eu-west-1", kept), "the stack's own copy (handed over) stays");
    await t.stack.destroy({ onOutput: t.onOutput });
  });
});

