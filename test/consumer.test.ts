// The example consumer stack (examples/consumer): chooseImage as a pure function, and what the
// program declares under Pulumi mocks (the AWS provider plugin is never started).
// The example is its own Node project (scripts/setup.sh installs its node_modules): mocks and config
// are set on the @pulumi/pulumi that the example itself loads, not on the repository root's copy.
import * as assert from "assert";
import * as path from "path";
import type * as PulumiSdk from "@pulumi/pulumi";

const PROJECT = "ami-consumer";
const FACTORY = "acme/ami-factory/dev";
const PROGRAM = path.join(__dirname, "..", "examples", "consumer");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pulumi: typeof PulumiSdk = require(require.resolve("@pulumi/pulumi", { paths: [PROGRAM] }));

// Fixtures: what the ami-factory stack exports.
const IMAGES = {
  base: { "us-east-1": "ami-0a1b2c3d4e5f60708", "eu-west-1": "ami-0123456789abcdef0" },
  gpu: { "us-east-1": "ami-11111111" },
};
const ALARMS = { web: { alarmName: "web-recover", alarmArn: "arn:aws:cloudwatch:us-east-1:111122223333:alarm:web-recover", instanceId: "i-0123456789abcdef0" } };
/** The root device name each fixture image reports to DescribeImages. */
const ROOT_DEVICE: Record<string, string> = { "ami-0a1b2c3d4e5f60708": "/dev/xvda", "ami-0123456789abcdef0": "/dev/sda1", "ami-11111111": "/dev/xvda" };

type Program = typeof import("../examples/consumer");

interface Run {
  program: Program;
  /** The program's result: the stack outputs, or why it failed. */
  outputs: ReturnType<Program>;
  /** Every resource the program registered or read, in order. */
  resources: PulumiSdk.runtime.MockResourceArgs[];
  /** Every provider function the program invoked. */
  calls: PulumiSdk.runtime.MockCallArgs[];
}

interface RunOptions {
  /** This stack's config, without the project prefix for project keys ("aws:region" is kept). */
  config: Record<string, string>;
  /** The factory stack's outputs. Default: { images: IMAGES, alarms: ALARMS }. */
  factoryOutputs?: Record<string, unknown>;
  /** Run as `pulumi preview`. Default: false. */
  preview?: boolean;
  /** getAmi fails with this message. Default: it answers from ROOT_DEVICE. */
  describeFails?: string;
}

/**
 * Set mocks and config, load the program and start it, as the Node.js language host would. The
 * program runs until `outputs` settles.
 */
async function runProgram(opts: RunOptions): Promise<Run> {
  const resources: PulumiSdk.runtime.MockResourceArgs[] = [];
  const calls: PulumiSdk.runtime.MockCallArgs[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push(args);
        if (args.type === "pulumi:pulumi:StackReference") {
          // A read: the engine answers with the referenced stack's outputs.
          return { id: args.inputs.name, state: { name: args.inputs.name, outputs: opts.factoryOutputs ?? { images: IMAGES, alarms: ALARMS }, secretOutputNames: [] } };
        }
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call(args) {
        calls.push(args);
        if (args.token === "aws:ec2/getAmi:getAmi") {
          // The engine reports a provider's error as a gRPC status; the SDK reads its `details`.
          if (opts.describeFails) throw Object.assign(new Error(opts.describeFails), { details: opts.describeFails });
          const id = args.inputs.filters[0].values[0];
          if (!ROOT_DEVICE[id]) throw Object.assign(new Error("no image"), { details: `Your query returned no results for ${id}` });
          return { id, imageId: id, rootDeviceName: ROOT_DEVICE[id] };
        }
        throw new Error(`unexpected invoke ${args.token}`);
      },
    },
    PROJECT,
    "dev",
    opts.preview ?? false,
  );
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.config)) config[k.includes(":") ? k : `${PROJECT}:${k}`] = v;
  pulumi.runtime.setAllConfig(config);
  const program: Program = require(PROGRAM);
  return { program, outputs: program(), resources, calls };
}

/** An Output's value. Output#promise is internal to the SDK, but stable, and the way to await one. */
function valueOf<T>(o: PulumiSdk.Output<T>): Promise<T> {
  return (o as unknown as { promise(): Promise<T> }).promise();
}

/** Run the program to the end; its outputs with the launch template id resolved. */
async function outputsOf(run: Run): Promise<{ imageId: string; launchTemplateId: string }> {
  const { imageId, launchTemplateId } = await run.outputs;
  return { imageId, launchTemplateId: await valueOf(launchTemplateId) };
}

function launchTemplates(run: Run) {
  return run.resources.filter((r) => r.type === "aws:ec2/launchTemplate:LaunchTemplate");
}

