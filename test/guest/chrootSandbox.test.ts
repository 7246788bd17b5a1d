// The image's own tools run in a sandbox (scripts/guest/lib/bootdisk.sh, in_sandbox / run_in): a
// root on a loop device holding bash and a few tools, with the worker's /proc, /sys and /dev
// mounted in it as chroot_mounts does. From inside, a process reaches neither a listener on this
// machine's loopback nor the instance metadata address; sees only its own PID namespace in /proc
// (not this test's process, no /proc/1/root that leads out); cannot write /proc/sys; has neither
// CAP_SYS_ADMIN nor CAP_SYS_CHROOT. Each is checked against a plain chroot of the same root, which
// can (so the checks can fail). The debian recipe runs its maintainer scripts in the same sandbox
// (test/guest/surrogate.test.ts builds one).
import * as assert from "assert";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { Loops, must, requireRootAndTools, run } from "../support/host";

const lib = path.resolve(__dirname, "../../scripts/guest/lib");

/** A root filesystem on a loop device holding bash, a few tools and the libraries they load. */
function bashRoot(loops: Loops, dir: string): string {
  const img = path.join(dir, "root.img");
  must("truncate", ["-s", "64M", img]);
  const dev = loops.attach(img);
  must("mkfs.ext4", ["-q", dev]);
  const root = path.join(dir, "root");
  fs.mkdirSync(root);
  must("mount", [dev, root]);
  for (const tool of ["bash", "ls", "readlink", "tr", "mknod", "rm"]) {
    const bin = must("sh", ["-c", `command -v ${tool}`]).trim();
    const libs = must("ldd", [bin]).match(/\/\S+/g) ?? [];
    for (const f of [bin, ...libs]) {
      fs.mkdirSync(path.join(root, path.dirname(f)), { recursive: true });
      fs.copyFileSync(f, path.join(root, f));
    }
    fs.chmodSync(path.join(root, bin), 0o755);
    // The sandbox runs commands through the image's /bin/bash (a usrmerged host has it in /usr/bin).
    if (tool === "bash" && bin !== "/bin/bash") {
      fs.mkdirSync(path.join(root, "bin"), { recursive: true });
      fs.copyFileSync(bin, path.join(root, "bin/bash"));
      fs.chmodSync(path.join(root, "bin/bash"), 0o755);
    }
  }
  return root;
}

/** An empty 8 MiB file in DIR. */
function mkImage(dir: string, name: string): string {
  const f = path.join(dir, name);
  must("truncate", ["-s", "8M", f]);
  return f;
}

