// The tool version recorded in provenance tags and in each resource's state (./writtenBy.ts).
import * as path from "path";
import { PROJECT_ROOT } from "./projectRoot";

// eslint-disable-next-line @typescript-eslint/no-var-requires
export const PACKAGE_VERSION: string = require(path.join(PROJECT_ROOT, "package.json")).version;
export const TOOL_VERSION = `ami-factory ${PACKAGE_VERSION}`;
