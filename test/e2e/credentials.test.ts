// A recipe's credentials (a mirror's user:password@, a token in recipe.script), set as config
// secrets, through the real engine: they reach the worker only in the build's own SSM SecureString
// parameter, which exists while the build runs, is readable by that build's worker role only, and is
// gone after it, failed or not; they appear in no other recorded AWS call, nor in the state or the
// engine's output.
import * as assert from "assert";
import { execFileSync } from "child_process";
import type { LocalWorkspace } from "@pulumi/pulumi/automation";
import { buildParameters, leftovers } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { killHard, processTree } from "../support/processes";
import { testStack } from "../support/stack";
import { sweep } from "../../scripts/sweep";
import { findLeftovers } from "../../providers/core/sweep";
import { SURROGATE_FACTS } from "../support/facts";

describe("a recipe's credentials", function () {
  let emu: Emulator;
  useEmulator({ iam: true, recordEachTest: true }, (e) => (emu = e));

  const password = `pw-${process.pid}-k3y`;
  const token = `tok-${process.pid}-z8`;
  const mirror = `https://builder:${password}@mirror.example.com/debian`;
  const script = `#!/bin/bash\ncurl -H 'Authorization: Bearer ${token}' https://artifacts.example.com/rootfs.tar | tar -x -C "$TARGET_ROOT"\n`;

  /** A stack of a debian build and a script build whose mirror and script are config secrets. */
  async function credentialedStack() {
    const t = await testStack(emu, {
      builds: [
        { name: "deb", imageName: "debian-12", recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" }, verify: false },
        { name: "scr", imageName: "scripted", recipe: { kind: "script", script: "echo placeholder" }, verify: false },
      ],
    });
    // As a user would: pulumi config set --secret --path.
    await t.stack.setConfig("ami-factory:builds[0].recipe.mirror", { value: mirror, secret: true }, true);
    await t.stack.setConfig("ami-factory:builds[1].recipe.script", { value: script, secret: true }, true);
    return t;
  }

  /** The build parameters seen while `during` runs (polled), to show they existed then. */
  async function watchParameters<T>(during: Promise<T>): Promise<{ result: PromiseSettledResult<T>; seen: Set<string> }> {
    const seen = new Set<string>();
    let done = false;
    const poll = (async () => {
      while (!done) {
        for (const n of await buildParameters().catch(() => [])) seen.add(n);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const [result] = await Promise.allSettled([during]);
    done = true;
    await poll;
    return { result, seen };
  }

  /** Where a secret appears in the recorded calls: "Action.param" for each. */
  async function recordedWith(secret: string): Promise<string[]> {
    const found: string[] = [];
    for (const call of await emu.allCalls()) {
      for (const [k, v] of Object.entries(call.params as Record<string, unknown>)) if (JSON.stringify(v).includes(secret)) found.push(`${call.action}.${k}`);
    }
    return found;
  }

  it("travel only in the build's SecureString parameter, which only its worker role may read and which is gone after the build; never in other calls, the state or the output", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(SURROGATE_FACTS)}\n` });
    const t = await credentialedStack();
    const printed: string[] = [];
    const { result, seen } = await watchParameters(t.stack.up({ onOutput: (s) => printed.push(s) }));
    assert.strictEqual(result.status, "fulfilled", result.status === "rejected" ? String(result.reason) : "");
    const preview = await t.stack.preview({ diff: true, onOutput: (s) => printed.push(s) });
    printed.push(preview.stdout, preview.stderr);

    // One parameter per build, SecureString, not overwriting, tagged with its build id, under its build id.
    const puts = await emu.calls<{ Name: string; Value: string; Type: string; Tier: string; Overwrite: boolean; Tags: { Key: string; Value: string }[] }>("PutParameter");
    assert.strictEqual(puts.length, 2);
    const args = puts.map((p) => Buffer.from(p.Value, "base64").toString("utf8").split("\0"));
    for (const p of puts) {
      assert.deepStrictEqual([p.Type, p.Tier, p.Overwrite], ["SecureString", "Standard", false]);
      const buildId = p.Tags.find((x) => x.Key === "ami-factory:build-id")?.Value;
      assert.ok(buildId && p.Name.startsWith(`/ami-factory/build/${buildId}/`), `${p.Name} is under its build id ${buildId}`);
      assert.ok(seen.has(p.Name), `${p.Name} existed while the build ran`);
    }
    assert.ok(args.some((a) => a.includes("--mirror") && a.includes(mirror)), "the mirror is in a parameter");
    assert.ok(args.some((a) => a.includes("--user-script-b64") && a.includes(Buffer.from(script).toString("base64"))), "the script is in a parameter");

    // SendCommand names the parameters and carries neither the mirror nor the script.
    const sends = await emu.calls<{ Parameters: { commands: string[] } }>("SendCommand");
    assert.strictEqual(sends.length, 2);
    const named = sends.map((s) => /'--secret-args' '([^']+)'/.exec(s.Parameters.commands.at(-1)!)?.[1]);
    assert.deepStrictEqual(named.sort(), puts.map((p) => p.Name).sort());
    for (const s of sends) assert.ok(!/mirror\.example\.com|--user-script-b64|--mirror/.test(s.Parameters.commands.join("\n")));

    // Each worker role may read exactly its own build's parameter.
    const policies = await emu.calls<{ RoleName: string; PolicyDocument: string }>("PutRolePolicy");
    assert.strictEqual(policies.length, 2);
    const readable = policies.map((p) => (JSON.parse(p.PolicyDocument) as { Statement: { Sid: string; Action: string[]; Resource: string[] }[] }).Statement.filter((s) => [s.Action].flat().some((a) => /^ssm:GetParameter/.test(a))));
    assert.deepStrictEqual(
      readable.map((st) => st.map((s) => [s.Action, s.Resource])).sort(),
      puts.map((p) => [[["ssm:GetParameter"], [`arn:aws:ssm:us-east-1:123456789012:parameter${p.Name}`]]]).sort(),
    );

    // Gone after the build.
    const deleted = (await emu.calls<{ Names: string[] }>("DeleteParameters")).flatMap((d) => d.Names);
    assert.deepStrictEqual(deleted.sort(), puts.map((p) => p.Name).sort());
    assert.deepStrictEqual(await buildParameters(), []);
    assert.deepStrictEqual(await leftovers(), []);

    // Nowhere in plain text: recorded calls (the parameters' values are base64 of the arguments, the
    // only place they travel, checked above), state, engine output.
    for (const secret of [password, token]) {
      assert.deepStrictEqual(await recordedWith(secret), [], `${secret} in recorded calls`);
      // `pulumi stack export` as a reader of the state sees it (the Automation API's exportStack adds --show-secrets).
      const ws = t.stack.workspace as LocalWorkspace;
      const state = execFileSync(ws.pulumiCommand.command, ["stack", "export", "--stack", t.stack.name], { cwd: t.workDir, env: { ...process.env, ...ws.envVars }, encoding: "utf8" });
      assert.match(state, /"resources"/);
      assert.ok(!state.includes(secret), `${secret} in the exported state`);
      const files = execFileSync("bash", ["-c", `grep -rl -- "${secret}" "${t.workDir}" || true`], { encoding: "utf8" }).trim();
      assert.strictEqual(files, "", `plaintext secret in ${files}`);
      assert.ok(!printed.join("").includes(secret), "the engine printed a secret");
    }
    await t.stack.destroy({});
  });

  it("are deleted with the parameter when the build fails halfway", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Failed", stderr: "surrogate: error: debootstrap failed" });
    const t = await credentialedStack();
    const printed: string[] = [];
    const { result, seen } = await watchParameters(t.stack.up({ onOutput: (s) => printed.push(s) }));
    assert.strictEqual(result.status, "rejected", "the build fails");
    const puts = (await emu.calls<{ Name: string }>("PutParameter")).map((p) => p.Name);
    assert.strictEqual(puts.length, 2);
    for (const n of puts) assert.ok(seen.has(n), `${n} existed while the build ran`);
    assert.deepStrictEqual(await buildParameters(), [], "no parameter is left");
    assert.deepStrictEqual(await leftovers(), []);
    for (const secret of [password, token]) {
      assert.deepStrictEqual(await recordedWith(secret), []);
      assert.ok(!printed.join("").includes(secret), "the engine printed a secret");
    }
    await t.stack.destroy({});
  });

  it("are swept with the parameter by npm run sweep when the engine dies mid-build", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "InProgress" }); // the guest step never ends
    const t = await credentialedStack();
    const up = t.stack.up({ onOutput: t.onOutput }).then(() => "finished", () => "failed");
    for (const end = Date.now() + 120_000; (await emu.calls("SendCommand")).length < 2; ) {
      assert.ok(Date.now() < end, "timed out waiting for the guest scripts to be sent");
      await new Promise((r) => setTimeout(r, 250));
    }
    killHard(processTree(["pulumi", "up", `--stack ${t.stack.name}`]));
    assert.strictEqual(await up, "failed");
    const left = await buildParameters();
    assert.strictEqual(left.length, 2, `the crash left the parameters: ${left}`);
    // A re-run of one build looks for its own leftovers only (core/sweep.ts, by build id).
    const buildId = left[0].split("/")[3];
    const own = (await findLeftovers("us-east-1", { buildId }, { iam: false })).filter((f) => f.kind === "parameter");
    assert.deepStrictEqual(own.map((f) => [f.id, f.buildId]), [[left[0], buildId]]);
    const swept = await sweep({ stack: t.stack.name, regions: ["us-east-1"], olderThanMs: 0, yes: true }, () => undefined);
    assert.deepStrictEqual(swept.failures, []);
    assert.deepStrictEqual(swept.found.filter((f) => f.kind === "parameter").map((f) => f.id).sort(), left.sort());
    assert.deepStrictEqual(await leftovers(), []);
  });
});
