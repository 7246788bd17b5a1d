import * as assert from "assert";
import { buildStamp, registeredName } from "../../providers/core/naming";

describe("registered image names", () => {
  it("stamp a build to the second, in UTC", () => {
    assert.strictEqual(buildStamp(new Date("2026-11-26T10:10:05.123Z")), "20261126T101005Z");
  });

  it("add the stamp to the given name unless exactName, and fit EC2's 128 characters", () => {
    assert.strictEqual(registeredName("legacy-web-hvm", false, "20261126T101005Z"), "legacy-web-hvm-20261126T101005Z");
    assert.strictEqual(registeredName("legacy-web-hvm", true, "20261126T101005Z"), "legacy-web-hvm");
    assert.strictEqual(registeredName("x".repeat(128), false, "20261126T101005Z").length, 128);
  });
});
