// The AWS emulator for tests and the local demo: moto, started through scripts/emulator/moto_server.py,
// which patches the moto gaps that matter to ami-factory and adds a control API under /_ami_factory/.
// Node built-ins only.
//
//   const emu = await startEmulator();
//   Object.assign(process.env, emu.env);          // or pass emu.env to a child process
//   ... run the code under test ...
//   const sent = await emu.calls("RegisterImage"); // what was SENT, flat query parameters
//   await emu.stop();
//
// `mode: "twin"` runs the twin (AMI_FACTORY_EMULATOR=twin): volumes and snapshots hold real bytes in
// a run directory the launcher removes when it stops; the default is the recorded mode, whatever this
// process's environment says, so a test gets the mode it asks for.
//
// The launcher runs with the python from `MOTO_PYTHON` (else the MOTO_PYTHON that scripts/setup.sh
// wrote to .local/toolchain.env, else `python3`). It exits by itself when this process dies: its stdin
// is a pipe from us, and it stops when that closes.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

const repoRoot = path.resolve(__dirname, "..", "..");
const launcher = path.join(repoRoot, "scripts", "emulator", "moto_server.py");

export type SsmStatus = "Success" | "Failed" | "TimedOut" | "Cancelled" | "InProgress" | "Pending" | "Delayed";

/** How SendCommand invocations whose `commands` contain `match` turn out (fixed when the command is sent). */
export interface SsmRule {
  /** Substring of the command's `commands` parameter (lines joined with "\n"); "" matches every command. */
  match: string;
  /** Only commands carrying this guest script (its `# @facts {"script":"NAME"` declaration): "pv2hvm", "surrogate". */
  script?: string;
  /** Default "Failed". "Success" with `output` sets the stdout of successful commands (the facts line). */
  status?: SsmStatus;
  /** StandardOutputContent (AWS keeps the first 24,000 characters; ListCommandInvocations' Output 2,500). */
  output?: string;
  /** StandardErrorContent; default "failed to run commands: exit status 1" for Failed, else "". */
  stderr?: string;
  /** Default 0 for Success, 1 for Failed, -1 otherwise. */
  responseCode?: number;
  statusDetails?: string;
  /** Only these instances' invocations. */
  instanceIds?: string[];
  /** Apply to this many commands at most. */
  times?: number;
}

/**
 * How instances of an image boot (DescribeInstanceStatus, GetConsoleOutput). The most recent rule
 * that matches an instance's image wins; without one an instance behaves as moto makes it (both
 * checks ok at once, a console that never shows userspace).
 */
export interface BootRule {
  /** boots: both checks ok; panics: instance check impaired; impaired: instance check impaired, no panic on the console; never: both initializing. */
  outcome: "boots" | "panics" | "impaired" | "never";
  /** DescribeInstanceStatus calls naming the instance before the outcome shows (checks initializing, console empty until then). Default 1. */
  afterPolls?: number;
  /** Only instances of this image. */
  imageId?: string;
  /** Only instances of images whose name contains this. */
  imageName?: string;
  /** The serial console once the outcome shows. Default: a short one of the outcome's kind. */
  console?: string;
  /** The first N DescribeInstanceStatus / GetConsoleOutput calls naming the instance fail with InvalidInstanceID.NotFound (eventual consistency). Default 0. */
  notVisibleFor?: number;
}

export interface RecordedCall {
  action: string;
  /** X-Amz-Target for JSON-protocol calls ("AmazonSSM.SendCommand"), else null. */
  target: string | null;
  service: string | null;
  region: string | null;
  /** Flat query parameters, or the parsed JSON body. */
  params: Record<string, unknown>;
}

