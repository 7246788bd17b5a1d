// The guest side of SurrogateAmi: scripts/guest/surrogate.sh, its recipes (scripts/guest/surrogate/)
// and lib/bootdisk.sh, on loop devices.
//
// Needs root, loop devices, debootstrap, GRUB (i386-pc and x86_64-efi), qemu with SeaBIOS and OVMF
// (scripts/install-guest-deps.sh). Without them it fails, naming what is missing (it never skips).
// The legacy-bios debian build runs as on Amazon Linux 2023: debootstrap, dpkg and apt-get hidden
// (test/support/hide-commands.sh), so the bundle fetches debootstrap from the mirror itself.
// The debian recipe downloads its packages once into
// ${AMI_FACTORY_CACHE:-$HOME/.cache/ami-factory}/debootstrap/surrogate-bookworm-amd64.tgz and
// runs debootstrap from that tarball on every run.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { bootImage, detectAccel } from "../support/qemu";
import { leftovers, Loops, must, requireRootAndTools as requireTools, Run, run, tail } from "../support/host";

const repo = path.resolve(__dirname, "../..");
const guest = path.join(repo, "scripts/guest");
const surrogate = path.join(guest, "surrogate.sh");
const bundler = path.join(guest, "lib/bundle.sh");
const cacheDir = process.env.AMI_FACTORY_CACHE ?? path.join(process.env.HOME ?? "/root", ".cache/ami-factory");
const debsTarball = path.join(cacheDir, "debootstrap/surrogate-bookworm-amd64.tgz");
const hideCommands = path.join(repo, "test/support/hide-commands.sh");

interface Facts {
  recipe: string;
  bootMode: string;
  partitionTable: string;
  fsType: string;
  rootUuid: string;
  rootLabel: string;
  kernels: string[];
  defaultKernel: string;
  enaDriver: boolean;
  nvmeDriver: boolean;
  enaInInitramfs: boolean;
  nvmeInInitramfs: boolean;
  cloudInit: boolean;
  warnings: string[];
  sanitized: boolean;
  seconds: number;
}

/** stdout must be exactly one JSON line. */
function parseFacts(stdout: string): Facts {
  const lines = stdout.trimEnd().split("\n");
  assert.strictEqual(lines.length, 1, `expected stdout to be exactly one JSON line, got:\n${stdout}`);
  return JSON.parse(lines[0]) as Facts;
}

function b64(script: string): string {
  return Buffer.from(script).toString("base64");
}

function requireRootAndTools(): void {
  requireTools(
    "the surrogate tests",
    ["qemu-system-x86_64", "qemu-img", "debootstrap", "grub-install", "losetup", "partx", "sfdisk", "mkfs.ext4", "mkfs.vfat", "debugfs", "base64"],
    [["/usr/lib/grub/i386-pc/boot.img", "grub-pc-bin"], ["/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin"], ["/usr/share/ovmf/OVMF.fd", "ovmf"]],
  );
}

/** The start (bytes) of partition N of a disk image, from its partition table. */
function partitionStart(image: string, n: number): number {
  const t = JSON.parse(must("sfdisk", ["-J", image])) as { partitiontable: { sectorsize?: number; partitions: Array<{ node: string; start: number }> } };
  const p = t.partitiontable.partitions.find((x) => x.node.endsWith(String(n)));
  assert.ok(p, `no partition ${n} in ${image}`);
  return p!.start * (t.partitiontable.sectorsize ?? 512);
}

/** Reads a file from the ext4 filesystem of partition N of a disk image, without mounting it. */
function readFromImage(image: string, n: number, file: string): string | null {
  const loops = new Loops();
  try {
    const dev = loops.attach(image, { readOnly: true, offset: partitionStart(image, n) });
    const st = run("debugfs", ["-R", `stat ${file}`, dev]);
    if (!/^Inode:/m.test(st.stdout)) return null;
    return run("debugfs", ["-R", `cat ${file}`, dev]).stdout;
  } finally {
    loops.detachAll();
  }
}

