// The emulator for one describe block: started before its tests, stopped after, its environment
// given to this process (the SDK asserts and seeds through it, and inline programs read it).
import * as fs from "fs";
import * as path from "path";
import { startEmulator, Emulator } from "./emulator";

export interface EmulatorHookOptions {
  /** Load AWS managed IAM policies (the worker's SSM policy). */
  iam?: boolean;
  /** Before each test: clear the recorder and SSM rules, and record every action. */
  recordEachTest?: boolean;
}

/** The serial console of a real Debian 12 boot (test/fixtures/console/capture.sh). */
export const DEBIAN_BOOT_CONSOLE = fs.readFileSync(path.join(__dirname, "../fixtures/console/debian-12-boot.txt"), "utf8");

/**
 * Every image boots unless a test says otherwise (a later, more specific rule): reinstalled after
 * each reset of the emulator's rules, so that launch verification passes by default, as the
 * images a build makes in the emulator are stand-ins for images proven bootable in test/guest.
 */
export async function bootByDefault(emu: Emulator): Promise<void> {
  await emu.scriptBoot({ outcome: "boots", afterPolls: 1, console: DEBIAN_BOOT_CONSOLE });
}

export function useEmulator(opts: EmulatorHookOptions, set: (emu: Emulator) => void): void {
  let emu: Emulator | undefined;
  before(async () => {
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", ...(opts.iam ? { MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } : {}) } });
    Object.assign(process.env, emu.env);
    const reset = emu.reset.bind(emu);
    emu.reset = async (o) => {
      await reset(o);
      await bootByDefault(emu!);
    };
    await bootByDefault(emu);
    set(emu);
  });
  if (opts.recordEachTest) {
    beforeEach(async () => {
      await emu!.reset({ keepMoto: true });
      await emu!.recordActions("*");
    });
  }
  after(async () => emu?.stop());
}
