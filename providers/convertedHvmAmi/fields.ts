// ConvertedHvmAmi's inputs, one row each (providers/core/fields.ts derives the rest).
import { field } from "../core/fields";
import { BUILD_FIELDS } from "../worker/fields";

export const CONVERTED_FIELDS = {
  /** The paravirtual (PV), EBS-backed image to convert. */
  sourceAmiId: field.id<string, string, "replace">("amiId", { change: "replace", secret: false }),
  /** Size of the new root volume. Default: the source root size + 1 GiB (room for the partition table and GRUB). */
  targetSizeGiB: field.integer<number | undefined, "replace">({ change: "replace", min: 1, max: 16384 }),
  ...BUILD_FIELDS,
  /** Name of the new image. Default: the source's name + "-hvm". A later change updates the Name tag only (EC2 cannot rename an image). */
  name: BUILD_FIELDS.name,
  /** Description of the new image. Default: says what it was converted from. */
  description: BUILD_FIELDS.description,
  /** Encrypt the volumes and image. Default: as the source snapshot is. */
  encrypted: BUILD_FIELDS.encrypted,
  /**
   * false: leave the image's initramfs as it is. Default true: NVMe and ENA are added to the
   * default kernel's initramfs with the image's own tool when the kernel has them as modules (see
   * the nitroReady output). Kept only when false, so that true and unset are the same image.
   */
  nitro: field.of<boolean | undefined, false | undefined, "replace">({ change: "replace", check: (c, p, v) => c.boolean(p, v), value: (v) => (v === false ? false : undefined) }),
  /**
   * How the root is converted. Default "auto": in place (the one volume made from the source
   * snapshot is made to boot as HVM, so the new snapshot holds only the changed blocks) when the
   * layout allows it and neither targetSizeGiB nor the encryption changes the volume, else copied to
   * a new volume. "in-place" fails instead of copying; "copy" always copies. It applies when the
   * image is built: how an image was converted does not make another image, so a change alone
   * changes nothing (the `conversion` output says what the build did).
   */
  method: field.oneOf(["auto", "in-place", "copy"] as const, { change: "next-build", fallback: "auto" }),
};
