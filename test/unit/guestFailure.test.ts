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

  it("shows the script's own failure summary first when stdout has one (SSM cut stderr at 8,000 characters, before the error)", () => {
    const stderr = "pv2hvm: [  12s] copying\n".repeat(400).slice(0, 8000);
    const summary = "pv2hvm failed (exit 1)\n  step: 6/8: installing GRUB 2 (i386-pc)\n  error: grub-install on /dev/nvme1n1 failed\n  stderr: grub-install: error: disk not found\n";
    const text = guestFailure("pv2hvm", "i-0abc", { Status: "Failed", ResponseCode: 1, StandardErrorContent: stderr, StandardOutputContent: summary });
    assert.match(text, /^the guest script pv2hvm on worker i-0abc exited with code 1\n  summary:\n    pv2hvm failed \(exit 1\)\n      step: 6\/8: installing GRUB 2 \(i386-pc\)\n      error: grub-install on \/dev\/nvme1n1 failed\n      stderr: grub-install: error: disk not found\n  stderr as SSM kept it \(its first 8,000 characters\) \(last lines\):\n    pv2hvm: \[  12s\] copying/);
    assert.doesNotMatch(text, /stdout/);
  });
});
