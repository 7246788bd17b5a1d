// Where scripts/setup.sh put Node, the Pulumi engine, the language host and actionlint, and which
// python runs moto (.local/toolchain.env).
import * as fs from "fs";
import * as path from "path";

export const REPO_ROOT = path.resolve(__dirname, "../..");

export interface Toolchain {
  /** The Node (22/24) everything runs on: the machine's, or the one setup.sh installed. */
  nodeBinDir: string;
  pulumiVersion: string;
  pulumiCli: string;
  pulumiBinDir: string;
  pulumiPluginDir: string;
  motoPython: string;
  /** pulumi-language-nodejs for the plain CLI path (Pulumi.yaml). */
  languageHost: string;
  actionlint: string;
}

export function readToolchain(): Toolchain {
  const file = path.join(REPO_ROOT, ".local/toolchain.env");
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run 'bash scripts/setup.sh' (npm start and npm test do)`);
  const env = Object.fromEntries(
    fs.readFileSync(file, "utf8").split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  return {
    nodeBinDir: env.NODE_BIN_DIR,
    pulumiVersion: env.PULUMI_VERSION,
    pulumiCli: env.PULUMI_CLI,
    pulumiBinDir: env.PULUMI_BIN_DIR,
    pulumiPluginDir: env.PULUMI_PLUGIN_DIR,
    motoPython: env.MOTO_PYTHON,
    languageHost: env.LANGUAGE_HOST,
    actionlint: env.ACTIONLINT,
  };
}
