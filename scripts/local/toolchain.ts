// Where scripts/setup.sh put the Pulumi engine and which python runs moto (.local/toolchain.env).
import * as fs from "fs";
import * as path from "path";

export const REPO_ROOT = path.resolve(__dirname, "../..");

export interface Toolchain {
  pulumiVersion: string;
  pulumiCli: string;
  pulumiBinDir: string;
  pulumiPluginDir: string;
  motoPython: string;
}

export function readToolchain(): Toolchain {
  const file = path.join(REPO_ROOT, ".local/toolchain.env");
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run 'bash scripts/setup.sh' (npm start and npm test do)`);
  const env = Object.fromEntries(
    fs.readFileSync(file, "utf8").split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  return {
    pulumiVersion: env.PULUMI_VERSION,
    pulumiCli: env.PULUMI_CLI,
    pulumiBinDir: env.PULUMI_BIN_DIR,
    pulumiPluginDir: env.PULUMI_PLUGIN_DIR,
    motoPython: env.MOTO_PYTHON,
  };
}
