// Retirement and reaping, without AWS: the fields, what a delete does, and the reaping policy.
import * as assert from "assert";
import type { Image } from "@aws-sdk/client-ec2";
import { refusesEach } from "../support/table";
import { checkSharedAmi } from "../../providers/sharedAmi/inputs";
import { decide, referencesOf, RetiredImage } from "../../providers/core/reap";
import { isRetired, protectionSeen, parseRetention, retentionTag, retirementOf, retireWith, successorOf } from "../../providers/core/retire";
import { rootSnapshotOf } from "../../providers/worker/build";
import { publishRefusal, unpublishes } from "../../providers/core/publish";
import { deregisterProtected } from "../../providers/core/images";
import { parseReapArgs } from "../../scripts/reap";

const share = { sourceAmiId: "ami-0123456789abcdef0", sourceRegion: "us-east-1", regions: ["eu-west-1"], scope: "p/s/base" };
const DAY = 86_400_000;
const now = new Date("2027-03-01T00:00:00Z");

function retired(imageId: string, daysAgo: number, o: Partial<RetiredImage> = {}): RetiredImage {
  return { region: "us-east-1", imageId, name: imageId, lineage: "p/s/web", retiredAt: new Date(now.getTime() - daysAgo * DAY), retention: { days: 14, keep: 2 }, ownSnapshotIds: [], ...o };
}

