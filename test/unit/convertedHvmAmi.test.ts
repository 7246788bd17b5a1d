import * as assert from "assert";
import { refusesEach } from "../support/table";
import { execFileSync } from "child_process";
import { checkConvertedHvmAmi, ConvertedHvmAmiOutputs, diffConvertedHvmAmi } from "../../providers/convertedHvmAmi/inputs";
import { conversionBlockers } from "../../providers/convertedHvmAmi/source";
import { commandLines, parseFacts } from "../../providers/worker/command";

const valid = { sourceAmiId: "ami-0123456789abcdef0", region: "us-east-1", scope: "p/s/legacy", guestScriptSha256: "abc" };

describe("ConvertedHvmAmi check", () => {
  it("fills in the defaults: gp3, sanitize, ENA from the image, one hour", () => {
    const { inputs, failures } = checkConvertedHvmAmi(valid);
    assert.deepStrictEqual(failures, []);
    assert.deepStrictEqual(inputs!.volume, { type: "gp3", iops: undefined, throughputMiBps: undefined });
    assert.strictEqual(inputs!.sanitize, true);
    assert.strictEqual(inputs!.enaSupport, "auto");
    assert.strictEqual(inputs!.timeoutMinutes, 60);
    assert.strictEqual(inputs!.encrypted, undefined); // decided by the source snapshot
  });

  refusesEach(checkConvertedHvmAmi, valid, [
    ["a malformed source id", { sourceAmiId: "ami-12" }, "sourceAmiId", /amiId/],
    ["a negative size", { targetSizeGiB: -1 }, "targetSizeGiB", /whole number from 1/],
    ["an unknown volume type", { volume: { type: "gp9" } }, "volume.type", /one of gp3/],
    ["throughput on a gp2 volume", { volume: { type: "gp2", throughputMiBps: 250 } }, "volume.throughputMiBps", /gp3 volumes only/],
    ["a KMS key with encrypted false", { kmsKeyId: "alias/images", encrypted: false }, "kmsKeyId", /encrypted: true/],
    ["a malformed KMS key", { kmsKeyId: "my key" }, "kmsKeyId", /kmsKey/],
    ["enaSupport maybe", { enaSupport: "maybe" }, "enaSupport", /"auto", true or false/],
    ["a malformed worker subnet", { worker: { subnetId: "net-1" } }, "worker.subnetId", /subnetId/],
    ["an unknown worker option", { worker: { keyName: "mine" } }, "worker.keyName", /unknown field/],
    ["a bad instance type", { worker: { instanceType: "large" } }, "worker.instanceType", /instance type/],
    ["a zero timeout", { timeoutMinutes: 0 }, "timeoutMinutes", /from 1/],
  ]);
});

