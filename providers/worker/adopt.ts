// Crash safety: a create re-run with the same build id first looks for the image its earlier run
// finished (the build id is derived from the resource and its inputs, and tagged at creation).
import type { Image } from "@aws-sdk/client-ec2";
import { ec2Client } from "../core/clients";
import { BUILD_ID_TAG, HANDED_OVER_TAG } from "../core/tags";

/** A finished image of this build id that no create handed to the engine (see handOver in build.ts). */
export async function findBuiltImage(region: string, buildId: string): Promise<Image | undefined> {
  const { DescribeImagesCommand } = await import("@aws-sdk/client-ec2");
  const out = await (await ec2Client(region)).send(
    new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }, { Name: "state", Values: ["available"] }] }),
  );
  return out.Images?.find((i) => !i.Tags?.some((t) => t.Key === HANDED_OVER_TAG));
}

/** The facts worth keeping on the image itself (a tag value holds at most 256 characters). */
export function factsTag(facts: Record<string, unknown> | undefined): string | undefined {
  if (!facts) return undefined;
  const { partitioned, fsType, enaDriver, nvmeDriver, defaultKernel } = facts;
  const text = JSON.stringify({ partitioned, fsType, enaDriver, nvmeDriver, defaultKernel });
  return text.length <= 256 ? text : undefined;
}
