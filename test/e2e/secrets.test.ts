// Secret inputs stay secret: encrypted in the state, marked secret in the outputs, never printed.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as pulumi from "@pulumi/pulumi";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { ec2 } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { localStack } from "../../scripts/local/engine";
import { REPO_ROOT } from "../../scripts/local/toolchain";
import { RecoveryAlarm, SharedAmi } from "../../providers";
import { describeImage, leftovers, seedPvImage } from "../support/aws";
import { SURROGATE_FACTS } from "../support/facts";
import { testStack } from "../support/stack";

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

describe("secret inputs", function () {
  let emu: Emulator;
  useEmulator({ iam: false }, (e) => (emu = e));

  it("are secret outputs, encrypted in the state and absent from the engine's output", async () => {
    const secret = `s3cr3t-${process.pid}`;
    const run = await ec2().send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }));
    const instanceId = run.Instances![0].InstanceId!;
    const { imageId } = await seedPvImage("us-east-1", "secret-source");
    const workDir = `${REPO_ROOT}/.local/test-stacks/secrets-${process.pid}`;
    const stack = await localStack({
      stackName: `secrets${process.pid}`,
      workDir,
      env: emu.env,
      program: async () => {
        const alarm = new RecoveryAlarm("alarm", { instanceId, tags: pulumi.secret({ owner: secret }) });
        const share = new SharedAmi("share", { sourceAmiId: imageId, regions: ["eu-west-1"], description: pulumi.secret(`copy for ${secret}`) });
        return { arn: alarm.alarmArn, ids: share.imageIds };
      },
    });
    const printed: string[] = [];
    await stack.up({ onOutput: (s) => printed.push(s) });
    await stack.preview({ diff: true, onOutput: (s) => printed.push(s) });
    const state = await stack.exportStack();
    for (const [name, field] of [["alarm", "tags"], ["share", "description"]]) {
      const res = state.deployment.resources.find((r: { urn: string }) => r.urn.endsWith(`::${name}`));
      assert.ok(res.outputs[field][SECRET_SIG], `${name}.${field} is a secret output`);
    }
    const plaintext = execFileSync("bash", ["-c", `grep -rl "${secret}" "${workDir}/state" || true`], { encoding: "utf8" }).trim();
    assert.strictEqual(plaintext, "", `plaintext secret in ${plaintext}`);
    assert.ok(!printed.join("").includes(secret), "the engine printed the secret");
    await stack.destroy({});
  });
});

describe("secrets from stack config", function () {
  let emu: Emulator;
  useEmulator({ iam: true }, (e) => (emu = e));

  it("stay secret end to end: secret inputs and outputs, encrypted in the state file, never printed, not in image tags", async () => {
    const password = `pw-${process.pid}-x7`;
    const owner = `owner-${process.pid}-q9`;
    const facts = { ...SURROGATE_FACTS, bootMode: "legacy-bios", partitionTable: "msdos" };
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(facts)}\n` });
    const t = await testStack(emu, { builds: [{ name: "os", imageName: "debian-12", recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" } }] });
    // As a user would: pulumi config set --secret --path for a mirror with credentials and a tag.
    await t.stack.setConfig("ami-factory:builds[0].recipe.mirror", { value: `https://builder:${password}@mirror.example.com/debian`, secret: true }, true);
    await t.stack.setConfig("ami-factory:builds[0].tags.owner", { value: owner, secret: true }, true);
    const stackFile = require("fs").readFileSync(`${t.workDir}/Pulumi.${t.stack.name}.yaml`, "utf8");
    assert.ok(!stackFile.includes(password) && /secure:/.test(stackFile), "the stack file holds the values encrypted");

    const printed: string[] = [];
    const up = await t.stack.up({ onOutput: (s) => printed.push(s) });
    const preview = await t.stack.preview({ diff: true, onOutput: (s) => printed.push(s) });
    printed.push(preview.stdout, preview.stderr);
    const state = await t.stack.exportStack();
    const res = state.deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::os"));
    for (const field of ["recipe", "tags"]) {
      assert.ok(res.inputs[field][SECRET_SIG], `input ${field} is secret`);
      assert.ok(res.outputs[field][SECRET_SIG], `output ${field} is secret`);
    }
    assert.strictEqual(typeof res.outputs.region, "string", "names, regions and ids stay plain: they key the images output");
    const imageId = (up.outputs.images.value as Record<string, Record<string, string>>).os["us-east-1"];
    assert.match(imageId, /^ami-/);
    for (const secret of [password, owner]) {
      const plaintext = execFileSync("bash", ["-c", `grep -rl "${secret}" "${t.workDir}" || true`], { encoding: "utf8" }).trim();
      assert.strictEqual(plaintext, "", `plaintext secret in ${plaintext}`);
      assert.ok(!printed.join("").includes(secret), "the engine printed a secret");
    }
    const tags = Object.fromEntries(((await describeImage("us-east-1", imageId))?.Tags ?? []).map((x) => [x.Key, x.Value]));
    assert.strictEqual(tags["ami-factory:sources"], "https://mirror.example.com/debian", "the sources tag carries no credentials");
    await t.stack.destroy({});
    assert.deepStrictEqual(await leftovers(), []);
  });
});
