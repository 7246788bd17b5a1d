// ami-consumer: an example stack that launches from an image the ami-factory stack shared.
// It reads the factory's `images` output (name → region → AMI id) through a StackReference, picks
// the id for this stack's AWS region and declares an encrypted, IMDSv2-only launch template on it.
//
// Config (project `ami-consumer`):
//   amiFactoryStack  required  the factory stack, "org/ami-factory/dev"
//   imageName        optional  key in `images`, default "base"
//   instanceType     optional  default "t3.micro"
//   aws:region       required  (or AWS_REGION / AWS_DEFAULT_REGION) the region whose copy is used
//
// The module exports one function (Pulumi runs it and its result becomes the stack outputs), with
// the pure `chooseImage` and the `declareConsumer` declaration attached to it for tests; named
// exports would be published as stack outputs too.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

const AMI_ID = /^ami-[0-9a-f]{8,17}$/;

/** Stack outputs of this program. */
interface ConsumerOutputs {
  /** The AMI id chosen for this stack's region. */
  imageId: string;
  /** The launch template's id. */
  launchTemplateId: pulumi.Output<string>;
}

interface ConsumerArgs {
  /** Fully qualified name of the ami-factory stack, e.g. "acme/ami-factory/dev". Required. */
  amiFactoryStack: string;
  /** Which image of the factory's `images` output to use. Default: "base". */
  imageName?: string;
  /**
   * The region whose copy of the image is used; the launch template and the image lookup are
   * pinned to it. Default: the aws provider's region (`aws:region`, else AWS_REGION /
   * AWS_DEFAULT_REGION).
   */
  region?: string;
  /** Instance type of the launch template. Default: "t3.micro". */
  instanceType?: string;
}

/**
 * The image cannot be used: no region, no such image, no copy in the region, or the copy cannot be
 * described. A RunError, so `pulumi preview` prints the message alone, without a stack trace.
 */
class ImageChoiceError extends pulumi.RunError {
  constructor(message: string) {
    super(message);
    this.name = "ImageChoiceError";
  }
}

/**
 * Pick the AMI id of image `name` for `region` from the factory's `images` output. Pure; throws
 * an ImageChoiceError that names the image, the region and what is available instead.
 * `images` is untyped because it crosses a stack boundary; `source` names the factory stack in
 * messages (default: "the ami-factory stack").
 */
function chooseImage(images: unknown, name: string, region: string | undefined, source = "the ami-factory stack"): string {
  if (!region) {
    throw new ImageChoiceError(`cannot choose image "${name}" from ${source}: this stack has no AWS region; set one with 'pulumi config set aws:region <region>'`);
  }
  if (typeof images !== "object" || images === null || Array.isArray(images)) {
    throw new ImageChoiceError(`cannot choose image "${name}" for ${region}: ${source} exports no \`images\` map (name → region → AMI id); got ${JSON.stringify(images)}`);
  }
  const all = images as Record<string, unknown>;
  const names = Object.keys(all).sort();
  if (!Object.prototype.hasOwnProperty.call(all, name)) {
    throw new ImageChoiceError(`${source} has no image "${name}" (wanted for ${region}); its images are: ${names.join(", ") || "none"}. Set this stack's imageName config to one of them.`);
  }
  const byRegion = all[name];
  if (typeof byRegion !== "object" || byRegion === null || Array.isArray(byRegion)) {
    throw new ImageChoiceError(`${source}: image "${name}" is not a map of region → AMI id; got ${JSON.stringify(byRegion)}`);
  }
  const ids = byRegion as Record<string, unknown>;
  const regions = Object.keys(ids).sort();
  const id = Object.prototype.hasOwnProperty.call(ids, region) ? ids[region] : undefined;
  if (id === undefined) {
    throw new ImageChoiceError(
      `${source}: image "${name}" has no AMI id for region ${region}; it is available in: ${regions.join(", ") || "no region"}. ` +
        `Add ${region} to that image's regions in the ami-factory stack, or deploy this stack to one of those regions.`,
    );
  }
  if (typeof id !== "string" || !AMI_ID.test(id)) {
    throw new ImageChoiceError(`${source}: image "${name}" in ${region} is ${JSON.stringify(id)}, which is not an AMI id (ami-…)`);
  }
  return id;
}

/**
 * Read the factory's `images`, choose the image and declare a launch template on it (resources
 * are named after `name`). Async so that a wrong name or region stops the program before the
 * template is declared, with the message alone: an error inside a resource input would surface as
 * "error serializing property …" and leave the template's outputs pending.
 */
async function declareConsumer(name: string, args: ConsumerArgs): Promise<ConsumerOutputs> {
  const imageName = args.imageName ?? "base";
  const region = args.region ?? aws.config.region;
  const factory = new pulumi.StackReference(args.amiFactoryStack);
  // A read: the value is known in a preview too. Throws if the factory made `images` a secret.
  const images: unknown = await factory.getOutputValue("images");
  const imageId = chooseImage(images, imageName, region, `stack ${args.amiFactoryStack}`);

  // The root volume can only be overridden (here: encrypted) under the image's own root device
  // name; any other name adds a second, empty volume and leaves the root as the image has it.
  let rootDeviceName: string;
  try {
    // includeDeprecated: the factory may set a deprecation date; the image still launches.
    ({ rootDeviceName } = await aws.ec2.getAmi({ filters: [{ name: "image-id", values: [imageId] }], includeDeprecated: true, region }));
  } catch (e) {
    throw new ImageChoiceError(
      `cannot describe image "${imageName}" (${imageId}) in ${region}: ${(e as Error).message}. ` +
        `If it is not found, this account may be missing from that image's share in the ami-factory stack.`,
    );
  }

  const template = new aws.ec2.LaunchTemplate(name, {
    region,
    imageId,
    instanceType: args.instanceType ?? "t3.micro",
    metadataOptions: { httpEndpoint: "enabled", httpTokens: "required" },
    blockDeviceMappings: [{ deviceName: rootDeviceName, ebs: { encrypted: "true", deleteOnTermination: "true" } }],
    // A new image id makes a new template version; without this, $Default stays on the old one.
    updateDefaultVersion: true,
    tags: { "ami-factory:stack": args.amiFactoryStack, "ami-factory:image": imageName },
  });

  return { imageId, launchTemplateId: template.id };
}

/** The program: config → declareConsumer("app", …). Pulumi awaits it; its result is the stack outputs. */
async function main(): Promise<ConsumerOutputs> {
  const config = new pulumi.Config();
  return declareConsumer("app", {
    amiFactoryStack: config.require("amiFactoryStack"),
    imageName: config.get("imageName"),
    instanceType: config.get("instanceType"),
  });
}

// Attached rather than exported by name: see the header.
export = Object.assign(main, { chooseImage, declareConsumer, ImageChoiceError });