describe("ConvertedHvmAmi diff", () => {
  const olds: ConvertedHvmAmiOutputs = { ...checkConvertedHvmAmi(valid).inputs!, schemaVersion: 1, imageId: "ami-1", snapshotId: "snap-1", imageName: "src-hvm", buildId: "b-1", facts: {} };
  const news = (c: Record<string, unknown>) => checkConvertedHvmAmi({ ...valid, ...c }).inputs!;

  it("updates in place for tags, name and description", () => {
    for (const c of [{ tags: { team: "a" } }, { name: "renamed" }, { description: "words" }]) {
      const d = diffConvertedHvmAmi(olds, news(c));
      assert.strictEqual(d.changes, true);
      assert.deepStrictEqual(d.replaces, [], JSON.stringify(c));
    }
  });

  it("replaces for anything that changes the image and for a new rebuildTrigger, and names the field", () => {
    for (const [field, value] of Object.entries({ sourceAmiId: "ami-0aaaaaaaaaaaaaaaa", targetSizeGiB: 20, sanitize: false, enaSupport: true, encrypted: true, rebuildTrigger: "2026-11", volume: { type: "io2", iops: 3000 } })) {
      const d = diffConvertedHvmAmi(olds, news({ [field]: value }));
      assert.deepStrictEqual(d.replaces, [field]);
      assert.match(d.notes[0], new RegExp(`replaces image src-hvm because ${field} changed`));
    }
  });

  it("sees no change when only the guest script changed (a tool upgrade)", () => {
    const d = diffConvertedHvmAmi(olds, news({ guestScriptSha256: "def" }));
    assert.deepStrictEqual(d, { changes: false, replaces: [], deleteBeforeReplace: false, notes: [] });
  });

  it("builds the new image before deleting the old one, unless exactName keeps the same name (then it warns)", () => {
    assert.strictEqual(diffConvertedHvmAmi(olds, news({ targetSizeGiB: 20 })).deleteBeforeReplace, false);
    const exact = { ...olds, exactName: true };
    const d = diffConvertedHvmAmi(exact, news({ targetSizeGiB: 20, exactName: true }));
    assert.strictEqual(d.deleteBeforeReplace, true);
    assert.match(d.notes[1], /warning: exactName: image src-hvm \(ami-1\) is deregistered before its replacement is built/);
    assert.strictEqual(diffConvertedHvmAmi(exact, news({ targetSizeGiB: 20, exactName: true, name: "other" })).deleteBeforeReplace, false);
  });

  refusesEach(checkConvertedHvmAmi, valid, [
    ["a name too long for the build stamp", { name: "n".repeat(112) }, "name", /at most 111 fit in EC2's 128; shorten it, or set exactName: true/],
    ["a rebuildTrigger that is not a string", { rebuildTrigger: 3 }, "rebuildTrigger", /must be a string/],
    ["exactName yes", { exactName: "yes" }, "exactName", /true or false/],
  ]);
});

describe("conversion blockers", () => {
  const pv = { VirtualizationType: "paravirtual", RootDeviceType: "ebs", Architecture: "x86_64", RootDeviceName: "/dev/sda1", BlockDeviceMappings: [{ DeviceName: "/dev/sda1", Ebs: { SnapshotId: "snap-1" } }] } as const;

  it("has none for an EBS-backed PV image", () => assert.deepStrictEqual(conversionBlockers(pv as never, "ami-1"), []));
  it("says an HVM image is already HVM", () => assert.match(conversionBlockers({ ...pv, VirtualizationType: "hvm" } as never, "ami-1")[0], /already HVM: use the image as it is/));
  it("says an instance-store image cannot be converted", () => assert.match(conversionBlockers({ ...pv, RootDeviceType: "instance-store" } as never, "ami-1")[0], /instance-store backed/));
  it("says a Marketplace image cannot be converted", () =>
    assert.match(conversionBlockers({ ...pv, ProductCodes: [{ ProductCodeId: "abc", ProductCodeType: "marketplace" }] } as never, "ami-1")[0], /Marketplace product codes \(abc\)/));
});

describe("guest command", () => {
  it("ships the script byte for byte and passes volume ids as arguments", () => {
    const script = "#!/usr/bin/env bash\necho \"$@\" 'quoted'\nprintf '{\"ok\":true}\\n'\n";
    const lines = commandLines({ name: "t", script, args: ["--source", "{volume:source}", "it's"] }, { source: "vol-0123" });
    // Run what SSM would run, with the script's file under a temporary HOME-less path.
    const shell = lines.join("\n").replace(/\/root\//g, `${require("os").tmpdir()}/`);
    const out = execFileSync("bash", ["-c", shell], { encoding: "utf8" });
    assert.strictEqual(out, "--source vol-0123 it's quoted\n{\"ok\":true}\n");
  });

  it("refuses a volume role the build does not have", () => {
    assert.throws(() => commandLines({ name: "t", script: "", args: ["{volume:target}"] }, {}), /no target volume/);
  });

  it("reads the facts from the last line, and says so when it is not JSON", () => {
    assert.deepStrictEqual(parseFacts("progress\n{\"fsType\":\"ext4\"}\n"), { fsType: "ext4" });
    assert.throws(() => parseFacts("done\n"), /last output line is not a JSON object: "done"/);
  });
});
