// Tags that mark what ami-factory made. Temporary resources carry the build id from their creation
// (TagSpecifications), so a crashed build can be found and swept.

export const TAG_PREFIX = "ami-factory:";
export const BUILD_ID_TAG = "ami-factory:build-id";
export const MANAGED_BY_TAG = "ami-factory:managed-by";
export const TEMPORARY_TAG = "ami-factory:temporary";
/** A built image's launch verification: "pending" (until it passes), "passed" or "skipped". */
export const VERIFICATION_TAG = "ami-factory:verification";
/** Where it was verified: "t3.micro=41s t2.micro=57s" (instance type = seconds to the boot signal). */
export const VERIFIED_ON_TAG = "ami-factory:verified-on";
/** The console line that showed userspace on the first type. */
export const BOOT_LINE_TAG = "ami-factory:boot-line";
/** On a built image once its create returned it to the engine: never adopted by another create. */
export const HANDED_OVER_TAG = "ami-factory:handed-over";
/** On SharedAmi copies: the source region (tells a copy from a built image). */
export const COPY_OF_TAG = "ami-factory:source-region";
/** The hash of the guest script that built an image (provenance). */
export const GUEST_SCRIPT_TAG = "ami-factory:guest-script-sha256";

export type Tags = Record<string, string>;

export function awsTags(tags: Tags): { Key: string; Value: string }[] {
  return Object.entries(tags)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([Key, Value]) => ({ Key, Value }));
}

/** TagSpecifications for a create call: the same tags on each resource type it makes. */
export function tagSpecifications<const T extends string>(types: T[], tags: Tags): { ResourceType: T; Tags: { Key: string; Value: string }[] }[] {
  return types.map((ResourceType) => ({ ResourceType, Tags: awsTags(tags) }));
}

/** Tags for a build's outputs: the user's tags plus provenance. */
export function provenanceTags(userTags: Tags | undefined, buildId: string, extra: Tags = {}): Tags {
  return { ...(userTags ?? {}), [MANAGED_BY_TAG]: "ami-factory", [BUILD_ID_TAG]: buildId, ...extra };
}

export const STACK_TAG = "ami-factory:stack";
export const RESOURCE_TAG = "ami-factory:resource";
export const URN_TAG = "ami-factory:urn";

/** The URN the engine gives a top-level ami-factory resource of this kind and scope (project/stack/name). */
export function resourceUrn(kind: string, scope: string): string {
  const [project, stack, name] = scope.split("/");
  return `urn:pulumi:${stack}::${project}::pulumi-nodejs:dynamic/ami-factory:${kind}::${name}`;
}
export const EXPIRES_TAG = "ami-factory:expires-at";
export const CREATED_TAG = "ami-factory:created-at";

/**
 * Tags for a temporary resource of a build: the build id, the stack and resource it belongs to
 * (from the scope project/stack/name) and when it may be swept at the latest.
 */
export function temporaryTags(buildId: string, kind: string, scope: string, expiresAt: Date, name?: string, createdAt = new Date()): Tags {
  const [project, stack, resource] = scope.split("/");
  return {
    [URN_TAG]: resourceUrn(kind, scope).slice(0, 256),
    [MANAGED_BY_TAG]: "ami-factory",
    [BUILD_ID_TAG]: buildId,
    [TEMPORARY_TAG]: "true",
    [STACK_TAG]: `${project}/${stack}`,
    [RESOURCE_TAG]: resource ?? "",
    [CREATED_TAG]: createdAt.toISOString(),
    [EXPIRES_TAG]: expiresAt.toISOString(),
    ...(name ? { Name: name } : {}),
  };
}

/** The keys in `before` that `after` no longer has. */
export function removedTagKeys(before: Tags | undefined, after: Tags | undefined): string[] {
  return Object.keys(before ?? {}).filter((k) => !(k in (after ?? {})));
}

/** The entries of `after` that are new or changed against `before`. */
export function changedTags(before: Tags | undefined, after: Tags | undefined): Tags {
  return Object.fromEntries(Object.entries(after ?? {}).filter(([k, v]) => (before ?? {})[k] !== v));
}
