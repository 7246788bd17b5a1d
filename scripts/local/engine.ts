// Drives the real Pulumi engine (the CLI of the pinned version) on a local file backend. The
// program is served by the Node SDK's own language runtime (automation API, inline program), so
// no pulumi-language-nodejs binary is needed; dynamic providers run in the real
// pulumi-resource-pulumi-nodejs plugin, a child of the CLI.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { withYoungGenerationCap } from "./nodeOptions";
import { readToolchain, REPO_ROOT } from "./toolchain";

export interface LocalStackOptions {
  stackName: string;
  /** Folder for Pulumi.yaml, Pulumi.<stack>.yaml and the file backend's state. */
  workDir: string;
  /** Extra environment for the engine and its plugins (AWS endpoint, credentials, region). */
  env: Record<string, string>;
  /** Stack config file to start from (copied into workDir). */
  configFile?: string;
  /** The program; default: this repository's index.ts. */
  program?: () => Promise<Record<string, unknown>>;
}

/** Environment for local runs only: offline engine, file backend, passphrase secrets. */
export function localEngineEnv(workDir: string, extra: Record<string, string>): Record<string, string> {
  const tc = readToolchain();
  return {
    PULUMI_BACKEND_URL: `file://${path.join(workDir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? "ami-factory-local",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_HOME: path.join(workDir, "pulumi-home"),
    // setup.sh's Node (22/24) first: the dynamic-provider plugin and the language host start `node`.
    PATH: `${tc.nodeBinDir}:${tc.pulumiBinDir}:${tc.pulumiPluginDir}:${process.env.PATH}`,
    // The dynamic provider resolves the SDK packages its serialised code requires from here.
    NODE_PATH: path.join(REPO_ROOT, "node_modules"),
    // The dynamic provider's young generation as Node 22 sizes it (./nodeOptions.ts).
    NODE_OPTIONS: withYoungGenerationCap(process.env.NODE_OPTIONS),
    ...extra,
  };
}

/**
 * An inline program's RunError (e.g. a bad stack config) is reported by the automation API's
 * language server twice: as the run's error and again from the rejection it leaves behind. Logged
 * here once instead, as the plain CLI path shows it, and the run fails with a short error of its
 * own (returning instead would declare an empty stack: the engine would delete every resource).
 * Other errors pass through unchanged.
 */
function reportRunErrorsOnce(program: () => Promise<Record<string, unknown>>): () => Promise<Record<string, unknown>> {
  return async () => {
    try {
      return await program();
    } catch (e) {
      if (!pulumi.RunError.isInstance(e)) throw e;
      await pulumi.log.error(e.message);
      // Still a failed run: a program that returned would be an empty stack to the engine, which
      // then deletes everything the stack has.
      throw new pulumi.RunError("the program stopped on the error above; nothing was changed");
    }
  };
}

export async function localStack(opts: LocalStackOptions): Promise<Stack> {
  const tc = readToolchain();
  fs.mkdirSync(path.join(opts.workDir, "state"), { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), path.join(opts.workDir, "Pulumi.yaml"));
  if (opts.configFile) fs.copyFileSync(opts.configFile, path.join(opts.workDir, `Pulumi.${opts.stackName}.yaml`));
  const env = localEngineEnv(opts.workDir, opts.env);
  // The inline program runs in this process: it must see the same AWS settings as the plugins.
  for (const [k, v] of Object.entries(opts.env)) process.env[k] = v;
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(tc.pulumiBinDir), version: undefined });
  const program = reportRunErrorsOnce(opts.program ?? (async () => (require(path.join(REPO_ROOT, "index")) as () => Record<string, unknown>)()));
  return LocalWorkspace.createOrSelectStack(
    { stackName: opts.stackName, projectName: "ami-factory", program },
    { workDir: opts.workDir, envVars: env, pulumiCommand, secretsProvider: "passphrase" },
  );
}
