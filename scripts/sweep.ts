// `npm run sweep -- [--stack S] [--region R]... [--older-than 2h] [--yes]`
// Lists (dry run by default) and, with --yes, deletes what ami-factory builds left behind: temporary
// workers, volumes, security groups, IAM roles and profiles, and snapshots of builds that never
// registered their image. Regions: --region, else every region the stack config names
// (Pulumi.<stack>.yaml; all stack files without --stack), else AWS_REGION.
import * as fs from "fs";
import * as path from "path";
import { deleteLeftovers, findLeftovers, Leftover, LeftoverFilter } from "../providers/core/sweep";

const REPO_ROOT = path.resolve(__dirname, "..");

export interface SweepArgs {
  stack?: string;
  regions: string[];
  olderThanMs?: number;
  yes: boolean;
}

export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`--older-than takes a duration such as 90m, 2h or 1d (got ${JSON.stringify(text)})`);
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as "s" | "m" | "h" | "d"];
}

/** Calls `on` for each option of a command line; `value()` takes the option's value (the next word). */
export function eachOption(argv: string[], on: (option: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    on(a, () => {
      if (argv[i + 1] === undefined) throw new Error(`${a} needs a value`);
      return argv[++i];
    });
  }
}

export function parseSweepArgs(argv: string[]): SweepArgs {
  const args: SweepArgs = { regions: [], yes: false };
  eachOption(argv, (a, value) => {
    if (a === "--stack") args.stack = value();
    else if (a === "--region") args.regions.push(value());
    else if (a === "--older-than") args.olderThanMs = parseDuration(value());
    else if (a === "--yes") args.yes = true;
    else throw new Error(`unknown option ${a}: use --stack S, --region R, --older-than 2h, --yes`);
  });
  return args;
}

/** The regions a stack's config names: aws:region and every region of its shares, conversions, builds and alarms. */
export function configRegions(config: Record<string, unknown>): string[] {
  const regions = new Set<string>();
  const add = (r: unknown) => typeof r === "string" && r && regions.add(r);
  add(config["aws:region"]);
  for (const key of ["shares", "conversions", "builds", "recoveryAlarms"]) {
    const items = config[`ami-factory:${key}`];
    if (!Array.isArray(items)) continue;
    for (const item of items as Record<string, unknown>[]) {
      add(item.region);
      add(item.sourceRegion);
      if (Array.isArray(item.regions)) item.regions.forEach(add);
    }
  }
  return [...regions].sort();
}

export function stackConfigs(stack: string | undefined): Record<string, unknown>[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const yaml = require("js-yaml") as { load(s: string): unknown };
  const files = stack ? [`Pulumi.${stack}.yaml`] : fs.readdirSync(REPO_ROOT).filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f));
  return files
    .filter((f) => fs.existsSync(path.join(REPO_ROOT, f)))
    .map((f) => ((yaml.load(fs.readFileSync(path.join(REPO_ROOT, f), "utf8")) as { config?: Record<string, unknown> })?.config ?? {}));
}

export async function sweep(args: SweepArgs, log: (l: string) => void = console.log): Promise<{ found: Leftover[]; failures: string[] }> {
  const regions = args.regions.length ? args.regions : [...new Set(stackConfigs(args.stack).flatMap(configRegions))];
  if (!regions.length && process.env.AWS_REGION) regions.push(process.env.AWS_REGION);
  if (!regions.length) throw new Error("no region to sweep: give --region, or --stack with a Pulumi.<stack>.yaml that names regions");
  const filter: LeftoverFilter = {
    stack: args.stack ? (args.stack.includes("/") ? args.stack : `ami-factory/${args.stack}`) : undefined,
    // Without --older-than only what has passed its expiry (its build's deadline plus an hour).
    expiredBy: args.olderThanMs === undefined ? new Date() : undefined,
    createdBefore: args.olderThanMs === undefined ? undefined : new Date(Date.now() - args.olderThanMs),
  };
  const found: Leftover[] = [];
  for (const [i, region] of regions.entries()) {
    // IAM is global: list it once.
    const items = await findLeftovers(region, filter, { iam: i === 0 });
    found.push(...items);
  }
  log(`${found.length} leftover(s) in ${regions.join(", ")}${filter.stack ? ` for stack ${filter.stack}` : ""}:`);
  for (const f of found) log(`  ${f.kind.padEnd(16)} ${f.id.padEnd(32)} ${f.region.padEnd(15)} build ${f.buildId ?? "?"} stack ${f.stack ?? "?"} expires ${f.expiresAt ?? "?"}`);
  if (!args.yes) {
    if (found.length) log("dry run: nothing deleted (add --yes to delete them)");
    return { found, failures: [] };
  }
  const failures = await deleteLeftovers(found, log);
  for (const f of failures) log(`could not delete ${f}`);
  return { found, failures };
}

if (require.main === module) {
  sweep(parseSweepArgs(process.argv.slice(2)))
    .then(({ failures }) => process.exit(failures.length ? 1 : 0))
    .catch((e) => {
      console.error(`sweep: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    });
}
