// SurrogateAmi's inputs, one row each (providers/core/fields.ts derives the rest).
import { field } from "../core/fields";
import { checkGivenName } from "../core/naming";
import { BUILD_FIELDS } from "../worker/fields";
import { checkRecipe, Recipe } from "./recipe";

export const SURROGATE_FIELDS = {
  /** What writes the OS onto the empty volume: debian (debootstrap), el (dnf --installroot), image (a disk image by URL), script (your own). */
  recipe: field.of<Recipe, Recipe, "replace">({ change: "replace", check: (c, _p, v) => checkRecipe(c, v) }),
  /** x86_64 or arm64 (the worker gets the same). Default: x86_64. */
  architecture: field.oneOf(["x86_64", "arm64"] as const, { change: "replace", fallback: "x86_64" }),
  /** Root volume size. Default: 8. */
  rootSizeGiB: field.integer<number, "replace">({ change: "replace", min: 2, max: 16384, fallback: 8 }),
  /** legacy-bios or uefi. Default: legacy-bios on x86_64, uefi on arm64. */
  bootMode: field.oneOf(["legacy-bios", "uefi"] as const, {
    change: "replace",
    fallback: (raw) => (raw.architecture === "arm64" ? "uefi" : "legacy-bios"),
    check: (c, p, v, raw) => {
      if (raw.architecture === "arm64" && v === "legacy-bios") c.fail(p, "arm64 instances boot with UEFI only: set bootMode: uefi (or leave it out)");
    },
  }),
  /** "v2.0": instances from the image require IMDSv2. Default: "v2.0". */
  imdsSupport: field.oneOf(["v2.0", "optional"] as const, { change: "replace", fallback: "v2.0", explain: { "v2.0": "instances require IMDSv2" } }),
  ...BUILD_FIELDS,
  /** The image's name. A later change updates the Name tag only (EC2 cannot rename an image). */
  name: field.of<string, string, "in-place">({ change: "in-place", config: "imageName", secret: false, check: (c, p, v, raw) => checkGivenName(c, p, v, raw, true) }),
  /** Default: says which recipe built it. */
  description: BUILD_FIELDS.description,
  /** Encrypt the volume and image. Default: false (the account's EBS default encryption still applies). */
  encrypted: BUILD_FIELDS.encrypted,
};
