// Every guest script's SSM command fits AWS's limit with margin, the largest user script included:
// this fails when a script grows past it.
import * as assert from "assert";
import { bundleGuestScript } from "../../providers/worker/guestScript";
import { commandLines, parametersBytes, SEND_COMMAND_BUDGET_BYTES, SEND_COMMAND_PARAMETERS_MAX_BYTES } from "../../providers/worker/command";
import { checkSurrogateAmi, USER_SCRIPT_MAX_BYTES } from "../../providers/surrogateAmi/inputs";
import { surrogateArgs } from "../../providers/surrogateAmi/build";

const volumes = { source: "vol-0123456789abcdef0", target: "vol-0123456789abcdef1" };
const sizeOf = (script: string, args: string[]) => parametersBytes({ commands: commandLines({ name: "x", script, args }, volumes), executionTimeout: ["86400"] });

describe("SSM command size", () => {
  it("keeps a margin of at least 8 KB under AWS's 64 KB", () => {
    assert.ok(SEND_COMMAND_PARAMETERS_MAX_BYTES - SEND_COMMAND_BUDGET_BYTES >= 8 * 1024);
  });

  it("fits pv2hvm with its arguments", () => {
    const bytes = sizeOf(bundleGuestScript("pv2hvm.sh").content, ["--source", "{volume:source}", "--target", "{volume:target}", "--sanitize"]);
    assert.ok(bytes <= SEND_COMMAND_BUDGET_BYTES, `${bytes} bytes`);
  });

  it("fits surrogate with the largest recipe.script allowed", () => {
    const script = "#!/bin/bash\n" + Array.from({ length: USER_SCRIPT_MAX_BYTES }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 90))).join("").slice(0, USER_SCRIPT_MAX_BYTES - 12);
    const { inputs, failures } = checkSurrogateAmi({ name: "big", region: "us-east-1", scope: "p/s/big", guestScriptSha256: "-", recipe: { kind: "script", script } });
    assert.deepStrictEqual(failures, []);
    const bytes = sizeOf(bundleGuestScript("surrogate.sh").content, surrogateArgs(inputs!));
    assert.ok(bytes <= SEND_COMMAND_BUDGET_BYTES, `${bytes} bytes`);
  });

  it("refuses a recipe.script one byte over the limit, naming the field", () => {
    const { failures } = checkSurrogateAmi({ name: "big", region: "us-east-1", scope: "p/s/big", guestScriptSha256: "-", recipe: { kind: "script", script: "x".repeat(USER_SCRIPT_MAX_BYTES + 1) } });
    assert.match(failures.map((f) => `${f.property}: ${f.reason}`).join("\n"), /recipe\.script: recipe\.script is 12289 bytes: at most 12288 fit/);
  });

  it("would not fit the surrogate bundle uncompressed (why it is compressed)", () => {
    assert.ok(Buffer.byteLength(bundleGuestScript("surrogate.sh").content) > SEND_COMMAND_PARAMETERS_MAX_BYTES);
  });
});
