// Bad input through the real engine: each row must stop `pulumi preview` (config and check errors)
// or `pulumi up` (what only AWS can tell: the source image's type, the instance's root) with a
// message that names the field and says the fix, and must create nothing. One stack serves every
// row; the emulator records every call, so "nothing created" is checked on what was sent as well as
// on AWS state.
import * as assert from "assert";
import { CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { ec2, imagesTagged, leftovers, seedHvmImage, seedPvImage } from "../support/aws";
import { startEmulator, Emulator } from "../support/emulator";
import { testStack, TestStack } from "../support/stack";

/** Ids the AWS rows refer to, seeded once. */
interface Fixtures {
  pv: string;
  hvm: string;
  instanceStoreImage: string;
  marketplace: string;
  pending: string;
  instance: string;
  instanceStoreInstance: string;
}

type Config = Record<string, unknown>;
/** [what, the stack config, the message it must fail with] */
type Row = [what: string, config: (f: Fixtures) => Config, message: RegExp];

const AMI = "ami-0123456789abcdef0";
const ACCOUNT = "111122223333";
const share = (change: Config = {}) => ({ shares: [{ name: "base", sourceAmiId: AMI, regions: ["us-east-1", "eu-west-1"], accountIds: [ACCOUNT], ...change }] });
const conversion = (change: Config = {}) => ({ conversions: [{ name: "legacy", sourceAmiId: AMI, ...change }] });
const debian = { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" };
const build = (change: Config = {}) => ({ builds: [{ name: "os", imageName: "debian-12-base", recipe: debian, ...change }] });
const alarm = (change: Config = {}) => ({ recoveryAlarms: [{ name: "web", instanceId: "i-0123456789abcdef0", ...change }] });

/** Stopped by preview: the stack config and the resources' checks. */
const previewRows: Row[] = [
  // SharedAmi
  ["a malformed source image id", () => share({ sourceAmiId: "ami-123" }), /ami-factory:shares\[0\]\.sourceAmiId: sourceAmiId "ami-123" is not a valid amiId: use a value like ami-0123456789abcdef0/],
  ["a region that does not exist in that form", () => share({ regions: ["us-east-1", "europe-west1"] }), /ami-factory:shares\[0\]\.regions\[1\]: regions\[1\] "europe-west1" is not a valid region: use a value like eu-west-1/],
  ["a malformed source region", () => share({ sourceRegion: "us-east" }), /ami-factory:shares\[0\]\.sourceRegion: sourceRegion "us-east" is not a valid region: use a value like eu-west-1/],
  ["no region at all", () => share({ regions: [] }), /ami-factory:shares\[0\]\.regions: regions must not be empty: name at least one, such as eu-west-1/],
  ["a region named twice", () => share({ regions: ["eu-west-1", "eu-west-1"] }), /ami-factory:shares\[0\]\.regions\[1\]: regions names "eu-west-1" twice: list each once/],
  ["an account id that is too short", () => share({ accountIds: ["12345"] }), /ami-factory:shares\[0\]\.accountIds\[0\]: accountIds\[0\] "12345" is not a valid accountId: use a value like 123456789012/],
  ["an account id written as a number", () => share({ accountIds: [11112222333] }), /ami-factory:shares\[0\]\.accountIds\[0\]: accountIds\[0\] 11112222333 is not a valid accountId: use a value like 123456789012/],
  ['"all" without allowPublic', () => share({ accountIds: ["all"] }), /ami-factory:shares\[0\]\.accountIds: accountIds contains "all", which makes the image public: set allowPublic: true if that is intended, or remove "all"/],
  ["a malformed organization ARN", () => share({ organizationArns: ["o-abcde12345"] }), /ami-factory:shares\[0\]\.organizationArns\[0\]: organizationArns\[0\] "o-abcde12345" is not a valid organizationArn: use a value like arn:aws:organizations::123456789012:organization\/o-abcde12345/],
  ["a malformed OU ARN", () => share({ organizationalUnitArns: ["ou-ab12-cdefgh34"] }), /ami-factory:shares\[0\]\.organizationalUnitArns\[0\]: .* is not a valid organizationalUnitArn: use a value like arn:aws:organizations::/],
  ["a KMS key of an unknown format", () => share({ encrypted: true, kmsKeyIds: { "eu-west-1": "my-key" } }), /ami-factory:shares\[0\]\.kmsKeyIds\.eu-west-1: kmsKeyIds\.eu-west-1 "my-key" is not a valid kmsKey: use a value like arn:aws:kms:.* or alias\/my-key/],
  ["a KMS key of another region", () => share({ encrypted: true, kmsKeyIds: { "eu-west-1": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" } }), /ami-factory:shares\[0\]\.kmsKeyIds\.eu-west-1: the KMS key for eu-west-1 is in another region: a copy can only be encrypted with a key of its own region/],
  ["KMS keys without encrypted", () => share({ kmsKeyIds: { "eu-west-1": "alias/images" } }), /ami-factory:shares\[0\]\.kmsKeyIds: kmsKeyIds is set but encrypted is not: set encrypted: true/],
  ["a KMS key for a region that gets no copy", () => share({ encrypted: true, kmsKeyIds: { "ap-south-1": "alias/images" } }), /ami-factory:shares\[0\]\.kmsKeyIds\.ap-south-1: kmsKeyIds names region ap-south-1, which is not in regions: add it to regions or remove the key/],
  ["a deprecation time that is not a time", () => share({ deprecateAt: "next year" }), /ami-factory:shares\[0\]\.deprecateAt: deprecateAt must be an ISO 8601 time such as 2027-01-01T00:00:00Z \(got "next year"\)/],
  ["an image name EC2 refuses", () => share({ imageName: "base image!" }), /ami-factory:shares\[0\]\.imageName: imageName "base image!" is not valid: use a value like my-image-2026-11-22/],
  ["a tag key reserved by AWS", () => share({ tags: { "aws:team": "x" } }), /ami-factory:shares\[0\]\.tags\.aws:team: tag keys starting with "aws:" are reserved by AWS: rename "aws:team"/],
  ["a negative timeout", () => share({ timeoutMinutes: -5 }), /ami-factory:shares\[0\]\.timeoutMinutes: timeoutMinutes must be a whole number from 1 to 1440 \(got -?\d+\)/],
  ["a misspelt share option", () => share({ region: ["eu-west-1"] }), /ami-factory:shares\[0\]\.region: unknown field "region": the known fields are .*\bregions\b/],
  ["a misspelt imageName (the list of known fields must offer imageName)", () => share({ imageNmae: "base-2026" }), /ami-factory:shares\[0\]\.imageNmae: unknown field "imageNmae": the known fields are .*\bimageName\b/],
  ["a retention of negative days", () => share({ retention: { days: -1 } }), /ami-factory:shares\[0\]\.retention\.days: retention\.days must be a whole number from 1 to 3650 \(got -1\)/],
  ["a retention keeping too many builds", () => build({ retention: { keep: 1000 } }), /ami-factory:builds\[0\]\.retention\.keep: retention\.keep must be a whole number from 0 to 100 \(got 1000\)/],
  ["a retirement that is neither retire nor delete", () => conversion({ retirement: "archive" }), /ami-factory:conversions\[0\]\.retirement: retirement must be "retire" .* or "delete"/],
  ["a parameter name Parameter Store refuses", () => share({ publish: "/ami factory/web" }), /ami-factory:shares\[0\]\.publish: publish "\/ami factory\/web" has characters Parameter Store refuses/],
  ["a parameter hierarchy without its leading slash", () => build({ publish: "ami-factory/web" }), /ami-factory:builds\[0\]\.publish: publish "ami-factory\/web" is a hierarchy: it must start with \/ \(e\.g\. "\/ami-factory\/web"\)/],
  ["a parameter on a path AWS owns", () => share({ publish: "/aws/service/ami-factory/web" }), /ami-factory:shares\[0\]\.publish: publish "\/aws\/service\/ami-factory\/web" starts with "aws" or "ssm", which Parameter Store reserves/],
  // ConvertedHvmAmi
  ["a malformed conversion source", () => conversion({ sourceAmiId: "ami-XYZ" }), /ami-factory:conversions\[0\]\.sourceAmiId: sourceAmiId "ami-XYZ" is not a valid amiId: use a value like ami-0123456789abcdef0/],
  ["a negative target size", () => conversion({ targetSizeGiB: -8 }), /ami-factory:conversions\[0\]\.targetSizeGiB: targetSizeGiB must be a whole number from 1 to 16384 \(got -?\d+\)/],
  ["an unknown volume type", () => conversion({ volume: { type: "gp9" } }), /ami-factory:conversions\[0\]\.volume\.type: volume\.type must be one of gp3, gp2, io1, io2, standard \(got "gp9"\)/],
  ["throughput on a gp2 volume", () => conversion({ volume: { type: "gp2", throughputMiBps: 250 } }), /ami-factory:conversions\[0\]\.volume\.throughputMiBps: volume\.throughputMiBps applies to gp3 volumes only: remove it or set volume\.type: gp3/],
  ["a misspelt worker option", () => conversion({ worker: { instancetype: "m6i.large" } }), /ami-factory:conversions\[0\]\.worker\.instancetype: unknown field "instancetype": the known fields are instanceType, subnetId, instanceProfileName, imageId/],
  ["a malformed worker subnet", () => conversion({ worker: { subnetId: "subnet-1" } }), /ami-factory:conversions\[0\]\.worker\.subnetId: worker\.subnetId "subnet-1" is not a valid subnetId: use a value like subnet-0123456789abcdef0/],
  ["a worker instance type that is not one", () => conversion({ worker: { instanceType: "large" } }), /ami-factory:conversions\[0\]\.worker\.instanceType: worker\.instanceType "large" is not an instance type such as m6i\.large/],
  ["ENA support as a word", () => conversion({ enaSupport: "yes" }), /ami-factory:conversions\[0\]\.enaSupport: enaSupport must be "auto", true or false \(got "yes"\)/],
  ["a KMS key with encryption off", () => conversion({ encrypted: false, kmsKeyId: "alias/images" }), /ami-factory:conversions\[0\]\.kmsKeyId: kmsKeyId is set but encrypted is false: set encrypted: true or remove kmsKeyId/],
  ["a zero timeout", () => conversion({ timeoutMinutes: 0 }), /ami-factory:conversions\[0\]\.timeoutMinutes: timeoutMinutes must be a whole number from 1 to 1440 \(got -?\d+\)/],
  ["a boot signal that is not a regular expression", () => conversion({ verify: { bootSignal: "login: (" } }), /ami-factory:conversions\[0\]\.verify\.bootSignal: verify\.bootSignal must be a regular expression .*Unterminated group/],
  ["a verification instance type of the wrong shape", () => conversion({ verify: { instanceType: ["t3.micro", "micro"] } }), /ami-factory:conversions\[0\]\.verify\.instanceType: verify\.instanceType must be an instance type such as t3\.micro/],
  // SurrogateAmi
  ["an unknown recipe option", () => build({ recipe: { ...debian, suit: "bookworm" } }), /ami-factory:builds\[0\]\.recipe\.suit: unknown option "suit" for a debian recipe: its options are suite, mirror, packages/],
  ["an unknown recipe kind", () => build({ recipe: { kind: "ubuntu", suite: "noble" } }), /ami-factory:builds\[0\]\.recipe\.kind: recipe\.kind must be one of debian, el, image, script \(got "ubuntu"\)/],
  ["a build without an image name", () => build({ imageName: undefined }), /ami-factory:builds\[0\]\.imageName: imageName is required/],
  ["a negative root size", () => build({ rootSizeGiB: -1 }), /ami-factory:builds\[0\]\.rootSizeGiB: rootSizeGiB must be a whole number from 2 to 16384 \(got -?\d+\)/],
  ["legacy BIOS on arm64", () => build({ architecture: "arm64", bootMode: "legacy-bios" }), /ami-factory:builds\[0\]\.bootMode: arm64 instances boot with UEFI only: set bootMode: uefi \(or leave it out\)/],
  ["a disk image recipe without its checksum", () => build({ recipe: { kind: "image", url: "https://example.com/disk.raw" } }), /ami-factory:builds\[0\]\.recipe\.sha256: recipe\.sha256 is required: the disk image's SHA-256 as 64 lower-case hex digits/],
  ["an el repository without its signing key", () => build({ recipe: { kind: "el", releasever: "2023", repos: { os: { baseurl: "https://r.example/os/" } } } }), /ami-factory:builds\[0\]\.recipe\.repos\.os\.gpgkey: recipe\.repos\.os\.gpgkey is required: the https:\/\/ URL of the key its packages are signed with \(gpgcheck is always on\)/],
  ["an el repository over http", () => build({ recipe: { kind: "el", releasever: "2023", repos: { os: { baseurl: "http://r.example/os/", gpgkey: "https://r.example/KEY" } } } }), /ami-factory:builds\[0\]\.recipe\.repos\.os\.baseurl: .* must be an https:\/\/ URL/],
  ["sharing copies encrypted with the AWS-managed key", () => share({ encrypted: true }), /ami-factory:shares\[0\]\.kmsKeyIds: encrypted copies shared with other accounts need a customer-managed KMS key \(the AWS-managed EBS key cannot be shared\): set kmsKeyIds for us-east-1, eu-west-1/],
  ["a deprecation date in the past", () => share({ deprecateAt: "2021-06-01T00:00:00Z" }), /property deprecateAt value .* has a problem: deprecateAt 2021-06-01T00:00:00Z is in the past: EC2 deprecates only at a future time/],
  ["a deprecation date beyond AWS's ten years", () => share({ deprecateAt: "2099-01-01T00:00:00Z" }), /ami-factory:shares\[0\]\.deprecateAt: deprecateAt 2099-01-01T00:00:00Z is more than 10 years ahead/],
  // RecoveryAlarm
  ["a malformed instance id", () => alarm({ instanceId: "web-1" }), /ami-factory:recoveryAlarms\[0\]\.instanceId: instanceId "web-1" is not a valid instanceId: use a value like i-0123456789abcdef0/],
  ["a period CloudWatch does not take", () => alarm({ period: 45 }), /ami-factory:recoveryAlarms\[0\]\.period: period must be 10, 30 or a multiple of 60 seconds \(got 45\)/],
  ["more topics than alarm actions", () => alarm({ notifyTopicArns: [1, 2, 3, 4, 5].map((n) => `arn:aws:sns:us-east-1:123456789012:ops-${n}`) }), /ami-factory:recoveryAlarms\[0\]\.notifyTopicArns: CloudWatch allows 5 alarm actions and the recover action is one: give at most 4 topics \(got 5\)/],
  ["zero evaluation periods", () => alarm({ evaluationPeriods: 0 }), /ami-factory:recoveryAlarms\[0\]\.evaluationPeriods: evaluationPeriods must be a whole number from 1 to 1440 \(got -?\d+\)/],
  // The stack config itself
  ["a misspelt config key", () => ({ share: share().shares }), /ami-factory:share is not a known key: the known keys are ami-factory:shares, ami-factory:recoveryAlarms, ami-factory:conversions, ami-factory:builds/],
  ["a config key that is not a list", () => ({ shares: "base" }), /ami-factory:shares must be a list \(YAML sequence\), got the string "base"/],
  ["an upper-case logical name", () => share({ name: "Base" }), /ami-factory:shares\[0\]\.name must be a short lower-case name \(letters, digits, -\), got "Base"/],
  ["a name used twice", () => ({ shares: [...share().shares, ...share().shares] }), /ami-factory:shares\[1\]\.name "base" is used twice in ami-factory:shares: names must be unique/],
  ["a share and a conversion of the same name", () => ({ ...share(), ...conversion({ name: "base" }) }), /ami-factory:conversions: the name "base" is also used in ami-factory:shares: both appear in the images output, so rename one/],
  ["two builds of one image name in one region", () => ({ builds: [...build().builds, { ...build().builds[0], name: "os2" }] }), /ami-factory:builds\[1\] \(os2\)\.imageName: "debian-12-base" in us-east-1 is also the image name of ami-factory:builds\[0\] \(os\): EC2 names are unique per account and region, so rename one/],
  ["a conversion named like a build", () => ({ ...build(), ...conversion({ imageName: "debian-12-base" }) }), /ami-factory:conversions\[0\] \(legacy\)\.imageName: "debian-12-base" in us-east-1 is also the image name of ami-factory:builds\[0\] \(os\)/],
  ["two shares copying one name to one region", () => ({ shares: [share({ imageName: "base-copy" }).shares[0], share({ name: "base2", imageName: "base-copy" }).shares[0]] }), /ami-factory:shares\[1\] \(base2\)\.imageName: "base-copy" in eu-west-1 is also the image name of ami-factory:shares\[0\] \(base\)/],
  ["a misspelt config namespace", () => ({ "ami-factroy:conversions": conversion().conversions }), /ami-factroy:conversions: the namespace "ami-factroy" looks like a misspelling of ami-factory: rename the key to ami-factory:conversions/],
];

/** Stopped by `up` before anything is made: what only AWS can tell. */
const upRows: Row[] = [
  ["a conversion of an image that is HVM already", (f) => conversion({ sourceAmiId: f.hvm }), /sourceAmiId ami-[0-9a-f]+ is already HVM: use the image as it is/],
  ["a conversion of an instance-store image", (f) => conversion({ sourceAmiId: f.instanceStoreImage }), /sourceAmiId ami-[0-9a-f]+ is instance-store backed: only EBS-backed images can be converted \(move it to EBS first/],
  ["a conversion of a Marketplace image", (f) => conversion({ sourceAmiId: f.marketplace }), /sourceAmiId ami-[0-9a-f]+ carries Marketplace product codes \(abc123\): Marketplace images cannot be converted; use the vendor's HVM image/],
  ["a conversion of an image that does not exist", () => conversion(), /sourceAmiId ami-0123456789abcdef0 was not found in us-east-1: check the id and region \(images are regional\)/],
  ["a conversion on a worker subnet that does not exist", (f) => conversion({ sourceAmiId: f.pv, worker: { subnetId: "subnet-0123456789abcdef0" } }), /worker\.subnetId subnet-0123456789abcdef0 was not found in us-east-1: check the id and region/],
  ["a share of an image that does not exist", () => share(), /sourceAmiId ami-0123456789abcdef0 does not exist in us-east-1 \(or is not visible to this account\): check the id and sourceRegion/],
  ["a share of an image still pending", (f) => share({ sourceAmiId: f.pending }), /sourceAmiId ami-[0-9a-f]+ is pending, not available: wait for it or pick another image/],
  ["a recovery alarm for an instance-store instance", (f) => alarm({ instanceId: f.instanceStoreInstance }), /instanceId i-[0-9a-f]+ has an instance-store root volume: EC2 auto-recovery works only for EBS-backed instances; relaunch it from an EBS-backed AMI or drop this alarm/],
  ["a recovery alarm for an instance that does not exist", () => alarm(), /instanceId i-0123456789abcdef0 does not exist in us-east-1: check the id and region/],
  ["a build whose exact name an image in the account has", () => build({ imageName: "bad-input-hvm", exactName: true }), /step "check the image name is free" failed: an image named "bad-input-hvm" already exists in us-east-1 \(ami-[0-9a-f]+\): give the resource another name, or deregister that image/],
];

const WRITES = /^(Create|Run|Register|Copy|Attach|Put|Modify|Send|Add|Enable|Import)/;

describe("bad input on the engine: refused with the field and the fix, nothing created", function () {
  let emu: Emulator;
  let t: TestStack;
  let f: Fixtures;

  before(async () => {
    emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false" } });
    Object.assign(process.env, emu.env);
    const launch = async () => (await ec2().send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }))).Instances![0].InstanceId!;
    f = {
      pv: (await seedPvImage("us-east-1", "bad-input-pv")).imageId,
      hvm: await seedHvmImage("us-east-1", "bad-input-hvm"),
      instanceStoreImage: (await seedPvImage("us-east-1", "bad-input-instance-store")).imageId,
      marketplace: (await seedPvImage("us-east-1", "bad-input-marketplace")).imageId,
      pending: (await seedPvImage("us-east-1", "bad-input-pending")).imageId,
      instance: await launch(),
      instanceStoreInstance: await launch(),
    };
    await emu.setRootDeviceType("us-east-1", f.instanceStoreImage, "instance-store");
    await emu.setProductCodes("us-east-1", f.marketplace, [{ ProductCodeId: "abc123", ProductCodeType: "marketplace" }]);
    await emu.setImageState("us-east-1", f.pending, "pending");
    await emu.setRootDeviceType("us-east-1", f.instanceStoreInstance, "instance-store");
    t = await testStack(emu, {});
  });
  after(async () => emu?.stop());

  async function refuses(run: () => Promise<unknown>, config: Config, message: RegExp): Promise<void> {
    await emu.reset({ keepMoto: true });
    await emu.recordActions("*");
    t.configure(config);
    await assert.rejects(run(), (e: Error) => {
      const text = String(e);
      assert.match(text, message);
      assert.doesNotMatch(text, /Unhandled exception|    at /, "a message, not a stack trace");
      return true;
    });
    const writes = (await emu.allCalls()).filter((c) => WRITES.test(c.action));
    assert.deepStrictEqual(writes.map((c) => c.action), [], "nothing was created or changed");
    assert.deepStrictEqual(await imagesTagged("us-east-1", "ami-factory:build-id"), []);
    assert.deepStrictEqual(await leftovers(), []);
    const alarms = await new CloudWatchClient({ region: "us-east-1" }).send(new DescribeAlarmsCommand({}));
    assert.deepStrictEqual(alarms.MetricAlarms, []);
    const state = await t.stack.exportStack();
    // The destroy-deletes-images marker (nothing in AWS) may be made before the refusal.
    const made = (state.deployment.resources ?? []).filter((r: { type: string }) => r.type.startsWith("pulumi-nodejs:dynamic") && !r.type.endsWith(":StackLifetime"));
    assert.deepStrictEqual(made, [], "the stack holds no resource");
  }

  for (const [what, config, message] of previewRows) {
    it(`preview refuses ${what}`, async () => {
      await refuses(() => t.stack.preview({ onOutput: t.onOutput }), config(f), message);
    });
  }

  for (const [what, config, message] of upRows) {
    it(`up refuses ${what} before creating anything`, async () => {
      await refuses(() => t.stack.up({ onOutput: t.onOutput }), config(f), message);
    });
  }

  it("has at least 30 rows", () => {
    assert.ok(previewRows.length + upRows.length >= 30);
  });
});
