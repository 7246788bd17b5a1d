// The build's secrets as SSM parameters (providers/worker/buildSecret.ts) and the worker role's
// access to them (providers/worker/workerPolicy.ts): pure parts, without AWS.
import * as assert from "assert";
import { execFileSync } from "child_process";
import { ADVANCED_VALUE_MAX, encodeSecretArgs, MAX_SECRET_PARAMETERS, parameterArn, secretChunks, STANDARD_VALUE_MAX } from "../../providers/worker/buildSecret";
import { workerPolicyDocument } from "../../providers/worker/workerPolicy";
import { splitRecipeArgs } from "../../providers/surrogateAmi/recipe";

describe("build secrets", () => {
  it("are one Standard parameter up to 4 KB, Advanced chunks of 8 KB beyond", () => {
    assert.deepStrictEqual(secretChunks("a".repeat(STANDARD_VALUE_MAX)), { tier: "Standard", chunks: ["a".repeat(STANDARD_VALUE_MAX)] });
    const big = secretChunks("b".repeat(STANDARD_VALUE_MAX + 1));
    assert.strictEqual(big.tier, "Advanced");
    assert.deepStrictEqual(big.chunks.map((c) => c.length), [STANDARD_VALUE_MAX + 1]);
    const bigger = secretChunks("c".repeat(2 * ADVANCED_VALUE_MAX + 5));
    assert.deepStrictEqual(bigger.chunks.map((c) => c.length), [ADVANCED_VALUE_MAX, ADVANCED_VALUE_MAX, 5]);
    assert.strictEqual(bigger.chunks.join(""), "c".repeat(2 * ADVANCED_VALUE_MAX + 5));
    assert.strictEqual(secretChunks("d".repeat(MAX_SECRET_PARAMETERS * ADVANCED_VALUE_MAX)).chunks.length, MAX_SECRET_PARAMETERS);
    assert.throws(() => secretChunks("d".repeat(MAX_SECRET_PARAMETERS * ADVANCED_VALUE_MAX + 1)), /more than the 81920 a build's secret parameters hold: shorten recipe.script/);
  });

  it("encode arguments so that bash reads them back exactly (newlines, quotes, spaces, unicode)", () => {
    const args = ["--mirror", "https://u:p@ss'w\"d@m.example/debian", "--user-script-b64", "line 1\nline 2 ü", ""];
    const chunks = secretChunks(encodeSecretArgs(args)).chunks;
    const out = execFileSync("bash", ["-c", 'while IFS= read -r -d "" a; do printf "[%s]" "$a"; done < <(base64 -d <<<"$P")'], { env: { ...process.env, P: chunks.join("") }, encoding: "utf8" });
    assert.strictEqual(out, args.map((a) => `[${a}]`).join(""));
  });

  it("name exactly their parameters in the worker's policy, and nothing when there are none", () => {
    const arn = parameterArn("cn-north-1", "123456789012", "/ami-factory/build/b-1/x/0");
    assert.strictEqual(arn, "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/ami-factory/build/b-1/x/0");
    const doc = JSON.parse(workerPolicyDocument([arn])) as { Statement: { Sid: string; Action: string[]; Resource: string | string[] }[] };
    assert.deepStrictEqual(doc.Statement.find((s) => s.Sid === "BuildSecret"), { Sid: "BuildSecret", Effect: "Allow", Action: ["ssm:GetParameter"], Resource: [arn] });
    const none = JSON.parse(workerPolicyDocument([])) as { Statement: { Action: string[] }[] };
    assert.ok(!none.Statement.flatMap((s) => s.Action).some((a) => a.startsWith("ssm:GetParameter")));
  });

  it("let the worker read exactly the recipe's S3 objects, and no S3 at all without one", () => {
    const object = "arn:aws:s3:::images/debian-12.qcow2";
    const doc = JSON.parse(workerPolicyDocument([], [object])) as { Statement: { Sid: string; Action: string[]; Resource: string | string[] }[] };
    assert.deepStrictEqual(doc.Statement.find((s) => s.Sid === "RecipeObjects"), { Sid: "RecipeObjects", Effect: "Allow", Action: ["s3:GetObject"], Resource: [object] });
    const none = JSON.parse(workerPolicyDocument([])) as { Statement: { Action: string[] }[] };
    assert.ok(!none.Statement.flatMap((s) => s.Action).some((a) => a.startsWith("s3:")));
  });

  it("take the recipe's URLs and script out of the command's arguments", () => {
    const args = ["--recipe", "el", "--releasever", "2023", "--repo", "a=https://u:p@a", "--gpgkey", "a=https://a/K", "--packages", "x,y"];
    assert.deepStrictEqual(splitRecipeArgs(args), {
      plain: ["--recipe", "el", "--releasever", "2023", "--packages", "x,y"],
      secret: ["--repo", "a=https://u:p@a", "--gpgkey", "a=https://a/K"],
    });
    assert.deepStrictEqual(splitRecipeArgs(["--recipe", "script", "--user-script-b64", "ZQ=="]).secret, ["--user-script-b64", "ZQ=="]);
    assert.deepStrictEqual(splitRecipeArgs(["--recipe", "image", "--url", "s3://b/k", "--sha256", "00", "--format", "raw"]).plain, ["--recipe", "image", "--sha256", "00", "--format", "raw"]);
  });
});
