// Which emulator `npm start` runs (scripts/local-up.ts; scripts/local/start.sh decides the set-up the
// same way): --recorded / --twin on the command line, else AMI_FACTORY_EMULATOR, else the twin.
export function startMode(argv: string[], env: NodeJS.ProcessEnv): "twin" | "recorded" {
  const unknown = argv.filter((a) => !["--recorded", "--twin", "--keep"].includes(a));
  if (unknown.length) throw new Error(`unknown argument ${unknown.join(" ")}: npm start [-- --recorded | --twin] [--keep]`);
  if (argv.includes("--recorded") && argv.includes("--twin")) throw new Error("--recorded and --twin exclude each other");
  if (argv.includes("--recorded")) return "recorded";
  if (argv.includes("--twin")) return "twin";
  const fromEnv = env.AMI_FACTORY_EMULATOR;
  if (fromEnv === undefined || fromEnv === "" || fromEnv === "twin") return "twin";
  if (fromEnv === "recorded") return "recorded";
  throw new Error(`AMI_FACTORY_EMULATOR=${fromEnv}: "twin" (the default) or "recorded"`);
}

