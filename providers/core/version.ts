// The tool version recorded in provenance tags.
import * as path from "path";
import { PROJECT_ROOT } from "./projectRoot";

// eslint-disable-next-line @typescript-eslint/no-var-requires
export const TOOL_VERSION: string = `ami-factory ${require(path.join(PROJECT_ROOT, "package.json")).version}`;
