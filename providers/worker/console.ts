// Reading an instance's serial console (GetConsoleOutput): did the guest reach userspace, or did
// its boot fail? Pure: tested against real console texts in test/fixtures/console/.

/**
 * What a console shows: still booting, userspace reached, or a failure signal. A final failure
 * (kernel panic, GRUB rescue prompt, an emergency shell) is a boot that cannot go on; any other
 * failure signal (a GRUB `error:` line, dracut or the initramfs complaining) may be followed by a
 * boot that works, so it fails a boot only if it is still the last thing on the console at the end.
 */
export type ConsoleVerdict = { state: "booting" } | { state: "booted"; line: string } | { state: "failed"; line: string; reason: string; final: boolean };

/**
 * Userspace reached: a getty's login prompt ("debian login: ", often followed on the same line by
 * kernel messages), systemd reaching the multi-user target (old and new wording), cloud-init's
 * final line ("Cloud-init v. 23.1 finished at ...").
 */
export const DEFAULT_BOOT_SIGNAL = /^[\w.-]+ login: |Reached target\b.*Multi-User System|^Cloud-init v\. \S+ finished at /m;

/** Failure signals, each with what it means and whether the boot can still go on after it. */
export const FAILURE_SIGNALS: readonly { pattern: RegExp; reason: string; final: boolean; beforeKernel?: boolean }[] = [
  { pattern: /Kernel panic - not syncing|^Kernel panic\b/m, reason: "kernel panic", final: true },
  // The kernel panics right after this line; the panic is what is final.
  { pattern: /VFS: Unable to mount root fs/, reason: "the kernel cannot mount the root file system", final: false },
  { pattern: /dracut: FATAL|dracut-initqueue\[\d+\]: Warning: Could not boot/, reason: "dracut (initramfs) gave up", final: false },
  // initramfs-tools (Debian, Ubuntu): it waits for the root device, then drops to its shell.
  { pattern: /Gave up waiting for root (file system )?device/, reason: "the initramfs did not find the root device", final: false },
  { pattern: /ALERT! .* does not exist\. +Dropping to a shell!/, reason: "the initramfs did not find the root device (emergency shell)", final: true },
  { pattern: /You are in emergency mode|Entering emergency mode/, reason: "systemd emergency mode", final: true },
  // GRUB prints its errors at the start of a line, in lower case ("error: no such device: ..."),
  // and often boots on after them; its rescue prompt is the end. Only where GRUB runs: before any
  // kernel line, or after a new boot began (firmware, GRUB's menu); else it is userspace's (beforeKernel).
  { pattern: /^error: .+/m, reason: "GRUB error", final: false, beforeKernel: true },
  { pattern: /^grub rescue> *$/m, reason: "GRUB rescue prompt", final: true },
];

/**
 * A kernel line: its banner or any timestamped message. Any, not only the first (0.000000): the
 * console is the last 64 KB (GetConsoleOutput), where a long boot's first lines are gone.
 */
const KERNEL_LINE = /Linux version |^\[ *\d+\.\d{6}\]/gm;
/** A boot beginning (firmware, GRUB's menu or its "Booting" line): GRUB may speak again after it. */
const BOOT_START = /SeaBIOS|Booting from (Hard Disk|ROM)|GNU GRUB|^Booting `|BdsDxe/gm;

/** Start indexes of the lines matching `pattern` (global). */
function lineStarts(text: string, pattern: RegExp): number[] {
  return [...text.matchAll(pattern)].map((m) => text.lastIndexOf("\n", (m.index ?? 0) - 1) + 1);
}

/** The last match of `pattern` that GRUB printed: no kernel line before it, or a new boot since the last. */
function lastGrubMatch(text: string, pattern: RegExp): Hit | undefined {
  const kernels = lineStarts(text, KERNEL_LINE);
  const boots = lineStarts(text, BOOT_START);
  const lastBefore = (xs: number[], i: number) => xs.filter((x) => x < i).pop() ?? -1;
  const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g");
  let last: Hit | undefined;
  for (const m of text.matchAll(global)) {
    if (m.index === undefined || m[0].length === 0) continue;
    const start = text.lastIndexOf("\n", m.index - 1) + 1;
    const kernel = lastBefore(kernels, start);
    if (kernel === -1 || lastBefore(boots, start) > kernel) last = { index: start, line: lineAt(text, m.index, m[0].length) };
  }
  return last;
}

/** The console as text lines: no carriage returns, no terminal escape sequences, no NULs. */
export function cleanConsole(raw: string): string {
  return raw
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "")
    .replace(/\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]/g, "")
    .replace(/\r\n?/g, "\n")
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, "");
}

interface Hit {
  /** Where the matched line starts: matches on one line count as one place. */
  index: number;
  line: string;
}

function lastMatch(text: string, pattern: RegExp): Hit | undefined {
  const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g");
  let last: Hit | undefined;
  for (const m of text.matchAll(global)) {
    if (m.index === undefined) continue;
    last = { index: text.lastIndexOf("\n", m.index - 1) + 1, line: lineAt(text, m.index, m[0].length) };
    if (m[0].length === 0) break; // an empty match would repeat forever
  }
  return last;
}

/** The line of a match, without the kernel messages that the console interleaved after it. */
function lineAt(text: string, index: number, length: number): string {
  const start = text.lastIndexOf("\n", index - 1) + 1;
  const end = text.indexOf("\n", index);
  const line = text.slice(start, end === -1 ? undefined : end);
  const matchEnd = index + length - start;
  const kernel = line.slice(matchEnd).search(/\[\s*\d+\.\d+\]/);
  return (kernel === -1 ? line : line.slice(0, matchEnd + kernel)).trim();
}

/**
 * The verdict on a console text. Whatever comes last wins: a panic after a login prompt is a failed
 * boot; a login prompt after a failure (a reboot that worked) is a boot. On one line, a final
 * signal names it, else the first listed ("Kernel panic - not syncing: VFS: Unable to mount root fs").
 */
export function classifyConsole(raw: string, bootSignal: RegExp = DEFAULT_BOOT_SIGNAL): ConsoleVerdict {
  const text = cleanConsole(raw);
  const booted = lastMatch(text, bootSignal);
  let failed: (Hit & { reason: string; final: boolean }) | undefined;
  for (const f of FAILURE_SIGNALS) {
    const hit = f.beforeKernel ? lastGrubMatch(text, f.pattern) : lastMatch(text, f.pattern);
    if (hit && (!failed || hit.index > failed.index || (hit.index === failed.index && f.final && !failed.final))) failed = { ...hit, reason: f.reason, final: f.final };
  }
  if (failed && (!booted || failed.index > booted.index)) return { state: "failed", line: failed.line, reason: failed.reason, final: failed.final };
  if (booted) return { state: "booted", line: booted.line };
  return { state: "booting" };
}

/** The last lines of a console, cleaned, for an error message. */
export function consoleTail(raw: string, lines = 25): string {
  const text = cleanConsole(raw).trimEnd();
  return text ? text.split("\n").slice(-lines).join("\n") : "(the console is empty)";
}

/** A user's bootSignal as a multi-line regex, or why it is not one. */
export function bootSignalRegex(source: string): RegExp | string {
  try {
    const re = new RegExp(source, "m");
    if (re.test("")) return "it matches an empty console, so every boot would pass";
    return re;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
