// A temporary stack of this repository's program, on the real engine and the emulator.
import * as fs from "fs";
import * as path from "path";
import type { Stack } from "@pulumi/pulumi/automation";
import { localStack } from "../../scripts/local/engine";
import { REPO_ROOT } from "../../scripts/local/toolchain";
import type { Emulator } from "./emulator";

export interface TestStack {
  stack: Stack;
  workDir: string;
  /** Replace the stack's `ami-factory:` config (and aws:region). */
  configure(config: Record<string, unknown>): void;
  /** Output lines of the engine for the last operation, for assertions on what it printed. */
  output: string[];
  onOutput: (s: string) => void;
}

let counter = 0;

/** A test's destroy is a plain `pulumi destroy`: the StackLifetime marker deletes the images. */
export async function testStack(emulator: Emulator, config: Record<string, unknown>, region = "us-east-1"): Promise<TestStack> {
  const stackName = `t${process.pid}-${++counter}`;
  const workDir = path.join(REPO_ROOT, ".local", "test-stacks", stackName);
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true });
  const configFile = path.join(workDir, `Pulumi.${stackName}.yaml`);
  // YAML is a superset of JSON: the stack file is written as JSON.
  const configure = (c: Record<string, unknown>) => {
    const entries = { "aws:region": region, ...Object.fromEntries(Object.entries(c).map(([k, v]) => [k.includes(":") ? k : `ami-factory:${k}`, v])) };
    fs.writeFileSync(configFile, JSON.stringify({ config: entries }, null, 2));
  };
  configure(config);
  const stack = retryingTransportFlakes(await localStack({ stackName, workDir, env: { ...emulator.env, AWS_REGION: region } }));
  const output: string[] = [];
  return {
    stack,
    workDir,
    configure,
    output,
    onOutput: (s) => {
      output.push(s);
      if (process.env.AMI_FACTORY_TEST_VERBOSE) process.stdout.write(s);
    },
  };
}

/**
 * The engine reaches the inline program over a local gRPC connection; on a loaded machine that
 * connection can fail before the program runs ("14 UNAVAILABLE: No connection established",
 * nothing done). Such an operation is run once more; any other failure is the test's.
 */
function retryingTransportFlakes(stack: Stack): Stack {
  const flake = /14 UNAVAILABLE: No connection established/;
  for (const op of ["up", "preview", "refresh", "destroy"] as const) {
    const original = (stack[op] as (...a: unknown[]) => Promise<unknown>).bind(stack);
    (stack as unknown as Record<string, unknown>)[op] = async (...args: unknown[]) => {
      try {
        return await original(...args);
      } catch (e) {
        if (!flake.test(String(e))) throw e;
        return original(...args);
      }
    };
  }
  return stack;
}

/** The outputs of one resource of the stack's state, by logical name. */
export async function resourceOutputs(stack: Stack, name: string): Promise<Record<string, unknown>> {
  const state = await stack.exportStack();
  const res = (state.deployment.resources ?? []).find((r: { urn: string }) => r.urn.endsWith(`::${name}`));
  if (!res) throw new Error(`no resource ${name} in the stack`);
  return res.outputs as Record<string, unknown>;
}