describe("retirement fields", () => {
  refusesEach(checkSharedAmi, share, [
    ["an unknown retirement", { retirement: "keep" }, "retirement", /"retire".*or "delete"/],
    ["negative retention days", { retention: { days: -1 } }, "retention.days", /-1/],
    ["retention days under a day (EC2 reports a launch up to a day late)", { retention: { days: 0 } }, "retention.days", /from 1 to 3650/],
    ["retention days beyond ten years", { retention: { days: 4000 } }, "retention.days", /3650/],
    ["a fractional retention keep", { retention: { keep: 1.5 } }, "retention.keep", /whole number from 0 to 100/],
    ["a misspelt retention key", { retention: { day: 3 } }, "retention.day", /days, keep/],
    ["a non-boolean deregistrationProtection", { deregistrationProtection: "yes" }, "deregistrationProtection", /true or false/],
    ["a parameter name with a space", { publish: "/ami factory" }, "publish", /characters Parameter Store refuses/],
    ["a hierarchy without its leading slash", { publish: "team/web" }, "publish", /must start with \//],
    ["a name prefixed ssm", { publish: "ssm-web" }, "publish", /reserves/],
    ["a path under /aws/", { publish: "/aws/service/x" }, "publish", /reserves/],
    ["a hierarchy deeper than 15 levels", { publish: "/a".repeat(16) }, "publish", /15 levels/],
    ["a trailing slash", { publish: "/ami-factory/" }, "publish", /empty level/],
    ["a name too long for its ARN", { publish: `/${"a".repeat(1000)}` }, "publish", /at most 960/],
  ]);

  it("takes a parameter name Parameter Store takes", () => {
    assert.strictEqual(checkSharedAmi({ ...share, publish: "/ami-factory/prod/web" }).inputs!.publish, "/ami-factory/prod/web");
    assert.strictEqual(checkSharedAmi({ ...share, publish: "web_base.v2" }).inputs!.publish, "web_base.v2");
  });

  it("keeps defaults unset in state, so older state shows no change", () => {
    const { inputs } = checkSharedAmi(share);
    assert.strictEqual(inputs!.retirement, undefined);
    assert.strictEqual(inputs!.retention, undefined);
    assert.strictEqual(inputs!.deregistrationProtection, undefined);
    const given = checkSharedAmi({ ...share, retirement: "delete", retention: { days: 1 }, deregistrationProtection: false }).inputs!;
    assert.deepStrictEqual([given.retirement, given.retention, given.deregistrationProtection], ["delete", { days: 1, keep: 2 }, false]);
  });
});

describe("what a delete does", () => {
  it("retires unless the resource says delete; nothing in the environment deletes", () => {
    assert.strictEqual(retirementOf(undefined), "retire");
    assert.strictEqual(retirementOf("delete"), "delete");
    process.env.AMI_FACTORY_DELETE_IMAGES = "1";
    try {
      assert.strictEqual(retirementOf(undefined), "retire", "an earlier release's AMI_FACTORY_DELETE_IMAGES is ignored");
    } finally {
      delete process.env.AMI_FACTORY_DELETE_IMAGES;
    }
  });

  it("names a replacement's successor: the newest other image of the lineage, not retired", async () => {
    const img = (id: string, created: string, retired = false) => ({ ImageId: id, State: "available", CreationDate: created, Tags: [{ Key: "ami-factory:build-id", Value: `b-${id}` }, ...(retired ? [{ Key: "ami-factory:retired-at", Value: created }] : [])] });
    const ec2 = (images: object[]) => ({ send: async () => ({ Images: images }) }) as never;
    assert.strictEqual(await successorOf(ec2([img("ami-old", "2027-01-01T00:00:00Z"), img("ami-new", "2027-02-01T00:00:00Z")]), "p/s/web", "ami-old"), "b-ami-new");
    assert.strictEqual(await successorOf(ec2([img("ami-old", "2027-01-01T00:00:00Z")]), "p/s/web", "ami-old"), "removed", "removed: nothing else");
    assert.strictEqual(await successorOf(ec2([img("ami-old", "2027-01-01T00:00:00Z"), img("ami-new", "2027-02-01T00:00:00Z", true)]), "p/s/web", "ami-old"), "removed", "only retired ones");
  });

  it("judges an image retired by its own id: a CopyImage of a retired image that copied its tags is not retired", async () => {
    const tags = (retiredImage?: string) => [{ Key: "ami-factory:retired-at", Value: "2027-01-01T00:00:00.000Z" }, ...(retiredImage ? [{ Key: "ami-factory:retired-image", Value: retiredImage }] : [])];
    const made = "2026-12-01T00:00:00.000Z";
    assert.strictEqual(isRetired({ ImageId: "ami-old", CreationDate: made, Tags: tags("ami-old") }), true);
    assert.strictEqual(isRetired({ ImageId: "ami-copy", CreationDate: made, Tags: tags("ami-old") }), false, "a copy carrying the retired image's tags");
    assert.strictEqual(isRetired({ ImageId: "ami-old", CreationDate: made, Tags: tags() }), true, "retired before retired-image was written");
    assert.strictEqual(isRetired({ ImageId: "ami-copy", CreationDate: "2027-01-02T00:00:00.000Z", Tags: tags() }), false, "a later copy (tags copied) of an image retired before retired-image was written");
    assert.strictEqual(isRetired({ ImageId: "ami-old", Tags: tags() }), false, "no retired-image and no CreationDate: its age unknown, not reaped");
    assert.strictEqual(isRetired({ ImageId: "ami-old", CreationDate: made, Tags: [{ Key: "ami-factory:retired-at", Value: "soon" }] }), false);
    assert.strictEqual(isRetired({ ImageId: "ami-old", CreationDate: made, Tags: [] }), false);
    // Nor is it a successor: it copies one of the lineage's images (SourceImageId).
    const copy = { ImageId: "ami-copy", State: "available", CreationDate: "2027-02-01T00:00:00Z", SourceImageId: "ami-older", Tags: [...tags("ami-older"), { Key: "ami-factory:build-id", Value: "b-older" }] };
    const images = [{ ImageId: "ami-older", State: "available", CreationDate: "2026-12-01T00:00:00Z", Tags: tags("ami-older") }, { ImageId: "ami-live", State: "available", CreationDate: "2027-01-01T00:00:00Z", Tags: [] }, copy];
    const ec2 = { send: async () => ({ Images: images }) } as never;
    assert.strictEqual(await successorOf(ec2, "p/s/web", "ami-live"), "removed", "a copy of a retired build is no successor");
  });

  it("reads deregistration protection for refresh: false when an image is unprotected, nothing when EC2 does not say", () => {
    assert.deepStrictEqual(protectionSeen([{ DeregistrationProtection: "disabled" }]), { deregistrationProtection: false });
    assert.deepStrictEqual(protectionSeen([{ DeregistrationProtection: "enabled-without-cooldown" }, { DeregistrationProtection: "disabled" }]), { deregistrationProtection: false }, "one copy unprotected");
    assert.deepStrictEqual(protectionSeen([{ DeregistrationProtection: "enabled-without-cooldown" }]), { deregistrationProtection: undefined });
    assert.deepStrictEqual(protectionSeen([{}]), {});
    assert.deepStrictEqual(protectionSeen([]), {}, "a share in place only: no copy");
  });

  it("writes and reads the retention tag", () => {
    assert.strictEqual(retentionTag(undefined), "days=14 keep=2");
    assert.deepStrictEqual(parseRetention(retentionTag({ days: 0, keep: 5 })), { days: 0, keep: 5 });
    assert.deepStrictEqual(parseRetention("garbage"), { days: 14, keep: 2 });
  });
});

describe("reaping policy", () => {
  const verdict = (images: RetiredImage[], refs: Record<string, string[]> = {}, all = false) =>
    Object.fromEntries(decide(images, refs, { now, all }).map((v) => [v.image.imageId, `${v.action}: ${v.reason}`]));

  it("deletes only past retention days, beyond the newest keep, and unused", () => {
    const v = verdict([retired("ami-new", 1), retired("ami-2", 20), retired("ami-3", 30), retired("ami-4", 40)]);
    assert.match(v["ami-new"], /^keep: retired 1\.0 days ago, retention.days is 14/);
    assert.match(v["ami-2"], /^keep: one of the 2 newest/);
    assert.match(v["ami-3"], /^delete: retired 30\.0 days ago/);
    assert.match(v["ami-4"], /^delete/);
  });

  it("keeps an image something refers to, or launched within the retention (at least a day)", () => {
    const images = [retired("ami-a", 40, { retention: { days: 1, keep: 0 } }), retired("ami-b", 40, { retention: { days: 1, keep: 0 }, lastLaunched: new Date(now.getTime() - DAY / 2) }), retired("ami-c", 40, { retention: { days: 1, keep: 0 }, lastLaunched: new Date(now.getTime() - 2 * DAY) })];
    const v = verdict(images, { "ami-a": ["arn:aws:ec2:us-east-1:1:launch-template/lt-1"] });
    assert.match(v["ami-a"], /^keep: in use: arn:aws:ec2:us-east-1:1:launch-template\/lt-1/);
    assert.match(v["ami-b"], /^keep: launched 0\.5 days ago/);
    assert.match(v["ami-c"], /^delete/);
  });

  it("never reaps an image retired less than a day ago: EC2 reports a launch up to a day late", () => {
    const v = verdict([retired("ami-fresh", 0.9, { retention: { days: 1, keep: 0 } }), retired("ami-old", 1.1, { retention: { days: 1, keep: 0 } })]);
    assert.match(v["ami-fresh"], /^keep: retired 0\.9 days ago: EC2 reports a launch up to a day late/);
    assert.match(v["ami-old"], /^delete/);
    const all = verdict([retired("ami-fresh", 0.9)], {}, true);
    assert.match(all["ami-fresh"], /^keep: .*not even with --all/);
  });

  it("counts keep per lineage and region", () => {
    const v = verdict([retired("ami-x", 30, { lineage: "p/s/a" }), retired("ami-y", 30, { lineage: "p/s/b" }), retired("ami-z", 30, { lineage: "p/s/a", region: "eu-west-1" })]);
    assert.deepStrictEqual(Object.values(v).map((x) => x.split(":")[0]), ["keep", "keep", "keep"]);
  });

  it("with --all ignores days and keep, never use (a launch since the retirement is use)", () => {
    const launched = (days: number) => new Date(now.getTime() - days * DAY);
    const v = verdict([retired("ami-1", 5), retired("ami-2", 5), retired("ami-3", 5, { lastLaunched: launched(6) }), retired("ami-4", 5, { lastLaunched: launched(3) })], { "ami-2": ["arn:aws:ssm:us-east-1:1:parameter/x"] }, true);
    assert.match(v["ami-1"], /^delete: .*\(--all\)/);
    assert.match(v["ami-2"], /^keep: in use/);
    assert.match(v["ami-3"], /^delete/, "launched before its retirement only");
    assert.match(v["ami-4"], /^keep: launched 3\.0 days ago .*after its retirement/);
  });
});

/** A fake EC2 client: records each command's name, answers DescribeImages with `image`, fails the commands in `fail`. */
function recordingEc2(image: Image, fail: string[] = []) {
  const calls: string[] = [];
  const inputs: { name: string; input: unknown }[] = [];
  const ec2 = {
    send: async (cmd: { constructor: { name: string }; input: unknown }) => {
      const name = cmd.constructor.name.replace(/Command$/, "");
      calls.push(name);
      inputs.push({ name, input: cmd.input });
      if (fail.includes(name)) throw Object.assign(new Error(`${name} failed`), { name: "InternalError" });
      return name === "DescribeImages" ? { Images: [image] } : {};
    },
  };
  return { ec2: ec2 as never, calls, inputs };
}

describe("protection around retiring and deleting", () => {
  const protectedImage = { ImageId: "ami-1", State: "available", CreationDate: "2027-01-01T00:00:00Z", DeregistrationProtection: "enabled-without-cooldown", Tags: [] } as Image;

  it("retires: deprecates and tags first, lifts protection last", async () => {
    const { ec2, calls, inputs } = recordingEc2(protectedImage);
    await retireWith(ec2, "us-east-1", "ami-1", { lineage: "p/s/web" }, () => undefined);
    assert.deepStrictEqual(calls.filter((c) => c !== "DescribeImages"), ["EnableImageDeprecation", "CreateTags", "DisableImageDeregistrationProtection"]);
    const tagged = inputs.find((i) => i.name === "CreateTags")!.input as { Tags: { Key: string; Value: string }[] };
    assert.strictEqual(tagged.Tags.find((t) => t.Key === "ami-factory:retired-image")?.Value, "ami-1", "the retired image's own id");
  });

  it("a failed retirement leaves the protection on", async () => {
    const { ec2, calls } = recordingEc2(protectedImage, ["CreateTags"]);
    await assert.rejects(retireWith(ec2, "us-east-1", "ami-1", { lineage: "p/s/web" }, () => undefined), /CreateTags failed/);
    assert.ok(!calls.includes("DisableImageDeregistrationProtection"));
  });

  it("a failed DeregisterImage puts the protection back before rethrowing", async () => {
    const { ec2, calls } = recordingEc2(protectedImage, ["DeregisterImage"]);
    await assert.rejects(deregisterProtected(ec2, protectedImage), /DeregisterImage failed/);
    assert.deepStrictEqual(calls, ["DisableImageDeregistrationProtection", "DeregisterImage", "EnableImageDeregistrationProtection"]);
    const ok = recordingEc2(protectedImage);
    await deregisterProtected(ok.ec2, protectedImage);
    assert.deepStrictEqual(ok.calls, ["DisableImageDeregistrationProtection", "DeregisterImage"]);
  });
});

describe("publish over an existing parameter", () => {
  it("refuses one ami-factory did not write, or of another lineage, naming publish; takes its own or none", () => {
    assert.match(publishRefusal("/web", "us-east-1", { owner: undefined, description: "team's AMI" }, "p/s/web") ?? "", /^publish: SSM parameter \/web in us-east-1 exists and is not ami-factory's \(its description is "team's AMI"\)/);
    assert.match(publishRefusal("/web", "us-east-1", { owner: "b-1", lineage: "p/other/web" }, "p/s/web") ?? "", /^publish: SSM parameter \/web in us-east-1 is published by p\/other\/web, not p\/s\/web/);
    assert.strictEqual(publishRefusal("/web", "us-east-1", undefined, "p/s/web"), undefined);
    assert.strictEqual(publishRefusal("/web", "us-east-1", { owner: "b-0", lineage: "p/s/web" }, "p/s/web"), undefined, "a replacement of the same lineage rewrites it");
  });

  it("is deleted by an image leaving the stack only while it names that image for that owner: never once a replacement rewrote it, never one ami-factory did not write", () => {
    assert.strictEqual(unpublishes({ value: "ami-old", owner: "b-1" }, "ami-old", "b-1"), true, "a removed entry's own parameter");
    assert.strictEqual(unpublishes({ value: "ami-new", owner: "b-2" }, "ami-old", "b-1"), false, "the replacement rewrote it");
    assert.strictEqual(unpublishes({ value: "ami-old", owner: "h-2" }, "ami-old", "h-1"), false, "a replacement sharing the same image in place owns it now");
    assert.strictEqual(unpublishes({ value: "ami-old", owner: undefined }, "ami-old", "b-1"), false, "rewritten by hand (no ami-factory owner)");
    assert.strictEqual(unpublishes(undefined, "ami-old", "b-1"), false);
  });
});

describe("DescribeImageReferences calls", () => {
  it("asks for at most 10 image ids a call, follows NextToken, and every launch template version", async () => {
    const ids = Array.from({ length: 23 }, (_, n) => `ami-${String(n).padStart(17, "0")}`);
    const calls: { ImageIds: string[]; NextToken?: string; ResourceTypes: { ResourceType: string; ResourceTypeOptions?: { OptionName: string; OptionValues: string[] }[] }[] }[] = [];
    const ec2 = {
      send: async (cmd: { input: (typeof calls)[number] }) => {
        const input = cmd.input;
        calls.push(input);
        assert.ok(input.ImageIds.length >= 1 && input.ImageIds.length <= 10, `ImageId.N takes 1 to 10 ids, got ${input.ImageIds.length}`);
        // Two pages per batch: the first image's reference, then the last one's.
        return input.NextToken ? { ImageReferences: [{ ImageId: input.ImageIds.at(-1), Arn: `arn:last:${input.ImageIds.at(-1)}` }] } : { ImageReferences: [{ ImageId: input.ImageIds[0], Arn: `arn:first:${input.ImageIds[0]}` }], NextToken: "page2" };
      },
    };
    const refs = await referencesOf(ec2 as never, ids);
    assert.deepStrictEqual(calls.map((c) => c.ImageIds.length), [10, 10, 10, 10, 3, 3]);
    assert.deepStrictEqual(refs[ids[10]], [`arn:first:${ids[10]}`]);
    assert.deepStrictEqual(refs[ids[22]], [`arn:last:${ids[22]}`]);
    const lt = calls[0].ResourceTypes.find((t) => t.ResourceType === "ec2:LaunchTemplate");
    assert.deepStrictEqual(lt?.ResourceTypeOptions, [{ OptionName: "version-depth", OptionValues: ["10000"] }]);
  });
});

describe("npm run reap options", () => {
  it("reads --stack, --region, --dry-run, --all and --now, and refuses what it does not know", () => {
    const a = parseReapArgs(["--stack", "dev", "--region", "eu-west-1", "--region", "us-east-1", "--dry-run", "--all", "--now", "2027-01-01T00:00:00Z"]);
    assert.deepStrictEqual({ ...a, now: a.now.toISOString() }, { stack: "dev", regions: ["eu-west-1", "us-east-1"], dryRun: true, all: true, now: "2027-01-01T00:00:00.000Z" });
    assert.throws(() => parseReapArgs(["--now", "tomorrow"]), /--now takes an ISO 8601 time/);
    assert.throws(() => parseReapArgs(["--yes"]), /unknown option --yes/);
    assert.throws(() => parseReapArgs(["--region"]), /--region needs a value/);
  });
});

describe("an image's root snapshot", () => {
  it("is the mapping of its RootDeviceName, not the first one", () => {
    const image = {
      RootDeviceName: "/dev/xvda",
      BlockDeviceMappings: [{ DeviceName: "/dev/sdf", Ebs: { SnapshotId: "snap-data" } }, { DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-root" } }],
    };
    assert.strictEqual(rootSnapshotOf(image), "snap-root");
    assert.strictEqual(rootSnapshotOf({ RootDeviceName: "/dev/sda1", BlockDeviceMappings: [{ DeviceName: "/dev/sdb", VirtualName: "ephemeral0" }] }), undefined);
  });
});
