// `npm run reap -- [--stack S] [--region R]... [--dry-run] [--all] [--now ISO]`
// Deregisters retired images (ami-factory's retired tag only; never any other image), with the
// snapshots their build made, when their retention allows and nothing uses them
// (providers/core/reap.ts); prints each retired image and why it is kept or deleted. --dry-run
// changes nothing. --all ignores retention days and keep (e.g. after `pulumi destroy`), never the
// in-use checks. --now judges ages at another time (a test, or "what will go next week").
// Regions: --region, else those the stack config names (as `npm run sweep`), else AWS_REGION.
import { reap, Verdict } from "../providers/core/reap";
import { configRegions, eachOption, stackConfigs } from "./sweep";

export interface ReapArgs {
  stack?: string;
  regions: string[];
  dryRun: boolean;
  all: boolean;
  now: Date;
}

export function parseReapArgs(argv: string[]): ReapArgs {
  const args: ReapArgs = { regions: [], dryRun: false, all: false, now: new Date() };
  eachOption(argv, (a, value) => {
    if (a === "--stack") args.stack = value();
    else if (a === "--region") args.regions.push(value());
    else if (a === "--dry-run") args.dryRun = true;
    else if (a === "--all") args.all = true;
    else if (a === "--now") {
      const text = value();
      args.now = new Date(text);
      if (Number.isNaN(args.now.getTime())) throw new Error(`--now takes an ISO 8601 time such as 2027-01-01T00:00:00Z (got ${JSON.stringify(text)})`);
    } else throw new Error(`unknown option ${a}: use --stack S, --region R, --dry-run, --all, --now ISO`);
  });
  return args;
}

export async function reapAll(args: ReapArgs, log: (l: string) => void = console.log): Promise<Verdict[]> {
  const regions = args.regions.length ? args.regions : [...new Set(stackConfigs(args.stack).flatMap(configRegions))];
  if (!regions.length && process.env.AWS_REGION) regions.push(process.env.AWS_REGION);
  if (!regions.length) throw new Error("no region to reap: give --region, or --stack with a Pulumi.<stack>.yaml that names regions");
  const lineagePrefix = args.stack ? `${args.stack.includes("/") ? args.stack : `ami-factory/${args.stack}`}/` : undefined;
  const verdicts: Verdict[] = [];
  for (const region of regions) verdicts.push(...(await reap(region, { lineagePrefix }, { now: args.now, all: args.all, dryRun: args.dryRun, log })));
  const deleted = verdicts.filter((v) => v.action === "delete").length;
  log(`${verdicts.length} retired image(s) in ${regions.join(", ")}: ${deleted} ${args.dryRun ? "would be deleted (dry run: nothing changed)" : "deleted"}, ${verdicts.length - deleted} kept`);
  return verdicts;
}

if (require.main === module) {
  reapAll(parseReapArgs(process.argv.slice(2)))
    .then(() => process.exit(0))
    .catch((e) => {
      console.error(`reap: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    });
}