/** A user script that makes the booted system print the marker on ttyS0 and power off. */
function markerScript(marker: string): string {
  return `#!/bin/sh
set -eu
mkdir -p "$TARGET_ROOT/usr/local/sbin" "$TARGET_ROOT/etc/systemd/system/multi-user.target.wants"
cat >"$TARGET_ROOT/usr/local/sbin/ami-factory-marker" <<'EOF'
#!/bin/sh
{
  printf '\\r\\nami-factory: root %s, cmdline: %s\\r\\n' "$(findmnt -no SOURCE /)" "$(cat /proc/cmdline)"
  [ -d /sys/firmware/efi ] && printf 'ami-factory: firmware uefi\\r\\n' || printf 'ami-factory: firmware bios\\r\\n'
  printf 'AMI-FACTORY-BOOTED %s\\r\\n' "$(cat /etc/ami-factory-marker)"
} >/dev/ttyS0
systemctl --no-block poweroff
EOF
chmod 0755 "$TARGET_ROOT/usr/local/sbin/ami-factory-marker"
printf '%s\\n' '${marker}' >"$TARGET_ROOT/etc/ami-factory-marker"
cat >"$TARGET_ROOT/etc/systemd/system/ami-factory-marker.service" <<'EOF'
[Unit]
Description=ami-factory boot test marker
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ami-factory-marker
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/ami-factory-marker.service "$TARGET_ROOT/etc/systemd/system/multi-user.target.wants/"
# An emptied machine-id (--sanitize) makes this a first boot: nothing may wait for an answer.
ln -sf /dev/null "$TARGET_ROOT/etc/systemd/system/systemd-firstboot.service"
# Host keys are removed by --sanitize; sshd would make new ones (slow under TCG): not needed here.
ln -sf /dev/null "$TARGET_ROOT/etc/systemd/system/ssh.service"
echo "marker unit written" >&2
`;
}

const timings: Record<string, number> = {};

// ------------------------------------------------------------------------------------------------

