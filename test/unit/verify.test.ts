// Launch verification, the pure parts: reading a serial console (against real consoles captured
// from qemu boots, test/fixtures/console/capture.sh), choosing the instance types, the verify input.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Checker } from "../../providers/core/inputs";
import { judgePoll } from "../../providers/worker/bootJudge";
import { bootSignalRegex, classifyConsole, cleanConsole, consoleTail } from "../../providers/worker/console";
import { checkVerify } from "../../providers/worker/inputs";
import { verificationFromTags, verificationTags } from "../../providers/worker/verify";
import { cannotLaunch, isNitroReady, verifyInstanceTypes, xenTypeFor } from "../../providers/worker/verifyPlan";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../fixtures/console", name), "utf8");

describe("the console classifier on real consoles", () => {
  it("a Debian 12 boot reaches userspace: the login prompt on ttyS0", () => {
    const text = fixture("debian-12-boot.txt");
    assert.match(text, /Reached target.*Multi-User System/, "the fixture is a whole boot");
    assert.deepStrictEqual(classifyConsole(text), { state: "booted", line: "debian login:" });
  });

  it("the same boot before userspace shows nothing that counts, either way", () => {
    const text = fixture("debian-12-boot.txt");
    const cut = text.slice(0, text.search(/Reached target/));
    assert.ok(cut.length > 2000, "a real part of a boot");
    assert.deepStrictEqual(classifyConsole(cut), { state: "booting" });
    assert.deepStrictEqual(classifyConsole(""), { state: "booting" });
  });

  it("a quiet console (nothing until the getty) shows userspace by its login prompt", () => {
    const text = fixture("debian-12-quiet.txt");
    assert.doesNotMatch(text, /Reached target/, "the fixture is quiet");
    assert.deepStrictEqual(classifyConsole(text), { state: "booted", line: "debian login:" });
  });

  it("an initramfs without the disk driver: the root device never shows up", () => {
    const verdict = classifyConsole(fixture("initramfs-no-disk-driver.txt"));
    assert.strictEqual(verdict.state, "failed");
    assert.match((verdict as { reason: string }).reason, /did not find the root device/);
    assert.match((verdict as { line: string }).line, /ALERT!.*does not exist|Gave up waiting for root/);
  });

  it("no initramfs at all: the kernel cannot mount its root and panics", () => {
    const verdict = classifyConsole(fixture("no-initramfs-panic.txt"));
    assert.strictEqual(verdict.state, "failed");
    assert.match((verdict as { line: string }).line, /Kernel panic - not syncing: VFS: Unable to mount root fs/);
    assert.strictEqual((verdict as { reason: string }).reason, "kernel panic");
  });

  it("a console tail is the last lines, cleaned", () => {
    const tail = consoleTail(fixture("no-initramfs-panic.txt"), 5);
    assert.strictEqual(tail.split("\n").length, 5);
    assert.match(tail, /end Kernel panic/);
    assert.doesNotMatch(tail, /\r/);
    assert.strictEqual(consoleTail(""), "(the console is empty)");
  });
});

