// SharedAmi copies survive a crash like worker builds: a re-run of the same build adopts the copy a
// dead run made (found by its build-id tag, never handed to the engine) instead of copying again,
// and keeps its name; copies handed over are never adopted.
import * as assert from "assert";
import { CopyImageCommand, DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { ec2, seedPvImage } from "../support/aws";
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
});
