// Registered image names. By default a name is unique per build (the given name plus a build
// stamp), so a replacement registers its image before the old one goes (create before delete).
// `exactName: true` keeps the given name, and then a replacement has to delete the old image first.
import type { Checker } from "./inputs";

/** EC2 image names are at most 128 characters (RegisterImage / CopyImage `Name`). */
export const IMAGE_NAME_MAX = 128;
/** "-" + YYYYMMDDTHHMMSSZ */
export const STAMP_LENGTH = 17;

/** The build stamp of a build that started at `startedAt`: 20261126T101005Z (UTC, to the second). */
export function buildStamp(startedAt: Date): string {
  return startedAt.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/** The name an image is registered (or copied) with. */
export function registeredName(givenName: string, exactName: boolean, stamp: string): string {
  return exactName ? givenName : `${givenName.slice(0, IMAGE_NAME_MAX - STAMP_LENGTH)}-${stamp}`;
}

/** The longest given name that still fits once stamped. */
export function maxGivenName(exactName: boolean): number {
  return exactName ? IMAGE_NAME_MAX : IMAGE_NAME_MAX - STAMP_LENGTH;
}

/** An image's given name: EC2's characters, and room for the build stamp unless `exactName`. */
export function checkGivenName(c: Checker, property: string, value: unknown, raw: Record<string, unknown>, required = false): void {
  if (value !== undefined || required) c.string(property, value, { pattern: "imageName", required });
  const longest = maxGivenName(raw.exactName === true);
  if (typeof value === "string" && value.length > longest && value.length <= IMAGE_NAME_MAX) {
    c.fail(property, `${property} is ${value.length} characters long: with the build stamp ami-factory adds (e.g. -20261126T101005Z) at most ${longest} fit in EC2's 128; shorten it, or set exactName: true`);
  }
}
