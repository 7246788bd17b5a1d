// Team state: the self-managed S3 backend (on the emulator's S3) with an awskms:// secrets provider
// (the emulator's KMS), driven by the plain CLI on a copy of the project. Two `pulumi up` on one
// stack at once: the second is refused by the backend's lock, the first finishes, and nothing is
// left to `pulumi cancel`.
import * as assert from "assert";
import { execFileSync } from "child_process";
import { startEmulator, Emulator } from "../support/emulator";
import { describeImage, seedPvImage } from "../support/aws";
import { copyProject, CliProject, CliResult } from "../support/cli";
import { startGateProxy } from "../support/gateProxy";
import { readToolchain } from "../../scripts/local/toolchain";

const BUCKET = "ami-factory-state";

/** Keys under `prefix` in the emulator's bucket (ListObjectsV2, path-style, unsigned: moto accepts it). */
async function keys(endpoint: string, prefix: string): Promise<string[]> {
  const res = await fetch(`${endpoint}/${BUCKET}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  if (!res.ok) throw new Error(`ListObjectsV2 ${res.status}: ${await res.text()}`);
  return [...(await res.text()).matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]);
}

describe("the S3 backend (team state) on the emulator", function () {
  let emu: Emulator;
  let cli: CliProject;
  let sourceAmiId: string;

  before(async () => {
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false" } });
    Object.assign(process.env, emu.env);
    sourceAmiId = (await seedPvImage("us-east-1", "team-base")).imageId;
    const made = await fetch(`${emu.endpoint}/${BUCKET}`, { method: "PUT" });
    assert.ok(made.ok, `CreateBucket: ${made.status} ${await made.text()}`);
    // The state's secrets key: a KMS key with an alias, as a team would create once.
    execFileSync(readToolchain().motoPython, ["-c", `
import boto3
kms = boto3.client("kms", region_name="us-east-1")
key = kms.create_key(Description="ami-factory state secrets")["KeyMetadata"]["KeyId"]
kms.create_alias(AliasName="alias/ami-factory-state", TargetKeyId=key)
`], { env: { ...process.env, ...emu.env } });
    cli = copyProject(emu.env);
  });
  after(async () => {
    cli?.remove();
    await emu?.stop();
  });

  // The URL the CLI's S3 opener (gocloud.dev s3blob) takes: endpoint, path-style addressing
  // (s3ForcePathStyle, which the CLI accepts for use_path_style), region.
  const backendUrl = () => `s3://${BUCKET}?endpoint=${emu.endpoint}&s3ForcePathStyle=true&region=us-east-1`;

  it("logs in to s3://…, creates a stack with awskms:// secrets, runs up and a no-change preview", async () => {
    await cli.ok(["login", backendUrl()]);
    await cli.ok(["stack", "init", "team", "--secrets-provider", "awskms://alias/ami-factory-state?region=us-east-1"]);
    await cli.ok(["config", "set", "aws:region", "us-east-1"]);
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].name", "base"]);
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].sourceAmiId", sourceAmiId]);
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].regions[0]", "eu-west-1"]);
    await cli.ok(["config", "set", "--path", "--secret", "ami-factory:shares[0].description", "team copy"]);
    await cli.ok(["up", "--yes"]);
    await cli.ok(["preview", "--diff", "--expect-no-changes"]);
    const stateKeys = await keys(emu.endpoint, ".pulumi/stacks/");
    assert.ok(stateKeys.some((k) => /\/team\.json$/.test(k)), `no stack state in the bucket: ${stateKeys.join(", ")}`);
    assert.deepStrictEqual(await keys(emu.endpoint, ".pulumi/locks/"), [], "a lock is left after up");
  });

  it("refuses a second concurrent up on the stack by its lock; the first finishes and leaves no lock", async () => {
    await cli.ok(["config", "set", "--path", "--type", "string", "ami-factory:shares[0].accountIds[0]", "111122223333"]);
    // The first up is held in flight (its provider's ModifyImageAttribute waits at a gate in front
    // of the emulator) until the second has been refused: no race on timing.
    const gate = await startGateProxy(emu.endpoint, /Action=ModifyImageAttribute/);
    try {
      let firstDone = false;
      const first = cli.run(["up", "--yes"], { env: { AWS_ENDPOINT_URL: gate.url } }).then((r) => ((firstDone = true), r));
      const which = await Promise.race([gate.holding.then(() => "held"), first.then(() => "ended")]);
      if (which === "ended") assert.fail(`the first up ended before its update began:\n${JSON.stringify(await first)}`);
      const locks = await keys(emu.endpoint, ".pulumi/locks/");
      assert.strictEqual(locks.length, 1, `the first up holds one lock: ${locks.join(", ")}`);
      const second: CliResult = await cli.run(["up", "--yes"]);
      assert.ok(!firstDone, "the first up must still be running when the second is refused");
      gate.open();
      const done = await first;
      assert.strictEqual(done.code, 0, `the first up failed:\n${done.stdout}\n${done.stderr}`);
      assert.notStrictEqual(second.code, 0, "the second up was not refused");
      assert.match(second.stdout + second.stderr, /the stack is currently locked by 1 lock\(s\)/);
    } finally {
      gate.open();
      await gate.stop();
    }

    assert.deepStrictEqual(await keys(emu.endpoint, ".pulumi/locks/"), [], "a lock is left: `pulumi cancel` would be needed");
    await cli.ok(["preview", "--diff", "--expect-no-changes"]);
    const out = JSON.parse((await cli.ok(["stack", "output", "--json"])).stdout);
    const copyId = out.images.base["eu-west-1"];
    assert.ok(await describeImage("eu-west-1", copyId), "the copy the state names exists");
    // The shares key holds a secret (the description), so its entries are secret in the state (configSecrets.ts).
    const state = JSON.parse((await cli.ok(["stack", "export", "--show-secrets"])).stdout);
    const share = state.deployment.resources.find((r: { type: string }) => r.type === "pulumi-nodejs:dynamic/ami-factory:SharedAmi");
    const plain = (v: unknown) => (v && typeof v === "object" && "plaintext" in v ? JSON.parse(String((v as { plaintext: string }).plaintext)) : v);
    assert.deepStrictEqual(plain(share.outputs.accountIds), ["111122223333"], "the first up's change is in the state");
    assert.strictEqual(state.deployment.pending_operations, undefined, "pending operations in the state");
  });

  it("destroys through the S3 backend", async () => {
    const out = JSON.parse((await cli.ok(["stack", "output", "--json"])).stdout);
    await cli.ok(["destroy", "--yes"]);
    assert.strictEqual(await describeImage("eu-west-1", out.images.base["eu-west-1"]), undefined);
    assert.deepStrictEqual(await keys(emu.endpoint, ".pulumi/locks/"), []);
  });
});