describe("examples/consumer", () => {
  // The region must come from config alone; the SDK falls back to these variables.
  const saved: Record<string, string | undefined> = {};
  const ENV = ["AWS_REGION", "AWS_DEFAULT_REGION", "PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS"];
  before(() => {
    for (const k of ENV) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
  });
  after(() => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    pulumi.runtime.setAllConfig(saved.PULUMI_CONFIG ? JSON.parse(saved.PULUMI_CONFIG) : {});
    // Drop the mock monitor, project and stack, so that later test files start from a clean runtime.
    pulumi.runtime.resetOptions("", "", -1, "", "", false, "");
  });
  afterEach(() => {
    delete process.env.AWS_REGION;
  });

  describe("chooseImage", () => {
    let chooseImage: Program["chooseImage"];
    let ImageChoiceError: Program["ImageChoiceError"];
    before(() => ({ chooseImage, ImageChoiceError } = require(PROGRAM) as Program));

    it("returns the id of the named image for the region", () => {
      assert.strictEqual(chooseImage(IMAGES, "base", "eu-west-1"), "ami-0123456789abcdef0");
      assert.strictEqual(chooseImage(IMAGES, "base", "us-east-1"), "ami-0a1b2c3d4e5f60708");
      assert.strictEqual(chooseImage(IMAGES, "gpu", "us-east-1"), "ami-11111111");
    });

    it("names the image, the region and the regions it has when the region has no copy", () => {
      assert.throws(
        () => chooseImage(IMAGES, "base", "ap-south-1", "stack acme/ami-factory/dev"),
        (e: Error) => {
          assert.ok(e instanceof ImageChoiceError, `not an ImageChoiceError: ${e}`);
          assert.ok(pulumi.RunError.isInstance(e), "must be a RunError so the CLI prints no stack trace");
          assert.strictEqual(
            e.message,
            'stack acme/ami-factory/dev: image "base" has no AMI id for region ap-south-1; it is available in: eu-west-1, us-east-1. ' +
              "Add ap-south-1 to that image's regions in the ami-factory stack, or deploy this stack to one of those regions.",
          );
          return true;
        },
      );
    });

    // Bad inputs, one row each: what is given, and what the message must say.
    const bad: { why: string; images: unknown; name: string; region: string | undefined; message: RegExp }[] = [
      { why: "an unknown image lists the images there are", images: IMAGES, name: "web", region: "us-east-1", message: /has no image "web" \(wanted for us-east-1\); its images are: base, gpu\./ },
      { why: "no region asks for aws:region", images: IMAGES, name: "base", region: undefined, message: /image "base".*no AWS region.*pulumi config set aws:region/ },
      { why: "an empty region asks for aws:region", images: IMAGES, name: "base", region: "", message: /no AWS region/ },
      { why: "a missing images output says so", images: undefined, name: "base", region: "us-east-1", message: /"base" for us-east-1: the ami-factory stack exports no `images` map/ },
      { why: "an images output that is a list says so", images: ["ami-11111111"], name: "base", region: "us-east-1", message: /exports no `images` map/ },
      { why: "an empty images output lists no images", images: {}, name: "base", region: "us-east-1", message: /its images are: none\./ },
      { why: "an image that is not a region map says so", images: { base: "ami-11111111" }, name: "base", region: "us-east-1", message: /image "base" is not a map of region → AMI id/ },
      { why: "an image with no regions says so", images: { base: {} }, name: "base", region: "us-east-1", message: /no AMI id for region us-east-1; it is available in: no region\./ },
      { why: "a value that is not an AMI id is refused", images: { base: { "us-east-1": "snap-0123456789abcdef0" } }, name: "base", region: "us-east-1", message: /in us-east-1 is "snap-0123456789abcdef0", which is not an AMI id/ },
      { why: "inherited keys are not images", images: IMAGES, name: "constructor", region: "us-east-1", message: /has no image "constructor"/ },
      { why: "inherited keys are not regions", images: IMAGES, name: "base", region: "toString", message: /no AMI id for region toString/ },
    ];
    for (const row of bad) {
      it(`refuses bad input: ${row.why}`, () => {
        assert.throws(() => chooseImage(row.images, row.name, row.region), (e: Error) => e instanceof ImageChoiceError && row.message.test(e.message));
      });
    }
  });

  describe("the program", () => {
    it("reads the factory stack named in config and builds the launch template on the image for aws:region", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "eu-west-1" } });
      assert.deepStrictEqual(await outputsOf(run), { imageId: "ami-0123456789abcdef0", launchTemplateId: "app-id" });

      const refs = run.resources.filter((r) => r.type === "pulumi:pulumi:StackReference");
      assert.deepStrictEqual(refs.map((r) => [r.name, r.id, r.inputs.name]), [[FACTORY, FACTORY, FACTORY]]);
      const [lt] = launchTemplates(run);
      assert.ok(lt, "no launch template was declared");
      assert.strictEqual(lt.name, "app");
      assert.strictEqual(lt.inputs.imageId, "ami-0123456789abcdef0");
      assert.strictEqual(lt.inputs.region, "eu-west-1");
    });

    it("requires IMDSv2 and encrypts the root volume under the image's own root device name", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "eu-west-1" } });
      await outputsOf(run);
      const [lt] = launchTemplates(run);
      assert.deepStrictEqual(lt.inputs.metadataOptions, { httpEndpoint: "enabled", httpTokens: "required" });
      assert.deepStrictEqual(lt.inputs.blockDeviceMappings, [{ deviceName: "/dev/sda1", ebs: { encrypted: "true", deleteOnTermination: "true" } }]);
      assert.strictEqual(lt.inputs.updateDefaultVersion, true);
      const describe = run.calls.filter((c) => c.token === "aws:ec2/getAmi:getAmi");
      assert.deepStrictEqual(describe.map((c) => c.inputs), [{ filters: [{ name: "image-id", values: ["ami-0123456789abcdef0"] }], includeDeprecated: true, region: "eu-west-1" }]);
    });

    it('defaults to the image "base" and the instance type t3.micro', async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "us-east-1" } });
      assert.strictEqual((await outputsOf(run)).imageId, "ami-0a1b2c3d4e5f60708");
      const [lt] = launchTemplates(run);
      assert.strictEqual(lt.inputs.imageId, "ami-0a1b2c3d4e5f60708");
      assert.strictEqual(lt.inputs.instanceType, "t3.micro");
      assert.deepStrictEqual(lt.inputs.blockDeviceMappings[0].deviceName, "/dev/xvda");
      assert.deepStrictEqual(lt.inputs.tags, { "ami-factory:stack": FACTORY, "ami-factory:image": "base" });
    });

    it("takes imageName and instanceType from config", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "us-east-1", imageName: "gpu", instanceType: "g5.xlarge" } });
      assert.strictEqual((await outputsOf(run)).imageId, "ami-11111111");
      const [lt] = launchTemplates(run);
      assert.strictEqual(lt.inputs.imageId, "ami-11111111");
      assert.strictEqual(lt.inputs.instanceType, "g5.xlarge");
    });

    it("falls back to AWS_REGION when aws:region is not set, as the provider does", async () => {
      process.env.AWS_REGION = "us-east-1";
      const run = await runProgram({ config: { amiFactoryStack: FACTORY } });
      assert.strictEqual((await outputsOf(run)).imageId, "ami-0a1b2c3d4e5f60708");
      assert.strictEqual(launchTemplates(run)[0].inputs.region, "us-east-1");
    });

    it("chooses the same image in a preview", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "eu-west-1" }, preview: true });
      assert.strictEqual((await outputsOf(run)).imageId, "ami-0123456789abcdef0");
      assert.strictEqual(launchTemplates(run)[0].inputs.imageId, "ami-0123456789abcdef0");
    });

    it("fails naming the image, the region and the regions available when the region has no copy, before declaring the template", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "ap-south-1" } });
      await assert.rejects(run.outputs, (e: Error) => {
        assert.ok(e instanceof run.program.ImageChoiceError, `not an ImageChoiceError: ${e}`);
        assert.strictEqual(
          e.message,
          'stack acme/ami-factory/dev: image "base" has no AMI id for region ap-south-1; it is available in: eu-west-1, us-east-1. ' +
            "Add ap-south-1 to that image's regions in the ami-factory stack, or deploy this stack to one of those regions.",
        );
        return true;
      });
      assert.deepStrictEqual(launchTemplates(run), []);
      assert.deepStrictEqual(run.calls, []);
    });

    it("fails naming the image, the region and the images there are when the image does not exist", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "eu-west-1", imageName: "web" } });
      await assert.rejects(run.outputs, /^ImageChoiceError: stack acme\/ami-factory\/dev has no image "web" \(wanted for eu-west-1\); its images are: base, gpu\./);
      assert.deepStrictEqual(launchTemplates(run), []);
    });

    it("fails asking for aws:region when the stack has no region", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY } });
      await assert.rejects(run.outputs, /image "base" from stack acme\/ami-factory\/dev: this stack has no AWS region; set one with 'pulumi config set aws:region <region>'/);
      assert.deepStrictEqual(launchTemplates(run), []);
    });

    it("fails naming the factory stack when it exports no images", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "eu-west-1" }, factoryOutputs: { alarms: ALARMS } });
      await assert.rejects(run.outputs, /"base" for eu-west-1: stack acme\/ami-factory\/dev exports no `images` map/);
      assert.deepStrictEqual(launchTemplates(run), []);
    });

    it("fails naming the image and pointing at the share when the image cannot be described", async () => {
      const run = await runProgram({ config: { amiFactoryStack: FACTORY, "aws:region": "eu-west-1" }, describeFails: "reading EC2 AMIs: operation error EC2: DescribeImages, api error UnauthorizedOperation" });
      await assert.rejects(run.outputs, (e: Error) => {
        assert.ok(e instanceof run.program.ImageChoiceError, `not an ImageChoiceError: ${e}`);
        assert.match(e.message, /^cannot describe image "base" \(ami-0123456789abcdef0\) in eu-west-1: reading EC2 AMIs: .*api error UnauthorizedOperation\. If it is not found, this account may be missing from that image's share in the ami-factory stack\.$/);
        return true;
      });
      assert.deepStrictEqual(launchTemplates(run), []);
    });

    it("requires amiFactoryStack", async () => {
      const run = await runProgram({ config: { "aws:region": "eu-west-1" } });
      await assert.rejects(run.outputs, /Missing required configuration variable 'ami-consumer:amiFactoryStack'/);
      assert.deepStrictEqual(run.resources, []);
    });
  });
});
