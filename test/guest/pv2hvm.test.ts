// The guest side of ConvertedHvmAmi: scripts/guest/pv2hvm.sh and its libraries.
//
// "pure parts" need no root: the menu.lst -> grub.cfg conversion, volume id -> device resolution
// against a fake sysfs / by-id tree, fstab, driver report and sanitize on plain folders.
// "boot test" needs root, loop devices, debootstrap and qemu (scripts/install-guest-deps.sh): it
// converts real PV-style disk images and boots the result in qemu with SeaBIOS. Without root it
// fails (it never skips).
import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { bootImage, BootResult, detectAccel } from "../support/qemu";
import { leftovers, Loops, must, requireRootAndTools as requireTools, Run, run, tail } from "../support/host";
import { checkFacts, declaredFactsSchema } from "../../providers/worker/facts";
import { bootSignalRegex, classifyConsole } from "../../providers/worker/console";

const repo = path.resolve(__dirname, "../..");
const guest = path.join(repo, "scripts/guest");
const lib = path.join(guest, "lib");
const pv2hvm = path.join(guest, "pv2hvm.sh");
const pvImage = path.join(repo, "test/support/pv-image.sh");
// udevadm as on a worker running systemd-udevd (test/support/udev-lock/udevadm): a settle while a
// disk the script holds locked is recorded, as it would hang there (3 minutes per udev event).
const udevLockShim = path.join(repo, "test/support/udev-lock");
function udevLockEnv(log: string, ...disks: string[]): NodeJS.ProcessEnv {
  return { PATH: `${udevLockShim}:${process.env.PATH}`, UDEV_LOCK_DISKS: disks.join(":"), UDEV_LOCK_LOG: log };
}
function settlesWhileLocked(log: string): string[] {
  return fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean) : [];
}

function tmpdir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function write(p: string, text: string, mode?: number): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text, mode === undefined ? undefined : { mode });
}

// ------------------------------------------------------------------------------------------------
// Fixtures: PV-GRUB menus and what their grub.cfg must (not) contain.
// ------------------------------------------------------------------------------------------------

const UUID = "2166919c-d40e-4ab9-9838-e551b4ca33d9";

/** The Amazon Linux 2014.09 menu.lst from the old pv2hvm blog post. */
const AMAZON_LINUX_MENU = `# created by imagebuilder
default=0
timeout=1
hiddenmenu

title Amazon Linux 2014.09 (3.14.23-22.44.amzn1.x86_64)
root (hd0)
kernel /boot/vmlinuz-3.14.23-22.44.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us
initrd /boot/initramfs-3.14.23-22.44.amzn1.x86_64.img

title Amazon Linux 2014.09 (3.14.20-20.44.amzn1.x86_64)
root (hd0)
kernel /boot/vmlinuz-3.14.20-20.44.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us
initrd /boot/initramfs-3.14.20-20.44.amzn1.x86_64.img
`;

/** The same menu rewritten for the HVM disk: only the device and the console changed. */
const AMAZON_LINUX_REWRITTEN = `# created by imagebuilder
default=0
timeout=1
hiddenmenu

title Amazon Linux 2014.09 (3.14.23-22.44.amzn1.x86_64)
root (hd0,0)
kernel /boot/vmlinuz-3.14.23-22.44.amzn1.x86_64 root=LABEL=/ console=ttyS0,115200n8 LANG=en_US.UTF-8 KEYTABLE=us
initrd /boot/initramfs-3.14.23-22.44.amzn1.x86_64.img

title Amazon Linux 2014.09 (3.14.20-20.44.amzn1.x86_64)
root (hd0,0)
kernel /boot/vmlinuz-3.14.20-20.44.amzn1.x86_64 root=LABEL=/ console=ttyS0,115200n8 LANG=en_US.UTF-8 KEYTABLE=us
initrd /boot/initramfs-3.14.20-20.44.amzn1.x86_64.img
`;

interface MenuCase {
  name: string;
  menu: string;
  /** Lines (trimmed) that the rewritten menu must contain. */
  has: string[];
  /** Substrings it must not contain. */
  hasNot: string[];
}

const MENU_CASES: MenuCase[] = [
  {
    name: "a partitioned Xen image: (hd0,0), root=/dev/xvda1, xvc0 and xencons",
    menu: `default 1\ntimeout 5\n\ntitle old\nroot (hd0,0)\nkernel /boot/vmlinuz-2.6.32 root=/dev/xvda1 ro console=xvc0 xencons=xvc0\ninitrd /boot/initrd-2.6.32.img\n\ntitle new\nroot (hd0,0)\nkernel /boot/vmlinuz-3.2.0 root=/dev/sda1 console=hvc0 ro\ninitrd /boot/initrd.img-3.2.0\n`,
    has: ["default 1", "timeout 5", "root (hd0,0)", `kernel /boot/vmlinuz-2.6.32 root=UUID=${UUID} ro console=ttyS0,115200n8`, `kernel /boot/vmlinuz-3.2.0 root=UUID=${UUID} console=ttyS0,115200n8 ro`, "initrd /boot/initrd-2.6.32.img", "title old", "title new"],
    hasNot: ["xvc0", "xencons", "/dev/xvda1", "/dev/sda1"],
  },
  {
    name: "RHEL 6 naming (/dev/xvde1), a device prefix on the kernel and initrd paths, indented lines",
    menu: `default=0\ntimeout=3\ntitle CentOS (2.6.32-754.el6.x86_64)\n\troot (hd0)\n\tkernel (hd0)/boot/vmlinuz-2.6.32-754.el6.x86_64 ro root=/dev/xvde1 rd_NO_LUKS console=hvc0\n\tinitrd (hd0)/boot/initramfs-2.6.32-754.el6.x86_64.img\n`,
    has: [`kernel (hd0,0)/boot/vmlinuz-2.6.32-754.el6.x86_64 ro root=UUID=${UUID} rd_NO_LUKS console=ttyS0,115200n8`, "initrd (hd0,0)/boot/initramfs-2.6.32-754.el6.x86_64.img", "root (hd0,0)"],
    hasNot: ["(hd0)", "xvde1", "hvc0"],
  },
  {
    name: "no console= at all and a root=UUID kept",
    menu: `default=0\ntimeout=3\ntitle Ubuntu\nroot (hd0)\nkernel /boot/vmlinuz-4.4.0 root=UUID=1111-2222 ro quiet\ninitrd /boot/initrd.img-4.4.0\n`,
    has: ["kernel /boot/vmlinuz-4.4.0 root=UUID=1111-2222 ro quiet console=ttyS0,115200n8"],
    hasNot: [`root=UUID=${UUID}`],
  },
  {
    name: "an existing ttyS console is kept and hvc0 dropped; default saved and chainloader entries untouched",
    menu: `default saved\ntimeout 10\ntitle chain\nrootnoverify (hd0,1)\nchainloader +1\ntitle it's CentOS\nroot (hd0)\nkernel /boot/vmlinuz-2.6.18 root=LABEL=/ console=ttyS0 console=hvc0\n`,
    has: ["default saved", "rootnoverify (hd0,0)", "chainloader +1", "kernel /boot/vmlinuz-2.6.18 root=LABEL=/ console=ttyS0", "title it's CentOS"],
    hasNot: ["hvc0", "115200n8"],
  },
];

