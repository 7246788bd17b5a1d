// What a SharedAmi stores (schemaVersion 2) and how it reads state of schemaVersion 1 back.
import * as assert from "assert";
import { checkSharedAmi, SCHEMA_VERSION, SharedAmiOutputs } from "../../providers/sharedAmi/inputs";
import { fromState, StoredSharedAmi, toState } from "../../providers/sharedAmi/state";

const SOURCE = "ami-0123456789abcdef0";

function outputs(over: Partial<SharedAmiOutputs> = {}): SharedAmiOutputs {
  const { inputs } = checkSharedAmi({ sourceAmiId: SOURCE, sourceRegion: "us-east-1", regions: ["us-east-1", "eu-west-1", "ap-south-1"], scope: "p/s/base" });
  return {
    ...inputs!,
    schemaVersion: SCHEMA_VERSION,
    imageIds: { "ap-south-1": "ami-0aaaaaaaaaaaaaaaa", "eu-west-1": "ami-0fedcba9876543210", "us-east-1": SOURCE },
    snapshotIds: { "ap-south-1": ["snap-3"], "eu-west-1": ["snap-2"], "us-east-1": ["snap-1"] },
    copiedRegions: ["ap-south-1", "eu-west-1"],
    imageName: "base-20261126T101005Z",
    buildId: "b-1",
    holderId: "0123456789",
    ...over,
  };
}

describe("SharedAmi state", () => {
  it("stores no copiedRegions and no empty placements, and reads them back the same", () => {
    const outs = outputs({ placements: {} });
    const stored = toState(outs);
    assert.ok(!("copiedRegions" in stored) && !("placements" in stored), JSON.stringify(stored));
    assert.strictEqual(stored.schemaVersion, 2);
    const { placements: _, ...expected } = outs;
    assert.deepStrictEqual(fromState(stored), expected);
    assert.deepStrictEqual(toState(outputs({ placements: { "eu-west-1": 1 } })).placements, { "eu-west-1": 1 });
  });

  it("derives an encrypted copy in the source region as copied (its id is not the source's)", () => {
    const outs = outputs({ encrypted: true, imageIds: { "us-east-1": "ami-0bbbbbbbbbbbbbbbb" }, copiedRegions: ["us-east-1"] });
    assert.deepStrictEqual(fromState(toState(outs)).copiedRegions, ["us-east-1"]);
  });

  it("reads schemaVersion 1 state (copiedRegions stored) as it was written, and rewrites it as version 2", () => {
    const v1 = { ...outputs(), schemaVersion: 1, holderId: undefined } as StoredSharedAmi;
    delete v1.holderId;
    assert.deepStrictEqual(fromState(v1).copiedRegions, ["ap-south-1", "eu-west-1"]);
    const rewritten = toState(fromState(v1));
    assert.strictEqual(rewritten.schemaVersion, 2);
    assert.ok(!("copiedRegions" in rewritten));
  });
});
