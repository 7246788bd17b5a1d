// Publishing: an image id written to an SSM parameter (DataType aws:ec2:image) in each region it
// lives in, so that launch templates name `resolve:ssm:<name>` and follow rebuilds without an update
// of their own ("Use a Systems Manager parameter instead of an AMI ID", EC2 User Guide).
import type { Checker } from "./inputs";
import { ssmClient, ssmSdk } from "./clients";
import { errorName, waitFor } from "./wait";

/**
 * Parameter names as Parameter Store takes them ("Requirements and constraints for parameter
 * names", Systems Manager User Guide): letters, digits, _ . - and / for a hierarchy, which must then
 * be fully qualified (start with /), at most 15 levels; no "aws" or "ssm" prefix (case-insensitive;
 * /aws/ is AWS's reserved tree, e.g. /aws/service/...); at most 1011 characters with the parameter's
 * ARN (arn:aws:ssm:<region>:<account>:parameter<name>): 960 for the longest region names.
 */
export const PARAMETER_NAME_MAX = 960;

export function checkParameterName(c: Checker, p: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== "string" || !v) return c.fail(p, `${p} must be an SSM parameter name such as "/ami-factory/web" (got ${JSON.stringify(v)})`);
  if (!/^[a-zA-Z0-9_.\-/]+$/.test(v)) return c.fail(p, `${p} ${JSON.stringify(v)} has characters Parameter Store refuses: use letters, digits, _ . - and / (e.g. "/ami-factory/web")`);
  if (v.includes("/") && !v.startsWith("/")) return c.fail(p, `${p} ${JSON.stringify(v)} is a hierarchy: it must start with / (e.g. "/${v}")`);
  if (/^\/?(aws|ssm)/i.test(v)) return c.fail(p, `${p} ${JSON.stringify(v)} starts with "aws" or "ssm", which Parameter Store reserves (e.g. /aws/service/): choose a path of your own, such as "/ami-factory/..."`);
  if (v.split("/").filter(Boolean).length > 15) return c.fail(p, `${p} has more than 15 levels, the most a parameter hierarchy may have`);
  if (v.endsWith("/") || v.includes("//")) return c.fail(p, `${p} ${JSON.stringify(v)} has an empty level: remove the trailing or doubled /`);
  if (v.length > PARAMETER_NAME_MAX) c.fail(p, `${p} is ${v.length} characters long: at most ${PARAMETER_NAME_MAX} fit in Parameter Store's 1011 with the parameter's ARN`);
}

/** The parameter's value, its description, and the ami-factory owner and lineage it names (undefined: no parameter). */
async function current(region: string, name: string): Promise<{ value?: string; owner?: string; lineage?: string; description?: string } | undefined> {
  const { GetParameterCommand, DescribeParametersCommand } = ssmSdk();
  const ssm = await ssmClient(region);
  let value: string | undefined;
  try {
    value = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (e) {
    if (errorName(e) === "ParameterNotFound") return undefined;
    throw e;
  }
  const described = (await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Option: "Equals", Values: [name] }] }))).Parameters?.[0];
  const text = described?.Description ?? "";
  return { value, owner: OWNER.exec(text)?.[1], lineage: LINEAGE.exec(text)?.[1], description: text };
}

// The description says which resource wrote the parameter: two shares of one source in place
// publish the same id, and the old one's delete must not take the parameter its replacement wrote.
// Its lineage (project/stack/resource) says whose it is: no other entry or stack may overwrite it.
const OWNER = /^ami-factory \(([^)]+)\)/;
const LINEAGE = /\blineage ([^\s;]+)/;
const description = (owner: string, lineage: string) => `ami-factory (${owner}): the image to launch, rewritten by each rebuild; lineage ${lineage}`;

/** Why `publish` may not overwrite the parameter as it is now (undefined: it may). */
export function publishRefusal(name: string, region: string, now: { owner?: string; lineage?: string; description?: string } | undefined, lineage: string): string | undefined {
  if (!now) return undefined;
  if (now.owner === undefined) return `publish: SSM parameter ${name} in ${region} exists and is not ami-factory's (its description is ${JSON.stringify(now.description ?? "")}): ami-factory does not overwrite it; choose another publish name, or delete the parameter if it is no longer used`;
  if (now.lineage !== undefined && now.lineage !== lineage) return `publish: SSM parameter ${name} in ${region} is published by ${now.lineage}, not ${lineage}: two entries (or stacks) cannot publish one name; choose another publish name`;
  return undefined;
}

