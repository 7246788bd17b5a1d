import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { scopeOf, suspendStackTraces } from "./core/resource";
import { deleteRetiredByDestroy } from "./core/stackDestroy";

/** The marker's inputs and state: the stack it stands for. */
export interface StackLifetimeState {
  scope: string;
  schemaVersion?: number;
}

const SCHEMA_VERSION = 1;

/**
 * The implementation (./core/stackDestroy.ts): nothing in AWS. Its only act is its delete, which
 * the engine reaches only when the whole stack goes: it deletes the images the stack's deletes
 * retired in this engine run. Its diff never replaces: a replacement would delete it during an up.
 */
export const stackLifetimeProvider = dynamicProvider<StackLifetimeState, StackLifetimeState>({
  kind: "StackLifetime",
  check: (raw) => (typeof raw.scope === "string" ? { inputs: { scope: raw.scope }, failures: [] } : { failures: [{ property: "scope", reason: "scope: set by the StackLifetime class" }] }),
  diff: () => ({ changes: false }),
  create: async (inputs) => ({ id: inputs.scope, outs: { ...inputs, schemaVersion: SCHEMA_VERSION } }),
  update: async (olds) => olds,
  delete: async (_olds, log) => deleteRetiredByDestroy(log),
  read: async (id, olds) => ({ id, props: olds }),
  upgrade: (stored) => ({ ...(stored as unknown as StackLifetimeState), schemaVersion: SCHEMA_VERSION }),
});

const serializedProvider = thinProvider("StackLifetime");

/**
 * The stack's lifetime, for the images' deletes: every image resource depends on it (`dependsOn`),
 * so `pulumi destroy` of the whole stack deletes it last, and its delete turns the images that
 * the destroy retired into deleted ones. A replacement, a removed entry and `pulumi destroy
 * --target <image>` leave it in place, and their images stay retired. Declare it in every `up`.
 */
export class StackLifetime extends pulumi.dynamic.Resource {
  constructor(name: string, opts?: pulumi.CustomResourceOptions) {
    const stacks = suspendStackTraces();
    try {
      super(serializedProvider, name, { scope: scopeOf(name) }, opts, "ami-factory", "StackLifetime");
    } catch (e) {
      throw stacks.restack(e);
    } finally {
      stacks.resume();
    }
  }
}
