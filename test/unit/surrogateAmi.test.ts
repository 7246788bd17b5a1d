import * as assert from "assert";
import { refusesEach } from "../support/table";
import { checkSurrogateAmi, diffSurrogateAmi, recipeArgs, recipeTags, SurrogateAmiOutputs } from "../../providers/surrogateAmi/inputs";
import { surrogateArgs } from "../../providers/surrogateAmi/build";

const debian = { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" };
const valid = { name: "debian-12-base", recipe: debian, region: "us-east-1", scope: "p/s/base", guestScriptSha256: "abc" };

describe("SurrogateAmi check", () => {
  it("fills in the defaults: x86_64, 8 GiB, BIOS, IMDSv2, sanitize", () => {
    const { inputs, failures } = checkSurrogateAmi(valid);
    assert.deepStrictEqual(failures, []);
    assert.strictEqual(inputs!.architecture, "x86_64");
    assert.strictEqual(inputs!.rootSizeGiB, 8);
    assert.strictEqual(inputs!.bootMode, "legacy-bios");
    assert.strictEqual(inputs!.imdsSupport, "v2.0");
    assert.strictEqual(inputs!.sanitize, true);
  });

  it("boots arm64 with UEFI by default", () => {
    assert.strictEqual(checkSurrogateAmi({ ...valid, architecture: "arm64" }).inputs!.bootMode, "uefi");
  });

  refusesEach(checkSurrogateAmi, valid, [
    ["a missing recipe", { recipe: undefined }, "recipe", /recipe is required/],
    ["an unknown recipe kind", { recipe: { kind: "gentoo" } }, "recipe.kind", /one of debian, el, image, script/],
    ["an unknown recipe option", { recipe: { ...debian, components: "main" } }, "recipe.components", /unknown option "components" for a debian recipe: its options are suite, mirror, packages/],
    ["a debian recipe without a suite", { recipe: { kind: "debian", mirror: debian.mirror } }, "recipe.suite", /Debian suite/],
    ["a mirror that is not a URL", { recipe: { ...debian, mirror: "deb.debian.org" } }, "recipe.mirror", /URL/],
    ["an ftp mirror with credentials, quoted without them", { recipe: { ...debian, mirror: "ftp://builder:pw-0451@m.example/debian" } }, "recipe.mirror", /\(got "ftp:\/\/m\.example\/debian"\)$/],
    ["an el repo over http with credentials, quoted without them", { recipe: { kind: "el", releasever: "2023", repos: { os: { baseurl: "http://builder:pw-0451@r.example/os/", gpgkey: "https://r.example/KEY" } } } }, "recipe.repos.os.baseurl", /\(got "http:\/\/r\.example\/os\/"\)$/],
    ["a keyring hash that is not SHA-256", { recipe: { ...debian, keyringSha256: "abc" } }, "recipe.keyringSha256", /64 lower-case hex/],
    ["a bad package name", { recipe: { ...debian, packages: ["ssh server"] } }, "recipe.packages", /package names/],
    ["an el recipe without repos", { recipe: { kind: "el", releasever: "2023", repos: {} } }, "recipe.repos", /at least one repository/],
    ["an el repo without gpgkey", { recipe: { kind: "el", releasever: "2023", repos: { os: { baseurl: "https://r.example/os/" } } } }, "recipe.repos.os.gpgkey", /gpgkey is required: the https:\/\/ URL of the key/],
    ["an el repo given as a bare URL", { recipe: { kind: "el", releasever: "2023", repos: { os: "https://r.example/os/" } } }, "recipe.repos.os", /must be \{ baseurl, gpgkey \}/],
    ["an el repo over http", { recipe: { kind: "el", releasever: "2023", repos: { os: { baseurl: "http://r.example/os/", gpgkey: "https://r.example/KEY" } } } }, "recipe.repos.os.baseurl", /must be an https:\/\/ URL/],
    ["an el gpgkey over http", { recipe: { kind: "el", releasever: "2023", repos: { os: { baseurl: "https://r.example/os/", gpgkey: "http://r.example/KEY" } } } }, "recipe.repos.os.gpgkey", /must be https:\/\/ URLs/],
    ["an image without a checksum", { recipe: { kind: "image", url: "https://example.com/d.raw" } }, "recipe.sha256", /SHA-256/],
    ["an image over plain http", { recipe: { kind: "image", url: "http://example.com/d.raw", sha256: "a".repeat(64) } }, "recipe.url", /https:\/\//],
    ["an empty script", { recipe: { kind: "script", script: " " } }, "recipe.script", /script's text/],
    ["a missing name", { name: undefined }, "name", /required/],
    ["a negative root size", { rootSizeGiB: -8 }, "rootSizeGiB", /whole number from 2/],
    ["arm64 with BIOS", { architecture: "arm64", bootMode: "legacy-bios" }, "bootMode", /UEFI only/],
    ["an unknown architecture", { architecture: "riscv64" }, "architecture", /x86_64" or "arm64/],
    ["imdsSupport v1", { imdsSupport: "v1.0" }, "imdsSupport", /"v2.0"/],
  ]);
});

describe("SurrogateAmi diff", () => {
  const olds: SurrogateAmiOutputs = { ...checkSurrogateAmi(valid).inputs!, schemaVersion: 1, imageId: "ami-1", snapshotId: "snap-1", imageName: "debian-12-base", baseName: "debian-12-base", buildId: "b-1", facts: {} };
  const news = (c: Record<string, unknown>) => checkSurrogateAmi({ ...valid, ...c }).inputs!;

  it("updates tags and description in place", () => {
    for (const c of [{ tags: { a: "b" } }, { description: "x" }]) assert.deepStrictEqual(diffSurrogateAmi(olds, news(c)).replaces, []);
  });

  it("replaces for a change of the recipe or its options", () => {
    assert.deepStrictEqual(diffSurrogateAmi(olds, news({ recipe: { ...debian, suite: "trixie" } })).replaces, ["recipe"]);
    assert.deepStrictEqual(diffSurrogateAmi(olds, news({ recipe: { ...debian, packages: ["cloud-init"] } })).replaces, ["recipe"]);
    assert.deepStrictEqual(diffSurrogateAmi(olds, news({ bootMode: "uefi" })).replaces, ["bootMode"]);
  });
});

describe("SurrogateAmi guest arguments", () => {
  it("passes the recipe to surrogate.sh as options", () => {
    assert.deepStrictEqual(recipeArgs({ kind: "debian", suite: "bookworm", mirror: "http://m", packages: ["a", "b"] }), ["--recipe", "debian", "--suite", "bookworm", "--mirror", "http://m", "--packages", "a,b"]);
    assert.deepStrictEqual(recipeArgs({ kind: "debian", suite: "bookworm", mirror: "http://m", keyringSha256: "f".repeat(64) }).slice(-2), ["--keyring-sha256", "f".repeat(64)]);
    assert.deepStrictEqual(recipeArgs({ kind: "el", releasever: "2023", repos: { z: { baseurl: "https://z", gpgkey: "https://z/K" }, a: { baseurl: "https://a", gpgkey: ["https://a/K1", "https://a/K2"] } } }), [
      "--recipe", "el", "--releasever", "2023", "--repo", "a=https://a", "--gpgkey", "a=https://a/K1", "--gpgkey", "a=https://a/K2", "--repo", "z=https://z", "--gpgkey", "z=https://z/K",
    ]);
    assert.deepStrictEqual(recipeArgs({ kind: "script", script: "echo hi" }), ["--recipe", "script", "--user-script-b64", "ZWNobyBoaQ=="]);
    assert.deepStrictEqual(surrogateArgs(checkSurrogateAmi(valid).inputs!).slice(0, 7), ["--target", "{volume:target}", "--boot-mode", "legacy-bios", "--arch", "x86_64", "--sanitize"]);
  });

  it("records the recipe kind, a hash of its options and its sources as tags", () => {
    const tags = recipeTags({ kind: "el", releasever: "2023", repos: { os: { baseurl: "https://al2023-repos/os", gpgkey: "https://al2023-repos/KEY" } } });
    assert.strictEqual(tags["ami-factory:recipe"], "el");
    assert.match(tags["ami-factory:recipe-hash"], /^[0-9a-f]{16}$/);
    assert.strictEqual(tags["ami-factory:sources"], "https://al2023-repos/os");
    assert.notStrictEqual(recipeTags({ kind: "debian", suite: "a", mirror: "http://m" })["ami-factory:recipe-hash"], recipeTags({ kind: "debian", suite: "b", mirror: "http://m" })["ami-factory:recipe-hash"]);
  });
});