export interface Emulator {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_EC2_METADATA_DISABLED. */
  env: Record<string, string>;
  /** The parameters of each recorded call of `action` ("RegisterImage", "SendCommand" or "AmazonSSM.SendCommand"), oldest first. */
  calls<T = Record<string, string>>(action: string, opts?: { region?: string }): Promise<T[]>;
  /** Every recorded call with its action, service and region. */
  allCalls(): Promise<RecordedCall[]>;
  /** Which actions to record: a list, "*" for all, or null for the default (all but Describe*, Get*, List*). */
  recordActions(actions: string[] | "*" | null): Promise<void>;
  failSsmCommands(rule: SsmRule): Promise<void>;
  clearSsmRules(): Promise<void>;
  /** Make an instance or image look instance-store-backed (or EBS-backed again). */
  setRootDeviceType(region: string, id: string, type: "ebs" | "instance-store"): Promise<void>;
  setProductCodes(region: string, imageId: string, productCodes: { ProductCodeId: string; ProductCodeType?: string }[]): Promise<void>;
  /** Put an image in a state (moto makes every image "available" at once): "pending", "failed" with a reason, ... */
  setImageState(region: string, imageId: string, state: string, stateReason?: { Code: string; Message: string }): Promise<void>;
  /** The next `runs` RunInstances naming an instance profile fail with InvalidParameterValue "Invalid IAM Instance Profile name", as while a new profile propagates. */
  instanceProfileNotReady(runs: number): Promise<void>;
  /** The next `sends` SendCommand calls (to these instances, or any) fail with InvalidInstanceId, as before the SSM agent registers. */
  ssmAgentNotRegistered(sends: number, instanceIds?: string[]): Promise<void>;
  /** The next `times` (default 1) calls of an EC2 action (in `region`, or any) fail with the error `code`, before moto sees them. */
  failCalls(rule: { action: string; code: string; region?: string; message?: string; times?: number }): Promise<void>;
  /** Script how instances of an image boot (see BootRule). */
  scriptBoot(rule: BootRule): Promise<void>;
  /** Clean slate: moto's state (/moto-api/reset) and the emulator's recorder and rules. `{ keepMoto: true }` clears only the latter. */
  reset(opts?: { keepMoto?: boolean }): Promise<void>;
  /** Any control endpoint: control("GET", "health"). Throws on a non-2xx answer. */
  control<T = unknown>(method: string, pathUnderPrefix: string, body?: unknown): Promise<T>;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). Safe to call twice. */
  stop(): Promise<void>;
  /** The launcher's process id. */
  pid: number;
  /** How long start-up took, in milliseconds. */
  startupMs: number;
}

export interface StartOptions {
  /** The emulator's mode (AMI_FACTORY_EMULATOR): "recorded" (default: SSM answers and consoles are scripted) or "twin" (volumes and snapshots are files; needs qemu-img). */
  mode?: "recorded" | "twin";
  /** MOTO_AMIS_PATH: a JSON list of images moto loads instead of its own. */
  amisPath?: string;
  /** Extra environment for the launcher (e.g. MOTO_EC2_LOAD_DEFAULT_AMIS: "false"). */
  env?: Record<string, string>;
  /** The python that has moto; see the header. */
  python?: string;
  /** Default 60 s. */
  startTimeoutMs?: number;
  /** Pass the launcher's stderr through (request logs with verbose). */
  verbose?: boolean;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Belt and braces to the stdin watchdog: a normal exit of this process kills what is left.
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

function pythonFromToolchain(): string | undefined {
  try {
    const text = fs.readFileSync(path.join(repoRoot, ".local", "toolchain.env"), "utf8");
    const m = /^MOTO_PYTHON=(.+)$/m.exec(text);
    return m ? m[1].trim() : undefined;
  } catch {
    return undefined;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("could not pick a free port"))));
    });
  });
}

interface Launched {
  child: ChildProcess;
  endpoint: string;
  stderrTail: () => string;
}

