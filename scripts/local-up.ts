// `npm start`: the main job on the local default. Starts the AWS emulator (moto, patched) on a free
// 127.0.0.1 port, runs `pulumi up` of this program on a file backend, then `pulumi preview` (which
// must report no changes), prints the stack outputs and stops the emulator.
//
//   npm start                    the twin (AMI_FACTORY_EMULATOR=twin, the default): a real PV image
//                                imported and converted, workers and test launches are qemu VMs
//                                (scripts/local/twinUp.ts, Pulumi.local-twin.yaml)
//   npm start -- --keep          the same, the emulator left running for a look at the images' bytes
//   npm run start:recorded       the RECORDED mode (also `npm start -- --recorded`, or
//                                AMI_FACTORY_EMULATOR=recorded): Pulumi.local.yaml against recorded
//                                guest facts and boot consoles, about a minute, nothing real booted
import * as fs from "fs";
import * as path from "path";
import { RunInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { startEmulator } from "./emulator/start";
import { localStack } from "./local/engine";
import { readToolchain, REPO_ROOT } from "./local/toolchain";
import { startMode } from "./local/startMode";
import { twinUp } from "./local/twinUp";

const say = (s: string) => console.log(`[npm start] ${s}`);

async function main(): Promise<void> {
  const tc = readToolchain();
  say(`pulumi ${tc.pulumiVersion} (${tc.pulumiCli}), moto via ${tc.motoPython}`);
  const argv = process.argv.slice(2);
  const mode = startMode(argv, process.env);
  if (mode === "twin") {
    say("TWIN mode (the default): the real job, every worker and test launch a qemu VM (TCG: minutes); `npm run start:recorded` for the quick recorded run");
    return twinUp(say, { keep: argv.includes("--keep") });
  }
  if (argv.includes("--keep")) throw new Error("--keep is for the twin: the recorded mode has no bytes to look at");
  say("RECORDED mode: guest steps and test launches answered from recordings (AMI_FACTORY_EMULATOR=recorded); plain `npm start` runs the real job on the twin");
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

if (require.main === module) main().catch((e) => {
  const message = e instanceof Error ? e.message : String(e);
  // The automation API's CommandError starts "code: N" and repeats pulumi's whole output: it is above.
  console.error(`[npm start] failed: ${/^code: -?\d+/.test(message) ? "pulumi failed: its errors are above" : message}`);
  process.exit(1);
});
