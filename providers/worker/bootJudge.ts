// One look at a test instance during launch verification, judged: passed, failed for good, or
// still to wait for. Pure: the verification (verify.ts) polls, this decides. The end of the boot is
// what counts: only a final console signal (kernel panic, GRUB rescue prompt, an emergency shell),
// a dead instance or an impaired status check fail before the deadline; any other failure signal
// is waited out, and fails the boot only if it is still the last thing on the console then.
import type { ConsoleVerdict } from "./console";

export interface Poll {
  console: ConsoleVerdict;
  /** The instance state (DescribeInstanceStatus), absent while the instance is not visible yet. */
  state?: string;
  /** Why the instance left running (DescribeInstances StateReason), when it did. */
  stateReason?: string;
  /** The status checks: "ok", "impaired", "initializing", ... ("unknown" when not reported yet). */
  system: string;
  instance: string;
}

export type Judgement = { state: "passed"; line: string } | { state: "failed"; reason: string } | { state: "waiting"; reason: string };

/** Whether the instance has left pending/running (stopping, stopped, shutting-down, terminated). */
export function isDead(state: string | undefined): boolean {
  return !!state && state !== "pending" && state !== "running";
}

export function judgePoll(p: Poll): Judgement {
  const c = p.console;
  if (c.state === "failed" && c.final) return { state: "failed", reason: `the console shows ${c.reason}: ${c.line}` };
  if (isDead(p.state)) return { state: "failed", reason: `the instance is ${p.state}${p.stateReason ? ` (${p.stateReason})` : ""}` };
  if (p.system === "impaired" || p.instance === "impaired") return { state: "failed", reason: `status checks: system ${p.system}, instance ${p.instance}` };
  const checks = `status checks: system ${p.system}, instance ${p.instance}`;
  if (c.state === "booted") {
    if (p.system === "ok" && p.instance === "ok") return { state: "passed", line: c.line };
    return { state: "waiting", reason: `${checks}; boot signal seen: ${c.line}` };
  }
  // Not final: what follows may still be a boot. If nothing does, the deadline's error names it.
  if (c.state === "failed") return { state: "waiting", reason: `${checks}; the console last shows ${c.reason} (not final unless nothing follows): ${c.line}` };
  return { state: "waiting", reason: `${checks}; boot signal not seen yet` };
}
