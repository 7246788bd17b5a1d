// One way to make AWS clients: region explicit, adaptive retries, endpoint from the standard
// environment (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, read by the SDK itself).
// SDK packages are imported here, inside functions, so that dynamic providers (serialised by
// closure) carry a require() and never a live client.
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { IAMClient } from "@aws-sdk/client-iam";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { STSClient } from "@aws-sdk/client-sts";
import { countCall } from "./progress";

/** AWS API calls made by this provider process (each create logs how many it needed). */
export const apiCalls = { count: 0 };

type Countable = { middlewareStack: { add(mw: (next: (a: unknown) => Promise<unknown>) => (a: unknown) => Promise<unknown>, o: { step: "initialize"; name: string }): void } };

function counted<T>(client: T): T {
  (client as unknown as Countable).middlewareStack.add(
    (next) => async (args) => {
      apiCalls.count++;
      countCall();
      return next(args);
    },
    { step: "initialize", name: "amiFactoryCallCounter" },
  );
  return client;
}

export function clientConfig(region: string) {
  if (!region) throw new Error("no AWS region: set the resource's `region`, the stack config `aws:region`, or AWS_REGION");
  return { region, retryMode: "adaptive" as const, maxAttempts: 10 };
}

export async function ec2Client(region: string): Promise<EC2Client> {
  const { EC2Client } = await import("@aws-sdk/client-ec2");
  return counted(new EC2Client(clientConfig(region)));
}

export async function cloudWatchClient(region: string): Promise<CloudWatchClient> {
  const { CloudWatchClient } = await import("@aws-sdk/client-cloudwatch");
  return counted(new CloudWatchClient(clientConfig(region)));
}

/** `maxAttempts: 1` for calls whose retry must be decided by re-reading state, not by the SDK. */
export async function iamClient(region: string, opts: { maxAttempts?: number } = {}): Promise<IAMClient> {
  const { IAMClient } = await import("@aws-sdk/client-iam");
  return counted(new IAMClient({ ...clientConfig(region), ...opts }));
}

/** `maxAttempts: 1` for calls that must not be retried blindly (SendCommand has no client token). */
export async function ssmClient(region: string, opts: { maxAttempts?: number } = {}): Promise<SSMClient> {
  const { SSMClient } = await import("@aws-sdk/client-ssm");
  return counted(new SSMClient({ ...clientConfig(region), ...opts }));
}

export async function stsClient(region: string): Promise<STSClient> {
  const { STSClient } = await import("@aws-sdk/client-sts");
  return counted(new STSClient(clientConfig(region)));
}

/** The region a resource works in: its own input, else `aws:region` config, else AWS_REGION. */
export function resolveRegion(input: string | undefined, configRegion: string | undefined, env = process.env): string {
  const region = input || configRegion || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) throw new Error("no AWS region: set the resource's `region`, the stack config `aws:region` (pulumi config set aws:region us-east-1), or AWS_REGION");
  return region;
}

/** The ARN partition of a region (aws, aws-cn, aws-us-gov). */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}
