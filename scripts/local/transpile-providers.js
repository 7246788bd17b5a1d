// node scripts/local/transpile-providers.js <project root> <out dir>
// Compiles the project's providers/**/*.ts to JavaScript under <out dir>/providers/ for the
// provider process (providers/core/runtime.js picks <out dir>), file by file with the tsconfig's
// compilerOptions, as ts-node's transpileOnly does (no type check: `npm run lint`'s tsc does that).
// Written into a temporary folder and renamed into place, so a provider process started
// concurrently sees the whole tree or none; keeps the newest few compiled trees.
"use strict";
const fs = require("fs");
const path = require("path");

const KEEP = 4;
/** A compiled tree's folder name: the hash runtime.js computes. */
const TREE_NAME = /^[0-9a-f]{16}$/;
const [root, out] = process.argv.slice(2).map((p) => path.resolve(p));
const ts = require(require.resolve("typescript", { paths: [root] }));

const config = ts.readConfigFile(path.join(root, "tsconfig.json"), ts.sys.readFile);
if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, "\n"));
const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [path.join(dir, e.name)] : []);
}

if (!TREE_NAME.test(path.basename(out))) throw new Error(`${out}: the folder's name must be a hash as providers/core/runtime.js makes it`);
const parent = path.dirname(out);
fs.mkdirSync(parent, { recursive: true });
const tmp = fs.mkdtempSync(path.join(parent, ".tmp-"));
try {
  for (const file of sources(path.join(root, "providers"))) {
    const rel = path.relative(root, file);
    const { outputText } = ts.transpileModule(fs.readFileSync(file, "utf8"), { compilerOptions: options, fileName: file });
    fs.mkdirSync(path.join(tmp, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(tmp, rel.replace(/\.ts$/, ".js")), outputText);
  }
  try {
    fs.renameSync(tmp, out);
  } catch (e) {
    // Another process renamed the same tree into place first.
    if (!fs.existsSync(out)) throw e;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
} catch (e) {
  fs.rmSync(tmp, { recursive: true, force: true });
  throw e;
}

// Older trees: a provider process still running one has already loaded what it needs.
// Best effort: a concurrent start may be pruning the same trees.
try {
  // Only folders named as runtime.js names them: never anything else in <out dir>'s parent.
  const trees = fs.readdirSync(parent).filter((n) => TREE_NAME.test(n)).map((n) => path.join(parent, n))
    .filter((p) => p !== out).map((p) => [p, fs.statSync(p).mtimeMs]).sort((a, b) => b[1] - a[1]);
  for (const [old] of trees.slice(KEEP - 1)) fs.rmSync(old, { recursive: true, force: true });
} catch {
  // The next start prunes them.
}
