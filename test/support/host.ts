// Running commands and handling loop devices on this machine, for the guest-script tests.
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Every file under dir (none when it does not exist), depth first. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Run {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    encoding: "utf8",
    env: { ...process.env, ...opts.env },
    input: opts.input,
    cwd: opts.cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** run, or throw with the command's exit status and the end of its stderr. */
export function must(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

export function tail(text: string, n = 40): string {
  return text.split("\n").slice(-n).join("\n");
}

/** Fail (never skip) when the test cannot run here, saying how to make it run. */
export function requireRootAndTools(what: string, tools: string[], files: [path: string, pkg: string][] = []): void {
  if (process.getuid && process.getuid() !== 0) throw new Error(`${what} needs root (loop devices, chroot, grub-install): run mocha as root, as CI does`);
  const missing = tools.filter((t) => run("sh", ["-c", `command -v ${t}`]).status !== 0);
  if (missing.length) throw new Error(`missing tools ${missing.join(", ")}: run scripts/install-guest-deps.sh as root`);
  const fs = require("fs") as typeof import("fs");
  for (const [p, pkg] of files) if (!fs.existsSync(p)) throw new Error(`${p} missing (package ${pkg}): run scripts/install-guest-deps.sh as root`);
}

/** Loop devices a test attached, detached (with their partition mappings) in reverse. */
export class Loops {
  private devs: string[] = [];
  attach(file: string, opts: { readOnly?: boolean; offset?: number } = {}): string {
    const args = ["-f", "--show"];
    if (opts.readOnly) args.push("-r");
    if (opts.offset) args.push("-o", String(opts.offset));
    const dev = must("losetup", [...args, file]).trim();
    this.devs.push(dev);
    return dev;
  }
  detach(dev: string): void {
    run("partx", ["-d", dev]);
    run("losetup", ["-d", dev]);
    this.devs = this.devs.filter((d) => d !== dev);
  }
  detachAll(): void {
    for (const d of [...this.devs].reverse()) this.detach(d);
  }
}

/**
 * Partitions the kernel still shows for a disk, and mounts of it or them: what a guest script
 * left behind. Only this disk's: other builds may run on the same machine at the same time.
 */
export function leftovers(dev: string): string[] {
  const parts = must("lsblk", ["-lnpo", "NAME,TYPE", dev]).split("\n").filter((l) => l.endsWith(" part"));
  const mounts = must("findmnt", ["-rn", "-o", "SOURCE,TARGET"])
    .split("\n")
    .filter((l) => {
      const source = l.split(" ")[0];
      return source === dev || new RegExp(`^${dev}p\\d+$`).test(source);
    });
  return [...parts, ...mounts];
}