async function launch(python: string, port: number, env: NodeJS.ProcessEnv, timeoutMs: number, verbose: boolean): Promise<Launched> {
  const args = [launcher, "--port", String(port), "--host", "127.0.0.1", "--exit-on-stdin-eof"];
  if (verbose) args.push("--verbose");
  const child = spawn(python, args, { env, stdio: ["pipe", "pipe", "pipe"], cwd: repoRoot });
  live.add(child);
  child.on("exit", () => live.delete(child));
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    stderr = (stderr + d).slice(-8000);
    if (verbose) process.stderr.write(d);
  });
  const stderrTail = () => stderr.trim().split("\n").slice(-20).join("\n");
  return new Promise<Launched>((resolve, reject) => {
    let out = "";
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${why}\n${stderrTail()}`));
    };
    const timer = setTimeout(() => fail(`the moto launcher did not say ready within ${timeoutMs / 1000}s (${python} ${launcher})`), timeoutMs);
    child.on("error", (e) => fail(`could not run ${python}: ${e.message} (set MOTO_PYTHON to a python with moto[server])`));
    child.on("exit", (code, signal) => fail(`the moto launcher exited (${signal ?? `code ${code}`}) before it was ready`));
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      out += d;
      const m = /^ready (http:\/\/\S+)$/m.exec(out);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve({ child, endpoint: m[1], stderrTail });
      }
    });
  });
}

export async function startEmulator(opts: StartOptions = {}): Promise<Emulator> {
  installExitHook();
  const python = opts.python ?? process.env.MOTO_PYTHON ?? pythonFromToolchain() ?? "python3";
  const env: NodeJS.ProcessEnv = { ...process.env, AMI_FACTORY_EMULATOR: opts.mode ?? "recorded", ...(opts.env ?? {}) };
  if (opts.mode) env.AMI_FACTORY_EMULATOR = opts.mode;
  if (opts.amisPath) env.MOTO_AMIS_PATH = path.resolve(opts.amisPath);
  // The launcher must not talk to a real AWS endpoint or proxy on our behalf.
  delete env.AWS_ENDPOINT_URL;
  const t0 = Date.now();
  let launched: Launched | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && !launched; attempt++) {
    try {
      launched = await launch(python, await freePort(), env, opts.startTimeoutMs ?? 60_000, opts.verbose ?? false);
    } catch (e) {
      lastError = e;
      // Someone took the port between our pick and the bind: try another one.
      if (!/Address already in use|EADDRINUSE/i.test(String((e as Error).message))) throw e;
    }
  }
  if (!launched) throw lastError;
  const { child, endpoint } = launched;
  // Nothing of ours keeps the test process alive; the watchdog ends the launcher when we go.
  child.unref();
  for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();

  const control = async <T = unknown>(method: string, p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${endpoint}/_ami_factory/${p.replace(/^\/+/, "")}`, {
      method,
      headers: body === undefined ? undefined : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`emulator ${method} /_ami_factory/${p}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    if (!stopping) {
      stopping = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
        child.once("exit", () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill("SIGTERM");
        child.stdin?.end();
      });
    }
    return stopping;
  };

  return {
    endpoint,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_REGION: "us-east-1",
      AWS_EC2_METADATA_DISABLED: "true",
    },
    pid: child.pid!,
    startupMs: Date.now() - t0,
    calls: <T = Record<string, string>>(action: string, o?: { region?: string }) =>
      control<T[]>("GET", `calls?action=${encodeURIComponent(action)}${o?.region ? `&region=${encodeURIComponent(o.region)}` : ""}`),
    allCalls: () => control<RecordedCall[]>("GET", "calls"),
    recordActions: async (actions) => {
      await control("POST", "calls/actions", { actions });
    },
    failSsmCommands: async (rule) => {
      await control("POST", "ssm/fail", rule);
    },
    failCalls: async (rule) => {
      await control("POST", "calls/fail", rule);
    },
    clearSsmRules: async () => {
      await control("DELETE", "ssm/fail");
    },
    setRootDeviceType: async (region, id, type) => {
      await control("POST", "ec2/root-device-type", { region, id, type });
    },
    setProductCodes: async (region, imageId, productCodes) => {
      await control("POST", "ec2/product-codes", { region, imageId, productCodes });
    },
    setImageState: async (region, imageId, state, stateReason) => {
      await control("POST", "ec2/image-state", { region, imageId, state, stateReason });
    },
    instanceProfileNotReady: async (runs) => {
      await control("POST", "ec2/instance-profile-not-ready", { runs });
    },
    ssmAgentNotRegistered: async (sends, instanceIds) => {
      await control("POST", "ssm/unregistered", { sends, instanceIds });
    },
    scriptBoot: async (rule) => {
      await control("POST", "ec2/boot", rule);
    },
    reset: async (o) => {
      if (!o?.keepMoto) {
        const res = await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
        if (!res.ok) throw new Error(`emulator POST /moto-api/reset: HTTP ${res.status}`);
        await res.text();
      }
      await control("POST", "reset");
    },
    control,
    stop,
  };
}
