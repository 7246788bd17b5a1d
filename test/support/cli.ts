// The plain CLI path as a user has it: a copy of the project in a temporary folder (with its own
// `npm ci`), and `pulumi …` commands run in it with the user's environment: the Node and the
// Pulumi CLI of scripts/setup.sh on PATH (with pulumi-language-nodejs beside the CLI), no
// NODE_PATH, no automation API. Plugin acquisition stays on: a program that asked for a resource
// plugin it does not ship would fail here, offline.
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readToolchain, REPO_ROOT } from "../../scripts/local/toolchain";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliProject {
  /** The copy of the project: Pulumi.yaml, package.json, index.ts, providers/, … and node_modules. */
  dir: string;
  /** The environment every command gets (PULUMI_HOME, passphrase, AWS endpoint, PATH). */
  env: Record<string, string>;
  /** `pulumi <args>` in `dir`; resolves with the exit code, never rejects on a non-zero one. */
  run(args: string[], opts?: { env?: Record<string, string> }): Promise<CliResult>;
  /** Like run, but a non-zero exit throws with the command's output. */
  ok(args: string[], opts?: { env?: Record<string, string> }): Promise<CliResult>;
  remove(): void;
}

/** Copies the repository's files (tracked and new, not ignored) to a temporary folder and runs `npm ci` there. */
export function copyProject(awsEnv: Record<string, string>): CliProject {
  const tc = readToolchain();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ami-factory-cli-"));
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: REPO_ROOT, encoding: "utf8" })
    .split("\0")
    .filter((f) => f && fs.existsSync(path.join(REPO_ROOT, f)));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, f), path.join(dir, f));
  }
  const env: Record<string, string> = {
    HOME: process.env.HOME ?? dir,
    PATH: `${tc.nodeBinDir}:${tc.pulumiBinDir}:/usr/local/bin:/usr/bin:/bin`,
    PULUMI_HOME: path.join(dir, ".pulumi-home"),
    PULUMI_CONFIG_PASSPHRASE: "cli-test-passphrase",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    ...awsEnv,
  };
  execFileSync("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] });

  const run = (args: string[], opts: { env?: Record<string, string> } = {}) =>
    new Promise<CliResult>((resolve, reject) => {
      const child = spawn("pulumi", [...args, "--non-interactive"], { cwd: dir, env: { ...env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code) => {
        if (process.env.AMI_FACTORY_TEST_VERBOSE) process.stdout.write(`$ pulumi ${args.join(" ")}\n${(stdout + stderr).slice(0, 4000)}\n`);
        resolve({ code, stdout, stderr });
      });
    });
  return {
    dir,
    env,
    run,
    async ok(args, opts) {
      const r = await run(args, opts);
      if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r;
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
