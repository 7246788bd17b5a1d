// The toolchain scripts/setup.sh chose: the tests, the engine's Node processes and the plain CLI
// path all run on Node 22 or newer (package.json engines), and the root project carries no
// resource provider (the example consumer has its own package.json).
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as path from "path";
import { localEngineEnv } from "../scripts/local/engine";
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
