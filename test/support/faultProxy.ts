// A fault-injecting HTTP proxy between the AWS SDK (in the dynamic-provider process: point the
// stack's AWS_ENDPOINT_URL at `proxy.url`) and the emulator. Node built-ins only.
//
//   const proxy = await startFaultProxy(emu.endpoint, { rate: 0.2, seed: 42 });
//   const t = await testStack({ ...emu, env: { ...emu.env, AWS_ENDPOINT_URL: proxy.url } }, config);
//   ... pulumi up ...
//   proxy.injected()        // { total, byAction: { CopyImage: { before: 1, after: 2 } }, ... }
//   await proxy.stop();
//
// On a share `rate` of AWS calls it answers with a fault, in one of two modes:
//   before  the request never reaches the emulator: a throttle (HTTP 503 with RequestLimitExceeded
//           for EC2, Throttling for IAM/CloudWatch/STS query XML, ThrottlingException and
//           x-amzn-ErrorType for JSON-protocol services such as SSM) or HTTP 500 InternalError (EC2)
//           / InternalFailure (the others);
//   after   the emulator did the work and its answer is replaced by an HTTP 500: the SDK retries a
//           call that already happened, which is what tests idempotency (ClientTokens, adopting
//           what exists, tolerating "already exists" / "not found").
// The emulator's control API (/_ami_factory/, /moto-api/) is never faulted. Which calls fail is
// decided by a PRNG seeded with (seed, action, how many calls of that action came before), so a run
// is deterministic per action even when calls of different actions interleave differently.
import * as http from "http";
import type { AddressInfo } from "net";
import * as zlib from "zlib";

export type FaultMode = "before" | "after";

export interface FaultProxyOptions {
  /** Share of calls that fail, 0..1. Default 0.2. */
  rate?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
  /** Which modes to use (picked at random per fault). Default both. */
  modes?: FaultMode[];
  /** Share of `before` faults that are throttles (the rest are 500s). Default 0.5. */
  throttleShare?: number;
  /** Actions ("CopyImage", "SendCommand") never faulted. Default none. */
  excludeActions?: string[];
  /** Only these actions are faulted. Default all. */
  onlyActions?: string[];
  /**
   * The first call of each matching action (since the start or the last reset) is forwarded and its
   * answer lost, whatever the rate: every write is proven to survive its own retry. Default none.
   */
  loseFirstAnswer?: RegExp;
}

export interface InjectedFault {
  action: string;
  service: string;
  mode: FaultMode;
  kind: "throttle" | "internal";
  status: number;
}

export interface FaultCounts {
  total: number;
  before: number;
  after: number;
  byAction: Record<string, { before: number; after: number }>;
  /** Calls seen per action (faulted or not). */
  calls: Record<string, number>;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  /** What was injected since the start (or the last reset). */
  injected(): FaultCounts;
  /** Every injected fault, oldest first. */
  log(): InjectedFault[];
  /** Change the fault rate from now on (0 turns faults off). */
  setRate(rate: number): void;
  /** Forget counts, the log and which first answers were lost (the PRNG sequence continues). */
  reset(): void;
  stop(): Promise<void>;
}

const CONTROL_PATHS = ["/_ami_factory/", "/moto-api/"];

/** mulberry32: a small, good-enough PRNG for test decisions. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string, to seed one decision. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

interface Call {
  action: string;
  service: string;
  /** JSON protocol (X-Amz-Target), else query XML. */
  json: boolean;
}

/** The action and service of an AWS call: X-Amz-Target for JSON protocol, else the query's Action. */
export function describeCall(headers: http.IncomingHttpHeaders, url: string, body: string): Call {
  const auth = String(headers.authorization ?? "");
  const scope = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(auth);
  const service = scope ? scope[1] : "unknown";
  const target = headers["x-amz-target"];
  if (target) return { action: String(target).split(".").pop()!, service, json: true };
  const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
  const params = new URLSearchParams(String(headers["content-type"] ?? "").includes("x-www-form-urlencoded") ? body : query);
  return { action: params.get("Action") ?? "unknown", service, json: false };
}

function requestId(): string {
  return `fault-${Math.random().toString(16).slice(2, 10)}-${Date.now().toString(16)}`;
}

