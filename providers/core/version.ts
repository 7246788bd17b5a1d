// The tool version recorded in provenance tags.
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const TOOL_VERSION: string = `ami-factory ${require("../../package.json").version}`;