function rewriteMenu(menu: string, uuid = UUID): Run {
  const dir = tmpdir("grubcfg-");
  try {
    write(path.join(dir, "menu.lst"), menu);
    return run(path.join(lib, "grubcfg.sh"), ["rewrite", path.join(dir, "menu.lst"), "--uuid", uuid]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function linesOf(text: string): string[] {
  return text.split("\n").map((l) => l.trim());
}

// ------------------------------------------------------------------------------------------------
// Fake device trees for volume id resolution.
// ------------------------------------------------------------------------------------------------

interface FakeTree {
  root: string;
  env: NodeJS.ProcessEnv;
}

/** A /dev, /dev/disk/by-id and /sys as a Nitro instance with two EBS volumes has them. */
function fakeNitroTree(opts: { byId: boolean }): FakeTree {
  const root = tmpdir("devtree-");
  const dev = path.join(root, "dev");
  const byid = path.join(dev, "disk/by-id");
  const sys = path.join(root, "sys");
  const disks: Array<[string, string, string]> = [
    ["nvme0n1", "vol0aaaaaaaaaaaaaaaa", "Amazon Elastic Block Store"],
    ["nvme1n1", "vol0123456789abcdef0", "Amazon Elastic Block Store"],
    ["nvme2n1", "AWS1234567890ABCDEF", "Amazon EC2 NVMe Instance Storage"],
  ];
  fs.mkdirSync(byid, { recursive: true });
  for (const [name, serial, model] of disks) {
    write(path.join(dev, name), "");
    write(path.join(dev, `${name}p1`), "");
    write(path.join(sys, "block", name, "device/serial"), `${serial}        \n`);
    write(path.join(sys, "block", name, "device/model"), `${model}                    \n`);
    if (opts.byId && model.startsWith("Amazon Elastic")) {
      fs.symlinkSync(`../../${name}`, path.join(byid, `nvme-Amazon_Elastic_Block_Store_${serial}`));
      fs.symlinkSync(`../../${name}p1`, path.join(byid, `nvme-Amazon_Elastic_Block_Store_${serial}-part1`));
    }
  }
  return {
    root,
    env: { GUEST_BYID_DIR: byid, GUEST_SYSFS_ROOT: sys, GUEST_DEV_DIR: dev, GUEST_DEVICE_WAIT_SECONDS: "0" },
  };
}

function resolve(tree: FakeTree, spec: string): Run {
  return run(path.join(lib, "devices.sh"), ["resolve", spec], { env: tree.env });
}

// ------------------------------------------------------------------------------------------------

describe("pv2hvm guest script: pure parts", function () {
  describe("the image's own menu, rewritten for HVM", function () {
    it("rewrites the Amazon Linux PV-GRUB menu into exactly the expected menu", function () {
      const r = rewriteMenu(AMAZON_LINUX_MENU);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stdout, AMAZON_LINUX_REWRITTEN);
    });

    for (const c of MENU_CASES) {
      it(`rewrites ${c.name}`, function () {
        const r = rewriteMenu(c.menu);
        assert.strictEqual(r.status, 0, r.stderr);
        const lines = linesOf(r.stdout);
        for (const h of c.has) assert.ok(lines.includes(h), `missing line "${h}" in:\n${r.stdout}`);
        for (const h of c.hasNot) assert.ok(!r.stdout.includes(h), `unexpected "${h}" in:\n${r.stdout}`);
        assert.strictEqual(lines.length, linesOf(c.menu).length, "every line kept, none added");
      });
    }

    it("changes nothing in a menu it rewrote (an entry grubby copies later is already in HVM form)", function () {
      for (const c of [AMAZON_LINUX_MENU, ...MENU_CASES.map((m) => m.menu)]) {
        const once = rewriteMenu(c).stdout;
        assert.strictEqual(rewriteMenu(once).stdout, once);
      }
    });

    it("refuses a UUID that is not one", function () {
      assert.strictEqual(rewriteMenu(AMAZON_LINUX_MENU, "x'; rm -rf /").status, 2);
    });

    it("applies to a boot folder: the menu kept as .pv, rewritten in place, grub.cfg reading it; grub.conf (RHEL) preferred over its menu.lst link", function () {
      const dir = tmpdir("grubdir-");
      try {
        const grub = path.join(dir, "boot/grub");
        write(path.join(grub, "grub.conf"), MENU_CASES[1].menu);
        fs.symlinkSync("./grub.conf", path.join(grub, "menu.lst"));
        const out = must(path.join(lib, "grubcfg.sh"), ["apply", grub, "--uuid", UUID]);
        assert.strictEqual(out, `grub.conf ${path.join(grub, "grub.conf")}\n`);
        assert.strictEqual(fs.readFileSync(path.join(grub, "grub.conf.pv"), "utf8"), MENU_CASES[1].menu);
        assert.strictEqual(fs.readFileSync(path.join(grub, "grub.conf"), "utf8"), rewriteMenu(MENU_CASES[1].menu).stdout);
        assert.strictEqual(fs.readlinkSync(path.join(grub, "menu.lst")), "./grub.conf");
        const cfg = fs.readFileSync(path.join(grub, "grub.cfg"), "utf8");
        assert.deepStrictEqual(cfg.split("\n").filter((l) => l && !l.startsWith("#")), [
          "serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1",
          "terminal_input serial console",
          "terminal_output serial console",
          "insmod part_msdos",
          "insmod ext2",
          "insmod legacycfg",
          "legacy_configfile ${prefix}/grub.conf",
        ]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("makes a menu from /boot/vmlinuz-* when an image has none, with paths for a separate /boot too", function () {
      const dir = tmpdir("grubcfg-");
      try {
        for (const f of ["vmlinuz-5.10.0-9-amd64", "initrd.img-5.10.0-9-amd64", "vmlinuz-5.10.0-10-amd64"]) write(path.join(dir, "boot", f), "");
        const out = must(path.join(lib, "grubcfg.sh"), ["apply", path.join(dir, "boot/grub"), "--uuid", UUID]);
        assert.match(out, /^synthesized /);
        const menu = fs.readFileSync(path.join(dir, "boot/grub/menu.lst"), "utf8");
        assert.deepStrictEqual(menu.split("\n").filter((l) => l.startsWith("kernel ")), [
          `kernel /boot/vmlinuz-5.10.0-10-amd64 root=UUID=${UUID} ro console=ttyS0,115200n8`,
          `kernel /boot/vmlinuz-5.10.0-9-amd64 root=UUID=${UUID} ro console=ttyS0,115200n8`,
        ]);
        assert.ok(menu.includes("initrd /boot/initrd.img-5.10.0-9-amd64"));
        assert.ok(!fs.existsSync(path.join(dir, "boot/grub/menu.lst.pv")), "no .pv for a menu the image never had");
        const separate = must(path.join(lib, "grubcfg.sh"), ["synthesize", dir, ""]);
        assert.ok(separate.includes("kernel /vmlinuz-5.10.0-10-amd64 "), separate);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("lists the kernels and the default kernel of a menu", function () {
      const dir = tmpdir("grubcfg-");
      try {
        write(path.join(dir, "menu.lst"), MENU_CASES[0].menu);
        const m = path.join(dir, "menu.lst");
        assert.strictEqual(must(path.join(lib, "grubcfg.sh"), ["kernels", m]), "/boot/vmlinuz-2.6.32\n/boot/vmlinuz-3.2.0\n");
        assert.strictEqual(must(path.join(lib, "grubcfg.sh"), ["default-kernel", m]), "/boot/vmlinuz-3.2.0\n");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("the facts channel", function () {
    it("prints only the script's own facts line: a child process cannot write to stdout or forge the facts", function () {
      const dir = tmpdir("facts-");
      try {
        const script = path.join(dir, "guest.sh");
        write(script, `#!/usr/bin/env bash\nset -euo pipefail\n. ${JSON.stringify(path.join(lib, "common.sh"))}\nGUEST_LOG_PREFIX=guest\nguest_facts_channel "$@"\n` +
          `sh -c 'echo "{\\"forged\\":1}"; echo "{\\"forged\\":3}" >&3; printenv GUEST_FACTS_FILE || echo no-file' 2>&1 || true\n` +
          `guest_emit_facts '{"script":"guest","n":'"$1"'}'\n`, 0o755);
        const r = run("bash", [script, "7"]);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stdout, '{"script":"guest","n":7}\n');
        assert.match(r.stderr, /\{"forged":1\}/, "the child's stdout went to stderr");
        assert.match(r.stderr, /no-file/, "the child does not know where the facts go");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("prints no facts and keeps the exit status when the script fails", function () {
      const dir = tmpdir("facts-");
      try {
        const script = path.join(dir, "guest.sh");
        write(script, `#!/usr/bin/env bash\nset -euo pipefail\n. ${JSON.stringify(path.join(lib, "common.sh"))}\nguest_facts_channel "$@"\nguest_emit_facts '{}'\nexit 3\n`, 0o755);
        const r = run("bash", [script]);
        assert.strictEqual(r.status, 3);
        assert.strictEqual(r.stdout, "");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("prints a short failure summary on stdout when the script fails: the step, die's message or the failed command, the last stderr lines; never a JSON line", function () {
      const dir = tmpdir("facts-");
      try {
        const script = path.join(dir, "guest.sh");
        write(script, `#!/usr/bin/env bash\nset -euo pipefail\nGUEST_LOG_PREFIX=guest\n. ${JSON.stringify(path.join(lib, "common.sh"))}\nguest_facts_channel "$@"\ninstall_cleanup_traps\n` +
          `guest_step "2/5: copying"\nfor i in $(seq 40); do echo "progress $i" >&2; done\n` +
          `[ "$1" = die ] && { sh -c 'echo "tool: error: disk full" >&2; exit 4' || die "the tool failed"; }\n` +
          `check() { sh -c 'echo "check: bad bitmap" >&2; exit 4'; }\ncheck\nguest_emit_facts '{}'\n`, 0o755);
        const died = run("bash", [script, "die"]);
        assert.strictEqual(died.status, 1);
        assert.strictEqual(died.stdout, "guest failed (exit 1)\n  step: 2/5: copying\n  error: the tool failed\n  stderr: progress 38\n  stderr: progress 39\n  stderr: progress 40\n  stderr: tool: error: disk full\n  stderr: guest: error: the tool failed\n");
        assert.match(died.stderr, /progress 1\n[\s\S]*tool: error: disk full\nguest: error: the tool failed\n$/, "stderr carries everything, as before");
        const failed = run("bash", [script, "set-e"]);
        assert.strictEqual(failed.status, 4);
        const lines = failed.stdout.trimEnd().split("\n");
        assert.deepStrictEqual(lines.slice(0, 3), ["guest failed (exit 4)", "  step: 2/5: copying", "  command: sh -c 'echo \"check: bad bitmap\" >&2; exit 4' (exit 4)"]);
        assert.strictEqual(lines.at(-1), "  stderr: check: bad bitmap");
        for (const l of lines) assert.throws(() => JSON.parse(l), "no line of the summary is JSON");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("prints the refusal line and exits 3 when the script declines the job (guest_refuse), never a facts line", function () {
      const dir = tmpdir("facts-");
      try {
        const script = path.join(dir, "guest.sh");
        write(script, `#!/usr/bin/env bash\nset -euo pipefail\n. ${JSON.stringify(path.join(lib, "common.sh"))}\nguest_facts_channel "$@"\necho '{"forged":1}'\n` +
          `[ "$1" = no ] || guest_refuse '{"refused":"in-place"}'\nguest_emit_facts '{"done":1}'\n`, 0o755);
        const refused = run("bash", [script, "yes"]);
        assert.strictEqual(refused.status, 3, refused.stderr);
        assert.strictEqual(refused.stdout, '{"refused":"in-place"}\n');
        const done = run("bash", [script, "no"]);
        assert.strictEqual(done.status, 0, done.stderr);
        assert.strictEqual(done.stdout, '{"done":1}\n');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("EBS volume id -> device", function () {
    const trees: FakeTree[] = [];
    after(() => trees.forEach((t) => fs.rmSync(t.root, { recursive: true, force: true })));
    const tree = (byId: boolean) => {
      const t = fakeNitroTree({ byId });
      trees.push(t);
      return t;
    };

    it("finds a Nitro volume through udev's by-id link, with or without the dash", function () {
      const t = tree(true);
      for (const spec of ["vol-0123456789abcdef0", "vol0123456789abcdef0", "VOL-0123456789ABCDEF0"]) {
        const r = resolve(t, spec);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stdout.trim(), path.join(t.root, "dev/nvme1n1"));
      }
    });

    it("finds a Nitro volume from the NVMe controller serial in sysfs when there is no by-id link", function () {
      const t = tree(false);
      const r = resolve(t, "vol-0aaaaaaaaaaaaaaaa");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stdout.trim(), path.join(t.root, "dev/nvme0n1"));
    });

    it("fails for a volume that is not attached and says what to pass on Xen", function () {
      const r = resolve(tree(true), "vol-0fffffffffffffff0");
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /no NVMe device has serial vol0fffffffffffffff0/);
      assert.match(r.stderr, /Xen/);
    });

    it("never takes an instance-store NVMe disk for an EBS volume", function () {
      const r = resolve(tree(false), "vol-AWS1234567890ABCDEF".toLowerCase());
      assert.notStrictEqual(r.status, 0);
    });

    it("rejects what is neither a path nor a volume id", function () {
      for (const spec of ["nvme1n1", "vol-xyz", "snap-0123456789abcdef0", ""]) {
        assert.strictEqual(resolve(tree(true), spec).status, 2, spec);
      }
    });

    it("takes a device path as it is, and /dev/sdX as /dev/xvdX when only the Xen name exists", function () {
      const t = tree(true);
      write(path.join(t.root, "dev/xvdf"), "");
      assert.strictEqual(resolve(t, path.join(t.root, "dev/nvme2n1")).stdout.trim(), path.join(t.root, "dev/nvme2n1"));
      assert.strictEqual(resolve(t, path.join(t.root, "dev/sdf")).stdout.trim(), path.join(t.root, "dev/xvdf"));
      assert.strictEqual(resolve(t, path.join(t.root, "dev/sdg")).status, 1);
    });
  });

  describe("inside the copied root", function () {
    let root: string;
    beforeEach(() => (root = tmpdir("root-")));
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
    const image = (...args: string[]) => run(path.join(lib, "image.sh"), args);

    it("rewrites the root's and /boot's Xen devices in fstab to UUID=, comments out Xen swap, marks other Xen devices nofail", function () {
      write(
        path.join(root, "etc/fstab"),
        "# static\n/dev/xvde1\t/\text4\tdefaults,noatime\t0 1\n/dev/xvda1 /boot ext4 defaults 1 2\n/dev/sdb   /media/ephemeral0  auto  defaults,comment=cloudconfig  0 2\n" +
          "LABEL=data /data ext4 defaults,nofail 0 2\n/dev/xvde3 none swap sw 0 0\nproc /proc proc defaults 0 0\n",
      );
      const r = image("fix-fstab", root, UUID, "1234-ABCD");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(
        fs.readFileSync(path.join(root, "etc/fstab"), "utf8"),
        `# static\nUUID=${UUID}\t/\text4\tdefaults,noatime\t0 1\nUUID=1234-ABCD /boot ext4 defaults 1 2\n/dev/sdb   /media/ephemeral0  auto  defaults,comment=cloudconfig,nofail  0 2\n` +
          "LABEL=data /data ext4 defaults,nofail 0 2\n# pv2hvm: a Xen device that HVM instances do not have: /dev/xvde3 none swap sw 0 0\nproc /proc proc defaults 0 0\n",
      );
      assert.match(r.stderr, /swap on \/dev\/xvde3: commented out/);
    });

    it("leaves an fstab that names the root by LABEL untouched", function () {
      const text = "LABEL=/ / ext4 defaults 1 1\n";
      write(path.join(root, "etc/fstab"), text);
      assert.strictEqual(image("fix-fstab", root, UUID).status, 0);
      assert.strictEqual(fs.readFileSync(path.join(root, "etc/fstab"), "utf8"), text);
    });

    it("reports ENA and NVMe module files and whether the initramfs carries them", function () {
      const k = "6.1.0-18-amd64";
      write(path.join(root, `lib/modules/${k}/kernel/drivers/net/ethernet/amazon/ena/ena.ko.xz`), "");
      write(path.join(root, `lib/modules/${k}/kernel/drivers/nvme/host/nvme.ko.xz`), "");
      // An initramfs (gzip'ed newc cpio) with nvme but without ena.
      const stage = path.join(root, "stage");
      write(path.join(stage, `usr/lib/modules/${k}/kernel/drivers/nvme/host/nvme.ko`), "x");
      const list = `usr/lib/modules/${k}/kernel/drivers/nvme/host/nvme.ko\n`;
      const cpio = spawnSync("cpio", ["-o", "-H", "newc", "--quiet"], { cwd: stage, input: list });
      assert.strictEqual(cpio.status, 0, "cpio missing? run scripts/install-guest-deps.sh");
      fs.mkdirSync(path.join(root, "boot"), { recursive: true });
      fs.writeFileSync(path.join(root, `boot/initrd.img-${k}`), zlib.gzipSync(cpio.stdout));
      const r = image("drivers", root, k, path.join(root, `boot/initrd.img-${k}`));
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stdout, "1 1 0 1 0\n");
    });

    it("reports built-in drivers (modules.builtin or CONFIG_...=y) as present at boot", function () {
      const k = "4.14.0-amzn";
      write(path.join(root, `lib/modules/${k}/modules.builtin`), "kernel/drivers/nvme/host/nvme.ko\n");
      write(path.join(root, `boot/config-${k}`), "CONFIG_ENA_ETHERNET=y\nCONFIG_BLK_DEV_NVME=m\nCONFIG_IXGBEVF=y\n");
      assert.strictEqual(image("drivers", root, k).stdout, "1 1 1 1 1\n");
    });

    it("reports no drivers for a Xen-era kernel", function () {
      const k = "3.14.23-22.44.amzn1.x86_64";
      write(path.join(root, `lib/modules/${k}/kernel/drivers/block/xen-blkfront.ko`), "");
      write(path.join(root, `boot/config-${k}`), "CONFIG_XEN_BLKDEV_FRONTEND=y\n");
      assert.strictEqual(image("drivers", root, k).stdout, "0 0 0 0 0\n");
    });

    it("sanitizes host keys, histories, cloud-init state, machine-id and OpsWorks remnants, and nothing else", function () {
      const gone = [
        "etc/ssh/ssh_host_rsa_key", "etc/ssh/ssh_host_rsa_key.pub", "etc/ssh/ssh_host_ed25519_key",
        "root/.bash_history", "home/ec2-user/.bash_history", "home/ec2-user/.zsh_history",
        "var/lib/cloud/instances/i-123/obj.pkl", "var/lib/cloud/sem/config_once.once",
        "opt/aws/opsworks/current/VERSION", "var/lib/aws/opsworks/cache", "etc/aws/opsworks/instance-agent.yml",
        "var/log/aws/opsworks/opsworks-agent.log", "etc/init.d/opsworks-agent", "etc/rc3.d/S99opsworks-agent",
        "etc/systemd/system/multi-user.target.wants/opsworks-agent.service",
      ];
      const kept = ["etc/ssh/sshd_config", "home/ec2-user/.bashrc", "var/lib/cloud/scripts/per-boot/x.sh", "etc/init.d/ssh", "opt/aws/bin/ec2-metadata"];
      for (const f of [...gone, ...kept]) write(path.join(root, f), "x\n");
      fs.symlinkSync("/var/lib/cloud/instances/i-123", path.join(root, "var/lib/cloud/instance"));
      write(path.join(root, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n");
      const r = image("sanitize", root);
      assert.strictEqual(r.status, 0, r.stderr);
      for (const f of [...gone, "var/lib/cloud/instance", "var/lib/cloud/instances", "opt/aws/opsworks"]) {
        assert.ok(!fs.existsSync(path.join(root, f)) && !isLink(path.join(root, f)), `${f} still there`);
      }
      for (const f of kept) assert.ok(fs.existsSync(path.join(root, f)), `${f} was removed`);
      assert.strictEqual(fs.readFileSync(path.join(root, "etc/machine-id"), "utf8"), "");
    });
  });

  describe("command line", function () {
    for (const [args, why] of [
      [["--target", "/dev/null"], /--source DEV is required/],
      [["--source", "/dev/null"], /--target DEV is required/],
      [["--source", "/dev/a", "--target", "/dev/b", "--bogus"], /unknown argument '--bogus'/],
      [["--source"], /--source needs a value/],
      [["--in-place", "/dev/a", "--source", "/dev/b"], /give either --in-place or --source and --target/],
      [["--in-place"], /--in-place needs a value/],
    ] as Array<[string[], RegExp]>) {
      it(`exits 2 for ${JSON.stringify(args)}`, function () {
        const r = run(pv2hvm, args);
        assert.strictEqual(r.status, 2);
        assert.match(r.stderr, why);
        assert.strictEqual(r.stdout, "");
      });
    }

    it("bundles into one self-contained script that needs no lib/ folder", function () {
      const a = must(path.join(lib, "bundle.sh"), [pv2hvm]);
      const b = must(path.join(lib, "bundle.sh"), [pv2hvm]);
      assert.strictEqual(a, b, "bundling is not deterministic");
      assert.ok(!/^\. .*# @bundle/m.test(a), "a sourced line was left in the bundle");
      const dir = tmpdir("bundle-");
      try {
        write(path.join(dir, "pv2hvm.sh"), a, 0o755);
        const r = run("bash", [path.join(dir, "pv2hvm.sh"), "--target", "/dev/null"], { env: { PV2HVM_LIB: "/nonexistent" } });
        assert.strictEqual(r.status, 2);
        assert.match(r.stderr, /--source DEV is required/);
        // The library functions made it in.
        assert.ok(a.includes("pv_boot_config()") && a.includes("initramfs_drivers()") && a.includes("resolve_device()") && a.includes("copy_filesystem()") && a.includes("ensure_tools()"));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------
// Boot test: real loop devices, real GRUB, real qemu.
// ------------------------------------------------------------------------------------------------

type Layout = "flat" | "msdos" | "bootpart" | "rhel6";

interface ImageFacts {
  layout: Layout;
  image: string;
  uuid: string;
  bootUuid: string;
  label: string;
  kernel: string;
  sizeMiB: number;
}

interface Facts {
  script: string;
  schemaVersion: number;
  partitioned: boolean;
  layout: string;
  fsType: string;
  kernels: string[];
  defaultKernel: string;
  bootMenu: string;
  enaDriver: boolean;
  nvmeDriver: boolean;
  enaInInitramfs: boolean;
  nvmeInInitramfs: boolean;
  ixgbevfDriver: boolean;
  initramfsUpdatedWith: string;
  nitroReady: boolean;
  fstabRemoved: string[];
  fstabNofail: string[];
  copiedBytes: number;
  seconds: number;
  sanitized: boolean;
  rootUuid: string;
  rootLabel: string;
  copyMethod: string;
  method: string;
  bytesWritten: number;
  inPlaceLayout: string;
  grubInstallGuard: string;
}

function requireRootAndTools(): void {
  requireTools("the pv2hvm boot test", ["qemu-system-x86_64", "debootstrap", "grub-install", "udevadm", "losetup", "partx", "sfdisk", "e2image", "debugfs"]);
}

/** The facts line, which must be stdout's only line and match the schema pv2hvm.sh declares. */
function parseFacts(stdout: string): Facts {
  const lines = stdout.trimEnd().split("\n");
  const last = lines[lines.length - 1];
  // stdout carries nothing but the facts (SSM keeps only the first 24,000 characters of it).
  assert.strictEqual(lines.length, 1, `expected stdout to be exactly one JSON line, got:\n${stdout}`);
  const facts = JSON.parse(last) as Record<string, unknown>;
  checkFacts(facts, declaredFactsSchema(fs.readFileSync(pv2hvm, "utf8"), "pv2hvm.sh"));
  return facts as unknown as Facts;
}

/** Byte offset of partition `n` of a disk image (sfdisk's view of its label); 0: the whole disk. */
function partitionOffset(image: string, n: number): number {
  if (n === 0) return 0;
  const table = JSON.parse(must("sfdisk", ["-J", image])) as { partitiontable: { sectorsize?: number; partitions: Array<{ node: string; start: number }> } };
  const p = table.partitiontable.partitions.find((x) => new RegExp(`\\D${n}$`).test(x.node));
  assert.ok(p, `no partition ${n} in ${image}`);
  return p.start * (table.partitiontable.sectorsize ?? 512);
}

/** Reads a file from partition `part` (default 1) of a disk image without mounting it; null when absent. */
function readFromImage(loops: Loops, image: string, file: string, part = 1): string | null {
  const dev = loops.attach(image, { readOnly: true, offset: partitionOffset(image, part) });
  try {
    const r = run("debugfs", ["-R", `cat ${file}`, dev]);
    const st = run("debugfs", ["-R", `stat ${file}`, dev]);
    return /^Inode:/m.test(st.stdout) ? r.stdout : null;
  } finally {
    loops.detach(dev);
  }
}

/** SHA-256 of `length` bytes of a file from `offset`. */
function sha256(file: string, offset = 0, length?: number): string {
  const h = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(8 * 1024 * 1024);
    const end = length === undefined ? fs.fstatSync(fd).size : offset + length;
    for (let pos = offset; pos < end; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

function existsInImage(loops: Loops, image: string, file: string, part = 1): boolean {
  return readFromImage(loops, image, file, part) !== null;
}

const timings: Record<string, number> = {};

/** gzip+base64 of sector 0 of a fresh 320 MiB XFS filesystem (see the --in-place refusal tests). */
const XFS_SECTOR0_GZ = "H4sIAAAAAAACA4twC3ZiYBBgAANGBwZ08NGqj53DxGfV1tLjHGLvzqZD1DGwQaUboHQjlG4CyzIEgNgsECEHhi1LmRiYGBg4kM3l4eRk5mdgkGSAKYIAWwj1/wEDfsCBxgfaydgFwWDAC8TcIMa29PC1CLeMAnQAAGEqRxgAAgAA";

/**
 * Each case: a source layout converted by the copy or in place, and where its converted parts are.
 * `rootPart`: the partition of the converted disk holding the root (0: the whole disk). `firstRun`:
 * the arguments of a first run on the same target (or disk) before the real one (re-runnable; the
 * rhel6 one opts out of Nitro), or none. `boots`: booted in qemu (updated, rebooted). A boot is 1–3
 * minutes under TCG, so each converted disk layout boots once: the copy makes one partition from
 * 1 MiB (booted from rhel6, a whole-disk source) or /boot + root (bootpart); flat and msdos sources
 * boot converted in place, and their copies are checked without a boot.
 */
interface Case {
  layout: Layout;
  inPlace: boolean;
  what: string;
  rootPart: number;
  grubDir: string;
  menu: string;
  firstRun?: string[];
  build: string[];
  boots: boolean;
}
const CASES: Case[] = [
  { layout: "flat", inPlace: false, what: "a partitionless (classic PV) source, copied", rootPart: 1, grubDir: "/boot/grub", menu: "menu.lst", firstRun: [], build: [], boots: false },
  { layout: "msdos", inPlace: false, what: "an msdos-partitioned source (swap first, root second), copied", rootPart: 1, grubDir: "/boot/grub", menu: "menu.lst", firstRun: [], build: [], boots: false },
  { layout: "bootpart", inPlace: false, what: "a source with a separate /boot partition (menu paths relative to /boot), copied", rootPart: 2, grubDir: "/grub", menu: "menu.lst", build: [], boots: true },
  {
    layout: "rhel6", inPlace: false, what: "a RHEL 6 style source (/dev/xvde1, swap and ephemeral lines, grub.conf; an initramfs without NVMe or ENA), copied",
    rootPart: 1, grubDir: "/boot/grub", menu: "grub.conf", firstRun: ["--no-nitro"], build: ["--bare-initramfs"], boots: true,
  },
  {
    layout: "flat", inPlace: true, what: "a partitionless (classic PV) source, converted in place (bare-ext-blocklist); booted, it installs and upgrades its own grub-pc",
    rootPart: 0, grubDir: "/boot/grub", menu: "menu.lst", firstRun: [], build: ["--grub-package"], boots: true,
  },
  { layout: "msdos", inPlace: true, what: "an msdos-partitioned source (swap first, root second), converted in place (partitioned-gap)", rootPart: 2, grubDir: "/boot/grub", menu: "menu.lst", firstRun: [], build: [], boots: true },
];

/** Whether the initramfs of `kernel` in a partitionless image holds nvme.ko. */
function initramfsHasNvme(image: string, kernel: string, work: string): boolean {
  const out = path.join(work, `initrd-${crypto.randomBytes(4).toString("hex")}`);
  try {
    must("debugfs", ["-R", `dump /boot/initrd.img-${kernel} ${out}`, image]);
    return /(^|\/)nvme\.ko/m.test(must("lsinitramfs", [out]));
  } finally {
    fs.rmSync(out, { force: true });
  }
}

describe("pv2hvm boot test: PV images converted on loop devices boot in qemu (needs root)", function () {
  this.timeout(20 * 60 * 1000);
  let work: string;
  const loops = new Loops();
  const keep = process.env.AMI_FACTORY_KEEP_TEST_ARTIFACTS === "1";

  before(function () {
    requireRootAndTools();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "pv2hvm-boot-"));
    const t0 = Date.now();
    // One cached debootstrap root for every layout (built on the first run, minutes; then reused).
    must("bash", [pvImage, "rootfs"]);
    timings["rootfs tarball (cache)"] = (Date.now() - t0) / 1000;
    const a = detectAccel();
    console.log(`      qemu accelerator: ${a.accel} (${a.why})`);
  });

  after(function () {
    loops.detachAll();
    if (work && !keep) fs.rmSync(work, { recursive: true, force: true });
    else if (work) console.log(`      artifacts kept in ${work}`);
    console.log("      timings (s): " + Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", "));
  });

  for (const L of CASES) {
    const layout = L.layout;
    const name = `${layout}${L.inPlace ? " in place" : ""}`;
    describe(L.what, function () {
      let img: ImageFacts;
      let target: string;
      let facts: Facts;
      let firstFacts: Facts | undefined;
      let stderr: string;
      let sourceTable = "";
      let swapBefore = "";
      const marker = `m${crypto.randomBytes(8).toString("hex")}`;
      const updateArg = `ami_factory_update=${marker}`;
      const read = (file: string, part = L.rootPart) => {
        const l = new Loops();
        try {
          return readFromImage(l, target, file, part);
        } finally {
          l.detachAll();
        }
      };

      before(function () {
        let t0 = Date.now();
        const file = name.replace(/ /g, "-");
        const out = must("bash", [pvImage, "build", "--layout", layout, "--out", path.join(work, `${file}-source.img`), "--marker", marker, "--size-mib", "1536", ...L.build]);
        img = JSON.parse(out.trim().split("\n").pop()!) as ImageFacts;
        timings[`${name}: build image`] = (Date.now() - t0) / 1000;
        if (L.inPlace) {
          target = img.image;
          if (layout === "msdos") {
            sourceTable = must("sfdisk", ["-d", target]);
            swapBefore = sha256(target, partitionOffset(target, 1), 64 * 1024 * 1024);
          }
          const disk = loops.attach(target);
          const udevLog = path.join(work, `${file}-udev.log`);
          try {
            if (L.firstRun) {
              const first = run("bash", [pv2hvm, "--in-place", disk, ...L.firstRun], { env: udevLockEnv(udevLog, disk) });
              assert.strictEqual(first.status, 0, `first pv2hvm --in-place run failed:\n${tail(first.stderr)}`);
              firstFacts = parseFacts(first.stdout);
              assert.strictEqual(firstFacts.sanitized, false);
            }
            t0 = Date.now();
            const second = run("bash", [pv2hvm, "--in-place", disk, "--sanitize"], { env: udevLockEnv(udevLog, disk) });
            assert.strictEqual(second.status, 0, `pv2hvm --in-place --sanitize failed:\n${tail(second.stderr)}`);
            assert.deepStrictEqual(settlesWhileLocked(udevLog), [], "pv2hvm waited for udev on a disk it holds locked");
            timings[`${name}: pv2hvm`] = (Date.now() - t0) / 1000;
            facts = parseFacts(second.stdout);
            stderr = second.stderr;
            assert.deepStrictEqual(leftovers(disk), [], "pv2hvm left partitions or mounts behind");
          } finally {
            loops.detach(disk);
          }
          return;
        }

        // A target larger than the source, with old data on it, to show the fs grows and a used
        // volume is fine.
        target = path.join(work, `${file}-target.img`);
        fs.writeFileSync(target, crypto.randomBytes(1024 * 1024));
        fs.truncateSync(target, 2560 * 1024 * 1024);

        const src = loops.attach(img.image, { readOnly: true });
        const tgt = loops.attach(target);
        try {
          // The flat layout runs the bundled script (what SSM sends), the others the tree's.
          let script = pv2hvm;
          if (layout === "flat") {
            script = path.join(work, "pv2hvm.bundled.sh");
            fs.writeFileSync(script, must(path.join(lib, "bundle.sh"), [pv2hvm]), { mode: 0o755 });
          }
          // The bundle must not fall back on a lib/ folder: point PV2HVM_LIB nowhere.
          const udevLog = path.join(work, `${file}-udev.log`);
          const env: NodeJS.ProcessEnv = { ...(layout === "flat" ? { PV2HVM_LIB: "/nonexistent" } : {}), ...udevLockEnv(udevLog, src, tgt) };
          if (L.firstRun) {
            // First a run without --sanitize, then the real one on the same target: re-runnable.
            t0 = Date.now();
            const first = run("bash", [script, "--source", src, "--target", tgt, ...L.firstRun], { env });
            assert.strictEqual(first.status, 0, `first pv2hvm run failed:\n${tail(first.stderr)}`);
            firstFacts = parseFacts(first.stdout);
            assert.strictEqual(firstFacts.sanitized, false);
            timings[`${name}: pv2hvm`] = (Date.now() - t0) / 1000;
          }
          t0 = Date.now();
          const second = run("bash", [script, "--source", src, "--target", tgt, "--sanitize"], { env });
          assert.strictEqual(second.status, 0, `pv2hvm --sanitize failed:\n${tail(second.stderr)}`);
          if (!L.firstRun) timings[`${name}: pv2hvm`] = (Date.now() - t0) / 1000;
          facts = parseFacts(second.stdout);
          stderr = second.stderr;
          assert.deepStrictEqual(settlesWhileLocked(udevLog), [], "pv2hvm waited for udev on a disk it holds locked");
          assert.deepStrictEqual(leftovers(src), [], "pv2hvm left partitions or mounts behind (source)");
          assert.deepStrictEqual(leftovers(tgt), [], "pv2hvm left partitions or mounts behind (target)");
        } finally {
          loops.detach(src);
          loops.detach(tgt);
        }
      });

      it("prints one JSON line in its declared schema with the layout, filesystem, menu, kernels and drivers of the image", function () {
        assert.strictEqual(facts.script, "pv2hvm");
        assert.strictEqual(facts.partitioned, layout === "msdos" || layout === "bootpart");
        assert.strictEqual(facts.layout, { flat: "flat", rhel6: "flat", msdos: "partitioned", bootpart: "separate-boot" }[layout]);
        assert.strictEqual(facts.fsType, "ext4");
        assert.strictEqual(facts.bootMenu, L.menu);
        assert.deepStrictEqual(facts.kernels, [img.kernel]);
        assert.strictEqual(facts.defaultKernel, img.kernel);
        // The Debian kernel ships ENA, NVMe and ixgbevf as modules, and the image's initramfs
        // (MODULES=most plus ena/nvme in /etc/initramfs-tools/modules) carries ENA and NVMe.
        assert.strictEqual(facts.enaDriver, true);
        assert.strictEqual(facts.nvmeDriver, true);
        assert.strictEqual(facts.enaInInitramfs, true);
        assert.strictEqual(facts.nvmeInInitramfs, true);
        assert.strictEqual(facts.ixgbevfDriver, true);
        assert.strictEqual(facts.nitroReady, true);
        if (layout === "rhel6") {
          // The source's initramfs had neither: the image's own update-initramfs added them.
          assert.strictEqual(initramfsHasNvme(img.image, img.kernel, work), false, "the bare source initramfs has nvme.ko");
          assert.strictEqual(facts.initramfsUpdatedWith, "initramfs-tools");
          assert.match(stderr, /has nvme\/ena modules its initramfs lacks: adding them with the image's own tool/);
          // --no-nitro left it as it was, and said the image is for Xen HVM types only.
          assert.strictEqual(firstFacts!.initramfsUpdatedWith, "");
          assert.strictEqual(firstFacts!.nvmeInInitramfs, false);
          assert.strictEqual(firstFacts!.nitroReady, false);
        } else {
          assert.strictEqual(facts.initramfsUpdatedWith, "", "the initramfs already had both: left as is");
        }
        assert.deepStrictEqual(facts.fstabRemoved, layout === "rhel6" ? ["/dev/xvde3"] : []);
        assert.deepStrictEqual(facts.fstabNofail, layout === "rhel6" ? ["/media/ephemeral0"] : []);
        assert.strictEqual(facts.sanitized, true);
        assert.strictEqual(facts.rootUuid, img.uuid);
        assert.strictEqual(facts.rootLabel, img.label);
        assert.ok(Number.isInteger(facts.seconds) && facts.seconds >= 0);
        if (L.inPlace) {
          assert.strictEqual(facts.method, "in-place");
          assert.strictEqual(facts.inPlaceLayout, layout === "flat" ? "bare-ext-blocklist" : "partitioned-gap");
          assert.strictEqual(facts.grubInstallGuard, layout === "flat" ? "dpkg-divert" : "");
          assert.strictEqual(facts.copiedBytes, 0);
          assert.strictEqual(facts.copyMethod, "none");
          // GRUB's files, the menu, fstab and the removed files' metadata: a few MiB of a 1.5 GiB disk
          // whose root uses ~650 MiB (what a copy writes).
          assert.ok(facts.bytesWritten > 0 && facts.bytesWritten < 8 * 1024 * 1024, `bytesWritten ${facts.bytesWritten}: in place should write a few MiB`);
          assert.ok(!/step \d+\/\d+: copying/.test(stderr));
        } else {
          assert.strictEqual(facts.method, "copy");
          assert.strictEqual(facts.inPlaceLayout, "");
          assert.strictEqual(facts.grubInstallGuard, "");
          assert.strictEqual(facts.copyMethod, "e2image -ra");
          assert.ok(facts.copiedBytes > 200 * 1024 * 1024 && facts.copiedBytes < img.sizeMiB * 1024 * 1024, `copiedBytes ${facts.copiedBytes}: only used blocks should be copied`);
          assert.ok(facts.bytesWritten >= facts.copiedBytes, `bytesWritten ${facts.bytesWritten} < copiedBytes ${facts.copiedBytes}: the target's write counter missed the copy`);
          assert.match(stderr, /step 4\/8: copying/);
          assert.match(stderr, /copied \d+ bytes .* with e2image -ra/);
        }
        // The msdos source has a swap partition first: the root is found by its content.
        if (layout === "msdos") assert.match(stderr, /root filesystem on \/dev\/loop\d+p2/);
        if (layout === "bootpart") assert.match(stderr, /root filesystem on \/dev\/loop\d+p2, \/boot on \/dev\/loop\d+p1/);
      });

      const rootDev = L.rootPart === 0 ? "/dev/nvme0n1" : `/dev/nvme0n1p${L.rootPart}`;
      if (L.boots) it("boots in qemu (SeaBIOS, NVMe disk), then boots the entry a grubby-style kernel update adds to its own menu", async function () {
        // Installing and upgrading grub-pc in the guest (update-grub twice) adds minutes under TCG.
        const timeoutMs = L.build.includes("--grub-package") ? 900_000 : 600_000;
        const r: BootResult = await bootImage({ image: target, marker: `AMI-FACTORY-UPDATED ${marker}`, timeoutMs, allowReboot: true, serialLog: path.join(work, `${name.replace(/ /g, "-")}-target.serial.log`) });
        timings[`${name}: boot, update, reboot (${r.accel})`] = r.seconds;
        assert.strictEqual(r.outcome, "marker", `no boot after the kernel update (${r.outcome} after ${r.seconds}s). Serial tail:\n${tail(r.serial)}\nBIOS tail:\n${tail(r.bios, 10)}`);
        const serial = r.serial.replace(/\r/g, "");
        // Before: GRUB 2 read the rewritten menu; root by UUID or LABEL, serial console, no update argument.
        const before = /^ami-factory: root (\S+), cmdline: (.*)$/m.exec(serial);
        assert.ok(before, `no first-boot line:\n${tail(serial)}`);
        assert.strictEqual(before[1], rootDev);
        assert.match(before[2], /console=ttyS0/);
        assert.ok(!before[2].includes(updateArg), before[2]);
        assert.ok(serial.includes(`AMI-FACTORY-BOOTED ${marker}`));
        // After: the new first entry (the default copied, one argument more) is what booted.
        const after = /^ami-factory: after the kernel update: root (\S+), boot (\S+), cmdline: (.*)$/m.exec(serial);
        assert.ok(after, `no second-boot line:\n${tail(serial)}`);
        assert.strictEqual(after[1], rootDev);
        assert.strictEqual(after[2], layout === "bootpart" ? "/dev/nvme0n1p1" : "-", "a separate /boot is mounted by UUID from the new fstab");
        assert.ok(after[3].split(" ").includes(updateArg), `/proc/cmdline after the update lacks ${updateArg}: ${after[3]}`);
        assert.match(serial, /Booting `Debian GNU\/Linux 12, kernel .* \(kernel update\)'/);
        // Launch verification's reading of a console (providers/worker/console.ts) on this real one.
        // The image's test hook reboots (then powers off) before systemd reaches the multi-user
        // target and before a getty prompts, so the default boot signal never shows here: with the
        // hook's line as the user's bootSignal (verify.bootSignal) it is booted, and with the default
        // one nothing on a real boot may read as a failure.
        const verdict = classifyConsole(r.serial, bootSignalRegex("^AMI-FACTORY-(BOOTED|UPDATED) ") as RegExp);
        assert.strictEqual(verdict.state, "booted", `classifyConsole on the real console: ${JSON.stringify(verdict)}\n${tail(serial)}`);
        assert.strictEqual(verdict.line, `AMI-FACTORY-UPDATED ${marker}`);
        assert.notStrictEqual(classifyConsole(r.serial).state, "failed", JSON.stringify(classifyConsole(r.serial)));
        if (L.build.includes("--grub-package")) {
          // Its own grub-pc, installed and then upgraded with debconf naming the disk: both postinsts
          // finished, the second ran grub-install onto the disk (skipped by the image's wrapper), both
          // ran update-grub; the boot after it still came through the image's menu (the update entry).
          assert.match(serial, /^AMI-FACTORY-GRUB-INSTALL rc=0$/m, `grub-pc did not install:\n${tail(serial, 60)}`);
          assert.match(serial, /^AMI-FACTORY-GRUB-UPGRADE \/dev\/nvme0n1 rc=0$/m, `grub-pc did not upgrade:\n${tail(serial, 60)}`);
          assert.match(serial, /^ami-factory: not running grub-install on \/dev\/nvme0n1: /m, "the upgrade's postinst never ran grub-install onto the disk");
          const from = /^ami-factory: grub\.cfg from: (.*)$/m.exec(serial);
          assert.ok(from, "no grub.cfg line");
          const parts = from[1].trim().split(" ");
          assert.strictEqual(parts[0], "/etc/grub.d/00_ami-factory-legacy-menu", `update-grub did not put the image's menu first: ${from[1]}`);
          assert.ok(parts.includes("/etc/grub.d/10_linux"), `grub.cfg was not made by update-grub: ${from[1]}`);
        }
      });

      if (!L.inPlace && (layout === "flat" || layout === "msdos")) {
        it("does not boot the unconverted source disk (negative control)", async function () {
          const r = await bootImage({ image: img.image, marker: `AMI-FACTORY-BOOTED ${marker}`, timeoutMs: 30_000, serialLog: path.join(work, `${layout}-source.serial.log`) });
          timings[`${layout}: boot source (${r.accel})`] = r.seconds;
          assert.notStrictEqual(r.outcome, "marker", "the unconverted PV image booted: the boot test proves nothing");
          assert.ok(!/Linux version/.test(r.serial), "a kernel started from the unconverted PV image");
          if (layout === "flat") assert.strictEqual(r.outcome, "not-bootable", `SeaBIOS should find no boot sector: ${tail(r.bios, 10)}`);
          for (const signal of [undefined, bootSignalRegex("^AMI-FACTORY-(BOOTED|UPDATED) ") as RegExp]) {
            const verdict = classifyConsole(r.serial, signal);
            assert.notStrictEqual(verdict.state, "booted", `classifyConsole calls the unbootable source booted: ${JSON.stringify(verdict)}`);
          }
        });
      }

      it("rewrites the image's own menu in place (original kept as .pv) and has grub.cfg read it at every boot", function () {
        const bootPart = layout === "bootpart" ? 1 : L.rootPart;
        const cfg = read(`${L.grubDir}/grub.cfg`, bootPart);
        assert.ok(cfg, "no grub.cfg on the target");
        assert.match(cfg!, /^serial --unit=0 --speed=115200/m);
        assert.match(cfg!, /^terminal_output serial console$/m);
        assert.match(cfg!, new RegExp(`^legacy_configfile \\$\\{prefix\\}/${L.menu.replace(".", "\\.")}$`, "m"));
        assert.ok(!/menuentry/.test(cfg!), "grub.cfg must not freeze the entries");
        const menu = read(`${L.grubDir}/${L.menu}`, bootPart)!;
        const original = read(`${L.grubDir}/${L.menu}.pv`, bootPart)!;
        assert.ok(menu && original, "menu or its .pv copy missing");
        assert.match(original, /console=hvc0/, "the .pv copy is the menu as it was");
        assert.ok(!/hvc0|xvc0/.test(menu), `Xen consoles left in the menu:\n${menu}`);
        // GRUB legacy's name of the filesystem holding the menu: partition 1 of a copy; in place the
        // whole disk (bare ext) or the partition the root already was on (msdos: the second).
        const menuDev = !L.inPlace ? "(hd0,0)" : L.rootPart === 0 ? "(hd0)" : `(hd0,${L.rootPart - 1})`;
        if (!L.inPlace) assert.ok(!/\(hd0\)|\(hd0,1\)/.test(menu), `Xen device names left in the menu:\n${menu}`);
        const kp = layout === "bootpart" ? "" : "/boot";
        const rootArg = layout === "flat" ? `root=LABEL=${img.label}` : `root=UUID=${img.uuid}`;
        const kernelLines = menu.split("\n").filter((l) => /^\s*kernel /.test(l)).map((l) => l.trim());
        assert.deepStrictEqual(kernelLines, [
          `kernel ${kp}/vmlinuz-${img.kernel} ${rootArg} console=ttyS0,115200n8 ro`,
          `kernel ${kp}/vmlinuz-${img.kernel} ${rootArg} console=ttyS0,115200n8 ro single`,
        ]);
        assert.deepStrictEqual(menu.split("\n").filter((l) => /^\s*root /.test(l)).map((l) => l.trim()), [`root ${menuDev}`, `root ${menuDev}`]);
        assert.ok(existsInImage(new Loops(), target, `${L.grubDir}/i386-pc/normal.mod`, bootPart), "GRUB modules not installed");
        if (layout === "rhel6") assert.ok(existsInImage(new Loops(), target, "/boot/grub/menu.lst", bootPart), "RHEL's menu.lst -> ./grub.conf link kept");
      });

      it("names the root (and /boot) by UUID in /etc/fstab; Xen swap commented out, other Xen devices nofail", function () {
        const fstab = read("/etc/fstab")!;
        assert.match(fstab, new RegExp(`^UUID=${img.uuid} / ext4 defaults,noatime 0 1$`, "m"));
        if (layout === "bootpart") assert.match(fstab, new RegExp(`^UUID=${img.bootUuid} /boot ext4 defaults 0 2$`, "m"));
        if (layout === "rhel6") {
          assert.match(fstab, /^# pv2hvm: .*\/dev\/xvde3 swap swap defaults 0 0$/m);
          assert.match(fstab, /^\/dev\/xvdb \/media\/ephemeral0 auto defaults,comment=cloudconfig,nofail 0 2$/m);
        } else {
          assert.ok(!/xvd|\/dev\/sd/.test(fstab), fstab);
        }
      });

      it("removes host keys, histories, cloud-init state, the machine-id and OpsWorks remnants", function () {
        for (const f of ["/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ed25519_key.pub", "/root/.bash_history", "/home/admin/.bash_history",
          "/var/lib/cloud/instances", "/var/lib/cloud/instance", "/var/lib/cloud/sem", "/opt/aws/opsworks", "/var/lib/aws/opsworks",
          "/etc/aws/opsworks", "/var/log/aws/opsworks", "/etc/init.d/opsworks-agent"]) {
          assert.strictEqual(read(f), null, `${f} is still on the target`);
        }
        assert.strictEqual(read("/etc/machine-id"), "");
        // The source image is untouched.
        assert.ok(layout !== "flat" || L.inPlace || run("debugfs", ["-R", "stat /root/.bash_history", img.image]).stdout.includes("Inode:"));
      });

      if (L.inPlace) it("changes nothing else on the disk: the root stays where it was; bare ext: boot code in sector 0 only, core.img immutable", function () {
        if (layout === "msdos") {
          assert.strictEqual(must("sfdisk", ["-d", target]), sourceTable, "the partition table changed");
          assert.strictEqual(sha256(target, partitionOffset(target, 1), 64 * 1024 * 1024), swapBefore, "the swap partition changed");
          assert.match(stderr, /root filesystem on \/dev\/loop\d+p2/);
        } else {
          const sector0 = Buffer.alloc(512);
          const fd = fs.openSync(target, "r");
          fs.readSync(fd, sector0, 0, 512, 0);
          fs.closeSync(fd);
          assert.strictEqual(sector0.readUInt16LE(510), 0xaa55, "no boot signature in sector 0");
          assert.ok(sector0.includes("GRUB"), "sector 0 is not GRUB's boot code");
          // EXT4_IMMUTABLE_FL (0x10) on the core image the boot sector reads by its block list.
          const st = must("debugfs", ["-R", "stat /boot/grub/i386-pc/core.img", target]);
          const flags = /Flags: (0x[0-9a-f]+)/.exec(st);
          assert.ok(flags && (parseInt(flags[1], 16) & 0x10) !== 0, `core.img is not immutable:\n${st}`);
          assert.match(stderr, /core image \/boot\/grub\/i386-pc\/core.img .* made immutable \(chattr \+i\)/);
        }
      });

      if (L.inPlace && layout === "flat") it("keeps the image's own GRUB off the disk: grub-install diverted to a wrapper that skips it, debconf names no device, update-grub puts the stub first", function () {
        const diversions = read("/var/lib/dpkg/diversions")!.split("\n");
        const at = diversions.indexOf("/usr/sbin/grub-install");
        assert.ok(at >= 0 && at % 3 === 0, `no diversion of /usr/sbin/grub-install:\n${diversions.join("\n")}`);
        assert.deepStrictEqual(diversions.slice(at, at + 3), ["/usr/sbin/grub-install", "/usr/sbin/grub-install.distrib", ":"], "a local diversion (package ':')");
        const wrapper = read("/usr/sbin/grub-install")!;
        assert.match(wrapper, /^exec \/usr\/sbin\/grub-install\.distrib "\$@"$/m);
        // debconf's database (config.dat, RFC 822 stanzas): what grub-pc's postinst reads.
        const stanzas = read("/var/cache/debconf/config.dat")!.split("\n\n");
        const value = (q: string) => /^Value:(.*)$/m.exec(stanzas.find((x) => x.startsWith(`Name: ${q}\n`)) ?? "")?.[1].trim();
        assert.strictEqual(value("grub-pc/install_devices"), "");
        assert.strictEqual(value("grub-pc/install_devices_empty"), "true");
        const hook = read("/etc/grub.d/00_ami-factory-legacy-menu")!;
        assert.match(hook, /^legacy_configfile \$\{prefix\}\/menu\.lst$/m);
        assert.strictEqual(hook.split("\n").filter((l) => !l.startsWith("#") && l && l !== "cat <<'EOF'" && l !== "EOF").join("\n"),
          read("/boot/grub/grub.cfg")!.split("\n").filter((l) => !l.startsWith("#") && l).join("\n"), "the /etc/grub.d stub is not the grub.cfg pv2hvm wrote");
      });

      it(`leaves a clean root filesystem${L.inPlace ? "" : " that fills its partition"}, with the source's UUID and LABEL`, function () {
        const loops2 = new Loops();
        const dev = loops2.attach(target, { readOnly: true, offset: partitionOffset(target, L.rootPart) });
        try {
          const fsck = run("e2fsck", ["-fn", dev]);
          assert.strictEqual(fsck.status, 0, fsck.stdout + fsck.stderr);
          const h = must("dumpe2fs", ["-h", dev]);
          const blocks = Number(/^Block count:\s+(\d+)/m.exec(h)![1]) * Number(/^Block size:\s+(\d+)/m.exec(h)![1]);
          if (!L.inPlace) assert.ok(blocks > (layout === "bootpart" ? 2300 : 2500) * 1024 * 1024, `filesystem not grown: ${blocks} bytes`);
          assert.match(h, new RegExp(`^Filesystem UUID:\\s+${img.uuid}$`, "m"));
          assert.match(h, new RegExp(`^Filesystem volume name:\\s+${img.label}$`, "m"));
        } finally {
          loops2.detachAll();
        }
      });
    });
  }

  describe("--in-place refuses a layout it cannot convert: exit 3, a refusal line, the disk unchanged", function () {
    /** A small root (fstab, /boot with a menu) as a filesystem image, for the partition cases. */
    function rootFs(file: string, mib: number): void {
      const dir = fs.mkdtempSync(path.join(work, "root-"));
      write(path.join(dir, "etc/fstab"), "/dev/xvda1 / ext4 defaults 0 1\n");
      write(path.join(dir, "boot/grub/menu.lst"), "default=0\ntitle x\nroot (hd0,0)\nkernel /boot/vmlinuz-1 root=/dev/xvda1 console=hvc0\n");
      must("mke2fs", ["-q", "-F", "-t", "ext4", "-d", dir, file, `${mib}M`]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    /** A disk image: `label` (sfdisk script) with the root filesystem written at `startSector`. */
    function partitioned(name: string, label: string, startSector: number): string {
      const disk = path.join(work, `${name}.img`);
      const root = path.join(work, `${name}.root`);
      rootFs(root, 64);
      fs.writeFileSync(disk, "");
      fs.truncateSync(disk, 80 * 1024 * 1024);
      spawnSync("sfdisk", ["-q", disk], { input: label });
      must("dd", [`if=${root}`, `of=${disk}`, "bs=512", `seek=${startSector}`, "conv=notrunc,sparse", "status=none"]);
      fs.rmSync(root);
      return disk;
    }
    const cases: Array<[string, () => string, string, RegExp]> = [
      ["XFS on the whole disk", () => {
        // Sector 0 of `mkfs.xfs -f` on a 320 MiB file (xfsprogs 6.1): XFS's superblock, all that
        // blkid (and so pv2hvm) reads to know XFS. Recorded, because installing xfsprogs here would
        // take away the tool test/guest/tools.test.ts needs to be missing.
        const disk = path.join(work, "xfs.img");
        fs.writeFileSync(disk, zlib.gunzipSync(Buffer.from(XFS_SECTOR0_GZ, "base64")));
        fs.truncateSync(disk, 320 * 1024 * 1024);
        assert.strictEqual(must("blkid", ["-p", "-o", "value", "-s", "TYPE", disk]).trim(), "xfs");
        return disk;
      }, "xfs-at-sector-0", /superblock in sector 0/],
      ["an msdos label whose first partition starts at sector 40 (no room for GRUB's core image)",
        () => partitioned("gap40", "label: dos\nstart=40, size=131072, type=83\n", 40), "gap-too-small", /starts at sector 40: 39 sectors after the MBR, and GRUB's core image \(part_msdos, ext2\) needs \d+/],
      ["a GPT label", () => partitioned("gpt", "label: gpt\nstart=2048, size=131072\n", 2048), "unknown-layout", /gpt partition table/],
    ];
    for (const [what, make, reason, detail] of cases) {
      it(`${what}: ${reason}`, function () {
        const image = make();
        const before = sha256(image);
        const dev = loops.attach(image);
        let r: Run;
        try {
          r = run("bash", [pv2hvm, "--in-place", dev, "--sanitize"]);
          assert.deepStrictEqual(leftovers(dev), [], "pv2hvm left partitions or mounts behind");
        } finally {
          loops.detach(dev);
        }
        assert.strictEqual(r.status, 3, r.stderr);
        const lines = r.stdout.trimEnd().split("\n");
        assert.strictEqual(lines.length, 1, `stdout must be the refusal line only:\n${r.stdout}`);
        const line = JSON.parse(lines[0]) as Record<string, unknown>;
        assert.deepStrictEqual(Object.keys(line), ["script", "schemaVersion", "refused", "reason", "detail"]);
        assert.deepStrictEqual({ ...line, detail: "" }, { script: "pv2hvm", schemaVersion: 4, refused: "in-place", reason, detail: "" });
        assert.match(line.detail as string, detail);
        assert.match(r.stderr, new RegExp(`in place refused \\(${reason}\\)`));
        assert.strictEqual(sha256(image), before, "the disk changed although in place was refused");
        fs.rmSync(image);
      });
    }
  });

  describe("a source whose block bitmap marks used blocks free (snapshotted while it ran)", function () {
    let img: ImageFacts;
    let unchanged: string;
    let damaged: string;
    /** path → SHA-256 of every regular file under a mounted root. */
    function fileSums(root: string): Map<string, string> {
      const out = must("bash", ["-c", 'cd "$1" && find . -xdev -type f -print0 | sort -z | xargs -0 sha256sum', "-", root]);
      return new Map(out.trim().split("\n").map((l) => [l.slice(66), l.slice(0, 64)] as [string, string]));
    }
    function mounted<T>(dev: string, f: (dir: string) => T): T {
      const dir = fs.mkdtempSync(path.join(work, "mnt-"));
      must("mount", ["-o", "ro,noload", dev, dir]);
      try {
        return f(dir);
      } finally {
        must("umount", [dir]);
        fs.rmdirSync(dir);
      }
    }

    before(function () {
      const out = must("bash", [pvImage, "build", "--layout", "flat", "--out", path.join(work, "bitmap-source.img"), "--marker", "bitmap", "--size-mib", "1024"]);
      img = JSON.parse(out.trim().split("\n").pop()!) as ImageFacts;
      // The kernel's data blocks marked free in the block bitmap (debugfs freeb), as a root that was
      // snapshotted between a write and its bitmap update may have them.
      damaged = `/boot/vmlinuz-${img.kernel}`;
      const blocks = must("debugfs", ["-R", `blocks ${damaged}`, img.image]).trim().split(/\s+/).filter(Boolean);
      assert.ok(blocks.length > 100, `the kernel has data blocks: ${blocks.length}`);
      const cmds = path.join(work, "freeb.cmds");
      fs.writeFileSync(cmds, blocks.map((b) => `freeb ${b}`).join("\n") + "\n");
      must("debugfs", ["-w", "-f", cmds, img.image]);
      assert.notStrictEqual(run("e2fsck", ["-fn", img.image]).status, 0, "e2fsck -fn sees the damage");
      unchanged = sha256(img.image);
    });

    it("is refused in place (filesystem-unclean, exit 3), byte for byte unchanged", function () {
      const dev = loops.attach(img.image);
      let r: Run;
      try {
        r = run("bash", [pv2hvm, "--in-place", dev]);
        assert.deepStrictEqual(leftovers(dev), [], "pv2hvm left partitions or mounts behind");
      } finally {
        loops.detach(dev);
      }
      assert.strictEqual(r.status, 3, r.stderr);
      const line = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
      assert.strictEqual(line.reason, "filesystem-unclean");
      assert.match(line.detail as string, /e2fsck -fn \S+ exited 4: .*Block bitmap differences/);
      assert.strictEqual(sha256(img.image), unchanged, "the disk changed although in place was refused");
    });

    it("is converted by the copy with every file intact: all of it copied (not only the blocks its bitmap marks used), the copy repaired", function () {
      const targetImage = path.join(work, "bitmap-target.img");
      fs.writeFileSync(targetImage, "");
      fs.truncateSync(targetImage, 1100 * 1024 * 1024);
      const src = loops.attach(img.image, { readOnly: true });
      const tgt = loops.attach(targetImage);
      let r: Run;
      try {
        r = run("bash", [pv2hvm, "--source", src, "--target", tgt]);
      } finally {
        loops.detach(src);
        loops.detach(tgt);
      }
      assert.strictEqual(r.status, 0, tail(r.stderr));
      const facts = parseFacts(r.stdout);
      assert.strictEqual(facts.copyMethod, "dd bs=64M");
      assert.match(r.stderr, /copying all of \S+, not only the blocks its bitmap marks used: e2fsck -fn/);
      assert.strictEqual(sha256(img.image), unchanged, "the copy changed its source");
      const part = loops.attach(targetImage, { offset: partitionOffset(targetImage, 1) });
      try {
        assert.strictEqual(run("e2fsck", ["-fn", part]).status, 0, "the copy is clean");
        const srcDev = loops.attach(img.image, { readOnly: true });
        let was: Map<string, string>;
        try {
          was = mounted(srcDev, fileSums);
        } finally {
          loops.detach(srcDev);
        }
        const now = mounted(part, fileSums);
        // What the conversion itself writes: GRUB, the menu (the original kept as .pv), fstab.
        const converted = /^\.\/(boot\/grub\/|etc\/fstab$)/;
        const changed = [...was].filter(([f, sum]) => !converted.test(f) && now.get(f) !== sum).map(([f]) => f);
        assert.deepStrictEqual(changed, [], "files the copy lost or changed");
        assert.strictEqual(now.get(`.${damaged}`), was.get(`.${damaged}`), "the kernel whose blocks the bitmap called free");
      } finally {
        loops.detach(part);
        fs.rmSync(targetImage);
      }
    });
  });

  describe("cleanup on failure and on signals", function () {
    let src: string;
    let tgt: string;
    let fakeBin: string;
    before(function () {
      const out = must("bash", [pvImage, "build", "--layout", "msdos", "--out", path.join(work, "cleanup-source.img"), "--marker", "cleanup", "--size-mib", "1024"]);
      const img = JSON.parse(out.trim().split("\n").pop()!) as ImageFacts;
      fs.writeFileSync(path.join(work, "cleanup-target.img"), "");
      fs.truncateSync(path.join(work, "cleanup-target.img"), 1100 * 1024 * 1024);
      src = loops.attach(img.image, { readOnly: true });
      tgt = loops.attach(path.join(work, "cleanup-target.img"));
      fakeBin = path.join(work, "fake-bin");
      fs.mkdirSync(fakeBin, { recursive: true });
    });
    after(function () {
      if (src) loops.detach(src);
      if (tgt) loops.detach(tgt);
    });

    it("unmounts and removes its partition mappings when a step fails", function () {
      write(path.join(fakeBin, "grub-install"), "#!/bin/sh\necho 'grub-install: error: simulated failure' >&2\nexit 1\n", 0o755);
      const r = run("bash", [pv2hvm, "--source", src, "--target", tgt], { env: { PATH: `${fakeBin}:${process.env.PATH}` } });
      assert.strictEqual(r.status, 1, r.stderr);
      assert.match(r.stderr, /grub-install on .* failed/);
      assert.match(r.stdout, /^pv2hvm failed \(exit 1\)\n  step: 6\/8: installing GRUB 2 \(i386-pc\)[^\n]*\n  error: grub-install on \S+ failed\n(  stderr: .*\n)*  stderr: pv2hvm: error: grub-install on \S+ failed\n$/, "the failure summary, no facts line");
      assert.match(r.stdout, /stderr: grub-install: error: simulated failure/);
      assert.deepStrictEqual(leftovers(src), []);
      assert.deepStrictEqual(leftovers(tgt), []);
    });

    it("unmounts and removes its partition mappings when it gets SIGTERM mid-way", async function () {
      write(path.join(fakeBin, "grub-install"), "#!/bin/sh\nsleep 300\n", 0o755);
      const child = spawn("bash", [pv2hvm, "--source", src, "--target", tgt], {
        env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      const done = new Promise<number | null>((res) => child.on("exit", (code, sig) => res(code ?? (sig ? 128 : null))));
      const t0 = Date.now();
      while (!err.includes("step 6/8") && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 100));
      assert.ok(err.includes("step 6/8"), `never reached step 6:\n${err}`);
      await new Promise((r) => setTimeout(r, 500));
      // While it waits in grub-install, the target partition is mounted.
      assert.ok(leftovers(tgt).some((l) => l.includes(" /tmp/pv2hvm.")), "expected the target mounted during step 6");
      process.kill(-child.pid!, "SIGTERM");
      const code = await done;
      assert.strictEqual(code, 143, err);
      assert.match(err, /terminated \(SIGTERM\)/);
      assert.deepStrictEqual(leftovers(src), []);
      assert.deepStrictEqual(leftovers(tgt), []);
    });

    it("refuses to use the source as the target", function () {
      const same = run("bash", [pv2hvm, "--source", src, "--target", src]);
      assert.strictEqual(same.status, 1);
      assert.match(same.stderr, /same device/);
    });
  });
});
