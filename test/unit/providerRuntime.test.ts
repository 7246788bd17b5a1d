import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const REPO_ROOT = path.resolve(__dirname, "../..");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { compiledProviders } = require("../../providers/core/runtime.js") as { compiledProviders(root: string): string };

/** A copy of what the provider process reads (sources, tsconfig, transpiler), with this checkout's node_modules. */
function projectCopy(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "ami-factory-runtime-"));
  for (const rel of ["providers", "tsconfig.json", "package.json", "scripts/local/transpile-providers.js"]) {
    fs.cpSync(path.join(REPO_ROOT, rel), path.join(root, rel), { recursive: true });
  }
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(root, "node_modules"));
  return root;
}

/** A provider process's start, as the thin provider makes it: every implementation through runtime.js. */
const PROVIDER_START = `
const root = process.argv[1];
const implementation = require(root + "/providers/core/runtime.js");
const files = ["SharedAmi", "RecoveryAlarm", "ConvertedHvmAmi", "SurrogateAmi"].map((kind) => {
  if (typeof implementation(root, kind).create !== "function") throw new Error(kind + " has no create");
  return Object.keys(require.cache).find((k) => k.includes("/providers/" + kind[0].toLowerCase() + kind.slice(1) + "."));
});
const loaded = Object.keys(require.cache);
console.log(JSON.stringify({ files, typescriptSources: loaded.filter((k) => k.endsWith(".ts")), tsNode: loaded.filter((k) => k.includes("/ts-node/")) }));
`;

function providerStart(root: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", PROVIDER_START, root], { cwd: root, env: { ...process.env, NODE_OPTIONS: "" } });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const treesIn = (root: string) => fs.readdirSync(path.join(root, ".local", "provider-js"));

describe("provider runtime (core/runtime.js: the implementation a stored provider loads)", () => {
  const copies: string[] = [];
  const copy = () => {
    copies.push(projectCopy());
    return copies[copies.length - 1];
  };
  after(() => copies.forEach((c) => fs.rmSync(c, { recursive: true, force: true })));

  it("loads JavaScript compiled into .local/provider-js, never TypeScript or ts-node", async () => {
    const root = copy();
    const run = await providerStart(root);
    assert.strictEqual(run.code, 0, run.stderr);
    assert.strictEqual(run.stderr, "", "no fallback warning");
    const seen = JSON.parse(run.stdout) as { files: string[]; typescriptSources: string[]; tsNode: string[] };
    const trees = treesIn(root);
    assert.strictEqual(trees.length, 1, trees.join(", "));
    for (const f of seen.files) assert.ok(f?.startsWith(path.join(root, ".local", "provider-js", trees[0], "providers")) && f.endsWith(".js"), f);
    assert.deepStrictEqual(seen.typescriptSources, []);
    assert.deepStrictEqual(seen.tsNode, []);
  });

  it("compiles a new tree when a source changes, and reuses it while none does", () => {
    const root = copy();
    const before = compiledProviders(root);
    assert.strictEqual(compiledProviders(root), before);
    fs.appendFileSync(path.join(root, "providers/core/naming.ts"), "\n// changed\n");
    const after = compiledProviders(root);
    assert.notStrictEqual(after, before);
    assert.ok(fs.readFileSync(path.join(after, "providers/core/naming.js"), "utf8").includes("// changed"));
    assert.ok(!fs.readFileSync(path.join(before, "providers/core/naming.js"), "utf8").includes("// changed"));
  });

  it("keeps the newest 4 compiled trees and removes nothing else in their folder", () => {
    const root = copy();
    const parent = path.join(root, ".local", "provider-js");
    fs.mkdirSync(parent, { recursive: true });
    fs.writeFileSync(path.join(parent, "notes.txt"), "not a tree");
    fs.mkdirSync(path.join(parent, "not-a-hash"));
    const old = ["0000000000000001", "0000000000000002", "0000000000000003", "0000000000000004", "0000000000000005"];
    old.forEach((name, i) => {
      fs.mkdirSync(path.join(parent, name));
      fs.utimesSync(path.join(parent, name), 1000 + i, 1000 + i);
    });
    const current = path.basename(compiledProviders(root));
    assert.deepStrictEqual(fs.readdirSync(parent).sort(), ["0000000000000003", "0000000000000004", "0000000000000005", current, "not-a-hash", "notes.txt"].sort());
  });

  it("lets two provider processes start at once on a project never compiled", async () => {
    const root = copy();
    const runs = await Promise.all([providerStart(root), providerStart(root)]);
    for (const run of runs) assert.strictEqual(run.code, 0, run.stderr);
    assert.strictEqual(treesIn(root).length, 1, "one tree, no temporary folder left");
    const [a, b] = runs.map((r) => JSON.parse(r.stdout).files);
    assert.deepStrictEqual(a, b);
  });

  it("falls back to the TypeScript through ts-node, with a warning, when it cannot compile", async () => {
    const root = copy();
    fs.writeFileSync(path.join(root, ".local"), "not a folder");
    const run = await providerStart(root);
    assert.strictEqual(run.code, 0, run.stderr);
    assert.match(run.stderr, /^ami-factory: loading the providers' TypeScript in process \(more memory\): .+\n$/);
    assert.ok((JSON.parse(run.stdout) as { files: string[] }).files.every((f) => f.startsWith(path.join(root, "providers")) && f.endsWith(".ts")));
  });
});
