import * as assert from "assert";
import { refusesEach } from "../support/table";
import { execFileSync } from "child_process";
import { checkConvertedHvmAmi, ConvertedHvmAmiOutputs, diffConvertedHvmAmi } from "../../providers/convertedHvmAmi/inputs";
import { carriedMappings, conversionBlockers } from "../../providers/convertedHvmAmi/source";
import { networkSupport } from "../../providers/convertedHvmAmi/build";
import { commandLines, parseFacts } from "../../providers/worker/command";
import { checkFacts, checkFactsTag, declaredFactsSchema, factsTag } from "../../providers/worker/facts";
import { bundleGuestScript } from "../../providers/worker/guestScript";

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
    ["a role path without its slashes", { worker: { rolePath: "ami-factory" } }, "worker.rolePath", /IAM path such as "\/ami-factory\/"/],
    ["a boundary that is not a policy ARN", { worker: { permissionsBoundary: "boundary" } }, "worker.permissionsBoundary", /managed policy's ARN/],
    ["a boundary beside your own profile", { worker: { instanceProfileName: "mine", permissionsBoundary: "arn:aws:iam::123456789012:policy/b" } }, "worker.permissionsBoundary", /remove one of them/],
    ["a zero timeout", { timeoutMinutes: 0 }, "timeoutMinutes", /from 1/],
    ["nitro maybe", { nitro: "maybe" }, "nitro", /true or false/],
  ]);

  it("takes a role path and a permissions boundary for the temporary worker role", () => {
    const worker = { rolePath: "/ami-factory/builds/", permissionsBoundary: "arn:aws:iam::123456789012:policy/ami-factory-boundary" };
    assert.deepStrictEqual(checkConvertedHvmAmi({ ...valid, worker }).failures, []);
  });

  it("keeps nitro only when it is false (true and unset make the same image)", () => {
    assert.strictEqual(checkConvertedHvmAmi({ ...valid, nitro: true }).inputs!.nitro, undefined);
    assert.strictEqual(checkConvertedHvmAmi({ ...valid, nitro: false }).inputs!.nitro, false);
  });
});

