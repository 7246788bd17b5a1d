// What every ami-factory resource does the same way at declaration time.
import * as pulumi from "@pulumi/pulumi";
import { progressFor, Progress } from "./progress";

/** project/stack/name: the scope that makes a resource's build ids its own. */
export function scopeOf(name: string): string {
  return `${pulumi.getProject()}/${pulumi.getStack()}/${name}`;
}

/** The region a resource works in when its args name none: `aws:region`, else AWS_REGION. */
export function defaultRegion(): string | undefined {
  return new pulumi.Config("aws").get("region") ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
}

/** A logger for provider progress, attached to the resource in the engine's display (./progress.ts). */
export function progressLog(kind: string, scope: string): Progress {
  return progressFor(kind, scope);
}

/** Output property names declared as undefined inputs, so the engine records them as outputs. */
export function outputSlots(names: readonly string[]): Record<string, undefined> {
  return Object.fromEntries(names.map((n) => [n, undefined]));
}

/** A copy without undefined values: the engine's wire format (protobuf Struct) has no undefined. */
export function compact<T extends object>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * Turns off stack traces while a resource registers; `resume()` restores the limit, `restack(e)`
 * gives an error thrown meanwhile (say an empty name) the stack of where it is rethrown. The Node SDK
 * makes four promises per property of a resource and captures a stack trace for each
 * (runtime/debuggable.js), read only by its report of leaked promises, which still names each by
 * resource and property. Under ts-node, which maps every frame through source maps, those traces
 * were half of the program's CPU per resource (bench/scale.ts, preview of 100 entries). The
 * resource's source position is unaffected: the SDK takes it with a limit of its own
 * (Resource.callsites sets and restores Error.stackTraceLimit).
 */
export function suspendStackTraces(): { resume(): void; restack(e: unknown): unknown } {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const resume = () => void (Error.stackTraceLimit = limit);
  const restack = (e: unknown) => {
    resume();
    if (e instanceof Error) Error.captureStackTrace(e, restack);
    return e;
  };
  return { resume, restack };
}
