// The fields about an image's consumers: where it is published for them, how it is guarded while it
// is in the outputs, and what becomes of it once it leaves the stack (a replacement, a removed entry
// or region, a destroy): one row each, spread into every image resource's table. Each keeps its default unset in state, so that
// state written before these fields existed shows no change.
import { field } from "./fields";
import { isUnknown } from "./inputs";
import { DEFAULT_RETENTION, RETENTION_LIMITS, RetentionPolicy } from "./retire";
import { checkParameterName } from "./publish";

export interface RetentionArgs {
  /** Days a retired image is kept at least. Default: 14. */
  days?: number;
  /** Retired builds of this resource kept at least, newest first. Default: 2. */
  keep?: number;
}

export const CONSUMER_FIELDS = {
  /**
   * An SSM parameter name (e.g. "/ami-factory/web") that holds the image id in each region the
   * image is in (DataType aws:ec2:image), so launch templates can name `resolve:ssm:/ami-factory/web`
   * and follow rebuilds without an update of their own. A removed entry or region deletes its
   * parameter; a replacement rewrites it. Default: none.
   */
  publish: field.of<string | undefined, string | undefined, "in-place">({ change: "in-place", secret: false, check: (c, p, v) => (isUnknown(v) ? undefined : checkParameterName(c, p, v)) }),
  /**
   * What a replacement, a removed entry (or SharedAmi region) and `pulumi destroy --target` of it
   * do to the image. Default "retire": it stays launchable by id (running Auto Scaling groups,
   * launch templates and other stacks keep working) but is deprecated at once, tagged retired, and
   * reaped later by `retention` (`npm run reap`). "delete": deregistered with its snapshots at once.
   * A `pulumi destroy` of the whole stack deletes whatever this says (the StackLifetime marker,
   * README "Destroy"); nothing else does (no environment variable).
   */
  retirement: field.of<"retire" | "delete" | undefined, "delete" | undefined, "in-place">({
    change: "in-place",
    secret: false,
    check: (c, p, v) => {
      if (v !== undefined && !isUnknown(v) && v !== "retire" && v !== "delete") c.fail(p, `${p} must be "retire" (keep the image launchable, deprecated, until reaped) or "delete" (deregister it at once) (got ${JSON.stringify(v)})`);
    },
    value: (v) => (v === "delete" ? "delete" : undefined),
  }),
  /** When a retired image of this resource may be reaped (all must hold, and nothing may still use it). Default: { days: 14, keep: 2 }. */
  retention: field.of<RetentionArgs | undefined, RetentionPolicy | undefined, "in-place">({
    change: "in-place",
    secret: false,
    check: (c, p, v) => {
      if (v === undefined || isUnknown(v)) return;
      if (typeof v !== "object" || v === null || Array.isArray(v)) return c.fail(p, `${p} must be { days?, keep? } (got ${JSON.stringify(v)})`);
      const r = v as Record<string, unknown>;
      c.knownKeys(p, r, ["days", "keep"]);
      c.integer(`${p}.days`, r.days, RETENTION_LIMITS.days);
      c.integer(`${p}.keep`, r.keep, RETENTION_LIMITS.keep);
    },
    value: (v) => (v === undefined ? undefined : { ...DEFAULT_RETENTION, ...(v as RetentionArgs) }),
  }),
  /**
   * Deregistration protection on the image while it is in the stack's outputs, so that nothing
   * deregisters it out of band (retiring or deleting lifts it first). Default: true.
   */
  deregistrationProtection: field.of<boolean | undefined, false | undefined, "in-place">({
    change: "in-place",
    secret: false,
    check: (c, p, v) => c.boolean(p, v),
    value: (v) => (v === false ? false : undefined),
  }),
};
