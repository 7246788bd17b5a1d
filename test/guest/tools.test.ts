// The worker's tools for the guest scripts: scripts/guest/lib/tools.sh (find a command, install the
// missing ones with dnf or apt-get) and scripts/guest/lib/debootstrap.sh (debootstrap where no
// package has it: fetched from the Debian mirror, every step of the chain checked).
//
// "tool -> package" and "ensure_tools" need nothing: a stand-in dnf / apt-get records what it is
// asked and installs stub commands. "debootstrap fetched" needs root (a mount namespace hides
// debootstrap, dpkg, dpkg-deb and apt-get, as on Amazon Linux 2023: test/support/hide-commands.sh)
// and http://deb.debian.org (AMI_FACTORY_DEBIAN_MIRROR); without them it fails (it never skips).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { must, run, Run, tail } from "../support/host";

const repo = path.resolve(__dirname, "../..");
const guest = path.join(repo, "scripts/guest");
const lib = path.join(guest, "lib");
const toolsSh = path.join(lib, "tools.sh");
const debootstrapSh = path.join(lib, "debootstrap.sh");
const hide = path.join(repo, "test/support/hide-commands.sh");
const mirror = process.env.AMI_FACTORY_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
/** What Amazon Linux 2023 does not have. */
const NOT_ON_AL2023 = "debootstrap,dpkg,dpkg-deb,apt-get,apt";
const KEYRING_PIN = "f699e2f88dca05212f2a452b58475f2993cb6993dfbafb1d0205a3291eb8b4b8";

// ------------------------------------------------------------------------------------------------

/** [tool, dnf/yum package (Amazon Linux 2023, RHEL), apt-get package (Debian, Ubuntu)]; null: none. */
const PACKAGES: Array<[string, string | null, string | null]> = [
  ["grub2-install", "grub2-tools", null],
  ["grub-install", null, "grub2-common"],
  ["grub-install|grub2-install", "grub2-tools", "grub2-common"],
  ["grub-mkimage|grub2-mkimage", "grub2-tools", "grub-common"],
  ["grub-modules:i386-pc", "grub2-pc-modules", "grub-pc-bin"],
  ["grub-modules:x86_64-efi", "grub2-efi-x64-modules", "grub-efi-amd64-bin"],
  ["grub-modules:arm64-efi", "grub2-efi-aa64-modules", "grub-efi-arm64-bin"],
  ["mkfs.vfat", "dosfstools", "dosfstools"],
  ["mcopy", "mtools", "mtools"],
  ["qemu-img", "qemu-img", "qemu-utils"],
  ["partx", "util-linux", "util-linux"],
  ["unshare", "util-linux-core", "util-linux"],
  ["capsh", "libcap", "libcap2-bin"],
  ["losetup", "util-linux", "mount"],
  ["sfdisk", "util-linux", "fdisk"],
  ["e2image", "e2fsprogs", "e2fsprogs"],
  ["xfs_growfs", "xfsprogs", "xfsprogs"],
  ["xfs_repair", "xfsprogs", "xfsprogs"],
  ["cpio", "cpio", "cpio"],
  ["lsinitrd", "dracut", "dracut-core"],
  ["lsinitramfs", null, "initramfs-tools-core"],
  ["lsinitramfs|lsinitrd", "dracut", "initramfs-tools-core"],
  ["debootstrap", null, "debootstrap"],
  ["ar", "binutils", "binutils"],
  ["gpgv", "gnupg2", "gpgv"],
  ["perl", "perl-interpreter", "perl-base"],
  ["xz", "xz", "xz-utils"],
  ["wget", "wget", "wget"],
  ["no-such-tool", null, null],
];

