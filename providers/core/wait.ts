// Waiting, the SDK way: a checkState that answers SUCCESS / FAILURE / RETRY, exponential backoff
// from a short minimum delay, and always a maximum. Errors that can never succeed are FAILURE.
import { waiterSdk } from "./clients";
import type { WaiterResult } from "@smithy/util-waiter";

export interface WaitOptions {
  /** What is being waited for, for messages ("image ami-1 available in eu-west-1"). */
  what: string;
  maxWaitSeconds: number;
  minDelaySeconds?: number;
  maxDelaySeconds?: number;
  abortSignal?: AbortSignal;
}

export type CheckResult<T> = { state: "SUCCESS"; value: T } | { state: "FAILURE"; reason: string } | { state: "RETRY"; reason?: string };

export async function waitFor<T>(opts: WaitOptions, check: () => Promise<CheckResult<T>>): Promise<T> {
  const { createWaiter, WaiterState } = waiterSdk();
  let last: CheckResult<T> | undefined;
  const result: WaiterResult = await createWaiter(
    {
      client: {},
      minDelay: opts.minDelaySeconds ?? 1,
      maxDelay: opts.maxDelaySeconds ?? 15,
      maxWaitTime: opts.maxWaitSeconds,
      abortSignal: opts.abortSignal,
    },
    undefined,
    async () => {
      last = await check();
      if (last.state === "SUCCESS") return { state: WaiterState.SUCCESS };
      if (last.state === "FAILURE") return { state: WaiterState.FAILURE, reason: last.reason };
      return { state: WaiterState.RETRY, reason: last.reason };
    },
  ).catch((e: unknown) => ({ state: WaiterState.FAILURE, reason: e instanceof Error ? e.message : String(e) }));
  if (last?.state === "SUCCESS") return last.value;
  if (result.state === WaiterState.TIMEOUT) {
    throw new Error(`timed out after ${opts.maxWaitSeconds}s waiting for ${opts.what}${last && last.state === "RETRY" && last.reason ? ` (last seen: ${last.reason})` : ""}`);
  }
  if (result.state === WaiterState.ABORTED) throw new Error(`stopped waiting for ${opts.what}: aborted`);
  const reason = last?.state === "FAILURE" ? last.reason : (result.reason ?? "unknown");
  throw new Error(`${opts.what} can no longer happen: ${typeof reason === "string" ? reason : JSON.stringify(reason)}`);
}

/** The name of an AWS SDK error, or undefined. */
export function errorName(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "name" in e ? String((e as { name: unknown }).name) : undefined;
}

/** Throttling, a 5xx or a network error: the same call may well succeed later. */
export function isTransient(e: unknown): boolean {
  const err = e as { $retryable?: unknown; $metadata?: { httpStatusCode?: number }; name?: string; code?: string };
  if (!err || typeof err !== "object") return false;
  if (err.$retryable) return true;
  if ((err.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  return /throttl|RequestLimitExceeded|TooManyRequests|ECONNRESET|ECONNREFUSED|ETIMEDOUT|socket hang up/i.test(`${err.name} ${err.code ?? ""}`);
}
