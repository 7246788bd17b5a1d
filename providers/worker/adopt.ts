// Crash safety: a create re-run with the same build id first looks for the image its earlier run
// finished (the build id is derived from the resource and its inputs, and tagged at creation).
import type { Image } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "../core/clients";
import { BUILD_ID_TAG, HANDED_OVER_TAG, VERIFICATION_TAG } from "../core/tags";

/** A finished image of this build id that no create handed to the engine (see handOver in build.ts). */
export async function findBuiltImage(region: string, buildId: string): Promise<Image | undefined> {
  const { DescribeImagesCommand } = ec2Sdk();
  const out = await (await ec2Client(region)).send(
    new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }, { Name: "state", Values: ["available"] }] }),
  );
  // An image whose launch verification never finished is not a finished build (a leftover), and an
  // image handed to the engine belongs to a resource already.
  return out.Images?.find((i) => !i.Tags?.some((t) => (t.Key === VERIFICATION_TAG && t.Value === "pending") || t.Key === HANDED_OVER_TAG));
}

export { factsTag } from "./facts";
