// The emulator holds SendCommand to AWS's size limit (64 KB of parameters), so that a guest script
// that grew past it fails here as it would on AWS; the commands ami-factory sends fit.
import * as assert from "assert";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { ec2 } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { bundleGuestScript } from "../../providers/worker/guestScript";
import { commandLines } from "../../providers/worker/command";

describe("SendCommand size on the emulator", function () {
  useEmulator({}, (_e: Emulator) => undefined);

  async function send(commands: string[]) {
    const run = await ec2().send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }));
    const ssm = new SSMClient({ region: "us-east-1", maxAttempts: 1 });
    return ssm.send(new SendCommandCommand({ InstanceIds: [run.Instances![0].InstanceId!], DocumentName: "AWS-RunShellScript", Parameters: { commands } }));
  }

  it("refuses a command over 64 KB, as the surrogate bundle shipped uncompressed would be", async () => {
    const raw = bundleGuestScript("surrogate.sh").content.split("\n");
    await assert.rejects(send(raw), (e: Error) => {
      assert.strictEqual(e.name, "InvalidParameters");
      assert.match(e.message, /at most 65536 are allowed/);
      return true;
    });
  });

  it("takes the compressed surrogate command", async () => {
    const out = await send(commandLines({ name: "surrogate", script: bundleGuestScript("surrogate.sh").content, args: ["--target", "vol-1"] }, {}));
    assert.match(out.Command!.CommandId!, /^[0-9a-f-]{36}$/);
  });
});
