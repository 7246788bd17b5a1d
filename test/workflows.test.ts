// The GitHub workflows (.github/workflows): actionlint finds nothing (syntax, expressions, action
// inputs, shell in run: steps), and deploy.yml keeps its order, approval and one-up-per-stack rules.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { SEMI_SPACE_FLAG } from "../scripts/local/nodeOptions";
import { readToolchain, REPO_ROOT } from "../scripts/local/toolchain";

const WORKFLOWS = path.join(REPO_ROOT, ".github", "workflows");

describe("GitHub workflows", () => {
  for (const file of ["preview.yml", "deploy.yml", "reap.yml"]) {
    it(`${file} passes actionlint`, () => {
      const r = spawnSync(readToolchain().actionlint, ["-no-color", path.join(WORKFLOWS, file)], { cwd: REPO_ROOT, encoding: "utf8" });
      assert.strictEqual(r.error, undefined, `actionlint did not run: ${r.error}`);
      assert.strictEqual(r.status, 0, `actionlint:\n${r.stdout}${r.stderr}`);
    });
  }

  for (const file of ["preview.yml", "deploy.yml"]) {
    it(`${file}: its pulumi runs get the provider's young-generation cap (scripts/local/nodeOptions.ts)`, () => {
      const text = fs.readFileSync(path.join(WORKFLOWS, file), "utf8");
      const env = /^env:\n((?:  .*\n)*)/m.exec(text);
      assert.ok(env, `${file} has no top-level env`);
      assert.match(env[1], new RegExp(`^  NODE_OPTIONS: ${SEMI_SPACE_FLAG}$`, "m"));
    });
  }

  it("deploy.yml: dev, then prod behind its environment; one up per stack at a time, never cancelled", () => {
    const text = fs.readFileSync(path.join(WORKFLOWS, "deploy.yml"), "utf8");
    const job = (name: string) => {
      const m = new RegExp(`^  ${name}:\\n((?:    .*\\n|\\n)*)`, "m").exec(text);
      assert.ok(m, `no job ${name}`);
      return m[1];
    };
    assert.match(text, /^on:\n  push:\n    branches: \[main\]/m);
    const dev = job("dev");
    const prod = job("prod");
    assert.match(prod, /^    needs: dev\b/m);
    assert.match(prod, /^    environment: prod\b/m);
    for (const [stack, body] of [["dev", dev], ["prod", prod]]) {
      assert.match(body, new RegExp(`concurrency:\\n      group: pulumi-up-${stack}\\n      cancel-in-progress: false`));
      assert.match(body, new RegExp(`stack-name: ${stack}\\n`));
      assert.match(body, /pulumi-version: \$\{\{ steps\.pulumi-version\.outputs\.version \}\}/);
      assert.match(body, /role-to-assume: \$\{\{ secrets\.AWS_DEPLOY_ROLE_ARN \}\}/);
    }
    assert.match(text, /^permissions:\n  id-token: write/m);
  });
});
