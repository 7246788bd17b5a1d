// SharedAmi grant records on a source shared in place (providers/sharedAmi/grantRecords.ts): packed
// within EC2's tag limits, read back exactly, the first release's records still read, and a share
// whose record would not fit refused at preview.
import * as assert from "assert";
import { checkSharedAmi } from "../../providers/sharedAmi/inputs";
import {
  checkKey, Grant, heldByOthers, holderIdFor, newCreateStamp, MAX_TAG_VALUE, readRecords, RECORD_TAG_BUDGET, recordTagCount, recordTags,
} from "../../providers/sharedAmi/grantRecords";

const accounts = (n: number) => Array.from({ length: n }, (_, i) => String(100000000000 + i));
const ORG = "arn:aws:organizations::111122223333:organization/o-exampleorgid";
const OU = "arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdef3456";
const asTags = (t: Record<string, string>) => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));

describe("SharedAmi grant records", () => {
  it("derive the holder id from the build id and the registered name, not chance", () => {
    assert.strictEqual(holderIdFor("b-1", "base-20260101"), holderIdFor("b-1", "base-20260101"));
    assert.notStrictEqual(holderIdFor("b-1", "base-20260101"), holderIdFor("b-1", "base-20260102"), "a replacement (new stamp) gets its own");
    assert.notStrictEqual(holderIdFor("b-1", "x"), holderIdFor("b-2", "x"));
    // --replace keeps the build id, and exactName the name: each create's stamp tells them apart.
    const now = new Date("2026-12-07T10:00:00Z");
    assert.notStrictEqual(holderIdFor("b-1", "exact", newCreateStamp(now)), holderIdFor("b-1", "exact", newCreateStamp(now)));
    assert.strictEqual(holderIdFor("b-1", "exact", "s"), holderIdFor("b-1", "exact", "s"));
  });

  it("pack 40 accounts with volume grants into 3 tags of at most 256 characters, read back exactly", () => {
    const g: Grant = { launch: { accountIds: accounts(40), organizationArns: [ORG], organizationalUnitArns: [OU] }, snapshotAccounts: accounts(40) };
    const tags = recordTags("h1", g, { at: "2026-12-07T20:00:00.000Z", buildId: "b-1", stack: "ami-factory/dev" });
    assert.strictEqual(Object.keys(tags).length, 4, Object.keys(tags).join(", "));
    for (const [k, v] of Object.entries(tags)) assert.ok(v.length <= MAX_TAG_VALUE && k.length <= 128, `${k}: ${v.length}`);
    const r = readRecords(asTags(tags)).get("h1")!;
    assert.deepStrictEqual([...r.launch].sort(), [...accounts(40), ORG, OU].sort());
    assert.deepStrictEqual([...r.volume].sort(), accounts(40));
    assert.deepStrictEqual(r.expires, { at: "2026-12-07T20:00:00.000Z", buildId: "b-1", stack: "ami-factory/dev" });
    assert.strictEqual(recordTagCount(g), 5, "its 4 and its revocation's marker");
  });

  it("count a revocation's marker (checkKey) among its holder's keys, naming no grant", () => {
    const tags = [...asTags(recordTags("h1", { launch: { accountIds: ["111122223333"], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [] })), { Key: checkKey("h1"), Value: "a1b2c3" }, { Key: checkKey("h2"), Value: "d4e5f6" }];
    const r = readRecords(tags);
    assert.deepStrictEqual(r.get("h1")!.keys.sort(), ["ami-factory:grants:h1:0", "ami-factory:grants:h1:check"]);
    assert.deepStrictEqual([...r.get("h1")!.launch], ["111122223333"]);
    assert.deepStrictEqual([...r.get("h2")!.launch], [], "a leftover marker alone names nothing");
    assert.deepStrictEqual([...heldByOthers(r, "h1").launch], []);
  });

  it("read the first release's one-tag-per-principal records beside packed ones, and what other holders hold", () => {
    const tags = [
      { Key: "ami-factory:grant:old1:111122223333", Value: "launch volume" },
      { Key: "ami-factory:grant:old1:444455556666", Value: "launch" },
      ...asTags(recordTags("new1", { launch: { accountIds: ["777788889999"], organizationArns: [], organizationalUnitArns: [] }, snapshotAccounts: [] })),
      { Key: "team", Value: "platform" },
    ];
    const records = readRecords(tags);
    assert.deepStrictEqual([...records.keys()].sort(), ["new1", "old1"]);
    assert.deepStrictEqual(records.get("old1")!.keys.length, 2);
    const others = heldByOthers(records, "new1");
    assert.deepStrictEqual([...others.launch].sort(), ["111122223333", "444455556666"]);
    assert.deepStrictEqual([...others.volume], ["111122223333"]);
    assert.strictEqual(records.get("new1")!.expires, undefined, "handed over: no expiry");
  });

  it("40 principals on a source shared in place pass the preview check; a record over its tag budget is refused, naming the fix", () => {
    const inPlace = { sourceAmiId: "ami-0123456789abcdef0", sourceRegion: "us-east-1", regions: ["us-east-1"], scope: "p/s/base" };
    assert.deepStrictEqual(checkSharedAmi({ ...inPlace, accountIds: accounts(40) }).failures, []);
    const many = checkSharedAmi({ ...inPlace, accountIds: accounts(200) });
    assert.deepStrictEqual(many.failures.map((f) => f.property), ["accountIds"]);
    assert.match(many.failures[0].reason, new RegExp(`200 principals needs \\d+ grant-record tags on it, more than the ${RECORD_TAG_BUDGET} .* EC2's 50 per image \\(its revocation's marker tag counted\\): share with organizationArns`));
    assert.deepStrictEqual(checkSharedAmi({ ...inPlace, regions: ["eu-west-1"], accountIds: accounts(200) }).failures, [], "copies hold their grants in launch permissions alone");
  });
});
