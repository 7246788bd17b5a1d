// Guest scripts are bundled (their lib/ files inlined) from the project's files: by the program for
// their hash, and again by the provider process, which ships them to the worker. The hash is
// provenance (an output and a tag of each image), never a replace trigger: upgrading ami-factory
// must not rebuild the images users run. Each script declares the schema of its facts line
// (`# @facts {…}`, providers/worker/facts.ts).
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as path from "path";
import { PROJECT_ROOT } from "../core/projectRoot";
import { declaredFactsSchema, FactsSchema } from "./facts";

const GUEST_DIR = path.join(PROJECT_ROOT, "scripts/guest");

export interface BundledScript {
  name: string;
  content: string;
  sha256: string;
  /** What its facts line must be. */
  factsSchema: FactsSchema;
}

const bundled: Record<string, BundledScript> = {};

/** Bundled once per program run, when the first resource that needs it is declared. */
export function bundleGuestScript(relativePath: string): BundledScript {
  if (bundled[relativePath]) return bundled[relativePath];
  const file = path.join(GUEST_DIR, relativePath);
  const content = execFileSync("bash", [path.join(GUEST_DIR, "lib/bundle.sh"), file], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  const factsSchema = declaredFactsSchema(content, relativePath);
  bundled[relativePath] = { name: path.basename(relativePath, ".sh"), content, sha256: createHash("sha256").update(content).digest("hex"), factsSchema };
  return bundled[relativePath];
}

/** The script a create ships: bundled in the provider process, and the one the program hashed. */
export function bundledGuestScript(relativePath: string, expectedSha256: string): BundledScript {
  const script = bundleGuestScript(relativePath);
  if (script.sha256 !== expectedSha256) {
    throw new Error(`guest script ${relativePath} changed while pulumi ran (sha256 ${script.sha256}, the program saw ${expectedSha256}): run pulumi up again`);
  }
  return script;
}
