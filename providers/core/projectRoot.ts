// The project's root folder (where package.json is), found upwards from this file: the provider
// process runs these modules compiled into .local/provider-js/<hash>/ (core/runtime.js), where a
// path relative to __dirname would miss the project's other files.
import * as fs from "fs";
import * as path from "path";

function findRoot(dir: string): string {
  if (fs.existsSync(path.join(dir, "package.json"))) return dir;
  const up = path.dirname(dir);
  if (up === dir) throw new Error(`no package.json at or above ${__dirname}`);
  return findRoot(up);
}

export const PROJECT_ROOT = findRoot(__dirname);
