// The one shape of every ami-factory dynamic provider: a pure check and diff, and create / update /
// delete / read as plain functions. This adapter adds what the engine needs around them: no
// undefined on the wire, a progress log named after the resource, "gone" on read as no id.
import type * as pulumi from "@pulumi/pulumi";
import type { Failure } from "./inputs";
import { withCallCount, type Progress } from "./progress";
import { compact, progressLog } from "./resource";
import { engineLog } from "./engineLog";
import { resourceUrn } from "./tags";
import { refuseNewerWriter, stampWriter } from "./writtenBy";

type Log = (line: string) => void;

export interface ResourceOperations<I extends { scope: string }, O extends I> {
  /** For log lines: "SharedAmi". */
  kind: string;
  /** `olds`: the resource's inputs in the state (undefined on create), for rules about a change. */
  check(raw: Record<string, unknown>, olds?: Record<string, unknown>): { inputs?: I; failures: Failure[] };
  diff(olds: O, news: I): pulumi.dynamic.DiffResult;
  create(inputs: I, log: Log): Promise<{ id: string; outs: O }>;
  update(olds: O, news: I, log: Log): Promise<O>;
  delete(olds: O, log: Log): Promise<void>;
  /** undefined props: the resource is gone. */
  read(id: string, olds: O): Promise<{ id?: string; props?: O }>;
  /** The stored state (any schemaVersion this provider has written) in today's shape (./schema.ts). */
  upgrade(stored: Record<string, unknown>): O;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * What read saw, over the state as stored: refresh reports what AWS changed, not the schema
 * upgrade (the next update writes today's schema).
 */
function asStored(stored: Record<string, unknown>, upgraded: Record<string, unknown>, seen: Record<string, unknown>): Record<string, unknown> {
  const result = { ...stored };
  for (const k of new Set([...Object.keys(upgraded), ...Object.keys(seen)])) {
    if (same(upgraded[k], seen[k])) continue;
    if (k in seen) result[k] = seen[k];
    else delete result[k];
  }
  return result;
}

/** What an operation made, for its summary line: images by region, an image, an alarm. */
function made(outs: Record<string, unknown> | undefined): string {
  if (!outs) return "";
  if (outs.imageIds && typeof outs.imageIds === "object") {
    return `: ${Object.entries(outs.imageIds as Record<string, string>).map(([r, id]) => `${id} in ${r}`).join(", ")}`;
  }
  if (typeof outs.imageId === "string") return `: ${outs.imageId}${typeof outs.region === "string" ? ` in ${outs.region}` : ""}`;
  if (typeof outs.alarmName === "string") return `: alarm ${outs.alarmName}`;
  return "";
}

/** Runs an operation with its progress log; then the one line that stays in the update's diagnostics: what, how long, how many AWS calls. */
async function logged<T>(kind: string, scope: string, what: string, op: (log: Progress) => Promise<T>, outsOf: (r: T) => unknown): Promise<T> {
  const log = progressLog(kind, scope);
  const started = Date.now();
  return withCallCount(async (calls) => {
    const result = await op(log).finally(() => log.flushed());
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    log.summary(`${what}${made(outsOf(result) as Record<string, unknown> | undefined)} (${seconds} s, ${calls.count} AWS API calls)`);
    await log.flushed();
    return result;
  });
}

export function dynamicProvider<I extends { scope: string }, O extends I>(ops: ResourceOperations<I, O>): pulumi.dynamic.ResourceProvider<I, O> {
  /** Stored state in today's shape, unless a newer release wrote it (./writtenBy.ts). */
  const upgrade = (stored: Record<string, unknown>): O => {
    refuseNewerWriter(ops.kind, stored);
    return ops.upgrade(stored);
  };
  return {
    async check(olds, news) {
      const previous = olds && Object.keys(olds).length ? (olds as unknown as Record<string, unknown>) : undefined;
      const { inputs, failures } = ops.check(news as unknown as Record<string, unknown>, previous);
      return failures.length ? { inputs: news, failures } : { inputs: compact(inputs!) };
    },
    async diff(_id, olds, news) {
      const result = ops.diff(upgrade(olds as unknown as Record<string, unknown>), news);
      // Shown at preview, on the resource: what forces a replacement, a gap in service it causes.
      for (const note of (result as { notes?: string[] }).notes ?? []) {
        const warning = note.startsWith("warning: ");
        await engineLog(resourceUrn(ops.kind, news.scope), warning ? "warning" : "info", warning ? note.slice(9) : note);
      }
      return result;
    },
    async create(inputs) {
      const { id, outs } = await logged(ops.kind, inputs.scope, "created", (log) => ops.create(inputs, log), (r) => r.outs);
      return { id, outs: compact(stampWriter(outs)) };
    },
    async update(_id, olds, news) {
      const upgraded = upgrade(olds as unknown as Record<string, unknown>);
      return { outs: compact(stampWriter(await logged(ops.kind, news.scope, "updated", (log) => ops.update(upgraded, news, log), (outs) => outs))) };
    },
    async delete(_id, olds) {
      const upgraded = upgrade(olds as unknown as Record<string, unknown>);
      await logged(ops.kind, upgraded.scope, "deleted", (log) => ops.delete(upgraded, log), () => undefined);
    },
    async read(id, props) {
      const stored = (props ?? {}) as Record<string, unknown>;
      const upgraded = upgrade(stored);
      const found = await ops.read(id, upgraded);
      if (!found.props) return {};
      return { id: found.id ?? id, props: compact(asStored(stored, upgraded as unknown as Record<string, unknown>, found.props as unknown as Record<string, unknown>)) as unknown as O };
    },
  };
}

/**
 * What a resource stores as its provider: a few lines that load the implementation from the
 * project at run time, so that state holds no code (the whole provider and a bundled guest script
 * were 60-170 KB per resource, stored twice: inputs and outputs) and a provider fix reaches
 * resources made before it. Code in state can never be changed again, so it only finds the project
 * and hands over to providers/core/runtime.js, which maps `kind` to its implementation and loads it
 * from the project's current files.
 *
 * The engine runs the provider process in the project folder (where Pulumi.yaml is; a stack's
 * workDir for the automation API), and the serialised code resolves modules from there: the
 * project is found from that working directory upwards, never by an absolute path, so state stays
 * valid when the project is moved, copied or checked out elsewhere (CI, another laptop).
 *
 * The project found must be ami-factory (its package.json name): a `providers/core/runtime.js` of
 * some other project above the stack folder is never run.
 *
 * Pulumi serialises these functions as their source text with what they capture (only `kind`):
 * every character below is stored twice per resource, hence the terse body.
 */
export function thinProvider(kind: string): pulumi.dynamic.ResourceProvider {
  const m = (d = process.cwd()): Required<pulumi.dynamic.ResourceProvider> => {
    const p = require("path"), f = require("fs"), r = p.join(d, "providers/core/runtime.js"), u = p.dirname(d);
    if (f.existsSync(r)) {
      const j = p.join(d, "package.json");
      if (!f.existsSync(j) || require(j).name !== "ami-factory") throw new Error(`refusing ${r}: not ami-factory's`);
      return require(r)(d, kind);
    }
    if (d === u) throw new Error(`no ami-factory project at or above ${process.cwd()}`);
    return m(u);
  };
  return {
    check: (...a) => m().check(...a),
    diff: (...a) => m().diff(...a),
    create: (...a) => m().create(...a),
    update: (...a) => m().update(...a),
    delete: (...a) => m().delete(...a),
    read: (...a) => m().read(...a),
  };
}