describe("surrogate guest script: command line", function () {
  for (const [args, why] of [
    [["--target", "/dev/null", "--recipe", "gentoo"], /unknown --recipe 'gentoo'/],
    [["--target", "/dev/null", "--recipe", "debian"], /--suite is required/],
    [["--target", "/dev/null", "--recipe", "debian", "--suite", "bookworm", "--frobnicate"], /unknown option '--frobnicate'/],
    [["--target", "/dev/null", "--recipe", "debian", "--suite", "bookworm", "--url", "/x"], /option --url does not apply to --recipe debian/],
    [["--target", "/dev/null", "--recipe", "el", "--releasever", "2023"], /--repo name=URL is required/],
    [["--target", "/dev/null", "--recipe", "el", "--releasever", "2023", "--repo", "base=https://r.example/os/"], /--repo base has no --gpgkey base=https:\/\/URL: every repository needs its signing key/],
    [["--target", "/dev/null", "--recipe", "el", "--releasever", "2023", "--repo", "base=http://r.example/os/", "--gpgkey", "base=https://r.example/KEY"], /--repo must be name=https:\/\/URL \(got 'base=http:\/\/r.example\/os\/'\)/],
    [["--target", "/dev/null", "--recipe", "el", "--releasever", "2023", "--repo", "base=https://r.example/os/", "--gpgkey", "base=http://r.example/KEY"], /--gpgkey must be name=https:\/\/URL/],
    [["--target", "/dev/null", "--recipe", "image", "--url", "/x", "--sha256", "abc"], /--sha256 must be 64 hex digits/],
    [["--target", "/dev/null", "--recipe", "script"], /--user-script-b64 is required/],
    [["--target", "/dev/null", "--recipe", "debian", "--suite", "bookworm", "--arch", "arm64", "--boot-mode", "legacy-bios"], /legacy-bios does not exist for --arch arm64/],
    [["--recipe", "debian", "--suite", "bookworm"], /--target DEV is required/],
    [["--target", "/dev/null", "--recipe", "debian", "--suite"], /--suite needs a value/],
    [["--target", "/dev/null", "--recipe", "debian", "--suite", "bookworm", "--keyring-sha256", "f699e2f8"], /--keyring-sha256 must be 64 hex digits/],
    [["--target", "/dev/null", "--recipe", "script", "--user-script-b64", "eA==", "--keyring-sha256", "0".repeat(64)], /option --keyring-sha256 does not apply to --recipe script/],
  ] as Array<[string[], RegExp]>) {
    it(`exits 2 for ${JSON.stringify(args)}, naming the option`, function () {
      const r = run(surrogate, args);
      assert.strictEqual(r.status, 2, r.stderr);
      assert.match(r.stderr, why);
      assert.strictEqual(r.stdout, "");
    });
  }

  it("bundles into one self-contained script with every recipe inlined", function () {
    const a = must(bundler, [surrogate]);
    assert.strictEqual(a, must(bundler, [surrogate]), "bundling is not deterministic");
    assert.ok(!/^\. .*# @bundle/m.test(a), "a sourced line was left in the bundle");
    for (const fn of ["debian_populate()", "el_populate()", "image_write()", "user_script_run()", "install_grub()", "resolve_device()", "sanitize_root()", "ensure_tools()", "debootstrap_ensure()", "debootstrap_fetch()"]) {
      assert.ok(a.includes(fn), `${fn} missing from the bundle`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "surrogate-bundle-"));
    try {
      fs.writeFileSync(path.join(dir, "s.sh"), a, { mode: 0o755 });
      const r = run("bash", [path.join(dir, "s.sh"), "--target", "/dev/null", "--recipe", "debian"], { env: { SURROGATE_DIR: "/nonexistent" } });
      assert.strictEqual(r.status, 2);
      assert.match(r.stderr, /--suite is required/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("surrogate guest script on loop devices (needs root)", function () {
  this.timeout(20 * 60 * 1000);
  let work: string;
  const loops = new Loops();
  const keep = process.env.AMI_FACTORY_KEEP_TEST_ARTIFACTS === "1";

  before(function () {
    requireRootAndTools();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "surrogate-"));
    const a = detectAccel();
    console.log(`      qemu accelerator: ${a.accel} (${a.why})`);
  });

  after(function () {
    loops.detachAll();
    if (work && !keep) fs.rmSync(work, { recursive: true, force: true });
    else if (work) console.log(`      artifacts kept in ${work}`);
    console.log("      timings (s): " + Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", "));
  });

  /** A sparse image file with random bytes in its first MiB (an old volume), on a loop device. */
  function target(name: string, mib: number): { file: string; dev: string; head: Buffer } {
    const file = path.join(work, name);
    const head = crypto.randomBytes(1024 * 1024);
    fs.writeFileSync(file, head);
    fs.truncateSync(file, mib * 1024 * 1024);
    return { file, dev: loops.attach(file), head };
  }

  function firstMiB(file: string): Buffer {
    const fd = fs.openSync(file, "r");
    try {
      const b = Buffer.alloc(1024 * 1024);
      fs.readSync(fd, b, 0, b.length, 0);
      return b;
    } finally {
      fs.closeSync(fd);
    }
  }

  describe("el recipe --dry-run (Amazon Linux 2023 repositories are not reachable here)", function () {
    const repoUrl = "https://cdn.amazonlinux.com/al2023/core/guids/abc/x86_64/";
    const keyUrl = "https://cdn.amazonlinux.com/al2023/RPM-GPG-KEY-amazon-linux-2023";
    for (const mode of ["legacy-bios", "uefi"] as const) {
      it(`prints the exact ${mode} commands and changes nothing on the target`, function () {
        const t = target(`el-${mode}.img`, 2048);
        const r = run(surrogate, ["--target", t.dev, "--recipe", "el", "--boot-mode", mode, "--releasever", "2023", "--repo", `amazonlinux=${repoUrl}`, "--gpgkey", `amazonlinux=${keyUrl}`, "--repo", "kernel-livepatch=https://example.invalid/lp/", "--gpgkey", "kernel-livepatch=https://example.invalid/lp/RPM-GPG-KEY", "--gpgkey", `kernel-livepatch=${keyUrl}`, "--packages", "@core,amazon-ssm-agent", "--dry-run"]);
        assert.strictEqual(r.status, 0, r.stderr);
        const facts = parseFacts(r.stdout);
        assert.strictEqual(facts.partitionTable, mode === "uefi" ? "gpt" : "msdos");
        const d = t.dev;
        const p = (n: number) => `${d}p${n}`;
        const W = "/tmp/surrogate.dry-run";
        const R = `${W}/root`;
        const cmds = r.stderr.split("\n").filter((l) => l.startsWith("+ "));
        const grubPkgs = mode === "uefi" ? "grub2-pc grub2-efi-x64 grub2-efi-x64-modules" : "grub2-pc";
        const expected = [
          `+ wipefs -aq ${d}`,
          mode === "uefi"
            ? `+ write_partition_table ${d} 'label: gpt' 'start=1MiB, size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=biosboot' 'start=2MiB, size=200MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP' 'start=202MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root'`
            : `+ write_partition_table ${d} 'label: dos' 'start=1MiB, type=83, bootable'`,
          `+ mkfs.ext4 -q -F -L root ${mode === "uefi" ? p(3) : p(1)}`,
          ...(mode === "uefi" ? [`+ mkfs.vfat -F 32 -n EFI ${p(2)}`] : []),
          `+ mount ${mode === "uefi" ? p(3) : p(1)} ${R}`,
          ...(mode === "uefi" ? [`+ mount ${p(2)} ${R}/boot/efi`] : []),
          `+ write ${W}/dnf/dnf.conf: reposdir=${W}/dnf/yum.repos.d gpgcheck=1 install_weak_deps=False`,
          `+ write ${W}/dnf/yum.repos.d/amazonlinux.repo: baseurl=${repoUrl} gpgcheck=1 gpgkey=${keyUrl}`,
          `+ write ${W}/dnf/yum.repos.d/kernel-livepatch.repo: baseurl=https://example.invalid/lp/ gpgcheck=1 gpgkey=https://example.invalid/lp/RPM-GPG-KEY ${keyUrl}`,
          `+ dnf --config=${W}/dnf/dnf.conf --installroot=${R} --releasever=2023 --setopt=reposdir=${W}/dnf/yum.repos.d --setopt=install_weak_deps=False --assumeyes install @core amazon-ssm-agent kernel dracut cloud-init grub2-tools ${grubPkgs}`,
          `+ dnf --config=${W}/dnf/dnf.conf --installroot=${R} --releasever=2023 clean all`,
          `+ write ${R}/etc/machine-id (empty), ${R}/.autorelabel when SELinux is configured`,
          `+ write ${R}/etc/fstab: UUID=<root-uuid> / ext4${mode === "uefi" ? ", UUID=<esp-uuid> /boot/efi vfat" : ""}`,
          `+ write ${R}/etc/dracut.conf.d/ami-factory.conf: add_drivers+=" nvme ena "`,
          `+ in_sandbox ${R} dracut --force --add-drivers 'nvme ena' --regenerate-all`,
          ...(mode === "uefi" ? [`+ in_sandbox --device ${d} ${R} /usr/sbin/grub2-install --target=x86_64-efi --efi-directory=/boot/efi --boot-directory=/boot --removable --no-nvram --force`] : []),
          `+ in_sandbox --device ${d} ${R} /usr/sbin/grub2-install --target=i386-pc --boot-directory=/boot ${d}`,
          `+ write ${R}/boot/grub2/grub.cfg: search --fs-uuid, console=ttyS0,115200n8, one entry per /boot kernel`,
          `+ umount -R ${R}`,
        ];
        assert.deepStrictEqual(cmds, expected);
        assert.doesNotMatch(r.stderr, /warning/);
        assert.ok(firstMiB(t.file).equals(t.head), "the dry run wrote to the target");
        assert.deepStrictEqual(leftovers(t.dev), []);
        loops.detach(t.dev);
      });
    }
  });

  describe("script recipe", function () {
    const kver = "6.1.0-99-amd64";
    // A stand-in system: a file of the user's, a "kernel" and the NVMe/ENA/virtio module files.
    const userScript = (withDrivers: boolean) => `#!/bin/bash
set -euo pipefail
[ -b "$TARGET_DEVICE" ] && mountpoint -q "$TARGET_ROOT"
mkdir -p "$TARGET_ROOT/boot" "$TARGET_ROOT/etc" "$TARGET_ROOT/lib/modules/${kver}/kernel/drivers/nvme/host"
echo "built by the user script on $TARGET_DEVICE" > "$TARGET_ROOT/etc/ami-factory-user"
echo kernel > "$TARGET_ROOT/boot/vmlinuz-${kver}"
echo initrd > "$TARGET_ROOT/boot/initrd.img-${kver}"
${withDrivers ? `touch "$TARGET_ROOT/lib/modules/${kver}/kernel/drivers/nvme/host/nvme.ko.xz"` : `rm -rf "$TARGET_ROOT/lib/modules"`}
printf '/dev/xvda1 / ext4 defaults 0 1\\nproc /proc proc defaults 0 0\\n' > "$TARGET_ROOT/etc/fstab"
echo "user script output goes to stderr"
`;

    it("runs the user's script on the mounted root, then writes fstab by UUID and GRUB with a serial console", function () {
      const t = target("script.img", 2048);
      const r = run(surrogate, ["--target", t.dev, "--recipe", "script", "--user-script-b64", b64(userScript(true)), "--root-label", "userroot"]);
      assert.strictEqual(r.status, 0, tail(r.stderr));
      const f = parseFacts(r.stdout);
      assert.strictEqual(f.recipe, "script");
      assert.strictEqual(f.bootMode, "legacy-bios");
      assert.strictEqual(f.partitionTable, "msdos");
      assert.strictEqual(f.rootLabel, "userroot");
      assert.deepStrictEqual(f.kernels, [kver]);
      assert.strictEqual(f.nvmeDriver, true);
      assert.strictEqual(f.enaDriver, false);
      assert.strictEqual(f.cloudInit, false);
      assert.ok(f.warnings.some((w) => /cloud-init is not installed/.test(w)), JSON.stringify(f.warnings));
      assert.ok(f.warnings.some((w) => /no ENA driver/.test(w)), JSON.stringify(f.warnings));
      assert.match(r.stderr, /user script output goes to stderr/);
      assert.deepStrictEqual(leftovers(t.dev), []);
      loops.detach(t.dev);

      assert.match(readFromImage(t.file, 1, "/etc/ami-factory-user") ?? "", /built by the user script on \/dev\/loop\d+/);
      const fstab = readFromImage(t.file, 1, "/etc/fstab")!;
      assert.match(fstab, new RegExp(`^UUID=${f.rootUuid}\t/\text4\tdefaults,noatime\t0 1$`, "m"));
      assert.ok(!/xvda/.test(fstab), fstab);
      assert.match(fstab, /^proc \/proc proc defaults 0 0$/m);
      const cfg = readFromImage(t.file, 1, "/boot/grub/grub.cfg")!;
      assert.match(cfg, /^serial --unit=0 --speed=115200/m);
      assert.match(cfg, /^terminal_output serial console$/m);
      assert.ok(cfg.includes(`linux /boot/vmlinuz-${kver} root=UUID=${f.rootUuid} ro console=tty0 console=ttyS0,115200n8`), cfg);
      assert.ok(cfg.includes(`initrd /boot/initrd.img-${kver}`), cfg);
      // The stand-in has no GRUB of its own: the worker's was installed.
      assert.ok(readFromImage(t.file, 1, "/boot/grub/i386-pc/normal.mod") !== null, "GRUB i386-pc modules missing");
      assert.strictEqual(must("blkid", ["-p", "-o", "value", "-s", "PTTYPE", t.file]).trim(), "dos");
    });

    it("refuses a system whose kernel has neither NVMe nor virtio-blk, and cleans up", function () {
      const t = target("script-nodrivers.img", 2048);
      const r = run(surrogate, ["--target", t.dev, "--recipe", "script", "--user-script-b64", b64(userScript(false))]);
      assert.strictEqual(r.status, 1, tail(r.stderr));
      assert.match(r.stderr, /neither an NVMe driver nor virtio-blk: an EC2 Nitro instance could not find its root volume/);
      assert.match(r.stdout, /^surrogate failed \(exit 1\)\n  step: \d+: [^\n]+\n  error: [^\n]*neither an NVMe driver nor virtio-blk/, "the failure summary, no facts line");
      assert.deepStrictEqual(leftovers(t.dev), []);
      loops.detach(t.dev);
    });

    it("fails when the user script fails, and cleans up", function () {
      const t = target("script-fails.img", 2048);
      const r = run(surrogate, ["--target", t.dev, "--recipe", "script", "--user-script-b64", b64("echo doing; exit 7\n")]);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /the user script exited 7/);
      assert.deepStrictEqual(leftovers(t.dev), []);
      loops.detach(t.dev);
    });
  });

  describe("image recipe", function () {
    let fixture: string;
    let fixtureSha: string;
    let fixtureUuid: string;

    before(function () {
      // A 96 MiB raw disk: msdos, partition 1 from 1 MiB, ext4 "imgroot" with an /etc/fstab naming a
      // Xen device and leftovers for --sanitize.
      const stage = fs.mkdtempSync(path.join(work, "stage-"));
      fs.mkdirSync(path.join(stage, "etc/ssh"), { recursive: true });
      fs.mkdirSync(path.join(stage, "boot"), { recursive: true });
      fs.writeFileSync(path.join(stage, "etc/fstab"), "/dev/xvda1 / ext4 defaults 0 1\n");
      fs.writeFileSync(path.join(stage, "etc/ssh/ssh_host_ed25519_key"), "FAKE\n");
      fs.writeFileSync(path.join(stage, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n");
      fixture = path.join(work, "fixture.raw");
      fs.writeFileSync(fixture, "");
      fs.truncateSync(fixture, 96 * 1024 * 1024);
      const sf = spawnSync("sfdisk", ["-q", fixture], { input: "label: dos\nstart=2048, type=83\n", encoding: "utf8" });
      assert.strictEqual(sf.status, 0, sf.stderr);
      must("mkfs.ext4", ["-q", "-F", "-L", "imgroot", "-E", `offset=${1024 * 1024}`, "-d", stage, fixture, `${95 * 1024}k`]);
      fixtureSha = crypto.createHash("sha256").update(fs.readFileSync(fixture)).digest("hex");
      const l = loops.attach(fixture, { readOnly: true, offset: 1024 * 1024 });
      fixtureUuid = must("blkid", ["-p", "-o", "value", "-s", "UUID", l]).trim();
      loops.detach(l);
    });

    it("refuses an image whose sha256 does not match, before writing anything", function () {
      const t = target("image-badsum.img", 512);
      const r = run(surrogate, ["--target", t.dev, "--recipe", "image", "--url", fixture, "--sha256", "0".repeat(64)]);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, new RegExp(`sha256 mismatch for ${fixture}: expected 0{64}, got ${fixtureSha}; nothing was written`));
      assert.match(r.stdout, /^surrogate failed \(exit 1\)\n  step: \d+: [^\n]+\n  error: sha256 mismatch/, "the failure summary, no facts line");
      assert.ok(firstMiB(t.file).equals(t.head), "the target's first MiB changed");
      loops.detach(t.dev);
    });

    for (const format of ["raw", "qcow2"] as const) {
      it(`writes a checked ${format} image (${format === "raw" ? "a local path" : "a file:// URL"}), grows its last partition and filesystem, fixes fstab, sanitizes`, function () {
        let src = fixture;
        let sha = fixtureSha;
        if (format === "qcow2") {
          src = path.join(work, "fixture.qcow2");
          must("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", fixture, src]);
          sha = crypto.createHash("sha256").update(fs.readFileSync(src)).digest("hex");
        }
        const t = target(`image-${format}.img`, 512);
        const url = format === "qcow2" ? `file://${src}` : src;
        const r = run(surrogate, ["--target", t.dev, "--recipe", "image", "--url", url, "--sha256", sha.toUpperCase(), "--format", format, "--sanitize"]);
        assert.strictEqual(r.status, 0, tail(r.stderr));
        const f = parseFacts(r.stdout);
        assert.strictEqual(f.recipe, "image");
        assert.strictEqual(f.partitionTable, "msdos");
        assert.strictEqual(f.fsType, "ext4");
        assert.strictEqual(f.rootUuid, fixtureUuid);
        assert.strictEqual(f.rootLabel, "imgroot");
        assert.strictEqual(f.sanitized, true);
        assert.ok(f.warnings.some((w) => /no kernel found/.test(w)), JSON.stringify(f.warnings));
        assert.deepStrictEqual(leftovers(t.dev), []);
        loops.detach(t.dev);
        // Partition 1 now ends at the end of the 512 MiB target, and the filesystem fills it.
        const pt = JSON.parse(must("sfdisk", ["-J", t.file])) as { partitiontable: { partitions: Array<{ start: number; size: number }> } };
        const p1 = pt.partitiontable.partitions[0];
        assert.strictEqual(p1.start, 2048);
        assert.strictEqual((p1.start + p1.size) * 512, 512 * 1024 * 1024);
        const l = loops.attach(t.file, { readOnly: true, offset: 1024 * 1024 });
        const dump = must("dumpe2fs", ["-h", l]);
        loops.detach(l);
        const blocks = Number(/^Block count:\s+(\d+)/m.exec(dump)![1]);
        const bsize = Number(/^Block size:\s+(\d+)/m.exec(dump)![1]);
        assert.ok(blocks * bsize > 500 * 1024 * 1024, `filesystem not grown: ${blocks} x ${bsize}`);
        assert.match(readFromImage(t.file, 1, "/etc/fstab")!, new RegExp(`^UUID=${fixtureUuid} / ext4 defaults 0 1$`, "m"));
        assert.strictEqual(readFromImage(t.file, 1, "/etc/ssh/ssh_host_ed25519_key"), null, "host key not sanitized");
        assert.strictEqual(readFromImage(t.file, 1, "/etc/machine-id"), "");
      });
    }

    it("refuses a qcow2 image declared raw, before writing", function () {
      const src = path.join(work, "fixture.qcow2");
      if (!fs.existsSync(src)) must("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", fixture, src]);
      const sha = crypto.createHash("sha256").update(fs.readFileSync(src)).digest("hex");
      const t = target("image-wrongformat.img", 512);
      const r = run(surrogate, ["--target", t.dev, "--recipe", "image", "--url", src, "--sha256", sha]);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /is a qcow2 image: pass --format qcow2; nothing was written/);
      assert.ok(firstMiB(t.file).equals(t.head));
      loops.detach(t.dev);
    });
  });

  describe("debian recipe: bookworm built by debootstrap boots in qemu", function () {
    for (const mode of ["legacy-bios", "uefi"] as const) {
      describe(`--boot-mode ${mode}`, function () {
        const marker = `m${crypto.randomBytes(8).toString("hex")}`;
        let disk: string;
        let facts: Facts;

        before(function () {
          const t = target(`debian-${mode}.img`, 3072);
          disk = t.file;
          // legacy-bios runs the bundle (what SSM sends) with no lib/ beside it, on a worker without
          // debootstrap, dpkg and apt-get (Amazon Linux 2023); uefi the tree's script, the worker's own.
          let script = surrogate;
          let env: NodeJS.ProcessEnv = {};
          let prefix = ["bash"];
          if (mode === "legacy-bios") {
            script = path.join(work, "surrogate.bundled.sh");
            fs.writeFileSync(script, must(bundler, [surrogate]), { mode: 0o755 });
            env = { SURROGATE_DIR: "/nonexistent" };
            prefix = [hideCommands, "debootstrap,dpkg,dpkg-deb,apt-get,apt", "--", "bash"];
          }
          const t0 = Date.now();
          const r = run(prefix[0], [...prefix.slice(1), script, "--target", t.dev, "--recipe", "debian", "--boot-mode", mode, "--suite", "bookworm", "--mirror", process.env.AMI_FACTORY_DEBIAN_MIRROR ?? "http://deb.debian.org/debian", "--debootstrap-tarball", debsTarball, "--user-script-b64", b64(markerScript(marker)), "--sanitize"], { env });
          timings[`debian ${mode}: build`] = (Date.now() - t0) / 1000;
          assert.strictEqual(r.status, 0, `surrogate.sh failed:\n${tail(r.stderr, 60)}`);
          facts = parseFacts(r.stdout);
          assert.match(r.stderr, /debootstrap done/);
          if (mode === "legacy-bios") {
            assert.match(r.stderr, /debootstrap: not on the worker and no package for it \(none\): fetching it from/);
            assert.match(r.stderr, /debootstrap: debootstrap \S+ fetched from \S+, keyring debian-archive-keyring \S+/);
          } else {
            assert.match(r.stderr, /debootstrap: the worker's \/usr\/sbin\/debootstrap and keyring/);
          }
          assert.deepStrictEqual(leftovers(t.dev), [], "partitions or mounts left behind");
          loops.detach(t.dev);
        });

        it("reports the layout, kernel, drivers in the initramfs and the missing cloud-init", function () {
          assert.strictEqual(facts.recipe, "debian");
          assert.strictEqual(facts.bootMode, mode);
          assert.strictEqual(facts.partitionTable, mode === "uefi" ? "gpt" : "msdos");
          assert.strictEqual(facts.fsType, "ext4");
          assert.strictEqual(facts.rootLabel, "root");
          assert.strictEqual(facts.kernels.length, 1);
          assert.match(facts.defaultKernel, /^6\.1\.0-\d+-amd64$/);
          assert.deepStrictEqual([facts.enaDriver, facts.nvmeDriver, facts.enaInInitramfs, facts.nvmeInInitramfs], [true, true, true, true]);
          assert.strictEqual(facts.cloudInit, false);
          assert.ok(facts.warnings.some((w) => /cloud-init is not installed/.test(w)), JSON.stringify(facts.warnings));
          assert.strictEqual(facts.sanitized, true);
        });

        it(`boots with ${mode === "uefi" ? "OVMF (UEFI, removable-media path, no NVRAM entry)" : "SeaBIOS"} from an NVMe disk to the marker`, async function () {
          const r = await bootImage({ image: disk, marker: `AMI-FACTORY-BOOTED ${marker}`, timeoutMs: 300_000, serialLog: path.join(work, `debian-${mode}.serial.log`), firmware: mode === "uefi" ? "ovmf" : "seabios" });
          timings[`debian ${mode}: boot ${mode === "uefi" ? "ovmf" : "seabios"} (${r.accel})`] = r.seconds;
          assert.strictEqual(r.outcome, "marker", `no boot marker (${r.outcome} after ${r.seconds}s). Serial tail:\n${tail(r.serial)}`);
          assert.match(r.serial, /console=ttyS0,115200n8/);
          assert.match(r.serial, new RegExp(`ami-factory: root /dev/nvme0n1p${mode === "uefi" ? 3 : 1}`));
          assert.match(r.serial, new RegExp(`ami-factory: firmware ${mode === "uefi" ? "uefi" : "bios"}`));
        });

        if (mode === "uefi") {
          it("boots the same GPT disk with SeaBIOS too (hybrid: BIOS boot partition)", async function () {
            const r = await bootImage({ image: disk, marker: `AMI-FACTORY-BOOTED ${marker}`, timeoutMs: 300_000, serialLog: path.join(work, "debian-uefi.seabios.serial.log") });
            timings["debian uefi: boot seabios"] = r.seconds;
            assert.strictEqual(r.outcome, "marker", `no boot marker (${r.outcome} after ${r.seconds}s). Serial tail:\n${tail(r.serial)}`);
            assert.match(r.serial, /ami-factory: firmware bios/);
          });

          it("puts GRUB at EFI/BOOT/BOOTX64.EFI on a vfat ESP and names it in fstab", function () {
            const loops2 = new Loops();
            try {
              const esp = loops2.attach(disk, { readOnly: true, offset: partitionStart(disk, 2) });
              assert.strictEqual(must("blkid", ["-p", "-o", "value", "-s", "TYPE", esp]).trim(), "vfat");
              const espUuid = must("blkid", ["-p", "-o", "value", "-s", "UUID", esp]).trim();
              const ls = run("sh", ["-c", `mdir -i ${esp} ::/EFI/BOOT 2>&1 || (m=$(mktemp -d) && mount -o ro ${esp} $m && ls $m/EFI/BOOT; umount $m; rmdir $m)`]);
              assert.match(ls.stdout, /BOOTX64/i, ls.stdout);
              loops2.detachAll();
              const fstab = readFromImage(disk, 3, "/etc/fstab")!;
              assert.match(fstab, new RegExp(`^UUID=${espUuid}\t/boot/efi\tvfat\t`, "m"));
              assert.match(fstab, new RegExp(`^UUID=${facts.rootUuid}\t/\text4\t`, "m"));
            } finally {
              loops2.detachAll();
            }
          });
        }
      });
    }
  });
});