describe("ConvertedHvmAmi diff", () => {
  const olds: ConvertedHvmAmiOutputs = { ...checkConvertedHvmAmi(valid).inputs!, schemaVersion: 1, imageId: "ami-1", snapshotId: "snap-1", imageName: "src-hvm", baseName: "src-hvm", buildId: "b-1", facts: {} };
  const news = (c: Record<string, unknown>) => checkConvertedHvmAmi({ ...valid, ...c }).inputs!;

  it("updates in place for tags, name and description", () => {
    for (const c of [{ tags: { team: "a" } }, { name: "renamed" }, { description: "words" }]) {
      const d = diffConvertedHvmAmi(olds, news(c));
      assert.strictEqual(d.changes, true);
      assert.deepStrictEqual(d.replaces, [], JSON.stringify(c));
    }
  });

  it("replaces for anything that changes the image and for a new rebuildTrigger, and names the field", () => {
    for (const [field, value] of Object.entries({ sourceAmiId: "ami-0aaaaaaaaaaaaaaaa", targetSizeGiB: 20, sanitize: false, enaSupport: true, encrypted: true, nitro: false, rebuildTrigger: "2026-11", volume: { type: "io2", iops: 3000 } })) {
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
  it("refuses arm64 (PV-GRUB is x86 only; it would get i386-pc GRUB and a BIOS boot)", () =>
    assert.deepStrictEqual(conversionBlockers({ ...pv, Architecture: "arm64" } as never, "ami-1"), ["sourceAmiId ami-1 has architecture arm64: only x86_64 paravirtual (PV-GRUB) images can be converted; arm64 images are HVM (UEFI) already: use it as it is"]));
  it("refuses a source that maps another disk to the converted root's name", () =>
    assert.match(conversionBlockers({ ...pv, BlockDeviceMappings: [...pv.BlockDeviceMappings, { DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-2" } }] } as never, "ami-1")[0], /maps another device to \/dev\/xvda/));
});

describe("carried block device mappings", () => {
  const source = {
    RootDeviceName: "/dev/sda1",
    BlockDeviceMappings: [
      { DeviceName: "/dev/sda1", Ebs: { SnapshotId: "snap-root", VolumeSize: 8, VolumeType: "standard", DeleteOnTermination: true, Encrypted: false } },
      { DeviceName: "/dev/sdf", Ebs: { SnapshotId: "snap-data", VolumeSize: 60, VolumeType: "gp3", Iops: 4000, Throughput: 250, DeleteOnTermination: false, Encrypted: true } },
      { DeviceName: "/dev/sdg", Ebs: { VolumeSize: 10, VolumeType: "io2", Iops: 5000, DeleteOnTermination: true, Encrypted: true } },
      { DeviceName: "/dev/sdh", Ebs: { SnapshotId: "snap-gp2", VolumeSize: 5, VolumeType: "gp2", Iops: 100, DeleteOnTermination: true } },
      { DeviceName: "/dev/sdb", VirtualName: "ephemeral0" },
      { DeviceName: "/dev/sdc", VirtualName: "ephemeral1" },
      { DeviceName: "/dev/sdd", NoDevice: "" },
    ],
  };

  it("carries every mapping but the root's, as registered, without an encryption value beside a snapshot", () => {
    assert.deepStrictEqual(JSON.parse(JSON.stringify(carriedMappings(source as never))), [
      { DeviceName: "/dev/sdf", Ebs: { SnapshotId: "snap-data", VolumeSize: 60, VolumeType: "gp3", Iops: 4000, Throughput: 250, DeleteOnTermination: false } },
      { DeviceName: "/dev/sdg", Ebs: { VolumeSize: 10, VolumeType: "io2", Iops: 5000, DeleteOnTermination: true, Encrypted: true } },
      { DeviceName: "/dev/sdh", Ebs: { SnapshotId: "snap-gp2", VolumeSize: 5, VolumeType: "gp2", DeleteOnTermination: true } },
      { DeviceName: "/dev/sdb", VirtualName: "ephemeral0" },
      { DeviceName: "/dev/sdc", VirtualName: "ephemeral1" },
      { DeviceName: "/dev/sdd", NoDevice: "" },
    ]);
  });
});

describe("network support from the facts", () => {
  const log: string[] = [];
  it("sets SriovNetSupport only when the image has ixgbevf, and ENA as the facts say", () => {
    assert.deepStrictEqual(networkSupport({ enaSupport: "auto" }, { enaDriver: true, ixgbevfDriver: true }, (l) => log.push(l)), { EnaSupport: true, SriovNetSupport: "simple" });
    assert.deepStrictEqual(networkSupport({ enaSupport: "auto" }, { enaDriver: false, ixgbevfDriver: false }, (l) => log.push(l)), { EnaSupport: false });
    assert.deepStrictEqual(networkSupport({ enaSupport: false }, { enaDriver: true }, (l) => log.push(l)), { EnaSupport: false });
  });
});

describe("facts schema", () => {
  const pv2hvm = bundleGuestScript("pv2hvm.sh");
  const surrogate = bundleGuestScript("surrogate.sh");
  const good = Object.fromEntries(Object.entries(pv2hvm.factsSchema.fields).map(([k, t]) => [k, t === "boolean" ? true : t === "number" ? 1 : t === "string[]" ? [] : "x"]));
  const facts = { script: "pv2hvm", schemaVersion: 4, ...good };

  it("is declared by each guest script and travels in its bundle", () => {
    assert.strictEqual(pv2hvm.factsSchema.script, "pv2hvm");
    assert.strictEqual(pv2hvm.factsSchema.schemaVersion, 4);
    assert.strictEqual(pv2hvm.factsSchema.fields.nitroReady, "boolean");
    assert.strictEqual(pv2hvm.factsSchema.fields.fstabRemoved, "string[]");
    assert.strictEqual(surrogate.factsSchema.script, "surrogate");
    assert.deepStrictEqual(declaredFactsSchema(pv2hvm.content, "bundle"), pv2hvm.factsSchema);
  });

  it("refuses a script without a declaration, or with a malformed one", () => {
    assert.throws(() => declaredFactsSchema("#!/bin/sh\necho {}\n", "x.sh"), /x.sh declares no facts schema/);
    assert.throws(() => declaredFactsSchema('# @facts {"script":"x","schemaVersion":1,"fields":{"a":"date"}}\n', "x.sh"), /field a has type "date"/);
  });

  it("accepts the line of the script that ran, with every field typed", () => assert.strictEqual(checkFacts(facts, pv2hvm.factsSchema), facts));

  for (const [what, line, message] of [
    ["another script's line", { script: "surrogate", schemaVersion: 1, recipe: "debian", bootMode: "uefi" }, /script is "surrogate", not "pv2hvm"/],
    ["a line of no script at all", { recipe: "debian", bootMode: "uefi" }, /script is undefined, not "pv2hvm"/],
    ["another schema version", { ...facts, schemaVersion: 1 }, /schemaVersion is 1, not 4/],
    ["a missing field", { ...facts, nitroReady: undefined }, /nitroReady is missing/],
    ["a mistyped field", { ...facts, copiedBytes: "12" }, /copiedBytes is "12" \(string\), not a number/],
    ["a list of numbers for a list of strings", { ...facts, kernels: [1] }, /kernels is \[1\] \(array\), not a string\[\]/],
  ] as const) {
    it(`refuses ${what}, naming the script and the field`, () =>
      assert.throws(() => checkFacts(JSON.parse(JSON.stringify(line)), pv2hvm.factsSchema), (e: Error) => (assert.match(e.message, /the facts line of pv2hvm does not match its schema \(version 4\)/), assert.match(e.message, message), true)));
  }

  it("checks the facts tag of an image being adopted the same way, saying what to do", () => {
    const tag = factsTag(facts)!;
    assert.ok(tag.length <= 256);
    assert.deepStrictEqual(checkFactsTag(tag, pv2hvm.factsSchema, "ami-1"), JSON.parse(tag));
    assert.throws(() => checkFactsTag(undefined, pv2hvm.factsSchema, "ami-1"), /ami-1 of this build has no ami-factory:facts tag: deregister ami-1/);
    assert.throws(() => checkFactsTag("{oops", pv2hvm.factsSchema, "ami-1"), /is not JSON/);
    assert.throws(() => checkFactsTag(JSON.stringify({ ...JSON.parse(tag), nitroReady: "yes" }), pv2hvm.factsSchema, "ami-1"), /nitroReady is "yes" \(string\), not a boolean/);
    assert.throws(() => checkFactsTag(JSON.stringify({ ...JSON.parse(tag), fsType: undefined }), pv2hvm.factsSchema, "ami-1"), /fsType is missing/);
    assert.throws(() => checkFactsTag(factsTag({ script: "surrogate", schemaVersion: 1, fsType: "ext4" }), pv2hvm.factsSchema, "ami-1"), /script is "surrogate", not "pv2hvm"/);
  });
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
