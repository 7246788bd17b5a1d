// Guest scripts are bundled (their lib/ files inlined) when the program runs, and travel to the
// provider inside its serialised closure. Their hash is provenance (an output and a tag of each
// image), never a replace trigger: upgrading ami-factory must not rebuild the images users run.
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as path from "path";

const GUEST_DIR = path.resolve(__dirname, "../../scripts/guest");

export interface BundledScript {
  name: string;
  content: string;
  sha256: string;
}

const bundled: Record<string, BundledScript> = {};

/** Bundled once per program run, when the first resource that needs it is declared. */
export function bundleGuestScript(relativePath: string): BundledScript {
  if (bundled[relativePath]) return bundled[relativePath];
  const file = path.join(GUEST_DIR, relativePath);
  const content = execFileSync("bash", [path.join(GUEST_DIR, "lib/bundle.sh"), file], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  bundled[relativePath] = { name: path.basename(relativePath, ".sh"), content, sha256: createHash("sha256").update(content).digest("hex") };
  return bundled[relativePath];
}
