// What a user runs: the plain `pulumi` CLI on a copy of the project, through Pulumi.yaml and
// pulumi-language-nodejs (no automation API), against the emulator and a file backend.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";
import { startEmulator, Emulator } from "../support/emulator";
import { describeImage, seedPvImage } from "../support/aws";
import { copyProject, CliProject } from "../support/cli";
import { readToolchain, REPO_ROOT } from "../../scripts/local/toolchain";

describe("the plain pulumi CLI on a copy of the project (file backend)", function () {
  let emu: Emulator;
  let cli: CliProject;
  let sourceAmiId: string;
  let copyId: string;
  const secret = `for-the-platform-team-${process.pid}`;

  before(async () => {
    const tc = readToolchain();
    console.log(`      (pulumi ${tc.pulumiVersion}, language host ${path.basename(path.dirname(tc.languageHost))}/${path.basename(tc.languageHost)})`);
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false" } });
    Object.assign(process.env, emu.env);
    sourceAmiId = (await seedPvImage("us-east-1", "cli-base")).imageId;
    cli = copyProject(emu.env);
  });
  after(async () => {
    cli?.remove();
    await emu?.stop();
  });

  it("runs the language host and the engine's Node processes on Node 22 or newer", () => {
    const version = execFileSync("node", ["--version"], { env: cli.env, encoding: "utf8" }).trim();
    assert.ok(Number(/^v(\d+)/.exec(version)![1]) >= 22, `node on the CLI's PATH is ${version}`);
    const host = execFileSync("sh", ["-c", "command -v pulumi-language-nodejs"], { env: cli.env, encoding: "utf8" }).trim();
    assert.strictEqual(host, readToolchain().languageHost);
  });

  it("logs in, creates a stack and sets config (plain, --path, --secret)", async () => {
    fs.mkdirSync(path.join(cli.dir, "state"), { recursive: true });
    await cli.ok(["login", `file://${path.join(cli.dir, "state")}`]);
    await cli.ok(["stack", "init", "cli", "--secrets-provider", "passphrase"]);
    await cli.ok(["config", "set", "aws:region", "us-east-1"]);
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].name", "base"]);
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].sourceAmiId", sourceAmiId]);
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].regions[0]", "us-east-1"]);
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].regions[1]", "eu-west-1"]);
    await cli.ok(["config", "set", "--path", "--type", "string", "ami-factory:shares[0].accountIds[0]", "111122223333"]);
    await cli.ok(["config", "set", "--path", "--secret", "ami-factory:shares[0].description", secret]);
    const stackFile = fs.readFileSync(path.join(cli.dir, "Pulumi.cli.yaml"), "utf8");
    assert.ok(!stackFile.includes(secret), "the secret is written in clear into Pulumi.cli.yaml");
    assert.match(stackFile, /description:\s*\n\s*secure: /);
  });

  it("pulumi up --yes creates the share; the preview after it has no changes", async () => {
    const up = await cli.ok(["up", "--yes"]);
    assert.match(up.stdout, /\+ 3 created/); // the stack, the destroy-deletes-images marker, the share
    // Progress is attached to the resource, and the diagnostics keep only its summary.
    assert.match(up.stdout, /SharedAmi base creating \(\d+s\) step share: started/);
    const diagnostics = up.stdout.slice(up.stdout.indexOf("Diagnostics:"), up.stdout.indexOf("Outputs:", up.stdout.indexOf("Diagnostics:")));
    assert.match(diagnostics, /SharedAmi \(base\):\n    created: ami-\w+ in eu-west-1, ami-\w+ in us-east-1 \(\d+\.\d s, \d+ AWS API calls\)\n/);
    assert.doesNotMatch(diagnostics, /step |pulumi:pulumi:Stack/);
    assert.doesNotMatch(up.stdout + up.stderr, /NodeVersionSupportWarning|no longer support/i);
    await cli.ok(["preview", "--diff", "--expect-no-changes"]);
  });

  it("pulumi stack output --json has the image ids; the copy exists with the secret description", async () => {
    const out = JSON.parse((await cli.ok(["stack", "output", "--json"])).stdout);
    assert.strictEqual(out.images.base["us-east-1"], sourceAmiId, "the source region shares the source in place");
    copyId = out.images.base["eu-west-1"];
    const copy = await describeImage("eu-west-1", copyId);
    assert.ok(copy, `copy ${copyId} in eu-west-1`);
    assert.strictEqual(copy.Description, secret);
  });

  it("previews a config change as an in-place update (~), not a replacement", async () => {
    await cli.ok(["config", "set", "--path", "--type", "string", "ami-factory:shares[0].accountIds[1]", "444455556666"]);
    const preview = await cli.ok(["preview", "--diff"]);
    assert.match(preview.stdout, /~ pulumi-nodejs:dynamic\/ami-factory:SharedAmi: \(update\)/);
    // The shares key holds a secret (the description): its entries are secret inputs (configSecrets.ts), shown masked.
    assert.match(preview.stdout, /accountIds\s*: \[secret\]/);
    assert.match(preview.stdout, /~ 1 to update/);
    assert.doesNotMatch(preview.stdout, /\+-|replace/);
  });

  it("refuses a misspelt key with the program's own message, once, without a stack trace", async () => {
    await cli.ok(["config", "set", "--path", "ami-factory:shares[0].regoins[0]", "eu-west-1"]);
    const preview = await cli.run(["preview"]);
    assert.notStrictEqual(preview.code, 0);
    const text = preview.stdout + preview.stderr;
    const message = /ami-factory:shares\[0\]\.regoins[^\n]*/.exec(text);
    assert.ok(message, `no message naming the key:\n${text}`);
    assert.match(message[0], /known fields are .*regions/);
    assert.strictEqual(text.split(message[0]).length - 1, 1, `the message is printed more than once:\n${text}`);
    assert.doesNotMatch(text, /^\s+at .*\(.*\.[jt]s:\d+:\d+\)$/m, "a stack trace was printed");
    await cli.ok(["config", "rm", "--path", "ami-factory:shares[0].regoins"]);
    await cli.ok(["preview", "--diff"]);
  });

  it("a plain pulumi destroy --yes deletes the copy (the destroy-deletes-images marker) through the thin provider in the state, which loads the project it runs in", async () => {
    // The state holds a few lines of provider code that find the project from the provider's working
    // directory (this copy) and load its current implementation: no code, no path of any machine; the program (index.ts) is not needed.
    const state = JSON.parse((await cli.ok(["stack", "export"])).stdout);
    const share = state.deployment.resources.find((r: { type: string }) => r.type === "pulumi-nodejs:dynamic/ami-factory:SharedAmi");
    const stored = share?.inputs?.__provider;
    assert.ok(typeof stored === "string" && stored.length > 0 && stored.length < 3000, `the stored provider is ${stored?.length} characters`);
    for (const dir of [cli.dir, REPO_ROOT]) assert.ok(!stored.includes(dir), `the stored provider names ${dir}`);
    fs.rmSync(path.join(cli.dir, "index.ts"));
    await cli.ok(["destroy", "--yes"]);
    assert.strictEqual(await describeImage("eu-west-1", copyId), undefined, "the copy is still there");
    assert.ok(await describeImage("us-east-1", sourceAmiId), "the source must stay");
  });

});
