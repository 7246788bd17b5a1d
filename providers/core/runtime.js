// The provider process's side of thinProvider (provider.ts): what a resource's stored provider
// calls, with the project root it found and its kind, to get the implementation from this
// project's current files. Plain JavaScript: it registers the project's ts-node (as Pulumi does for
// the program) before the TypeScript implementation can be loaded. Each implementation is loaded
// once per provider process.
"use strict";
const path = require("path");
const { createRequire } = require("module");

/** kind → [module from the project root, its export made by dynamicProvider]. */
const IMPLEMENTATIONS = {
  SharedAmi: ["providers/sharedAmi", "sharedAmiProvider"],
  RecoveryAlarm: ["providers/recoveryAlarm", "recoveryAlarmProvider"],
  ConvertedHvmAmi: ["providers/convertedHvmAmi", "convertedHvmAmiProvider"],
  SurrogateAmi: ["providers/surrogateAmi", "surrogateAmiProvider"],
};

const loaded = {};

module.exports = function implementation(root, kind) {
  const key = `${root}#${kind}`;
  if (loaded[key]) return loaded[key];
  const where = IMPLEMENTATIONS[kind];
  if (!where) throw new Error(`ami-factory in ${root} has no provider for ${kind}: the project is older than the state`);
  const requireFromRoot = createRequire(path.join(root, "package.json"));
  if (!process[Symbol.for("ts-node.register.instance")]) {
    requireFromRoot("ts-node").register({ project: path.join(root, "tsconfig.json"), transpileOnly: true });
  }
  const provider = requireFromRoot(`./${where[0]}`)[where[1]];
  if (!provider) throw new Error(`ami-factory: ${where[0]} in ${root} exports no ${where[1]}`);
  loaded[key] = provider;
  return provider;
};
