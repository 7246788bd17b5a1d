import * as assert from "assert";
import { deleteIfStackDestroyed, deleteRetiredByDestroy, pendingDeletes } from "../../providers/core/stackDestroy";

describe("deletes left for a destroy of the whole stack", () => {
  it("runs each once, when the StackLifetime marker is deleted; nothing before", async () => {
    const done: string[] = [];
    deleteIfStackDestroyed("ami-1 in us-east-1", async () => void done.push("ami-1"));
    deleteIfStackDestroyed("ami-2 in eu-west-1", async () => void done.push("ami-2"));
    assert.deepStrictEqual(done, [], "a retirement alone deletes nothing");
    const log: string[] = [];
    await deleteRetiredByDestroy((l) => log.push(l));
    assert.deepStrictEqual(done, ["ami-1", "ami-2"]);
    assert.deepStrictEqual(log, ["stack destroyed: deleted ami-1 in us-east-1", "stack destroyed: deleted ami-2 in eu-west-1"]);
    assert.strictEqual(pendingDeletes(), 0);
    await deleteRetiredByDestroy(() => undefined);
    assert.deepStrictEqual(done, ["ami-1", "ami-2"], "not twice");
  });

  it("goes on past a failed delete and then fails naming what stays retired and how reaping takes it", async () => {
    const done: string[] = [];
    deleteIfStackDestroyed("ami-1 in us-east-1", async () => Promise.reject(new Error("InvalidAMIID.Unavailable")));
    deleteIfStackDestroyed("ami-2 in us-east-1", async () => void done.push("ami-2"));
    await assert.rejects(deleteRetiredByDestroy(() => undefined), /stay retired \(reaping takes them once retired 24 h: npm run reap -- --stack <stack> --all after 24 h\):\n  ami-1 in us-east-1: InvalidAMIID\.Unavailable$/);
    assert.deepStrictEqual(done, ["ami-2"]);
  });
});
