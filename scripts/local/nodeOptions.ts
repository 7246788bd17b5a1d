// NODE_OPTIONS for the processes of a `pulumi` run (the engine passes its environment to the
// dynamic-provider plugin, which starts a plain `node`; no other way reaches that process's V8).
//
// V8's young generation: Node 22 gives it 16 MiB semispaces (32 MiB in all), Node 24 lets it grow
// to 64 MiB semispaces (128 MiB), which a provider process copying an image to 160 regions reaches
// (bench/scale.ts: 262–279 MiB peak against 215–225 with 16 MiB, in the same provider CPU time).
// Only a flag at the process's start sets it. Used by npm start and the tests (engine.ts), the
// GitHub workflows (their top-level env), and README for a hand-run `pulumi up`.
export const SEMI_SPACE_FLAG = "--max-semi-space-size=16";

/** `existing` plus the young-generation cap, unless it already sizes the young generation itself. */
export function withYoungGenerationCap(existing: string | undefined): string {
  const options = (existing ?? "").trim();
  if (/--max[-_]semi[-_]space[-_]size\b/.test(options)) return options;
  return options ? `${options} ${SEMI_SPACE_FLAG}` : SEMI_SPACE_FLAG;
}
