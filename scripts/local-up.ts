// `npm start`: the main job on the local default. Starts the AWS emulator (moto, patched) on a free
// 127.0.0.1 port, runs `pulumi up` of this program with Pulumi.local.yaml on a file backend, then
// `pulumi preview` (which must report no changes), prints the stack outputs and stops the emulator.
import * as fs from "fs";
import * as path from "path";
import { RunInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { startEmulator } from "./emulator/start";
import { localStack } from "./local/engine";
import { readToolchain, REPO_ROOT } from "./local/toolchain";

const say = (s: string) => console.log(`[npm start] ${s}`);

async function main(): Promise<void> {
  const tc = readToolchain();
  say(`pulumi ${tc.pulumiVersion} (${tc.pulumiCli}), moto via ${tc.motoPython}`);
  const emu = await startEmulator({
    amisPath: path.join(REPO_ROOT, "scripts/emulator/demo-amis.json"),
    env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", MOTO_IAM_LOAD_MANAGED_POLICIES: "true" },
  });
  try {
    say(`AWS emulator at ${emu.endpoint} (started in ${emu.startupMs} ms)`);
    Object.assign(process.env, emu.env);
    // Seeds: the demo images come from demo-amis.json; the instance the alarm watches is launched here.
    const run = await new EC2Client({ region: "us-east-1" }).send(new RunInstancesCommand({ ImageId: "ami-0a1b2c3d4e5f60001", MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }));
    const instanceId = run.Instances![0].InstanceId!;
    // moto cannot run a guest script on a worker: the emulator answers the pv2hvm and surrogate SSM
    // commands, each recognised by the script it carries (its "# @facts" identity), with the facts
    // line a real run of that script prints (the scripts themselves are proven by booting their
    // results in qemu: npm test).
    for (const script of ["pv2hvm", "surrogate"]) {
      const facts = fs.readFileSync(path.join(REPO_ROOT, "scripts/emulator", `demo-${script}-facts.json`), "utf8").trim();
      await emu.failSsmCommands({ match: "", script, status: "Success", output: `${facts}\n` });
    }
    say("the guest steps of the conversion and the build are SIMULATED here: the emulator answers them with recorded facts lines");
    // Launch verification runs as on EC2; the emulator is told how instances of the new images boot:
    // both status checks ok after a few polls, and the serial console of a real Debian 12 boot.
    const bootConsole = fs.readFileSync(path.join(REPO_ROOT, "test/fixtures/console/debian-12-boot.txt"), "utf8");
    await emu.scriptBoot({ outcome: "boots", afterPolls: 2, console: bootConsole });
    say("the test launches of the new images are SIMULATED too: the emulator shows a recorded Debian 12 boot console");

    // The emulator starts empty each time: so does the local stack's state.
    const workDir = path.join(REPO_ROOT, ".local/demo");
    fs.rmSync(workDir, { recursive: true, force: true });
    const stack = await localStack({ stackName: "local", workDir, env: emu.env, configFile: path.join(REPO_ROOT, "Pulumi.local.yaml") });
    await stack.setConfig("ami-factory:recoveryAlarms[0].instanceId", { value: instanceId }, true);

    say("pulumi up");
    const up = await stack.up({ onOutput: (s) => process.stdout.write(s) });
    say("pulumi preview (must show no changes)");
    const preview = await stack.preview({ diff: true, onOutput: (s) => process.stdout.write(s) });
    const changes = Object.entries(preview.changeSummary).filter(([op, n]) => op !== "same" && n > 0);
    if (changes.length) throw new Error(`the preview after up wants changes: ${JSON.stringify(preview.changeSummary)}`);
    say("stack outputs:");
    for (const [name, out] of Object.entries(up.outputs)) console.log(`${name}: ${JSON.stringify(out.value, null, 2)}`);
  } finally {
    await emu.stop();
  }
}

main().catch((e) => {
  console.error(`[npm start] failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
