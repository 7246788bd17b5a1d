import * as assert from "assert";
import { isTransient, waitFor } from "../../providers/core/wait";

describe("waitFor", () => {
  it("returns the value once the check succeeds", async () => {
    let n = 0;
    const v = await waitFor({ what: "three tries", maxWaitSeconds: 10, minDelaySeconds: 0.01, maxDelaySeconds: 0.02 }, async () => (++n < 3 ? { state: "RETRY" } : { state: "SUCCESS", value: n }));
    assert.strictEqual(v, 3);
  });

  it("gives up at its maximum, saying what it waited for and what it last saw", async () => {
    await assert.rejects(
      waitFor({ what: "image ami-1 in eu-west-1", maxWaitSeconds: 1, minDelaySeconds: 0.1, maxDelaySeconds: 0.2 }, async () => ({ state: "RETRY", reason: "state pending" })),
      /timed out after 1s waiting for image ami-1 in eu-west-1 \(last seen: state pending\)/,
    );
  });

  it("stops at once on a state that can never succeed", async () => {
    const t0 = Date.now();
    await assert.rejects(waitFor({ what: "snapshot snap-1", maxWaitSeconds: 60 }, async () => ({ state: "FAILURE", reason: "snapshot error" })), /snapshot snap-1 can no longer happen: snapshot error/);
    assert.ok(Date.now() - t0 < 2000);
  });
});

describe("isTransient", () => {
  it("knows throttling, 5xx and network errors from errors that will not go away", () => {
    assert.strictEqual(isTransient({ name: "RequestLimitExceeded", $metadata: { httpStatusCode: 503 } }), true);
    assert.strictEqual(isTransient({ name: "ThrottlingException", $metadata: { httpStatusCode: 400 } }), true);
    assert.strictEqual(isTransient({ name: "InternalError", $metadata: { httpStatusCode: 500 } }), true);
    assert.strictEqual(isTransient({ name: "Error", code: "ECONNRESET" }), true);
    assert.strictEqual(isTransient({ name: "InvalidParameterValue", $metadata: { httpStatusCode: 400 } }), false);
    assert.strictEqual(isTransient({ name: "UnauthorizedOperation", $metadata: { httpStatusCode: 403 } }), false);
  });
});
