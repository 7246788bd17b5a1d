// SurrogateAmi through the real Pulumi engine on the emulator. moto runs no guest script: the
// emulator answers the surrogate SSM command with the facts line a real run prints (the recipes
// themselves are proven by booting in test/guest/surrogate.test.ts).
import * as assert from "assert";
import { CreateTagsCommand } from "@aws-sdk/client-ec2";
import { describeImage, ec2, imagesTagged, leftovers, seedHvmImage, snapshotExists } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { egressOf } from "../support/egress";
import { useEmulator } from "../support/hooks";
import { resourceOutputs, testStack } from "../support/stack";
import { SURROGATE_FACTS } from "../support/facts";

const FACTS = SURROGATE_FACTS;
const debian = { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian", packages: ["cloud-init", "openssh-server"] };

describe("SurrogateAmi on the engine", function () {
  let emu: Emulator;
  useEmulator({ iam: true, recordEachTest: true }, (e) => (emu = e));

  it("builds from an empty volume, updates tags in place, replaces on a recipe change (retiring the old image), deletes on destroy", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    const build = { name: "base", imageName: "debian-12-base", recipe: debian, bootMode: "uefi", tags: { team: "platform" } };
    const t = await testStack(emu, { builds: [build] });
    const up = await t.stack.up({ onOutput: t.onOutput });
    const imageId = (up.outputs.images.value as Record<string, Record<string, string>>).base["us-east-1"];

    const [sent] = await emu.calls("RegisterImage");
    assert.match(sent.Name, /^debian-12-base-\d{8}T\d{6}Z$/);
    assert.strictEqual(sent.VirtualizationType, "hvm");
    assert.strictEqual(sent.BootMode, "uefi");
    assert.strictEqual(sent.ImdsSupport, "v2.0");
    assert.strictEqual(sent.EnaSupport, "true");
    assert.strictEqual(sent.Architecture, "x86_64");
    assert.strictEqual(sent.RootDeviceName, "/dev/xvda");
    assert.strictEqual(sent["BlockDeviceMapping.1.Ebs.VolumeSize"], "8");
    // One empty volume, no snapshot behind it: the OS comes from the recipe.
    const volumes = await emu.calls("CreateVolume");
    assert.strictEqual(volumes.length, 1);
    assert.strictEqual(volumes[0].SnapshotId, undefined);
    const [send] = await emu.calls<{ Parameters: { commands: string[] } }>("SendCommand");
    // The mirror (a URL may carry credentials) travels in the build's secret parameter, named here.
    assert.match(send.Parameters.commands.at(-1)!, /'--boot-mode' 'uefi' '--arch' 'x86_64' '--sanitize' '--recipe' 'debian' '--suite' 'bookworm' '--packages' 'cloud-init,openssh-server' '--secret-args' '\/ami-factory\/build\/b-[0-9a-f]{16}\/[0-9a-z]+\/0' '--secret-region' 'us-east-1'/);
    assert.ok(!send.Parameters.commands.join("\n").includes("deb.debian.org"));
    const image = await describeImage("us-east-1", imageId);
    const tags = Object.fromEntries((image?.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tags["ami-factory:recipe"], "debian");
    assert.strictEqual(tags["ami-factory:sources"], "http://deb.debian.org/debian");
    assert.match(tags["ami-factory:recipe-hash"], /^[0-9a-f]{16}$/);
    assert.strictEqual(tags.team, "platform");
    // Verified by default: a UEFI, Nitro-ready image on a Nitro type.
    assert.strictEqual(tags["ami-factory:verification"], "passed");
    const verification = (await resourceOutputs(t.stack, "base")).verification as { status: string; results: { instanceType: string }[] };
    assert.deepStrictEqual([verification.status, verification.results.map((r) => r.instanceType)], ["passed", ["t3.micro"]]);
    assert.deepStrictEqual(await leftovers(), []);
    // The worker may reach out over HTTPS, and HTTP for the recipe's http:// mirror: nothing else.
    assert.deepStrictEqual(await egressOf(emu), { revoked: ["-1 0.0.0.0/0"], allowed: ["tcp 443 0.0.0.0/0", "tcp 80 0.0.0.0/0"] });

    t.configure({ builds: [{ ...build, tags: { team: "images" } }] });
    const retag = await t.stack.preview({ diff: true });
    assert.deepStrictEqual(retag.changeSummary, { same: 2, update: 1 });
    await t.stack.up({ onOutput: t.onOutput });
    const retagged = await describeImage("us-east-1", imageId);
    assert.strictEqual(retagged?.Tags?.find((x) => x.Key === "team")?.Value, "images");

    // A tag changed out of band shows on refresh, and the next up puts the input back.
    await ec2("us-east-1").send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: "team", Value: "someone-else" }] }));
    await t.stack.refresh({ onOutput: t.onOutput });
    assert.deepStrictEqual((await resourceOutputs(t.stack, "base")).tags, { team: "someone-else" });
    assert.deepStrictEqual((await t.stack.preview({ diff: true })).changeSummary, { same: 2, update: 1 });
    await t.stack.up({ onOutput: t.onOutput });
    assert.strictEqual((await describeImage("us-east-1", imageId))?.Tags?.find((x) => x.Key === "team")?.Value, "images", "restored");

    t.configure({ builds: [{ ...build, tags: { team: "images" }, recipe: { ...debian, suite: "trixie" } }] });
    const rebuild = await t.stack.preview({ diff: true });
    assert.strictEqual(rebuild.changeSummary.replace, 1, JSON.stringify(rebuild.changeSummary));
    const replaced = await t.stack.up({ onOutput: t.onOutput });
    const newImageId = (replaced.outputs.images.value as Record<string, Record<string, string>>).base["us-east-1"];
    assert.notStrictEqual(newImageId, imageId);
    const retired = await describeImage("us-east-1", imageId);
    assert.ok(retired?.DeprecationTime && retired.Tags?.some((x) => x.Key === "ami-factory:retired-at"), "the old image is retired: deprecated, tagged, still there");
    const live = (await imagesTagged("us-east-1", "ami-factory:kind", "SurrogateAmi")).filter((i) => !i.Tags?.some((x) => x.Key === "ami-factory:retired-at"));
    assert.deepStrictEqual(live.map((i) => i.ImageId), [newImageId]);

    const outs = await resourceOutputs(t.stack, "base");
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.strictEqual(await describeImage("us-east-1", newImageId), undefined);
    assert.strictEqual(await snapshotExists("us-east-1", outs.snapshotId as string), false);
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("with encrypted: true and an https mirror: the worker's root volume is encrypted too, and its egress is HTTPS only", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(FACTS)}\n` });
    const kmsKeyId = "alias/images";
    const workerImage = await seedHvmImage("us-east-1", "al2023-like-worker");
    const t = await testStack(emu, { builds: [{ name: "sealed", imageName: "sealed-base", recipe: { ...debian, mirror: "https://deb.debian.org/debian" }, encrypted: true, kmsKeyId, worker: { imageId: workerImage } }] });
    await t.stack.up({ onOutput: t.onOutput });
    assert.deepStrictEqual(await egressOf(emu), { revoked: ["-1 0.0.0.0/0"], allowed: ["tcp 443 0.0.0.0/0"] });
    // The worker's launch (the verification launch of the image comes after it).
    const run = (await emu.calls<Record<string, string>>("RunInstances")).find((c) => c.ImageId === workerImage)!;
    assert.strictEqual(run["BlockDeviceMapping.1.Ebs.Encrypted"], "true", JSON.stringify(run));
    assert.strictEqual(run["BlockDeviceMapping.1.Ebs.KmsKeyId"], kmsKeyId);
    assert.strictEqual(run["BlockDeviceMapping.1.DeviceName"], "/dev/xvda", "the worker image's root device");
    assert.strictEqual(run["BlockDeviceMapping.1.Ebs.VolumeSize"], undefined, "the size stays the image's");
    assert.strictEqual((await emu.calls("CreateVolume")).at(-1)!.Encrypted, "true");
    await t.stack.destroy({ onOutput: t.onOutput });
    assert.deepStrictEqual(await leftovers(), []);
  });

  it("fails with the recipe's last lines when it fails, and leaves nothing behind", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Failed", stderr: "surrogate: debootstrap: E: Couldn't download packages: linux-image-amd64\n", responseCode: 1 });
    const t = await testStack(emu, { builds: [{ name: "broken", imageName: "broken-build", recipe: debian }] });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      assert.match(String(e), /step "run surrogate on the worker" failed: .*Couldn't download packages: linux-image-amd64/s);
      return true;
    });
    assert.deepStrictEqual(await leftovers(), []);
    assert.deepStrictEqual(await emu.calls("RegisterImage"), []);
    assert.deepStrictEqual(await emu.calls("CreateSnapshot"), []);
  });
});
