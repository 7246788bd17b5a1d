import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { redactSecrets, secretEntry } from "../../providers/configSecrets";

describe("secrets from stack config", () => {
  it("wrap every field of an entry under a secret key but the names, regions and ids", async () => {
    const entry = secretEntry({ name: "os", imageName: "debian-12", region: "us-east-1", recipe: { kind: "script", script: "echo" }, tags: { a: "b" } }, true);
    assert.strictEqual(entry.name, "os");
    assert.strictEqual(entry.region, "us-east-1");
    assert.ok(pulumi.Output.isInstance(entry.recipe) && (await (entry.recipe as unknown as { isSecret: Promise<boolean> }).isSecret));
    assert.ok(pulumi.Output.isInstance(entry.tags));
  });

  it("leave entries of plain keys as they are", () => {
    const entry = { name: "os", tags: { a: "b" } };
    assert.strictEqual(secretEntry(entry, false), entry);
  });

  it("redact the values of secret keys from config error messages", () => {
    const all = { "ami-factory:builds": JSON.stringify([{ recipe: { mirror: "ftp://u:hunter22@m" } }]), "ami-factory:shares": "[]" };
    const message = 'ami-factory:builds[0].recipe.mirror must be a URL (got "ftp://u:hunter22@m")';
    assert.strictEqual(redactSecrets(message, all, (k) => k === "ami-factory:builds"), 'ami-factory:builds[0].recipe.mirror must be a URL (got "[secret]")');
    assert.strictEqual(redactSecrets(message, all, () => false), message);
  });
});
