// The provider process's side of thinProvider (provider.ts): what a resource's stored provider
// calls to get its implementation from this project. Plain JavaScript: it registers the project's
// ts-node (as Pulumi does for the program) before the TypeScript implementation can be loaded.
// Loaded once per provider process; so is each implementation.
"use strict";
const path = require("path");
const { createRequire } = require("module");

const loaded = {};

module.exports = function implementation(root, modulePath, exportName) {
  const key = `${root}/${modulePath}#${exportName}`;
  if (loaded[key]) return loaded[key];
  const requireFromRoot = createRequire(path.join(root, "package.json"));
  if (!process[Symbol.for("ts-node.register.instance")]) {
    requireFromRoot("ts-node").register({ project: path.join(root, "tsconfig.json"), transpileOnly: true });
  }
  const provider = requireFromRoot(`./${modulePath}`)[exportName];
  if (!provider) throw new Error(`ami-factory: ${modulePath} in ${root} exports no ${exportName}`);
  loaded[key] = provider;
  return provider;
};
