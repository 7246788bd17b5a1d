// How a guest script that did not succeed is reported: plain words, stderr and stdout labelled.
import * as assert from "assert";
import { guestFailure } from "../../providers/worker/command";

describe("guestFailure", () => {
  it("says the exit code and labels the last lines of stderr and stdout", () => {
    assert.strictEqual(
      guestFailure("pv2hvm", "i-0abc", { Status: "Failed", ResponseCode: 7, StandardErrorContent: "a\nno menu.lst\n", StandardOutputContent: "copying\n" }),
      "the guest script pv2hvm on worker i-0abc exited with code 7\n  stderr (last lines):\n    a\n    no menu.lst\n  stdout (last lines):\n    copying",
    );
  });

  it("says a timeout, a cancel or another end in words, and marks empty output", () => {
    assert.match(guestFailure("surrogate", "i-1", { Status: "TimedOut", ResponseCode: -1 }), /^the guest script surrogate on worker i-1 ran out of time \(SSM TimedOut\)\n  stderr: \(empty\)\n  stdout: \(empty\)$/);
    assert.match(guestFailure("surrogate", "i-1", { Status: "Cancelled" }), /was cancelled/);
    assert.match(guestFailure("surrogate", "i-1", { Status: "Undeliverable", StatusDetails: "Undeliverable", ResponseCode: -1 }), /ended as Undeliverable \(Undeliverable\)\n/);
  });

  it("keeps only the last 15 lines of each stream", () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i}`).join("\n");
    const text = guestFailure("pv2hvm", "i-1", { Status: "Failed", ResponseCode: 1, StandardErrorContent: lines });
    assert.ok(!text.includes("line 24\n"));
    assert.ok(text.includes("    line 25\n") && text.includes("    line 39"));
  });
});
