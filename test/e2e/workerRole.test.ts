// The worker's temporary role, through the real engine: an inline policy with the SSM agent's calls
// and read access to the build's own secret parameter, nothing else (no managed policy, no wildcard), under the role path and permissions
// boundary asked for, and gone after the build.
import * as assert from "assert";
import { leftovers } from "../support/aws";
import type { Emulator } from "../support/emulator";
import { useEmulator } from "../support/hooks";
import { testStack } from "../support/stack";
import { SURROGATE_FACTS } from "../support/facts";
import { SSM_AGENT_ACTIONS } from "../../providers/worker/workerPolicy";

const BOUNDARY = "arn:aws:iam::123456789012:policy/ami-factory-boundary";

describe("the worker's role", function () {
  let emu: Emulator;
  useEmulator({ iam: true, recordEachTest: true }, (e) => (emu = e));

  it("has an inline policy with the SSM agent's calls only: no managed policy, no wildcard parameter access; path and boundary as asked", async () => {
    await emu.failSsmCommands({ match: "surrogate", status: "Success", output: `${JSON.stringify(SURROGATE_FACTS)}\n` });
    const build = { name: "base", imageName: "scripted", recipe: { kind: "script", script: "echo hello" }, verify: false, worker: { rolePath: "/ami-factory/", permissionsBoundary: BOUNDARY } };
    const t = await testStack(emu, { builds: [build] });
    await t.stack.up({ onOutput: t.onOutput });

    const [role] = await emu.calls("CreateRole");
    assert.strictEqual(role.Path, "/ami-factory/");
    assert.strictEqual(role.PermissionsBoundary, BOUNDARY);
    assert.deepStrictEqual(await emu.calls("AttachRolePolicy"), [], "no managed policy");
    const puts = await emu.calls("PutRolePolicy");
    assert.strictEqual(puts.length, 1);
    const doc = JSON.parse(puts[0].PolicyDocument) as { Statement: { Sid: string; Effect: string; Action: string[] | string; Resource: string | string[] }[] };
    const agent = doc.Statement.filter((st) => st.Sid !== "BuildSecret");
    const actions = agent.flatMap((st) => [st.Action].flat());
    assert.deepStrictEqual(actions.sort(), [...SSM_AGENT_ACTIONS].sort());
    for (const a of actions) {
      assert.ok(!a.includes("*"), `no wildcard action: ${a}`);
      assert.ok(!/^ssm:GetParameter|^ssm:\*|^secretsmanager:|^kms:/i.test(a), `no parameter or secret access: ${a}`);
    }
    // The recipe's script reaches the worker in the build's own parameter: readable by name, and only it.
    const parameters = (await emu.calls("PutParameter")).map((p) => p.Name);
    assert.strictEqual(parameters.length, 1);
    const secret = doc.Statement.filter((st) => st.Sid === "BuildSecret");
    assert.deepStrictEqual(secret.map((st) => [st.Action, st.Resource]), [[["ssm:GetParameter"], [`arn:aws:ssm:us-east-1:123456789012:parameter${parameters[0]}`]]]);
    assert.deepStrictEqual(await leftovers(), [], "the role, its policy and the profile are gone after the build");
    const deletes = await emu.calls("DeleteRolePolicy");
    assert.deepStrictEqual(deletes.map((d) => d.RoleName), [role.RoleName]);
    await t.stack.destroy({ onOutput: t.onOutput });
  });
});