describe("worker tools: tool -> package", function () {
  for (const [tool, dnf, apt] of PACKAGES) {
    it(`maps ${tool} to ${dnf ?? "no package"} with dnf and yum, ${apt ?? "no package"} with apt-get`, function () {
      for (const [pm, want] of [["dnf", dnf], ["yum", dnf], ["apt-get", apt]] as Array<[string, string | null]>) {
        const r = run(toolsSh, ["package", pm, tool]);
        if (want === null) {
          assert.strictEqual(r.status, 1, `${pm} ${tool}: ${r.stdout}`);
          assert.strictEqual(r.stdout, "");
        } else {
          assert.strictEqual(r.status, 0, `${pm} ${tool}: ${r.stderr}`);
          assert.strictEqual(r.stdout, `${want}\n`, `${pm} ${tool}`);
        }
      }
    });
  }

  it("has a dnf and an apt-get package for every tool the guest scripts ensure (debootstrap is fetched where dnf has none)", function () {
    const sources = [path.join(guest, "pv2hvm.sh"), path.join(guest, "surrogate.sh"), ...["lib", "surrogate"].flatMap((d) => fs.readdirSync(path.join(guest, d)).map((f) => path.join(guest, d, f)))];
    const tools = new Set<string>();
    for (const f of sources) {
      const text = fs.readFileSync(f, "utf8").replace(/^\s*#.*$/gm, "").replace(/\\\n/g, " ");
      for (const m of text.matchAll(/(?:^|[\s;{])(?:ensure_tools|tools\+?=\(|need\+?=\()([^)\n;]*)/gm)) {
        for (const w of m[1].split(/\s+/)) {
          const t = w.replace(/^['"(]+|['")]+$/g, "");
          if (t && !t.includes("$") && !t.startsWith("-") && !t.startsWith("#") && t !== "ensure_tools") tools.add(t);
        }
      }
    }
    for (const t of ["blkid", "sfdisk", "e2image", "grub-install|grub2-install", "grub-modules:i386-pc", "mkfs.vfat", "qemu-img", "wget", "gpgv", "ar", "lsinitramfs|lsinitrd"]) {
      assert.ok(tools.has(t), `${t} not found among the ensured tools: ${[...tools].join(" ")}`);
    }
    const missing: string[] = [];
    for (const t of tools) {
      if (run(toolsSh, ["package", "dnf", t]).status !== 0 && t !== "debootstrap") missing.push(`${t} (dnf)`);
      if (run(toolsSh, ["package", "apt-get", t]).status !== 0) missing.push(`${t} (apt-get)`);
    }
    assert.deepStrictEqual(missing, []);
  });
});

describe("worker tools: ensure_tools with a stand-in package manager", function () {
  let sandbox: string;
  let pmLog: string;

  // A dnf / apt-get that logs its arguments and, by FAKE_PM_MODE: provides (stub commands for the
  // packages in FAKE_PROVIDES, "pkg=cmd,cmd pkg=cmd"), fails, does nothing, or fails until updated.
  const fakePm = `#!/bin/bash
printf '%s|%s\\n' "\${DEBIAN_FRONTEND:-}" "$*" >>"$FAKE_PM_LOG"
[ "$1" = update ] && { touch "$FAKE_PM_DIR/updated"; exit 0; }
mode=$FAKE_PM_MODE
[ "$mode" = fail-until-update ] && { [ -e "$FAKE_PM_DIR/updated" ] && mode=provide || mode=fail; }
case $mode in
  fail) for a in "$@"; do case $a in -*|install) ;; *) echo "Error: Unable to find a match: $a" >&2 ;; esac; done; exit 1 ;;
  noop) exit 0 ;;
  provide)
    for a in "$@"; do
      for spec in $FAKE_PROVIDES; do
        [ "\${spec%%=*}" = "$a" ] || continue
        IFS=, read -ra cmds <<<"\${spec#*=}"
        for c in "\${cmds[@]}"; do printf '#!/bin/sh\\nexit 0\\n' >"$FAKE_PM_DIR/installed/$c"; chmod +x "$FAKE_PM_DIR/installed/$c"; done
      done
    done ;;
esac
`;

  beforeEach(function () {
    sandbox = fs.mkdtempSync(path.join(os.tmpdir(), "guest-tools-"));
    fs.mkdirSync(path.join(sandbox, "bin"));
    fs.mkdirSync(path.join(sandbox, "installed"));
    for (const pm of ["dnf", "apt-get"]) fs.writeFileSync(path.join(sandbox, "bin", pm), fakePm, { mode: 0o755 });
    pmLog = path.join(sandbox, "pm.log");
    fs.writeFileSync(pmLog, "");
  });

  afterEach(function () {
    fs.rmSync(sandbox, { recursive: true, force: true });
  });

  function ensure(pm: string, mode: string, tools: string[]): Run {
    return run(toolsSh, ["ensure", ...tools], {
      env: {
        PATH: `${sandbox}/bin:${sandbox}/installed:${process.env.PATH}`,
        GUEST_PKG_MANAGER: pm,
        DEBIAN_FRONTEND: "",
        FAKE_PM_MODE: mode,
        FAKE_PM_DIR: sandbox,
        FAKE_PM_LOG: pmLog,
        FAKE_PROVIDES: "xfsprogs=xfs_growfs dracut=lsinitrd grub2-tools=grub2-install,grub2-mkimage",
      },
    });
  }
  const calls = () => fs.readFileSync(pmLog, "utf8").split("\n").filter((l) => l !== "");

  // None of these is on this (Debian) machine; each one's package is known to dnf.
  const absent = ["xfs_growfs", "lsinitrd", "grub2-install"];
  before(function () {
    for (const t of absent) assert.notStrictEqual(run("sh", ["-c", `command -v ${t}`]).status, 0, `${t} is installed here: the test needs a tool this machine lacks`);
  });

  it("is quiet and installs nothing when every tool is there (commands, alternatives, GRUB modules)", function () {
    const r = ensure("dnf", "fail", ["blkid", "mount", "grub-install|grub2-install", "grub-modules:i386-pc"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stderr, "");
    assert.strictEqual(r.stdout, "");
    assert.deepStrictEqual(calls(), []);
  });

  it("installs the packages of all missing tools with one `dnf -y install`, then finds them", function () {
    const r = ensure("dnf", "provide", ["blkid", ...absent, "grub-install|grub2-install"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(calls(), ["|-y install xfsprogs dracut grub2-tools"]);
    assert.match(r.stderr, /installing xfsprogs dracut grub2-tools with dnf \(for xfs_growfs lsinitrd grub2-install\)/);
    assert.strictEqual(r.stdout, "");
    for (const t of absent) assert.ok(fs.existsSync(path.join(sandbox, "installed", t)), t);
  });

  it("installs once per package: grub2-install and grub2-mkimage both come from grub2-tools", function () {
    const r = ensure("dnf", "provide", ["grub2-install", "grub-mkimagex|grub2-mkimage"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(calls(), ["|-y install grub2-tools"]);
  });

  it("fails naming the tool, the package and the failed install when dnf fails", function () {
    const r = ensure("dnf", "fail", ["blkid", "xfs_growfs", "grub-modules:arm64-efi"]);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /Error: Unable to find a match: xfsprogs/);
    assert.match(r.stderr, /error: missing on the worker: xfs_growfs \(package xfsprogs\); GRUB modules for arm64-efi \(\/usr\/lib\/grub\/arm64-efi\) \(package grub2-efi-aa64-modules\); 'dnf install xfsprogs grub2-efi-aa64-modules' failed \(exit 1/);
    assert.strictEqual(r.stdout, "");
  });

  it("fails when the install succeeds but does not provide the tool", function () {
    const r = ensure("dnf", "noop", ["lsinitrd"]);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /missing on the worker: lsinitrd \(package dracut\); 'dnf install dracut' succeeded but did not provide it/);
  });

  it("fails without calling the package manager for a tool it has no package for", function () {
    const r = ensure("apt-get", "provide", ["grub2-install"]);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /error: grub2-install not found on the worker, and apt-get has no package for it here/);
    assert.deepStrictEqual(calls(), []);
  });

  it("names the dnf and the apt-get package of each missing tool when the worker has no package manager", function () {
    const r = ensure("none", "provide", ["blkid", "xfs_growfs", "grub-modules:arm64-efi", "grub-mkimagex|grub2-mkimage"]);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /missing on the worker, and no package manager \(dnf, yum, apt-get\) to install them: xfs_growfs \(package: dnf xfsprogs, apt-get xfsprogs\); GRUB modules for arm64-efi \(\/usr\/lib\/grub\/arm64-efi\) \(package: dnf grub2-efi-aa64-modules, apt-get grub-efi-arm64-bin\); grub-mkimagex or grub2-mkimage \(package: dnf grub2-tools, apt-get none\)/);
    assert.deepStrictEqual(calls(), []);
  });

  it("with apt-get: non-interactive, without recommends, and refreshes the lists once when the first install fails", function () {
    const r = ensure("apt-get", "fail-until-update", ["xfs_growfs"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(calls(), ["noninteractive|install -y --no-install-recommends xfsprogs", "|update", "noninteractive|install -y --no-install-recommends xfsprogs"]);
    assert.match(r.stderr, /refreshing the package lists/);
  });
});

// ------------------------------------------------------------------------------------------------

describe("debootstrap fetched from the Debian mirror on a worker without it (needs root and the mirror)", function () {
  this.timeout(10 * 60 * 1000);
  let work: string;
  /** A file:// copy of what the fetch reads from the mirror, to tamper with. */
  let local: string;

  before(function () {
    if (process.getuid && process.getuid() !== 0) throw new Error("these tests need root (mount namespaces to hide debootstrap and dpkg; debootstrap itself): run mocha as root, as CI does");
    for (const t of ["unshare", "curl", "ar", "gpgv", "perl", "xz"]) {
      if (run("sh", ["-c", `command -v ${t}`]).status !== 0) throw new Error(`${t} missing: run scripts/install-guest-deps.sh as root`);
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), "guest-debootstrap-"));
    // The local mirror: Release, its signature, the binary-all index and the two packages.
    local = path.join(work, "mirror");
    const get = (rel: string) => {
      fs.mkdirSync(path.dirname(path.join(local, rel)), { recursive: true });
      must("curl", ["-fsSL", "--retry", "3", "-o", path.join(local, rel), `${mirror}/${rel}`]);
    };
    for (const f of ["Release", "Release.gpg", "main/binary-all/Packages.xz"]) get(`dists/bookworm/${f}`);
    const pkgs = must("xz", ["-dc", path.join(local, "dists/bookworm/main/binary-all/Packages.xz")]);
    for (const p of ["debootstrap", "debian-archive-keyring"]) {
      const m = new RegExp(`^Package: ${p}\\n(?:.+\\n)*?Filename: (\\S+)`, "m").exec(pkgs);
      assert.ok(m, `${p} not in the Packages file of ${mirror}`);
      get(m![1]);
    }
  });

  after(function () {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Runs debootstrap.sh fetch against MIRROR with debootstrap, dpkg and apt-get hidden. */
  function fetch(m: string, sha?: string): Run {
    return run(hide, [NOT_ON_AL2023, "--", debootstrapSh, "fetch", m, "bookworm", "amd64", ...(sha ? [sha] : [])]);
  }

  /** A copy of the local mirror with one file changed. */
  function tampered(name: string, rel: string, change: (b: Buffer) => Buffer): string {
    const dir = path.join(work, name);
    fs.cpSync(local, dir, { recursive: true });
    const f = path.join(dir, rel);
    fs.writeFileSync(f, change(fs.readFileSync(f)));
    return `file://${dir}`;
  }

  function leftFetchDir(r: Run): void {
    const dirs = [...r.stdout.matchAll(/\/tmp\/debootstrap-fetch\.[A-Za-z0-9]+/g)].map((m) => m[0]);
    for (const d of new Set(dirs)) assert.ok(!fs.existsSync(d), `${d} left behind`);
  }

  it("fetches debootstrap and the pinned keyring with no debootstrap, dpkg or apt-get on the worker, and bootstraps bookworm minbase with them", function () {
    const target = path.join(work, "minbase");
    const driver = `set -euo pipefail
. "${lib}/common.sh"; . "${lib}/tools.sh"; . "${lib}/debootstrap.sh"
GUEST_LOG_PREFIX=test
install_cleanup_traps
debootstrap_ensure "$1" bookworm amd64
log "origin: $DEBOOTSTRAP_ORIGIN"
printf '%s\\n' "\${DEBOOTSTRAP[*]}"
"\${DEBOOTSTRAP[@]}" --arch=amd64 --variant=minbase bookworm "$2" "$1" >&2
`;
    const t0 = Date.now();
    const r = run(hide, [NOT_ON_AL2023, "--", "bash", "-c", driver, "driver", mirror, target]);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`      fetch + debootstrap --variant=minbase bookworm: ${seconds.toFixed(1)}s`);
    try {
      assert.strictEqual(r.status, 0, tail(r.stderr));
      assert.match(r.stderr, /debootstrap: not on the worker and no package for it \(none\): fetching it from/);
      assert.match(r.stderr, new RegExp(`debian-archive-keyring [^:]+: sha256 ${KEYRING_PIN} as expected`));
      assert.match(r.stderr, /Release of bookworm: signature good \(Debian/);
      assert.match(r.stderr, /debootstrap [0-9][^:]*: sha256 [0-9a-f]{64} as the signed index lists it/);
      assert.match(r.stderr, /origin: debootstrap \S+ fetched from .*, keyring debian-archive-keyring \S+/);
      // debootstrap itself ran from the fetched copy, with that keyring, and checked the Release.
      assert.match(r.stdout, /^env DEBOOTSTRAP_DIR=\/tmp\/debootstrap-fetch\.\w+\/debootstrap\/usr\/share\/debootstrap \/tmp\/debootstrap-fetch\.\w+\/debootstrap\/usr\/sbin\/debootstrap --keyring=\/tmp\/debootstrap-fetch\.\w+\/keyring\/usr\/share\/keyrings\/debian-archive-keyring\.gpg --force-check-gpg --extractor=ar$/m);
      assert.match(r.stderr, /I: Valid Release signature/);
      assert.match(r.stderr, /I: Base system installed successfully/);
      assert.match(fs.readFileSync(path.join(target, "etc/debian_version"), "utf8"), /^12\./);
      assert.ok(fs.existsSync(path.join(target, "usr/bin/dpkg")), "no dpkg in the bootstrapped system");
      leftFetchDir(r);
    } finally {
      must("rm", ["-rf", "--one-file-system", target]);
    }
  });

  it("uses the local mirror copy as it is (the tamper tests start from a good chain)", function () {
    const r = fetch(`file://${local}`);
    assert.strictEqual(r.status, 0, tail(r.stderr));
    const dir = /\/tmp\/debootstrap-fetch\.\w+/.exec(r.stdout)![0];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a keyring whose sha256 is not the expected one, and says what it found", function () {
    const r = fetch(`file://${local}`, "0".repeat(64));
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, new RegExp(`debian-archive-keyring on file://\\S+ \\(pool/main/d/debian-archive-keyring/debian-archive-keyring_\\S+_all\\.deb, version \\S+\\) has sha256 ${KEYRING_PIN}, not the expected 0{64} \\(--keyring-sha256\\): its keys cannot be trusted\\. Check ${KEYRING_PIN} independently and pass it as --keyring-sha256`));
    assert.strictEqual(r.stdout, "");
  });

  it("refuses a keyring package changed on the mirror (the pinned hash no longer matches)", function () {
    const pkgs = must("xz", ["-dc", path.join(local, "dists/bookworm/main/binary-all/Packages.xz")]);
    const rel = /^Package: debian-archive-keyring\n(?:.+\n)*?Filename: (\S+)/m.exec(pkgs)![1];
    const r = fetch(tampered("bad-keyring", rel, (b) => Buffer.concat([b, Buffer.from("x")])));
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, new RegExp(`not the expected ${KEYRING_PIN} \\(pinned for 2023\\.3\\+deb12u2\\)`));
  });

  it("refuses a Release file whose signature does not verify", function () {
    const r = fetch(tampered("bad-release", "dists/bookworm/Release", (b) => Buffer.from(b.toString("utf8").replace(/^Codename: bookworm$/m, "Codename: bookworm\nX-Tampered: yes"))));
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /the signature of file:\/\/\S+\/dists\/bookworm\/Release does not verify with debian-archive-keyring/);
  });

  it("refuses a Packages file that is not the one the signed Release lists", function () {
    const r = fetch(tampered("bad-packages", "dists/bookworm/main/binary-all/Packages.xz", (b) => {
      const text = spawnSync("xz", ["-dc"], { input: b }).stdout.toString("utf8");
      return spawnSync("xz", ["-c"], { input: text.replace(/^Version: /m, "Version: 9") }).stdout;
    }));
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /main\/binary-all\/Packages\.xz has sha256 [0-9a-f]{64}, the signed Release lists [0-9a-f]{64}/);
  });

  it("refuses a debootstrap package that is not the one the signed Packages file lists", function () {
    const pkgs = must("xz", ["-dc", path.join(local, "dists/bookworm/main/binary-all/Packages.xz")]);
    const rel = /^Package: debootstrap\n(?:.+\n)*?Filename: (\S+)/m.exec(pkgs)![1];
    const r = fetch(tampered("bad-debootstrap", rel, (b) => Buffer.concat([b, crypto.randomBytes(1)])));
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /debootstrap_\S+_all\.deb has sha256 [0-9a-f]{64}, the signed Packages file lists [0-9a-f]{64}/);
    assert.doesNotMatch(r.stderr, /as the signed index lists it/);
  });
});
