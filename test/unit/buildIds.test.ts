// Build ids pinned as the release before the field tables computed them: an image already built
// must keep its build id (a re-run adopts it, the sweep knows it), so a refactoring of how inputs
// are declared may not change one byte of them.
import * as assert from "assert";
import { checkConvertedHvmAmi } from "../../providers/convertedHvmAmi/inputs";
import { conversionBuildId } from "../../providers/convertedHvmAmi/build";
import { checkSurrogateAmi } from "../../providers/surrogateAmi/inputs";
import { surrogateBuildId } from "../../providers/surrogateAmi/build";
import { checkSharedAmi } from "../../providers/sharedAmi/inputs";
import { sharedBuildId } from "../../providers/sharedAmi/operations";

const checked = <T>(r: { inputs?: T; failures: unknown[] }): T => {
  assert.deepStrictEqual(r.failures, []);
  return r.inputs!;
};

const conversion = { sourceAmiId: "ami-0123456789abcdef0", region: "us-east-1", scope: "p/s/legacy", guestScriptSha256: "abc" };
const build = { recipe: { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" }, name: "base-web", region: "eu-west-1", scope: "p/s/web", guestScriptSha256: "def" };
const share = { sourceAmiId: "ami-0123456789abcdef0", sourceRegion: "us-east-1", regions: ["eu-west-1", "us-east-1"], scope: "p/s/base" };

describe("build ids stay as released", () => {
  for (const [what, raw, id] of [
    ["a conversion with defaults", conversion, "b-9a59766ef3fd758e"],
    ["a conversion with every image field", { ...conversion, targetSizeGiB: 20, volume: { type: "io2", iops: 3000 }, encrypted: true, kmsKeyId: "alias/images", enaSupport: true, sanitize: false, nitro: false, rebuildTrigger: "2026-11" }, "b-d996d67882f4fabd"],
    ["a conversion with only in-place fields and provenance set", { ...conversion, name: "legacy-hvm", description: "d", tags: { team: "a" }, exactName: true, worker: { instanceType: "m6i.large" }, timeoutMinutes: 90, verify: false, guestScriptSha256: "other" }, "b-9a59766ef3fd758e"],
  ] as const) {
    it(`keeps the build id of ${what}`, () => assert.strictEqual(conversionBuildId(checked(checkConvertedHvmAmi({ ...raw }))), id));
  }
  for (const [what, raw, id] of [
    ["a build with defaults", build, "b-3808c0798df0bb02"],
    ["a build with every image field", { ...build, architecture: "arm64", rootSizeGiB: 16, volume: { type: "gp3", throughputMiBps: 250 }, encrypted: true, bootMode: "uefi", imdsSupport: "optional", enaSupport: false, sanitize: false, rebuildTrigger: "x" }, "b-89a1913a2f708cf3"],
    ["a build with only in-place fields and provenance set", { ...build, description: "d", tags: { team: "a" }, exactName: true, timeoutMinutes: 30, verify: { instanceType: "t3.micro" }, guestScriptSha256: "other" }, "b-3808c0798df0bb02"],
  ] as const) {
    it(`keeps the build id of ${what}`, () => assert.strictEqual(surrogateBuildId(checked(checkSurrogateAmi({ ...raw }))), id));
  }
  for (const [what, raw, id] of [
    ["a share with defaults", share, "b-7ad7861f11602f8a"],
    ["a share with every field", { ...share, accountIds: ["111122223333"], organizationArns: ["arn:aws:organizations::123456789012:organization/o-abcde12345"], shareSnapshots: false, encrypted: true, kmsKeyIds: { "eu-west-1": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }, name: "base-2026", exactName: true, deprecateAt: "2030-01-01T00:00:00Z", timeoutMinutes: 30 }, "b-a5c1f16e40872f8e"],
    ["a share with tags and description", { ...share, tags: { team: "a" }, description: "d" }, "b-7ad7861f11602f8a"],
  ] as const) {
    it(`keeps the build id of ${what}`, () => assert.strictEqual(sharedBuildId(checked(checkSharedAmi({ ...raw }))), id));
  }
});