/** bash -c SCRIPT inside ROOT through `how`, after chroot_mounts (the worker's /proc, /sys, /dev in ROOT). */
function inside(how: "run_in" | "chroot", root: string, script: string, device?: string): { status: number | null; stdout: string; stderr: string } {
  const q = script.replace(/'/g, `'\\''`);
  const allow = device ? `--device '${device}' ` : "";
  const call = how === "run_in" ? `in_sandbox ${allow}'${root}' bash -c '${q}'` : `chroot '${root}' bash -c '${q}'`;
  const r = run("timeout", ["30", "bash", "-c", `set -euo pipefail; . '${lib}/common.sh'; . '${lib}/bootdisk.sh'; install_cleanup_traps; chroot_mounts '${root}'; ${call}`]);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** bash inside ROOT through `how` ("run_in" or plain "chroot"): can it open TCP to host:port? */
function connects(how: "run_in" | "chroot", root: string, host: string, port: number): { ok: boolean; stderr: string } {
  const probe = `exec 3<>/dev/tcp/${host}/${port} && echo connected`;
  const call = how === "run_in" ? `run_in '${root}' bash -c '${probe}'` : `chroot '${root}' bash -c '${probe}'`;
  const r = run("timeout", ["20", "bash", "-c", `set -euo pipefail; . '${lib}/common.sh'; . '${lib}/bootdisk.sh'; ${call}`]);
  return { ok: r.status === 0, stderr: r.stderr };
}

describe("sandbox of the image's tools (bootdisk.sh in_sandbox, run_in)", function () {
  const loops = new Loops();
  let dir: string;
  let root: string;
  let server: net.Server;
  let port: number;

  before(async () => {
    requireRootAndTools("the chroot sandbox test", ["losetup", "mkfs.ext4", "unshare", "chroot", "ldd", "capsh"]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "chroot-net-"));
    root = bashRoot(loops, dir);
    server = net.createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((r) => server?.close(() => r()));
    if (root) run("umount", [root]);
    loops.detachAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("reaches nothing from inside: not this machine's loopback, not the instance metadata service", function () {
    const plain = connects("chroot", root, "127.0.0.1", port);
    assert.ok(plain.ok, `a plain chroot reaches the listener (the probe works): ${plain.stderr}`);
    const inside = connects("run_in", root, "127.0.0.1", port);
    assert.ok(!inside.ok, "run_in reached the worker's loopback");
    const imds = connects("run_in", root, "169.254.169.254", 80);
    assert.ok(!imds.ok, "run_in reached the metadata address");
    assert.match(imds.stderr, /Network is unreachable/, imds.stderr);
  });

  it("shows only its own processes: no worker PID in /proc, no /proc/PID/root that leads out", function () {
    // This test's process is a worker process outside the chroot: /proc/PID/root is its root, the worker's /.
    const me = process.pid;
    const probe = `for d in /proc/[0-9]*; do echo pid \${d#/proc/}; done; echo "out: $(ls -A /proc/${me}/root/ 2>&1 | tr '\\n' ' ')"; echo "root1: $(readlink /proc/1/root) $(ls -A /proc/1/root/ | tr '\\n' ' ')"`;
    const plain = inside("chroot", root, probe);
    assert.strictEqual(plain.status, 0, plain.stderr);
    assert.ok(plain.stdout.includes(`pid ${me}\n`), `a plain chroot sees this test's process ${me} (the probe works):\n${plain.stdout}`);
    const out = (r: { stdout: string }) => (/^out: (.*)$/m.exec(r.stdout)?.[1] ?? "").trim().split(" ").sort();
    assert.deepStrictEqual(out(plain), fs.readdirSync("/").sort(), `a plain chroot lists the worker's / through /proc/${me}/root (the probe works):\n${plain.stdout}`);
    const sandboxed = inside("run_in", root, probe);
    assert.strictEqual(sandboxed.status, 0, sandboxed.stderr);
    const pids = [...sandboxed.stdout.matchAll(/^pid (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(!pids.includes(me), `the sandbox sees this test's process:\n${sandboxed.stdout}`);
    assert.ok(pids.length > 0 && pids.every((p) => p < 10), `the sandbox sees PIDs beyond its own namespace: ${pids.join(" ")}`);
    assert.match(sandboxed.stdout, /^out: ls: cannot access/m, `the sandbox reached /proc/${me}/root:\n${sandboxed.stdout}`);
    // Its PID 1 is the sandboxed command itself: its root is the image's.
    const root1 = /^root1: (\S+) (.*)$/m.exec(sandboxed.stdout);
    assert.strictEqual(root1?.[1], "/", sandboxed.stdout);
    assert.deepStrictEqual(root1?.[2].trim().split(" ").sort(), fs.readdirSync(root).sort(), `/proc/1/root in the sandbox is the image's root:\n${sandboxed.stdout}`);
  });

  it("holds no capability that leads out (CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_MKNOD, ...) and cannot write /proc/sys", function () {
    const probe = "while read -r k v; do [ \"$k\" = CapBnd: ] && echo bnd $v; [ \"$k\" = CapEff: ] && echo eff $v; done </proc/self/status; " +
      "if [ -w /proc/sys/kernel/core_pattern ]; then echo sysctl-writable; else echo sysctl-read-only; fi"; // access(2): EROFS on a read-only mount
    const bit = (caps: bigint, n: number) => ((caps >> BigInt(n)) & 1n) === 1n;
    // capability(7) numbers.
    const CAP = { DAC_READ_SEARCH: 2, SETPCAP: 8, NET_ADMIN: 12, SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19, SYS_ADMIN: 21, MKNOD: 27 };
    const KEEP = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, SETGID: 6, SETUID: 7 };
    const plain = inside("chroot", root, probe);
    const plainEff = BigInt("0x" + (/^eff (\w+)$/m.exec(plain.stdout)?.[1] ?? "0"));
    assert.ok(bit(plainEff, CAP.SYS_ADMIN), `a plain chroot has CAP_SYS_ADMIN (the probe works):\n${plain.stdout}${plain.stderr}`);
    assert.match(plain.stdout, /sysctl-writable/, "a plain chroot can write /proc/sys (the probe works)");
    const sandboxed = inside("run_in", root, probe);
    assert.strictEqual(sandboxed.status, 0, sandboxed.stderr);
    for (const set of ["bnd", "eff"]) {
      const caps = BigInt("0x" + (new RegExp(`^${set} (\\w+)$`, "m").exec(sandboxed.stdout)?.[1] ?? "x"));
      for (const [name, n] of Object.entries(CAP)) assert.ok(!bit(caps, n), `CAP_${name} in the sandbox's ${set} set:\n${sandboxed.stdout}`);
      for (const [name, n] of Object.entries(KEEP)) assert.ok(bit(caps, n), `CAP_${name} (package installation needs it) missing from the sandbox's ${set} set:\n${sandboxed.stdout}`);
    }
    assert.match(sandboxed.stdout, /sysctl-read-only/, sandboxed.stdout);
  });

  it("opens only the allowed disk: not another of the worker's block devices, not a node it makes or the image ships", function () {
    // Two more loop devices: "other" stands for the worker's root disk or the source volume.
    const other = loops.attach(mkImage(dir, "other.img"));
    const target = loops.attach(mkImage(dir, "target.img"));
    const rdev = (dev: string) => fs.statSync(dev).rdev;
    const [maj, min] = [Math.floor(rdev(other) / 256) & 0xfff, (rdev(other) & 0xff) | ((rdev(other) >> 12) & 0xfff00)];
    // A block node of "other" in the image itself (an image may ship one).
    const shipped = path.join(root, "shipped-blk");
    must("mknod", [shipped, "b", String(maj), String(min)]);
    try {
      // Read only: `<>` would create a regular file where no node is. Reading the source volume is a leak too.
      const open = (dev: string) => `if [ -b ${dev} ] && exec 3<${dev}; then echo "opened ${dev}"; else echo "refused ${dev}"; fi; exec 3<&- || true`;
      const probe = [open(other), open(target), open("/shipped-blk"),
        `if mknod /made-blk b ${maj} ${min}; then ${open("/made-blk")}; else echo "mknod refused"; fi; rm -f /made-blk`].join("; ");
      const plain = inside("chroot", root, probe);
      assert.strictEqual(plain.status, 0, plain.stderr);
      for (const dev of [other, target, "/shipped-blk", "/made-blk"]) {
        assert.ok(plain.stdout.includes(`opened ${dev}\n`), `a plain chroot opens ${dev} (the probe works):\n${plain.stdout}${plain.stderr}`);
      }
      const sandboxed = inside("run_in", root, probe, target);
      assert.strictEqual(sandboxed.status, 0, sandboxed.stderr);
      assert.ok(sandboxed.stdout.includes(`opened ${target}\n`), `the sandbox cannot open the allowed target ${target}:\n${sandboxed.stdout}${sandboxed.stderr}`);
      for (const dev of [other, "/shipped-blk"]) {
        assert.ok(sandboxed.stdout.includes(`refused ${dev}\n`), `the sandbox opened ${dev}:\n${sandboxed.stdout}${sandboxed.stderr}`);
      }
      assert.ok(/^(mknod refused|refused \/made-blk)$/m.test(sandboxed.stdout) && !sandboxed.stdout.includes("opened /made-blk"),
        `the sandbox made and opened a block node:\n${sandboxed.stdout}${sandboxed.stderr}`);
    } finally {
      fs.rmSync(shipped, { force: true });
    }
  });

  it("runs commands in an image without bash through its /bin/sh (as a plain chroot can)", function () {
    // A root holding only dash as /bin/sh and the libraries it loads, in a plain folder.
    const shRoot = path.join(dir, "sh-root");
    const dash = must("sh", ["-c", "command -v dash"]).trim();
    for (const f of [dash, ...(must("ldd", [dash]).match(/\/\S+/g) ?? [])]) {
      fs.mkdirSync(path.join(shRoot, path.dirname(f)), { recursive: true });
      fs.copyFileSync(f, path.join(shRoot, f));
    }
    fs.mkdirSync(path.join(shRoot, "bin"), { recursive: true });
    fs.copyFileSync(dash, path.join(shRoot, "bin/sh"));
    fs.chmodSync(path.join(shRoot, "bin/sh"), 0o755);
    assert.ok(!fs.existsSync(path.join(shRoot, "bin/bash")));
    const script = (call: string) => run("timeout", ["30", "bash", "-c", `set -euo pipefail; . '${lib}/common.sh'; . '${lib}/bootdisk.sh'; ${call}`]);
    const plain = script(`chroot '${shRoot}' /bin/sh -c 'echo "in $0"' image-sh`);
    assert.strictEqual(plain.stdout, "in image-sh\n", `a plain chroot runs the image's sh (the probe works): ${plain.stderr}`);
    const sandboxed = script(`in_sandbox '${shRoot}' /bin/sh -c 'echo "in $0"' image-sh`);
    assert.strictEqual(sandboxed.status, 0, sandboxed.stderr);
    assert.strictEqual(sandboxed.stdout, "in image-sh\n", sandboxed.stderr);
  });

  it("never mounts through an image's /run (or /proc, /sys, /dev) that is a symbolic link: it becomes a directory, the worker's mounts stay", function () {
    const linkRoot = path.join(dir, "link-root");
    fs.mkdirSync(linkRoot);
    fs.symlinkSync("/run", path.join(linkRoot, "run"));
    fs.symlinkSync("/proc", path.join(linkRoot, "proc"));
    const before = must("findmnt", ["-rn", "-o", "TARGET,FSTYPE,SOURCE"]);
    // The mounts chroot_mounts makes, listed, then undone by its own cleanup at exit.
    const r = run("timeout", ["30", "bash", "-c", `set -euo pipefail; . '${lib}/common.sh'; . '${lib}/bootdisk.sh'; install_cleanup_traps; chroot_mounts '${linkRoot}'; findmnt -rn -o TARGET | grep -F '${linkRoot}/'`]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /the image's \/run is a symbolic link \(to \/run\): made a directory/, r.stderr);
    assert.ok(r.stdout.split("\n").includes(`${linkRoot}/run`) && r.stdout.split("\n").includes(`${linkRoot}/proc`), r.stdout);
    assert.ok(fs.lstatSync(path.join(linkRoot, "run")).isDirectory() && fs.lstatSync(path.join(linkRoot, "proc")).isDirectory());
    assert.strictEqual(must("findmnt", ["-rn", "-o", "TARGET,FSTYPE,SOURCE"]), before, "the worker's mounts changed");
  });
});
