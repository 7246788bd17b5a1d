// The one shape of every ami-factory dynamic provider: a pure check and diff, and create / update /
// delete / read as plain functions. This adapter adds what the engine needs around them: no
// undefined on the wire, a progress log named after the resource, "gone" on read as no id.
import type * as pulumi from "@pulumi/pulumi";
import type { Failure } from "./inputs";
import { compact, progressLog } from "./resource";
import { engineLog } from "./engineLog";
import { resourceUrn } from "./tags";

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
}

export function dynamicProvider<I extends { scope: string }, O extends I>(ops: ResourceOperations<I, O>): pulumi.dynamic.ResourceProvider<I, O> {
  return {
    async check(olds, news) {
      const previous = olds && Object.keys(olds).length ? (olds as unknown as Record<string, unknown>) : undefined;
      const { inputs, failures } = ops.check(news as unknown as Record<string, unknown>, previous);
      return failures.length ? { inputs: news, failures } : { inputs: compact(inputs!) };
    },
    async diff(_id, olds, news) {
      const result = ops.diff(olds, news);
      // Shown at preview, on the resource: what forces a replacement, a gap in service it causes.
      for (const note of (result as { notes?: string[] }).notes ?? []) {
        const warning = note.startsWith("warning: ");
        await engineLog(resourceUrn(ops.kind, news.scope), warning ? "warning" : "info", warning ? note.slice(9) : note);
      }
      return result;
    },
    async create(inputs) {
      const { id, outs } = await ops.create(inputs, progressLog(ops.kind, inputs.scope));
      return { id, outs: compact(outs) };
    },
    async update(_id, olds, news) {
      return { outs: compact(await ops.update(olds, news, progressLog(ops.kind, news.scope))) };
    },
    async delete(_id, olds) {
      await ops.delete(olds, progressLog(ops.kind, olds.scope));
    },
    async read(id, props) {
      const found = await ops.read(id, props as O);
      return found.props ? { id: found.id ?? id, props: compact(found.props) } : {};
    },
  };
}
