// The toolchain scripts/setup.sh chose: the tests, the engine's Node processes and the plain CLI
// path all run on Node 22 or newer (package.json engines), and the root project carries no
// resource provider (the example consumer has its own package.json).
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as path from "path";
import { localEngineEnv } from "../scripts/local/engine";
import { SEMI_SPACE_FLAG, withYoungGenerationCap } from "../scripts/local/nodeOptions";
import { readToolchain, REPO_ROOT } from "../scripts/local/toolchain";

const major = (v: string) => Number(/^v?(\d+)\./.exec(v)![1]);

describe("toolchain", () => {
  it("runs the tests on Node 22 or 24", () => {
    assert.ok([22, 24].includes(major(process.version)), `the tests run on node ${process.version}: run them through npm test (or scripts/local/with-toolchain.sh)`);
  });

  it("gives the engine's Node processes (language host, dynamic providers) the same Node", () => {
    const env = localEngineEnv(path.join(REPO_ROOT, ".local"), {});
    const version = execFileSync("node", ["--version"], { env: { ...process.env, ...env }, encoding: "utf8" }).trim();
    assert.ok([22, 24].includes(major(version)), `node on the engine's PATH is ${version}`);
    assert.strictEqual(version, process.version);
  });

  it("caps the young generation of the engine's Node processes at Node 22's size (32 MiB)", () => {
    const env = localEngineEnv(path.join(REPO_ROOT, ".local"), {});
    // Survivors make V8 grow the young generation to its maximum: 128 MiB on Node 24 without the cap.
    const grow = `const v8 = require("v8"); let max = 0; const keep = [];
      for (let r = 0; r < 20; r++) { for (let i = 0; i < 3e5; i++) keep.push({ i, s: "x" + i }); if (keep.length > 1e6) keep.splice(0, 5e5);
        max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size); }
      console.log(max / 2 ** 20);`;
    const mib = Number(execFileSync("node", ["-e", grow], { env: { ...process.env, ...env }, encoding: "utf8" }).trim());
    assert.ok(mib > 0 && mib <= 32, `young generation grew to ${mib} MiB with NODE_OPTIONS=${env.NODE_OPTIONS}`);
  });

  it("adds the young-generation cap to the user's NODE_OPTIONS, and keeps a size the user set", () => {
    assert.strictEqual(withYoungGenerationCap(undefined), SEMI_SPACE_FLAG);
    assert.strictEqual(withYoungGenerationCap(" --enable-source-maps "), `--enable-source-maps ${SEMI_SPACE_FLAG}`);
    assert.strictEqual(withYoungGenerationCap("--max-semi-space-size=64"), "--max-semi-space-size=64");
    assert.strictEqual(withYoungGenerationCap("--max_semi_space_size=8 --trace-warnings"), "--max_semi_space_size=8 --trace-warnings");
  });

  it("pins the Pulumi CLI and the SDK to the same or the nearest release", () => {
    const pkg = require(path.join(REPO_ROOT, "package.json"));
    const cli = pkg.config.pulumiCli.split(".").map(Number);
    const sdk = pkg.dependencies["@pulumi/pulumi"].split(".").map(Number);
    assert.strictEqual(readToolchain().pulumiVersion, pkg.config.pulumiCli);
    assert.strictEqual(sdk[0], cli[0]);
    assert.ok(Math.abs(sdk[1] - cli[1]) <= 2, `SDK ${sdk.join(".")} and CLI ${cli.join(".")} are more than two releases apart`);
  });

  it("has no resource provider package at the root (npm ls)", () => {
    const tree = JSON.parse(execFileSync("npm", ["ls", "--all", "--json"], { cwd: REPO_ROOT, encoding: "utf8" }));
    const found: string[] = [];
    const walk = (deps: Record<string, { dependencies?: object }> = {}, at: string) => {
      for (const [name, d] of Object.entries(deps)) {
        if (/^@pulumi\/(?!pulumi$)/.test(name)) found.push(`${at} > ${name}`);
        walk(d.dependencies as Record<string, { dependencies?: object }>, `${at} > ${name}`);
      }
    };
    walk(tree.dependencies, "ami-factory");
    assert.deepStrictEqual(found, []);
  });
});
