// A build is a flat list of steps (Packer's multistep, typed). Each step records the ids it creates
// on the context before it waits, so its cleanup can find them. When a step throws, the cleanups of
// the steps that ran are called last-in-first-out with failed=true; after success they run too
// (failed=false), so temporary resources always go and outputs go only on failure.

export interface Step<C> {
  name: string;
  /**
   * When the step is needed, asked at its turn; absent: always. For a choice that only an earlier
   * step's result can make (a copy after the guest refused to convert in place); choices the inputs
   * make are made when the list is written. A step not needed neither runs nor is cleaned up.
   */
  when?(ctx: C): boolean;
  run(ctx: C): Promise<void>;
  cleanup?(ctx: C, failed: boolean): Promise<void>;
}

export interface StepLog {
  (line: string): void;
}

export interface BuildFailure {
  failedStep: string;
  cleaned: string[];
  cleanupErrors: string[];
}

export type BuildError = Error & BuildFailure;

// A plain Error with fields, not a subclass: providers are serialised by closure, and a serialised
// Error subclass loses its message.
export function buildError(message: string, failure: BuildFailure): BuildError {
  const error = new Error(message) as BuildError;
  error.name = "BuildError";
  return Object.assign(error, failure);
}

export function isBuildError(e: unknown): e is BuildError {
  return e instanceof Error && e.name === "BuildError";
}

export interface RunOptions {
  log?: StepLog;
  /** A cleanup that takes longer than this is abandoned and reported (the build id tag lets a sweep find it). */
  cleanupTimeoutSeconds?: number;
}

export async function runSteps<C>(steps: Step<C>[], ctx: C, opts: RunOptions = {}): Promise<void> {
  const log = opts.log ?? (() => undefined);
  const ran: Step<C>[] = [];
  const started = Date.now();
  let failure: { step: string; error: unknown } | undefined;
  for (const step of steps) {
    if (step.when && !step.when(ctx)) {
      log(`step ${step.name}: not needed`);
      continue;
    }
    const t0 = Date.now();
    log(`step ${step.name}: started`);
    ran.push(step);
    try {
      await step.run(ctx);
      log(`step ${step.name}: done in ${seconds(t0)}s (total ${seconds(started)}s)`);
    } catch (error) {
      log(`step ${step.name}: failed after ${seconds(t0)}s: ${messageOf(error)}`);
      failure = { step: step.name, error };
      break;
    }
  }
  const failed = failure !== undefined;
  const cleaned: string[] = [];
  const cleanupErrors: string[] = [];
  for (const step of ran.reverse()) {
    if (!step.cleanup) continue;
    try {
      await withDeadline(step.cleanup(ctx, failed), opts.cleanupTimeoutSeconds ?? 600, `cleanup of ${step.name}`);
      cleaned.push(step.name);
    } catch (error) {
      cleanupErrors.push(`${step.name}: ${messageOf(error)}`);
      log(`cleanup of ${step.name} failed: ${messageOf(error)}`);
    }
  }
  if (failure) {
    const parts = [`step "${failure.step}" failed: ${messageOf(failure.error)}`];
    parts.push(cleaned.length ? `cleaned up: ${cleaned.join(", ")}` : "nothing to clean up");
    if (cleanupErrors.length) parts.push(`cleanup failures (resources tagged with the build id are left for 'npm run sweep'): ${cleanupErrors.join("; ")}`);
    throw buildError(parts.join("; "), { failedStep: failure.step, cleaned, cleanupErrors });
  }
  if (cleanupErrors.length) {
    throw buildError(`build succeeded but cleanup failed: ${cleanupErrors.join("; ")}`, { failedStep: "cleanup", cleaned, cleanupErrors });
  }
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function seconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1);
}

async function withDeadline<T>(p: Promise<T>, secondsLimit: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${secondsLimit}s`)), secondsLimit * 1000);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
