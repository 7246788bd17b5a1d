// The build's secrets (a recipe's URLs, which may carry user:password@, and its script) travel to the
// worker in SSM SecureString parameters the build creates and deletes, readable by its own worker
// role only (worker/workerPolicy.ts): SendCommand, whose parameters anyone with ssm:ListCommands
// reads, carries only their names. The guest fetches them (scripts/guest/lib/secrets.sh).
//
// Sizes (Systems Manager User Guide, "Managing parameter tiers",
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html):
// a Standard parameter's value holds at most 4 KB, an Advanced one's 8 KB; a larger value fails with
// ValidationException ("Standard tier parameters support a maximum parameter value of 4096
// characters"). Standard parameters are free; Advanced ones cost $0.05 per parameter-month, charged
// prorated by the hour (AWS Systems Manager pricing), so a build's hour costs a fraction of a cent.
// The secret is Standard when it fits 4 KB, else Advanced chunks of 8 KB.
//
// Encryption: the account's AWS managed key aws/ssm (no KeyId). Its key policy lets the account's
// principals use it through Parameter Store, so GetParameter WithDecryption needs only
// ssm:GetParameter ("How AWS Systems Manager Parameter Store uses AWS KMS", AWS KMS Developer Guide:
// a customer managed key would also need kms:Decrypt in the role's policy and key policy).
import { partitionOf, ssmClient, ssmSdk, stsClient, stsSdk } from "../core/clients";
import type { Step } from "../core/steps";
import { errorName } from "../core/wait";
import type { WorkerBuild } from "./context";

export const STANDARD_VALUE_MAX = 4096;
export const ADVANCED_VALUE_MAX = 8192;
/** Where build secrets live (sweep finds leftovers under it). */
export const SECRET_PATH = "/ami-factory/build";
/** The guest-script argument replaced by the parameters' names (comma-separated). */
export const SECRET_PARAMETERS_ARG = "{secret-parameters}";

export interface SecretChunks {
  tier: "Standard" | "Advanced";
  chunks: string[];
}

/** Arguments as one value: each NUL-terminated, base64 (the guest decodes and splits them). */
export function encodeSecretArgs(args: string[]): string {
  return Buffer.from(args.map((a) => `${a}\0`).join(""), "utf8").toString("base64");
}

/** At most this many parameters per build: what one DeleteParameters call takes (Names: 1 to 10 items, SSM API reference). */
export const MAX_SECRET_PARAMETERS = 10;

/** The value in parameter-sized chunks: one Standard parameter when it fits, Advanced ones else. */
export function secretChunks(value: string): SecretChunks {
  if (value.length <= STANDARD_VALUE_MAX) return { tier: "Standard", chunks: [value] };
  const chunks = value.match(new RegExp(`.{1,${ADVANCED_VALUE_MAX}}`, "g")) ?? [];
  if (chunks.length > MAX_SECRET_PARAMETERS) {
    throw new Error(`the recipe's URLs and script take ${value.length} characters encoded, more than the ${MAX_SECRET_PARAMETERS * ADVANCED_VALUE_MAX} a build's secret parameters hold: shorten recipe.script or the repository list`);
  }
  return { tier: "Advanced", chunks };
}

/** A parameter's ARN (for the worker role's policy: exactly that parameter). */
export function parameterArn(region: string, account: string, name: string): string {
  return `arn:${partitionOf(region)}:ssm:${region}:${account}:parameter${name}`;
}

/** Creates the build's secret parameters before the worker role (whose policy names them); deletes them at the end, failed or not. */
export function buildSecretStep<B extends WorkerBuild>(secretArgs: (b: B) => string[]): Step<B> {
  return {
    name: "store the build's secrets",
    async run(b) {
      const args = secretArgs(b);
      if (!args.length) return;
      const { PutParameterCommand } = ssmSdk();
      const { GetCallerIdentityCommand } = stsSdk();
      const ssm = await ssmClient(b.region);
      const account = (await (await stsClient(b.region)).send(new GetCallerIdentityCommand({}))).Account!;
      const { tier, chunks } = secretChunks(encodeSecretArgs(args));
      const base = `${SECRET_PATH}/${b.buildId}/${Date.now().toString(36)}`;
      const Tags = Object.entries(b.temporaryTags).map(([Key, Value]) => ({ Key, Value }));
      b.secretParameters = [];
      b.secretParameterArns = [];
      for (const [i, Value] of chunks.entries()) {
        const Name = `${base}/${i}`;
        // Recorded before the call: a lost answer still gets it deleted.
        b.secretParameters.push(Name);
        b.secretParameterArns.push(parameterArn(b.region, account, Name));
        await ssm.send(new PutParameterCommand({ Name, Value, Type: "SecureString", Tier: tier, Overwrite: false, Tags, Description: `ami-factory build ${b.buildId}: its secrets, part ${i + 1} of ${chunks.length}` })).catch(async (e) => {
          // The SDK retries a write whose answer was lost; the retry then finds the parameter. Ours
          // (same value under this build's unique name) is done; anything else is not.
          if (errorName(e) !== "ParameterAlreadyExists") throw e;
          const { GetParameterCommand } = ssmSdk();
          const stored = await ssm.send(new GetParameterCommand({ Name, WithDecryption: true }));
          if (stored.Parameter?.Value !== Value) throw e;
        });
      }
      b.log(`stored the build's secrets in ${chunks.length} ${tier} SecureString parameter(s) under ${base}`);
    },
    async cleanup(b) {
      if (!b.secretParameters?.length) return;
      const { DeleteParametersCommand } = ssmSdk();
      const ssm = await ssmClient(b.region);
      // DeleteParameters names what it could not find in InvalidParameters: already gone.
      await ssm.send(new DeleteParametersCommand({ Names: b.secretParameters }));
    },
  };
}

/** A secret parameter of a build that died (sweep): deleted, gone already is fine. */
export async function deleteSecretParameter(region: string, name: string): Promise<void> {
  const { DeleteParameterCommand } = ssmSdk();
  await (await ssmClient(region)).send(new DeleteParameterCommand({ Name: name })).catch((e) => {
    if (errorName(e) !== "ParameterNotFound") throw e;
  });
}

/** The build secret parameters in the region (of one build, or all) with their tags (for sweep's filters). */
export async function findSecretParameters(region: string, buildId?: string): Promise<{ name: string; tags: { Key?: string; Value?: string }[] }[]> {
  const { DescribeParametersCommand, ListTagsForResourceCommand } = ssmSdk();
  const ssm = await ssmClient(region);
  const found: { name: string; tags: { Key?: string; Value?: string }[] }[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: [buildId ? `${SECRET_PATH}/${buildId}` : SECRET_PATH] }], MaxResults: 50, NextToken }));
    for (const p of page.Parameters ?? []) {
      const tags = (await ssm.send(new ListTagsForResourceCommand({ ResourceType: "Parameter", ResourceId: p.Name! }))).TagList ?? [];
      found.push({ name: p.Name!, tags });
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return found;
}
