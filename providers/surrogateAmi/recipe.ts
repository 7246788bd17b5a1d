// A SurrogateAmi's recipe: its shapes, its check, and what it becomes (guest arguments, sources, tags): pure.
import { createHash } from "crypto";
import { canonicalJson } from "../core/buildId";
import { Checker, isUnknown } from "../core/inputs";

export type Recipe =
  | { kind: "debian"; suite: string; mirror: string; packages?: string[]; keyringSha256?: string }
  | { kind: "el"; releasever: string; repos: Record<string, ElRepo>; packages?: string[] }
  | { kind: "image"; url: string; sha256: string; format?: "raw" | "qcow2" }
  | { kind: "script"; script: string };

/** An el repository: over https, with the key(s) its packages are signed with (gpgcheck is always on). */
export interface ElRepo {
  baseurl: string;
  gpgkey: string | string[];
}

export const RECIPE_FIELDS: Record<Recipe["kind"], readonly string[]> = {
  debian: ["kind", "suite", "mirror", "packages", "keyringSha256"],
  el: ["kind", "releasever", "repos", "packages"],
  image: ["kind", "url", "sha256", "format"],
  script: ["kind", "script"],
};

/**
 * The largest recipe.script: it travels base64-encoded (4/3) in the build's secret parameters
 * (worker/buildSecret.ts: two Advanced parameters of 8 KB at this size), no longer in the SSM
 * command, whose budget the guest script alone uses (test/unit/command.test.ts).
 */
export const USER_SCRIPT_MAX_BYTES = 11 * 1024;

const PACKAGE = /^[A-Za-z0-9@][A-Za-z0-9+._:@-]*$/;

/** A URL without `user:password@` (a mirror or repository may carry credentials). */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z0-9+.-]+:\/\/)[^/@\s]*@/i, "$1");
}