/** The error response AWS sends for this protocol and service. */
export function faultResponse(call: Call, kind: "throttle" | "internal"): { status: number; headers: Record<string, string>; body: string } {
  const id = requestId();
  if (call.json) {
    const type = kind === "throttle" ? "ThrottlingException" : "InternalFailure";
    const message = kind === "throttle" ? "Rate exceeded" : "An internal error occurred (injected by the fault proxy)";
    return {
      status: kind === "throttle" ? 503 : 500,
      headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": type, "x-amzn-requestid": id },
      body: JSON.stringify({ __type: type, message }),
    };
  }
  if (call.service === "ec2") {
    const code = kind === "throttle" ? "RequestLimitExceeded" : "InternalError";
    const message = kind === "throttle" ? "Request limit exceeded." : "An internal error has occurred (injected by the fault proxy)";
    return {
      status: kind === "throttle" ? 503 : 500,
      headers: { "content-type": "text/xml;charset=UTF-8" },
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${id}</RequestID></Response>`,
    };
  }
  // awsQuery services (IAM, CloudWatch, STS).
  const code = kind === "throttle" ? "Throttling" : "InternalFailure";
  const message = kind === "throttle" ? "Rate exceeded" : "An internal error occurred (injected by the fault proxy)";
  return {
    status: kind === "throttle" ? 503 : 500,
    headers: { "content-type": "text/xml", "x-amzn-requestid": id },
    body: `<ErrorResponse xmlns="https://${call.service}.amazonaws.com/doc/"><Error><Type>${kind === "throttle" ? "Sender" : "Receiver"}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`,
  };
}

export async function startFaultProxy(target: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const seed = opts.seed ?? 1;
  let rate = opts.rate ?? 0.2;
  const modes = opts.modes ?? ["before", "after"];
  const throttleShare = opts.throttleShare ?? 0.5;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const seen: Record<string, number> = {};
  let faults: InjectedFault[] = [];
  let calls: Record<string, number> = {};
  let firstLost = new Set<string>();

  /** The fault for the n-th call of an action, or undefined. */
  const decide = (call: Call): { mode: FaultMode; kind: "throttle" | "internal" } | undefined => {
    const n = (seen[call.action] = (seen[call.action] ?? 0) + 1);
    calls[call.action] = (calls[call.action] ?? 0) + 1;
    if (opts.excludeActions?.includes(call.action)) return undefined;
    if (opts.onlyActions && !opts.onlyActions.includes(call.action)) return undefined;
    if (opts.loseFirstAnswer?.test(call.action) && !firstLost.has(call.action)) {
      firstLost.add(call.action);
      return { mode: "after", kind: "internal" };
    }
    const random = mulberry32(hash(`${seed}/${call.action}/${n}`));
    if (random() >= rate) return undefined;
    const mode = modes[Math.floor(random() * modes.length)];
    const kind = mode === "before" && random() < throttleShare ? "throttle" : "internal";
    return { mode, kind };
  };

  const send = (res: http.ServerResponse, r: { status: number; headers: Record<string, string>; body: string }) => {
    res.writeHead(r.status, { ...r.headers, "content-length": String(Buffer.byteLength(r.body)) });
    res.end(r.body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? "/";
      const control = CONTROL_PATHS.some((p) => url.startsWith(p));
      const text = req.headers["content-encoding"] === "gzip" ? zlib.gunzipSync(body).toString("utf8") : body.toString("utf8");
      const call = control ? undefined : describeCall(req.headers, url, text);
      const fault = call ? decide(call) : undefined;
      if (call && fault?.mode === "before") {
        const answer = faultResponse(call, fault.kind);
        faults.push({ action: call.action, service: call.service, mode: "before", kind: fault.kind, status: answer.status });
        return send(res, answer);
      }
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: url, headers: { ...req.headers, "content-length": String(body.length) }, agent },
        (up) => {
          const parts: Buffer[] = [];
          up.on("data", (c: Buffer) => parts.push(c));
          up.on("end", () => {
            if (call && fault?.mode === "after") {
              // The work is done; the answer is lost.
              const answer = faultResponse(call, "internal");
              faults.push({ action: call.action, service: call.service, mode: "after", kind: "internal", status: answer.status });
              return send(res, answer);
            }
            const headers = { ...up.headers };
            delete headers["transfer-encoding"];
            const data = Buffer.concat(parts);
            res.writeHead(up.statusCode ?? 502, { ...headers, "content-length": String(data.length) });
            res.end(data);
          });
          up.on("error", () => res.destroy());
        },
      );
      forward.on("error", (e) => {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`fault proxy: the emulator did not answer: ${e.message}`);
      });
      forward.end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  // Never keeps the test process alive by itself.
  server.unref();
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    injected: () => {
      const byAction: FaultCounts["byAction"] = {};
      for (const f of faults) {
        byAction[f.action] ??= { before: 0, after: 0 };
        byAction[f.action][f.mode]++;
      }
      const before = faults.filter((f) => f.mode === "before").length;
      return { total: faults.length, before, after: faults.length - before, byAction, calls: { ...calls } };
    },
    log: () => [...faults],
    setRate: (r) => {
      rate = r;
    },
    reset: () => {
      faults = [];
      calls = {};
      firstLost = new Set();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
