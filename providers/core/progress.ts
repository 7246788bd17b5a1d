// What a create / update / delete tells the person watching, attached to its resource.
//
// A dynamic provider's stdout reaches the engine as info lines of no resource: the display shows them
// live under pulumi:pulumi:Stack and then again in the Diagnostics after the update. Inside the
// dynamic-provider process (started by the engine with its address as the first argument) lines go
// instead to the engine's Log RPC with the resource's URN: progress as ephemeral status (shown live
// next to the resource, not kept), the closing summary as a diagnostic of the resource (kept).
// Anywhere else (unit tests that call the operations directly) they are printed.
import { resourceUrn } from "./tags";

interface EngineClient {
  log(req: unknown, done: (err: Error | null) => void): void;
}

// Plain mutable state, set up on first use: the provider is serialised into the state with what it
// captures, and a promise or a gRPC client does not survive that.
const conn: { engine?: EngineClient | null; last?: Promise<void>; proto?: { LogRequest: new () => LogRequest; LogSeverity: Record<string, number> } } = {};

interface LogRequest {
  setSeverity(v: number): void;
  setMessage(v: string): void;
  setUrn(v: string): void;
  setEphemeral(v: boolean): void;
}

/** The engine that started this dynamic-provider process, or null outside one. */
function engineOfThisProcess(): EngineClient | null {
  if (conn.engine !== undefined) return conn.engine;
  const [, script, address] = process.argv;
  conn.engine = null;
  if (/dynamic-provider/.test(script ?? "") && /^[\w.[\]:-]+:\d+$/.test(address ?? "")) {
    // The SDK's generated engine client; no typings are published for these paths.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const grpc = require("@grpc/grpc-js");
    const rpc = require("@pulumi/pulumi/proto/engine_grpc_pb");
    conn.proto = require("@pulumi/pulumi/proto/engine_pb");
    /* eslint-enable @typescript-eslint/no-require-imports */
    conn.engine = new rpc.EngineClient(address, grpc.credentials.createInsecure()) as EngineClient;
  }
  return conn.engine;
}

function send(urn: string, severity: "INFO" | "WARNING", message: string, ephemeral: boolean, printed: string): void {
  const client = engineOfThisProcess();
  if (!client) {
    console.log(printed);
    return;
  }
  const req = new conn.proto!.LogRequest();
  req.setSeverity(conn.proto!.LogSeverity[severity]);
  req.setMessage(message);
  req.setUrn(urn);
  req.setEphemeral(ephemeral);
  // In order, and never failing the operation: a line the engine did not take is printed instead.
  conn.last = (conn.last ?? Promise.resolve()).then(() => new Promise<void>((resolve) => client.log(req, (err) => (err && console.log(printed), resolve()))));
}

export interface Progress {
  /** A step as it happens: live, next to the resource. */
  (line: string): void;
  /** What a person needs afterwards (what was built, how long): kept in the update's diagnostics. */
  summary(line: string): void;
  /** Kept, as a warning of the resource. */
  warn(line: string): void;
  /** Resolves when every line so far reached the engine. */
  flushed(): Promise<void>;
}

export function progressFor(kind: string, scope: string): Progress {
  const urn = resourceUrn(kind, scope);
  const label = `[${kind} ${scope.split("/").pop() || scope}]`;
  return Object.assign((line: string) => send(urn, "INFO", line, true, `${label} ${line}`), {
    summary: (line: string) => send(urn, "INFO", line, false, `${label} ${line}`),
    warn: (line: string) => send(urn, "WARNING", line, false, `${label} warning: ${line}`),
    flushed: () => conn.last ?? Promise.resolve(),
  });
}

// AWS calls per operation: the provider process runs several resources' operations at once, so a
// process-wide count would mix them; the count rides on the operation's async context instead.
interface CallCounter {
  count: number;
}
const calls: { storage?: { run<T>(store: CallCounter, fn: () => T): T; getStore(): CallCounter | undefined } } = {};

function callStorage() {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  calls.storage ??= new (require("async_hooks").AsyncLocalStorage)();
  return calls.storage!;
}

/** Called by the clients' middleware for every AWS API call. */
export function countCall(): void {
  const counter = callStorage().getStore();
  if (counter) counter.count++;
}

/** Runs an operation, counting the AWS API calls made on its behalf. */
export function withCallCount<T>(fn: (counter: CallCounter) => Promise<T>): Promise<T> {
  const counter = { count: 0 };
  return callStorage().run(counter, () => fn(counter));
}
