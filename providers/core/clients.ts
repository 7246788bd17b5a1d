// One way to make AWS clients: region explicit, adaptive retries, endpoint from the standard
// environment (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, read by the SDK itself).
//
// Each SDK module is loaded once per process, here. `await import("@aws-sdk/client-ec2")` compiles
// (CommonJS, esModuleInterop) to `__importStar(require(...))`, and the SDK packages carry no
// `__esModule` flag, so every such call copied all of client-ec2's ~5,000 exports: 12.6 ms and
// garbage per call, about half the provider's CPU. A plain require, once, hands back the module.
//
// One client per service, region and retry setting per process, reused: one connection pool and
// credential lookup, and one adaptive-retry state that learns from throttling across all calls.
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { IAMClient } from "@aws-sdk/client-iam";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { STSClient } from "@aws-sdk/client-sts";
import { countCall } from "./progress";

type Ec2Sdk = typeof import("@aws-sdk/client-ec2");
type CloudWatchSdk = typeof import("@aws-sdk/client-cloudwatch");
type IamSdk = typeof import("@aws-sdk/client-iam");
type SsmSdk = typeof import("@aws-sdk/client-ssm");
type StsSdk = typeof import("@aws-sdk/client-sts");
type WaiterSdk = typeof import("@smithy/util-waiter");

// Plain objects (not Maps): they must also survive a provider closure serialised by value.
const sdkModules: Record<string, unknown> = {};
const clients: Record<string, unknown> = {};

function loadOnce<T>(name: string, load: () => T): T {
  if (!(name in sdkModules)) sdkModules[name] = load();
  return sdkModules[name] as T;
}

export const ec2Sdk = (): Ec2Sdk => loadOnce("ec2", () => require("@aws-sdk/client-ec2"));
export const cloudWatchSdk = (): CloudWatchSdk => loadOnce("cloudwatch", () => require("@aws-sdk/client-cloudwatch"));
export const iamSdk = (): IamSdk => loadOnce("iam", () => require("@aws-sdk/client-iam"));
export const ssmSdk = (): SsmSdk => loadOnce("ssm", () => require("@aws-sdk/client-ssm"));
export const stsSdk = (): StsSdk => loadOnce("sts", () => require("@aws-sdk/client-sts"));
export const waiterSdk = (): WaiterSdk => loadOnce("waiter", () => require("@smithy/util-waiter"));

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

/** The client for this key, made on first use. The endpoint is part of the key: tests switch it. */
function reused<T>(service: string, region: string, maxAttempts: number | undefined, make: () => T): T {
  const endpoint = process.env[`AWS_ENDPOINT_URL_${service.toUpperCase()}`] ?? process.env.AWS_ENDPOINT_URL ?? "";
  const key = `${service} ${region} ${maxAttempts ?? "default"} ${endpoint}`;
  if (!(key in clients)) clients[key] = counted(make());
  return clients[key] as T;
}

export function clientConfig(region: string) {
  if (!region) throw new Error("no AWS region: set the resource's `region`, the stack config `aws:region`, or AWS_REGION");
  return { region, retryMode: "adaptive" as const, maxAttempts: 10 };
}

export async function ec2Client(region: string): Promise<EC2Client> {
  return reused("ec2", region, undefined, () => new (ec2Sdk().EC2Client)(clientConfig(region)));
}

export async function cloudWatchClient(region: string): Promise<CloudWatchClient> {
  return reused("cloudwatch", region, undefined, () => new (cloudWatchSdk().CloudWatchClient)(clientConfig(region)));
}

/** `maxAttempts: 1` for calls whose retry must be decided by re-reading state, not by the SDK. */
export async function iamClient(region: string, opts: { maxAttempts?: number } = {}): Promise<IAMClient> {
  return reused("iam", region, opts.maxAttempts, () => new (iamSdk().IAMClient)({ ...clientConfig(region), ...opts }));
}

/** `maxAttempts: 1` for calls that must not be retried blindly (SendCommand has no client token). */
export async function ssmClient(region: string, opts: { maxAttempts?: number } = {}): Promise<SSMClient> {
  return reused("ssm", region, opts.maxAttempts, () => new (ssmSdk().SSMClient)({ ...clientConfig(region), ...opts }));
}

export async function stsClient(region: string): Promise<STSClient> {
  return reused("sts", region, undefined, () => new (stsSdk().STSClient)(clientConfig(region)));
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