describe("the console classifier's signals", () => {
  const cases: [string, string, string, string?][] = [
    ["systemd's multi-user target (older wording)", "[  OK  ] Reached target Multi-User System.\r\n", "booted"],
    ["cloud-init's final line", "Cloud-init v. 23.1.2-0ubuntu0~22.04.1 finished at Thu, 26 Nov 2026 10:00:00 +0000. Datasource DataSourceEc2Local.  Up 25.52 seconds\r\n", "booted"],
    ["an Amazon Linux login prompt", "Amazon Linux 2023.6.20241010\r\nKernel 6.1.112 on an x86_64 (-)\r\n\r\nip-172-31-5-7 login: ", "booted"],
    ["a GRUB error and its rescue prompt", "error: no such device: 3f0c2a57-5d7e-4c55-9d0e-6f1b2d9c4a11.\r\nEntering rescue mode...\r\ngrub rescue> ", "failed", "GRUB rescue prompt"],
    ["a GRUB error alone", "error: no suitable video mode found.\r\n", "failed", "GRUB error"],
    ["dracut giving up", "dracut: FATAL: Don't know how to handle 'root=/dev/xvda1'\r\ndracut: Refusing to continue\r\n", "failed", "dracut"],
    ["systemd emergency mode", "You are in emergency mode. After logging in, type \"journalctl -xb\" to view\r\n", "failed", "emergency"],
    ["a panic after the login prompt", "debian login: \r\n[  300.1] Kernel panic - not syncing: Fatal exception\r\n", "failed", "kernel panic"],
    ["a login prompt after a panic and a reboot", "[    2.1] Kernel panic - not syncing: Attempted to kill init!\r\n...\r\ndebian login: ", "booted"],
    ["escape sequences around the prompt", "\x1b[0m\x1b[2J\x1b[01;01Hdebian login: \x1b[K", "booted"],
    ["a kernel line that merely says error", "[    1.5] ACPI Error: AE_NOT_FOUND, While resolving a named reference\r\n[    1.6] pcieport: AER: error: x\r\n", "booting"],
  ];
  for (const [what, text, state, reason] of cases) {
    it(`${what}: ${state}`, () => {
      const verdict = classifyConsole(text);
      assert.strictEqual(verdict.state, state, JSON.stringify(verdict));
      if (reason) assert.match((verdict as { reason: string }).reason, new RegExp(reason));
    });
  }

  it("a login prompt that kernel messages follow on the same line (seen on a TCG boot) is reported without them", () => {
    const text = "Debian GNU/Linux 12 debian ttyS0\r\n\r\ndebian login: [   77.723447] kvm: Nested Virtualization enabled\r\n[   77.723780] SVM: kvm: Nested Paging enabled\r\n";
    assert.deepStrictEqual(classifyConsole(text), { state: "booted", line: "debian login:" });
  });

  it("a user's boot signal replaces the defaults", () => {
    const re = bootSignalRegex("^APP READY$") as RegExp;
    assert.deepStrictEqual(classifyConsole("debian login: \r\nAPP READY\r\n", re), { state: "booted", line: "APP READY" });
    assert.deepStrictEqual(classifyConsole("debian login: \r\n", re), { state: "booting" });
    assert.match(bootSignalRegex("(") as string, /Unterminated group/);
    assert.match(bootSignalRegex(".*") as string, /matches an empty console/);
  });

  it("cleans carriage returns, escapes and control characters", () => {
    assert.strictEqual(cleanConsole("a\r\nb\x1b[31mc\x1b[0m\x07\r\n"), "a\nbc\n");
  });
});