/** A value quoted in an error message: a URL's credentials never (check failures are printed by the engine). */
const quoted = (v: unknown) => JSON.stringify(typeof v === "string" ? withoutCredentials(v) : v);
const HTTP_URL = /^https?:\/\/[^\s'"]+$/;
const HTTPS_URL = /^https:\/\/[^\s'"]+$/;

export function checkRecipe(c: Checker, raw: unknown): void {
  if (isUnknown(raw)) return;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return c.fail("recipe", `recipe is required: an object such as { kind: "debian", suite: "bookworm", mirror: "http://deb.debian.org/debian" }`);
  }
  const r = raw as Record<string, unknown>;
  const kinds = Object.keys(RECIPE_FIELDS);
  if (!kinds.includes(r.kind as string)) return c.fail("recipe.kind", `recipe.kind must be one of ${kinds.join(", ")} (got ${JSON.stringify(r.kind)})`);
  const kind = r.kind as Recipe["kind"];
  for (const k of Object.keys(r)) {
    if (!RECIPE_FIELDS[kind].includes(k)) c.fail(`recipe.${k}`, `unknown option ${JSON.stringify(k)} for a ${kind} recipe: its options are ${RECIPE_FIELDS[kind].filter((f) => f !== "kind").join(", ")}`);
  }
  const packages = (field: string) => {
    const v = r[field];
    if (v === undefined || isUnknown(v)) return;
    if (!Array.isArray(v) || v.some((p) => typeof p !== "string" || !PACKAGE.test(p))) c.fail(`recipe.${field}`, `recipe.${field} must be a list of package names such as ["openssh-server", "cloud-init"]`);
  };
  const url = (field: string, pattern: RegExp, example: string) => {
    if (isUnknown(r[field])) return;
    if (typeof r[field] !== "string" || !pattern.test(r[field] as string)) c.fail(`recipe.${field}`, `recipe.${field} must be a URL such as ${example} (got ${quoted(r[field])})`);
  };
  if (kind === "debian") {
    if (typeof r.suite !== "string" || !/^[a-z][a-z0-9-]*$/.test(r.suite)) c.fail("recipe.suite", `recipe.suite must be a Debian suite such as "bookworm" (got ${JSON.stringify(r.suite)})`);
    url("mirror", HTTP_URL, "http://deb.debian.org/debian");
    packages("packages");
    if (r.keyringSha256 !== undefined && !isUnknown(r.keyringSha256) && (typeof r.keyringSha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.keyringSha256))) {
      c.fail("recipe.keyringSha256", "recipe.keyringSha256 must be the SHA-256 of the debian-archive-keyring .deb, 64 lower-case hex digits");
    }
  } else if (kind === "el") {
    if (typeof r.releasever !== "string" || !/^[0-9A-Za-z._-]+$/.test(r.releasever)) c.fail("recipe.releasever", `recipe.releasever must be a release such as "2023" or "9" (got ${JSON.stringify(r.releasever)})`);
    const repos = r.repos as Record<string, unknown> | undefined;
    const example = `{ baseos: { baseurl: "https://…/BaseOS/x86_64/os/", gpgkey: "https://…/RPM-GPG-KEY" } }`;
    if (!repos || typeof repos !== "object" || Array.isArray(repos) || Object.keys(repos).length === 0) {
      c.fail("recipe.repos", `recipe.repos must name at least one repository: ${example}`);
    } else {
      // Nothing unsigned: every repository over https with its signing key; gpgcheck is always on.
      for (const [name, repo] of Object.entries(repos)) {
        const where = `recipe.repos.${name}`;
        if (!/^[A-Za-z0-9._-]+$/.test(name)) c.fail(where, `repository names may use letters, digits, . _ - only`);
        if (isUnknown(repo)) continue;
        if (typeof repo !== "object" || repo === null || Array.isArray(repo)) {
          c.fail(where, `${where} must be { baseurl, gpgkey } (packages are always signature-checked), such as ${example}`);
          continue;
        }
        const { baseurl, gpgkey, ...rest } = repo as Record<string, unknown>;
        for (const k of Object.keys(rest)) c.fail(`${where}.${k}`, `unknown option ${JSON.stringify(k)} for a repository: its options are baseurl, gpgkey`);
        if (!isUnknown(baseurl) && (typeof baseurl !== "string" || !HTTPS_URL.test(baseurl))) c.fail(`${where}.baseurl`, `${where}.baseurl must be an https:// URL (got ${quoted(baseurl)})`);
        const keys = Array.isArray(gpgkey) ? gpgkey : gpgkey === undefined ? [] : [gpgkey];
        if (!isUnknown(gpgkey) && keys.length === 0) c.fail(`${where}.gpgkey`, `${where}.gpgkey is required: the https:// URL of the key its packages are signed with (gpgcheck is always on)`);
        keys.forEach((k) => {
          if (!isUnknown(k) && (typeof k !== "string" || !HTTPS_URL.test(k))) c.fail(`${where}.gpgkey`, `${where}.gpgkey must be https:// URLs (got ${quoted(k)})`);
        });
      }
    }
    packages("packages");
  } else if (kind === "image") {
    url("url", /^(https:\/\/|s3:\/\/)[^\s'"]+$/, "https://example.com/disk.raw or s3://bucket/disk.qcow2");
    if (!isUnknown(r.sha256) && (typeof r.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.sha256))) c.fail("recipe.sha256", "recipe.sha256 is required: the disk image's SHA-256 as 64 lower-case hex digits");
    if (r.format !== undefined && r.format !== "raw" && r.format !== "qcow2") c.fail("recipe.format", `recipe.format must be "raw" or "qcow2" (got ${JSON.stringify(r.format)})`);
  } else if (kind === "script") {
    if (typeof r.script !== "string" || !r.script.trim()) c.fail("recipe.script", "recipe.script must be the script's text (it runs with TARGET_DEVICE and TARGET_ROOT set)");
    else if (Buffer.byteLength(r.script, "utf8") > USER_SCRIPT_MAX_BYTES) {
      c.fail("recipe.script", `recipe.script is ${Buffer.byteLength(r.script, "utf8")} bytes: at most ${USER_SCRIPT_MAX_BYTES} are allowed (it reaches the worker in the build's SSM SecureString parameters, 8 KB each); fetch the rest from S3 in the script`);
    }
  }
}

/** The recipe as guest-script arguments (scripts/guest/surrogate.sh). */
export function recipeArgs(recipe: Recipe): string[] {
  switch (recipe.kind) {
    case "debian":
      return [
        "--recipe", "debian", "--suite", recipe.suite, "--mirror", recipe.mirror,
        ...(recipe.packages?.length ? ["--packages", recipe.packages.join(",")] : []),
        ...(recipe.keyringSha256 ? ["--keyring-sha256", recipe.keyringSha256] : []),
      ];
    case "el":
      return [
        "--recipe", "el", "--releasever", recipe.releasever,
        ...Object.entries(recipe.repos).sort(([a], [b]) => a.localeCompare(b)).flatMap(([name, repo]) => [
          "--repo", `${name}=${repo.baseurl}`,
          ...[repo.gpgkey].flat().flatMap((key) => ["--gpgkey", `${name}=${key}`]),
        ]),
        ...(recipe.packages?.length ? ["--packages", recipe.packages.join(",")] : []),
      ];
    case "image":
      return ["--recipe", "image", "--url", recipe.url, "--sha256", recipe.sha256, "--format", recipe.format ?? "raw"];
    case "script":
      return ["--recipe", "script", "--user-script-b64", Buffer.from(recipe.script, "utf8").toString("base64")];
  }
}

/**
 * The recipe options that may carry a credential (URLs with user:password@ or a token, the user's
 * script): they reach the worker through the build's secret parameters, never in SendCommand.
 */
export const SECRET_RECIPE_OPTIONS = new Set(["--mirror", "--repo", "--gpgkey", "--url", "--user-script-b64"]);

/** recipeArgs split: what SendCommand may carry, and what goes through the build's secret. */
export function splitRecipeArgs(args: string[]): { plain: string[]; secret: string[] } {
  const plain: string[] = [];
  const secret: string[] = [];
  for (let i = 0; i < args.length; i += 2) (SECRET_RECIPE_OPTIONS.has(args[i]) ? secret : plain).push(args[i], args[i + 1]);
  return { plain, secret };
}

/** The URLs a recipe downloads from. */
export function recipeSources(recipe: Recipe): string[] {
  return recipe.kind === "debian" ? [recipe.mirror] : recipe.kind === "el" ? Object.values(recipe.repos).map((r) => r.baseurl) : recipe.kind === "image" ? [recipe.url] : [];
}

/** Provenance of a recipe, as tag values (each at most 256 characters). */
export function recipeTags(recipe: Recipe): Record<string, string> {
  const hash = createHash("sha256").update(canonicalJson(recipe)).digest("hex").slice(0, 16);
  const sources = recipeSources(recipe);
  const tags: Record<string, string> = { "ami-factory:recipe": recipe.kind, "ami-factory:recipe-hash": hash };
  if (recipe.kind === "debian") tags["ami-factory:suite"] = recipe.suite;
  if (recipe.kind === "el") tags["ami-factory:releasever"] = recipe.releasever;
  // Without user:password@ (a mirror URL may carry credentials; tags are readable by anyone the image is shared with).
  if (sources.length) tags["ami-factory:sources"] = sources.map(withoutCredentials).join(" ").slice(0, 256);
  return tags;
}
