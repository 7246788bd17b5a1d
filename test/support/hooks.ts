// The emulator for one describe block: started before its tests, stopped after, its environment
// given to this process (the SDK asserts and seeds through it, and inline programs read it).
import { startEmulator, Emulator } from "./emulator";

export interface EmulatorHookOptions {
  /** Load AWS managed IAM policies (the worker's SSM policy). */
  iam?: boolean;
  /** Before each test: clear the recorder and SSM rules, and record every action. */
  recordEachTest?: boolean;
}

export function useEmulator(opts: EmulatorHookOptions, set: (emu: Emulator) => void): void {
  let emu: Emulator | undefined;
  before(async () => {
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", ...(opts.iam ? { MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } : {}) } });
    Object.assign(process.env, emu.env);
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
