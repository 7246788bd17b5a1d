import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import Module = require("module");
import * as pulumi from "@pulumi/pulumi";
import { thinProvider } from "../../providers/core/provider";
import { sharedAmiProvider } from "../../providers/sharedAmi";

const REPO_ROOT = path.resolve(__dirname, "../..");

/** Serialises a provider as pulumi.dynamic.Resource does, and evaluates it as the dynamic-provider plugin does. */
async function roundTrip(provider: pulumi.dynamic.ResourceProvider): Promise<{ text: string; provider: pulumi.dynamic.ResourceProvider }> {
  const { text } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  const M = Module as unknown as { new (id: string, parent?: NodeModule): NodeModule & { _compile(code: string, file: string): void }; _nodeModulePaths(dir: string): string[] };
  const m = new M("serialised-provider", module);
  m.paths = M._nodeModulePaths(process.cwd());
  m._compile(text, "serialised-provider.js");
  return { text, provider: (m.exports as { handler(): pulumi.dynamic.ResourceProvider }).handler() };
}

describe("thin provider (what a resource stores as its provider)", () => {
  it("is a few KB of code with no absolute path in it", async () => {
    const { text } = await roundTrip(thinProvider("SharedAmi"));
    assert.ok(text.length < 2400, `${text.length} bytes`);
    assert.ok(!text.includes(REPO_ROOT) && !text.includes(os.homedir()), "no path of this machine");
  });

  it("loads the implementation from the project found above the provider's working directory", async () => {
    const saved = process.cwd();
    try {
      process.chdir(path.join(REPO_ROOT, "providers", "sharedAmi"));
      const { provider } = await roundTrip(thinProvider("SharedAmi"));
      const checked = await provider.check!({}, { regions: ["eu-west-1"] });
      assert.ok(checked.failures?.some((f) => f.property === "sourceAmiId"), JSON.stringify(checked.failures));
      const direct = await sharedAmiProvider.check!({} as never, { regions: ["eu-west-1"] } as never);
      assert.deepStrictEqual(checked, direct, "the same implementation answers");
    } finally {
      process.chdir(saved);
    }
  });

  it("says where it looked when the provider runs outside the project", async () => {
    const saved = process.cwd();
    try {
      const { provider } = await roundTrip(thinProvider("SharedAmi"));
      process.chdir(os.tmpdir());
      await assert.rejects(async () => provider.check!({}, {}), new RegExp(`no ami-factory project at or above ${os.tmpdir()}`));
    } finally {
      process.chdir(saved);
    }
  });

  it("refuses a providers/core/runtime.js of another project above the stack folder, without running it", async () => {
    const saved = process.cwd();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "foreign-project-"));
    const ran = path.join(root, "ran");
    try {
      fs.mkdirSync(path.join(root, "providers/core"), { recursive: true });
      fs.writeFileSync(path.join(root, "providers/core/runtime.js"), `require("fs").writeFileSync(${JSON.stringify(ran)}, "ran"); module.exports = () => ({});`);
      fs.writeFileSync(path.join(root, "package.json"), JSON.stringify({ name: "not-ami-factory" }));
      fs.mkdirSync(path.join(root, "stacks/dev"), { recursive: true });
      const { provider } = await roundTrip(thinProvider("SharedAmi"));
      process.chdir(path.join(root, "stacks/dev"));
      await assert.rejects(async () => provider.check!({}, {}), /refusing .*providers\/core\/runtime\.js: not ami-factory's/);
      fs.unlinkSync(path.join(root, "package.json"));
      await assert.rejects(async () => provider.check!({}, {}), /refusing .*: not ami-factory's/);
      assert.ok(!fs.existsSync(ran), "the foreign runtime.js never ran");
    } finally {
      process.chdir(saved);
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
