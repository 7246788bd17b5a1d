// The tool version recorded in provenance tags and in each resource's state (./writtenBy.ts).
import * as path from "path";
import { PROJECT_ROOT } from "./projectRoot";

// eslint-disable-next-line @typescript-eslint/no-var-requires
export const PACKAGE_VERSION: string = require(path.join(PROJECT_ROOT, "package.json")).version;
export const TOOL_VERSION = `ami-factory ${PACKAGE_VERSION}`;

/**
 * The revision of the state format: what a resource's stored inputs and outputs mean. package.json's
 * version does not move with the code, so this does: bump it with every change to a field table or
 * a SCHEMA_VERSION, and with any other change to what state holds (e.g. a new output a delete reads).
 * Each create and update records it; an older checkout refuses state with a higher one
 * (./writtenBy.ts). test/unit/stateRevision.test.ts fails when the field tables or SCHEMA_VERSIONs
 * no longer hash to STATE_FORMAT (it cannot see outputs: those bumps are the author's to make).
 */
export const STATE_REVISION = 1;
/** The hash of the field tables and SCHEMA_VERSIONs at STATE_REVISION (test/unit/stateRevision.test.ts). */
export const STATE_FORMAT = "faf8f7ff0bfe2ac2";
