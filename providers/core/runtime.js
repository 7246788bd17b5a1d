// The provider process's side of thinProvider (provider.ts): what a resource's stored provider
// calls, with the project root it found and its kind, to get the implementation from this
// project's current files. Plain JavaScript, loaded before any TypeScript can be.
//
// The implementation is loaded as JavaScript compiled from the project's current sources into
// .local/provider-js/<hash of the sources>/, made by a child process
// (scripts/local/transpile-providers.js) the first time a hash is seen: the TypeScript compiler
// in the provider process (ts-node) cost about 110 MiB of its memory, for code it never runs. If
// that folder cannot be made (a read-only checkout), the sources are loaded through ts-node.
// Each implementation is loaded once per provider process.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");
const { spawnSync } = require("child_process");

/** kind → [module from the project root, its export made by dynamicProvider]. */
const IMPLEMENTATIONS = {
  SharedAmi: ["providers/sharedAmi", "sharedAmiProvider"],
  RecoveryAlarm: ["providers/recoveryAlarm", "recoveryAlarmProvider"],
  ConvertedHvmAmi: ["providers/convertedHvmAmi", "convertedHvmAmiProvider"],
  SurrogateAmi: ["providers/surrogateAmi", "surrogateAmiProvider"],
  StackLifetime: ["providers/stackLifetime", "stackLifetimeProvider"],
};
const TRANSPILER = "scripts/local/transpile-providers.js";

/** Relative paths of the provider sources, sorted. */
function sources(root, dir = "providers") {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sources(root, rel);
    return e.name.endsWith(".ts") ? [rel] : [];
  }).sort();
}

/** Where the JavaScript of the current sources is (or goes): a hash of them, the tsconfig and the transpiler. */
function compiledDir(root) {
  const hash = crypto.createHash("sha256");
  for (const rel of [...sources(root), "tsconfig.json", TRANSPILER]) {
    hash.update(`${rel}\0`).update(fs.readFileSync(path.join(root, rel))).update("\0");
  }
  return path.join(root, ".local", "provider-js", hash.digest("hex").slice(0, 16));
}

/** The compiled folder for root's current sources, made if missing; throws why it could not be. */
function compiledProviders(root) {
  const dir = compiledDir(root);
  if (fs.existsSync(dir)) return dir;
  const run = spawnSync(process.execPath, [path.join(root, TRANSPILER), root, dir], { encoding: "utf8" });
  if (fs.existsSync(dir)) return dir;
  throw new Error(`${TRANSPILER} failed: ${(run.error?.message ?? run.stderr ?? "").trim() || `exit ${run.status}`}`);
}

/** Where to require root-relative modules from: the compiled folder, or the sources through ts-node. */
const bases = {};
function base(root) {
  if (bases[root]) return bases[root];
  try {
    bases[root] = compiledProviders(root);
  } catch (e) {
    process.stderr.write(`ami-factory: loading the providers' TypeScript in process (more memory): ${e.message.split("\n")[0]}\n`);
    if (!process[Symbol.for("ts-node.register.instance")]) {
      createRequire(path.join(root, "package.json"))("ts-node").register({ project: path.join(root, "tsconfig.json"), transpileOnly: true });
    }
    bases[root] = root;
  }
  return bases[root];
}

const loaded = {};

module.exports = function implementation(root, kind) {
  const key = `${root}#${kind}`;
  if (loaded[key]) return loaded[key];
  const where = IMPLEMENTATIONS[kind];
  if (!where) throw new Error(`ami-factory in ${root} has no provider for ${kind}: the project is older than the state`);
  const provider = require(path.join(base(root), where[0]))[where[1]];
  if (!provider) throw new Error(`ami-factory: ${where[0]} in ${root} exports no ${where[1]}`);
  loaded[key] = provider;
  return provider;
};
module.exports.compiledProviders = compiledProviders;