describe("judging a boot by how it ends", () => {
  const ok = { state: "running", system: "ok", instance: "ok" };
  const starting = { state: "running", system: "initializing", instance: "initializing" };
  /** What the verification sees at each poll while the console grows: the judgement of each. */
  const polls = (text: string, cuts: number[], checks = ok) => cuts.map((n) => judgePoll({ console: classifyConsole(text.slice(0, n)), ...checks }).state);

  it("a real boot passes only once the login prompt is there and both checks are ok", () => {
    const text = fixture("debian-12-boot.txt");
    assert.deepStrictEqual(polls(text, [0, 2000, text.length]), ["waiting", "waiting", "passed"]);
    assert.strictEqual(judgePoll({ console: classifyConsole(text), ...starting }).state, "waiting");
  });

  it("a real panic fails at the poll that shows it, before the deadline", () => {
    const text = fixture("no-initramfs-panic.txt");
    const panic = text.indexOf("Kernel panic - not syncing");
    assert.deepStrictEqual(polls(text, [panic, text.length], starting), ["waiting", "failed"]);
    assert.match((judgePoll({ console: classifyConsole(text), ...starting }) as { reason: string }).reason, /kernel panic: .*VFS: Unable to mount root fs/);
  });

  it("the initramfs waiting in vain is waited out; its emergency shell is final", () => {
    const text = fixture("initramfs-no-disk-driver.txt");
    const gaveUp = text.indexOf("ALERT!");
    const waiting = judgePoll({ console: classifyConsole(text.slice(0, gaveUp)), ...starting });
    assert.deepStrictEqual(waiting.state, "waiting");
    assert.match((waiting as { reason: string }).reason, /last shows the initramfs did not find the root device \(not final unless nothing follows\)/);
    assert.match((judgePoll({ console: classifyConsole(text), ...starting }) as { reason: string }).reason, /emergency shell/);
  });

  it("a real GRUB error before a real login prompt passes: the error is waited out, the boot that follows counts", () => {
    const text = fixture("grub-error-then-login.txt");
    assert.match(cleanConsole(text), /^error: file `\/boot\/grub\/i386-pc\/ami_factory_no_such_module\.mod' not found\.$/m, "GRUB's own error line");
    const afterError = text.indexOf("Booting `debian'");
    const waiting = judgePoll({ console: classifyConsole(text.slice(0, afterError)), ...ok });
    assert.strictEqual(waiting.state, "waiting");
    assert.match((waiting as { reason: string }).reason, /the console last shows GRUB error/);
    assert.deepStrictEqual(polls(text, [afterError, afterError + 4000, text.length]), ["waiting", "waiting", "passed"]);
    assert.deepStrictEqual(judgePoll({ console: classifyConsole(text), ...ok }), { state: "passed", line: "debian login:" });
  });

  it("an `error:` line from userspace, after the kernel started, is no GRUB error: a real boot with one appended still passes", () => {
    const text = fixture("debian-12-boot.txt") + "\nerror: could not resolve host metadata.internal\n";
    assert.deepStrictEqual(classifyConsole(text), { state: "booted", line: "debian login:" });
    const grub = fixture("grub-error-then-login.txt");
    const beforeKernel = grub.slice(0, grub.indexOf("Booting `debian'"));
    assert.match((classifyConsole(beforeKernel + "\nerror: again\n") as { reason: string }).reason, /GRUB error/, "before the kernel, GRUB's errors still count");
  });

  it("an `error:` line from userspace still is none when the console is only its last 64 KB (the kernel's first lines gone)", () => {
    const boot = fixture("debian-12-boot.txt");
    const padding = Array.from({ length: 1500 }, (_, i) => `[   ${(10 + i / 100).toFixed(6)}] systemd[1]: a long boot, line ${i}`).join("\n");
    const text = (boot + "\n" + padding + "\ndebian login: \nerror: could not resolve host metadata.internal\n").slice(-65536);
    assert.ok(!text.includes("Linux version") && !/\[ *0\.000000\]/.test(text), "the kernel's first lines are cut off");
    assert.deepStrictEqual(classifyConsole(text), { state: "booted", line: "debian login:" });
  });

  it("a GRUB error after a reboot counts again (a new boot began), and is waited out like the first", () => {
    const boot = fixture("debian-12-boot.txt");
    const text = boot + "\nSeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from Hard Disk...\nerror: file '/boot/vmlinuz-6.1.0-99-amd64' not found.\n";
    assert.match((classifyConsole(text) as { reason: string }).reason, /GRUB error/);
  });

  it("a real panic after userspace fails: the login prompt is no pass while the checks still initialize, the panic that follows is final", () => {
    const text = fixture("panic-after-login.txt");
    const login = text.indexOf("debian login: ");
    const panic = text.indexOf("Kernel panic - not syncing");
    assert.ok(login > 0 && panic > login, "the panic comes after the login prompt");
    assert.deepStrictEqual(polls(text, [login + 20, text.length], starting), ["waiting", "failed"]);
    assert.match((judgePoll({ console: classifyConsole(text), ...ok }) as { reason: string }).reason, /kernel panic: .*Kernel panic - not syncing: NMI: Not continuing/);
  });

  for (const [what, console] of [
    ["a GRUB rescue prompt", "error: unknown filesystem.\r\nEntering rescue mode...\r\ngrub rescue> "],
    ["systemd's emergency shell", "debian login: \r\nYou are in emergency mode. After logging in, type \"journalctl -xb\"\r\n"],
  ]) {
    it(`${what} is final`, () => assert.strictEqual(judgePoll({ console: classifyConsole(console), ...starting }).state, "failed"));
  }

  it("a GRUB error is not final: the boot that follows passes, and while it is the last line the reason names it", () => {
    const waiting = judgePoll({ console: classifyConsole("error: no such device: ((hd0,1)).\r\n"), ...ok });
    assert.deepStrictEqual(waiting.state, "waiting");
    assert.match((waiting as { reason: string }).reason, /GRUB error .*: error: no such device/);
  });

  it("a dead instance or an impaired check is final, whatever the console", () => {
    const booting = classifyConsole("");
    assert.deepStrictEqual(judgePoll({ console: booting, state: "stopped", stateReason: "Client.InstanceInitiatedShutdown", system: "ok", instance: "ok" }), {
      state: "failed",
      reason: "the instance is stopped (Client.InstanceInitiatedShutdown)",
    });
    assert.deepStrictEqual(judgePoll({ console: booting, state: "running", system: "ok", instance: "impaired" }), { state: "failed", reason: "status checks: system ok, instance impaired" });
  });
});

describe("which instance types verify an image", () => {
  const x86 = { architecture: "x86_64" as const, enaSupport: true, bootMode: "legacy-bios" as const };

  it("the facts' nitroReady decides when the guest reports it", () => {
    assert.deepStrictEqual(isNitroReady({ nitroReady: false, enaDriver: true, nvmeDriver: true }).ready, false);
    assert.deepStrictEqual(isNitroReady({ nitroReady: true }).ready, true);
  });

  it("else the NVMe driver where the root is found and the ENA driver", () => {
    assert.strictEqual(isNitroReady({ enaDriver: true, nvmeDriver: true, nvmeInInitramfs: true }).ready, true);
    assert.strictEqual(isNitroReady({ enaDriver: true, nvmeDriver: true, nvmeInInitramfs: false }).ready, false, "NVMe as a module the initramfs lacks");
    assert.strictEqual(isNitroReady({ enaDriver: true, nvmeDriver: true }).ready, true, "no initramfs facts: the driver counts");
    assert.strictEqual(isNitroReady({ enaDriver: false, nvmeDriver: true }).ready, false);
    assert.strictEqual(isNitroReady({}).ready, false);
  });

  it("a Nitro type for a Nitro-ready image, t2.micro (Xen) otherwise, and the user's list as given", () => {
    assert.deepStrictEqual(verifyInstanceTypes(undefined, { nitroReady: true }, x86).types, ["t3.micro"]);
    assert.deepStrictEqual(verifyInstanceTypes(undefined, { nitroReady: true }, { ...x86, architecture: "arm64", bootMode: "uefi" }).types, ["t4g.micro"]);
    assert.deepStrictEqual(verifyInstanceTypes(undefined, { nitroReady: false }, x86).types, ["t2.micro"]);
    assert.deepStrictEqual(verifyInstanceTypes(undefined, { nitroReady: true }, { ...x86, enaSupport: false }).types, ["t2.micro"], "registered without ENA: no Nitro launch");
    assert.deepStrictEqual(verifyInstanceTypes(["m7i.large", "t2.micro"], { nitroReady: true }, x86), { types: ["m7i.large", "t2.micro"], why: "as asked (verify.instanceType)" });
  });

  it("UEFI and arm64 images that are not Nitro-ready still get a Nitro type, saying why", () => {
    const r = verifyInstanceTypes(undefined, { nitroReady: false }, { ...x86, bootMode: "uefi" });
    assert.deepStrictEqual(r.types, ["t3.micro"]);
    assert.match(r.why, /UEFI images run on Nitro types only/);
  });

  it("names why a type cannot launch the image", () => {
    const t3 = { instanceType: "t3.micro", hypervisor: "nitro", architectures: ["x86_64"], enaSupport: "required", bootModes: ["legacy-bios", "uefi"] };
    assert.strictEqual(cannotLaunch(x86, t3), undefined);
    assert.match(cannotLaunch({ ...x86, enaSupport: false }, t3)!, /needs ENA/);
    assert.match(cannotLaunch({ ...x86, architecture: "arm64" }, t3)!, /runs x86_64, not arm64/);
    assert.match(cannotLaunch({ ...x86, bootMode: "uefi" }, { ...t3, instanceType: "t2.micro", bootModes: ["legacy-bios"] })!, /boots legacy-bios, not uefi/);
  });
});

describe("the Xen type a region offers for an image that is not Nitro-ready", () => {
  const image = { architecture: "x86_64" as const, enaSupport: false, bootMode: "legacy-bios" as const };
  const xen = (instanceType: string, vcpus: number, memoryMiB: number, enaSupport = "supported") =>
    ({ instanceType, hypervisor: "xen", architectures: ["x86_64"], enaSupport, bootModes: ["legacy-bios"], vcpus, memoryMiB });

  it("t2.micro where the region offers it", () => {
    assert.deepStrictEqual(xenTypeFor(image, [xen("m4.large", 2, 8192), xen("t2.micro", 1, 1024)], "us-east-1"), { type: "t2.micro", why: "t2.micro (Xen) is offered in us-east-1" });
  });

  it("else the smallest offered Xen type that can launch the image, saying why", () => {
    const r = xenTypeFor(image, [xen("m4.xlarge", 4, 16384), xen("m4.large", 2, 8192), xen("c4.large", 2, 3840)], "eu-central-2");
    assert.deepStrictEqual(r, { type: "c4.large", why: "t2.micro is not offered in eu-central-2: c4.large, the smallest Xen type it offers that can launch the image" });
  });

  it("none: a region whose only Xen types need ENA, or that offers none, is named with the fixes", () => {
    const onlyI3 = xenTypeFor(image, [xen("i3.large", 2, 15616, "required")], "il-central-1") as { error: string };
    assert.match(onlyI3.error, /il-central-1 has none for it: the Xen types it offers \(i3\.large\) cannot launch it \(i3\.large needs ENA/);
    assert.match(onlyI3.error, /verify\.instanceType|verify: false/);
    assert.match((xenTypeFor(image, [], "ap-southeast-5") as { error: string }).error, /ap-southeast-5 has none for it: it offers no Xen instance type/);
  });
});

describe("the verify input", () => {
  const check = (raw: unknown) => {
    const c = new Checker();
    return { verify: checkVerify(c, raw), failures: c.failures };
  };

  it("is on by default, 15 minutes", () => {
    assert.deepStrictEqual(check(undefined), { verify: { timeoutMinutes: 15 }, failures: [] });
    assert.deepStrictEqual(check(false), { verify: false, failures: [] });
  });

  it("takes one instance type or a list, a timeout and a boot signal", () => {
    assert.deepStrictEqual(check({ instanceType: "m7i.large", timeoutMinutes: 20, bootSignal: "^READY$" }).verify, { instanceTypes: ["m7i.large"], timeoutMinutes: 20, bootSignal: "^READY$" });
    assert.deepStrictEqual((check({ instanceType: ["t2.micro", "t3.micro"] }).verify as { instanceTypes: string[] }).instanceTypes, ["t2.micro", "t3.micro"]);
  });

  for (const [what, raw, property, reason] of [
    ["a word", "yes", "verify", /false or \{ instanceType/],
    ["an unknown option", { instanceTypes: ["t3.micro"] }, "verify.instanceTypes", /unknown field/],
    ["an instance type of the wrong shape", { instanceType: "micro" }, "verify.instanceType", /such as t3\.micro/],
    ["a type named twice", { instanceType: ["t3.micro", "t3.micro"] }, "verify.instanceType", /twice/],
    ["a zero timeout", { timeoutMinutes: 0 }, "verify.timeoutMinutes", /from 1 to 180/],
    ["a boot signal that is no regex", { bootSignal: "login: (" }, "verify.bootSignal", /regular expression/],
    ["a boot signal that matches anything", { bootSignal: "x*" }, "verify.bootSignal", /matches an empty console/],
  ] as const) {
    it(`refuses ${what}, naming ${property}`, () => {
      const failure = check(raw).failures.find((f) => f.property === property);
      assert.ok(failure, JSON.stringify(check(raw).failures));
      assert.match(failure.reason, reason);
    });
  }
});

describe("verification tags", () => {
  it("mark a pending image with the build's expiry and stack, and read back what passed", () => {
    const temp = { "ami-factory:expires-at": "2030-01-01T00:00:00.000Z", "ami-factory:stack": "p/s", "ami-factory:temporary": "true" };
    assert.deepStrictEqual(verificationTags({ timeoutMinutes: 15 }, temp), { "ami-factory:verification": "pending", "ami-factory:expires-at": "2030-01-01T00:00:00.000Z", "ami-factory:stack": "p/s" });
    assert.deepStrictEqual(verificationTags(false, temp), { "ami-factory:verification": "skipped" });
    const tags = [
      { Key: "ami-factory:verification", Value: "passed" },
      { Key: "ami-factory:verified-on", Value: "t3.micro=41s t2.micro=57s" },
      { Key: "ami-factory:boot-line", Value: "debian login:" },
    ];
    assert.deepStrictEqual(verificationFromTags(tags), {
      status: "passed",
      results: [
        { instanceType: "t3.micro", secondsToBootSignal: 41, bootLine: "debian login:" },
        { instanceType: "t2.micro", secondsToBootSignal: 57, bootLine: "" },
      ],
    });
    assert.strictEqual(verificationFromTags([{ Key: "ami-factory:verification", Value: "pending" }]), undefined);
  });
});
