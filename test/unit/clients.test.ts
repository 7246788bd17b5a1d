import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import Module = require("module");
import { ec2Client, ec2Sdk, iamClient, ssmClient } from "../../providers/core/clients";

/** Evaluates serialised provider code as the dynamic-provider plugin does (a module resolving from the cwd). */
function evaluate(text: string): { handler: () => unknown } {
  const M = Module as unknown as { new (id: string, parent?: NodeModule): NodeModule & { _compile(code: string, file: string): void }; _nodeModulePaths(dir: string): string[] };
  const m = new M("serialised-closure", module);
  m.paths = M._nodeModulePaths(process.cwd());
  m._compile(text, "serialised-closure.js");
  return m.exports;
}

describe("AWS client factory", () => {
  it("loads each SDK module once: the module itself, not a per-call copy of its exports", () => {
    assert.strictEqual(ec2Sdk(), ec2Sdk());
    assert.strictEqual(ec2Sdk(), require("@aws-sdk/client-ec2"));
  });

  it("loads once inside a provider closure serialised by Pulumi as well: a plain require, no import helper", async () => {
    const serialized = await pulumi.runtime.serializeFunction(() => [ec2Sdk() === ec2Sdk(), ec2Sdk() === require("@aws-sdk/client-ec2"), Object.keys(ec2Sdk()).length]);
    assert.doesNotMatch(serialized.text, /__importStar|import\(/);
    const [same, theModule, exports] = evaluate(serialized.text).handler() as [boolean, boolean, number];
    assert.strictEqual(same, true);
    assert.strictEqual(theModule, true);
    assert.ok(exports > 4000, `client-ec2 has its thousands of exports (${exports})`);
  });

  it("reuses one client per region (adaptive retries learn across calls), a separate one per region", async () => {
    assert.strictEqual(await ec2Client("eu-west-1"), await ec2Client("eu-west-1"));
    assert.notStrictEqual(await ec2Client("eu-west-1"), await ec2Client("us-east-1"));
  });

  it("keeps the maxAttempts: 1 variants apart from the retrying clients", async () => {
    const once = await ssmClient("eu-west-1", { maxAttempts: 1 });
    assert.strictEqual(once, await ssmClient("eu-west-1", { maxAttempts: 1 }));
    assert.notStrictEqual(once, await ssmClient("eu-west-1"));
    assert.strictEqual(await once.config.maxAttempts(), 1);
    assert.strictEqual(await (await ssmClient("eu-west-1")).config.maxAttempts(), 10);
    assert.notStrictEqual(await iamClient("us-east-1", { maxAttempts: 1 }), await iamClient("us-east-1"));
  });

  it("makes a new client when the endpoint changes (a test pointing at another emulator)", async () => {
    const saved = process.env.AWS_ENDPOINT_URL;
    try {
      process.env.AWS_ENDPOINT_URL = "http://127.0.0.1:1";
      const a = await ec2Client("eu-west-1");
      process.env.AWS_ENDPOINT_URL = "http://127.0.0.1:2";
      assert.notStrictEqual(a, await ec2Client("eu-west-1"));
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
      else process.env.AWS_ENDPOINT_URL = saved;
    }
  });
});
