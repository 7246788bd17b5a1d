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
import { seedPvImage } from "../support/aws";

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