/**
 * Writes the image id, owned by `owner` (the build, or the share). Parameter Store validates an
 * aws:ec2:image value after PutParameter has answered, and an invalid one is dropped silently
 * (PutParameter, DataType, API reference): the write counts once GetParameter reads it back.
 */
export async function publishImage(region: string, name: string, imageId: string, owner: string, lineage: string, log: (l: string) => void): Promise<void> {
  const { PutParameterCommand, GetParameterCommand } = ssmSdk();
  const now = await current(region, name);
  const refusal = publishRefusal(name, region, now, lineage);
  if (refusal) throw new Error(refusal);
  if (now?.value === imageId && now.owner === owner && now.lineage === lineage) return;
  const ssm = await ssmClient(region);
  const put = await ssm.send(new PutParameterCommand({ Name: name, Value: imageId, Type: "String", DataType: "aws:ec2:image", Overwrite: true, Description: description(owner, lineage) }));
  await waitFor({ what: `SSM parameter ${name} in ${region}`, maxWaitSeconds: 120, minDelaySeconds: 1, maxDelaySeconds: 10 }, async () => {
    const read = (await ssm.send(new GetParameterCommand({ Name: name })).catch((e) => (errorName(e) === "ParameterNotFound" ? undefined : Promise.reject(e))))?.Parameter;
    if (read?.Value === imageId) return { state: "SUCCESS", value: true };
    // Another version than ours is current: Parameter Store refused the value.
    if (read && put.Version !== undefined && (read.Version ?? 0) < put.Version) return { state: "RETRY", reason: "not validated yet" };
    return { state: read && put.Version !== undefined ? "FAILURE" : "RETRY", reason: `Parameter Store did not take ${imageId} for ${name} (aws:ec2:image validation)` };
  });
  log(`published ${imageId} as SSM parameter ${name} in ${region}`);
}

/**
 * Whether an image leaving the stack takes the parameter with it: only while the parameter still
 * names that image for that owner. A replacement's create (before the old image's delete) has
 * rewritten it to the new image or owner by then, so it stays; until then it named the old image.
 * One ami-factory did not write (no owner in its description) is never deleted.
 */
export function unpublishes(now: { value?: string; owner?: string } | undefined, imageId: string, owner: string): boolean {
  return !!now && now.value === imageId && now.owner === owner;
}

/** Deletes the parameter only while it still names `imageId` for `owner` (unpublishes). */
export async function unpublishImage(region: string, name: string, imageId: string, owner: string, log: (l: string) => void): Promise<void> {
  const { DeleteParameterCommand } = ssmSdk();
  const now = await current(region, name);
  if (!unpublishes(now, imageId, owner)) return;
  try {
    await (await ssmClient(region)).send(new DeleteParameterCommand({ Name: name }));
  } catch (e) {
    if (errorName(e) !== "ParameterNotFound") throw e;
  }
  log(`deleted SSM parameter ${name} in ${region} (it named ${imageId})`);
}

/** What an update does about `publish` for one region's image: write the new name, drop the old one. */
export async function republish(region: string, imageId: string, owner: string, lineage: string, before: string | undefined, after: string | undefined, log: (l: string) => void): Promise<void> {
  if (after) await publishImage(region, after, imageId, owner, lineage, log);
  if (before && before !== after) await unpublishImage(region, before, imageId, owner, log);
}

/** What preview says when `publish` changes: the parameter names, per region. */
export function publishNote(before: string | undefined, after: string | undefined, regions: string[]): string | undefined {
  if (before === after) return undefined;
  const where = regions.join(", ");
  if (after && before) return `publish: the image id moves from SSM parameter ${before} to ${after} (DataType aws:ec2:image) in ${where}; ${before} is deleted`;
  if (after) return `publish: writes the image id to SSM parameter ${after} (DataType aws:ec2:image) in ${where}`;
  return `publish: deletes SSM parameter ${before} in ${where}`;
}
