// Crash safety: a create re-run with the same build id first looks for the image its earlier run
// finished (the build id is derived from the resource and its inputs, and tagged at creation).
import type { Image } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "../core/clients";
import { BUILD_ID_TAG, VERIFICATION_TAG } from "../core/tags";

export async function findBuiltImage(region: string, buildId: string): Promise<Image | undefined> {
  const { DescribeImagesCommand } = ec2Sdk();
  const out = await (await ec2Client(region)).send(
    new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }, { Name: "state", Values: ["available"] }] }),
  );
  // An image whose launch verification never finished is not a finished build: a leftover.
  return out.Images?.find((i) => !i.Tags?.some((t) => t.Key === VERIFICATION_TAG && t.Value === "pending"));
}

export { factsTag } from "./facts";
