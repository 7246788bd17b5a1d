// The image's own tools run in a chroot without network (scripts/guest/lib/bootdisk.sh, CHROOT):
// a root on a loop device, a listener on this machine's loopback, and an attempt from inside the
// chroot to reach it and the instance metadata address (169.254.169.254): both fail inside run_in,
// while the same chroot without the namespace reaches the listener (so the test can fail).
import * as assert from "assert";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { Loops, must, requireRootAndTools, run } from "../support/host";

const lib = path.resolve(__dirname, "../../scripts/guest/lib");

/** A root filesystem on a loop device holding bash and the libraries it loads. */
function bashRoot(loops: Loops, dir: string): string {
  const img = path.join(dir, "root.img");
  must("truncate", ["-s", "64M", img]);
  const dev = loops.attach(img);
  must("mkfs.ext4", ["-q", dev]);
  const root = path.join(dir, "root");
  fs.mkdirSync(root);
  must("mount", [dev, root]);
  const bash = must("sh", ["-c", "command -v bash"]).trim();
  const libs = must("ldd", [bash]).match(/\/\S+/g) ?? [];
  for (const f of [bash, ...libs]) {
    fs.mkdirSync(path.join(root, path.dirname(f)), { recursive: true });
    fs.copyFileSync(f, path.join(root, f));
  }
  fs.chmodSync(path.join(root, bash), 0o755);
  return root;
}

/** bash inside ROOT through `how` ("run_in" or plain "chroot"): can it open TCP to host:port? */
function connects(how: "run_in" | "chroot", root: string, host: string, port: number): { ok: boolean; stderr: string } {
  const probe = `exec 3<>/dev/tcp/${host}/${port} && echo connected`;
  const call = how === "run_in" ? `run_in '${root}' bash -c '${probe}'` : `chroot '${root}' bash -c '${probe}'`;
  const r = run("timeout", ["20", "bash", "-c", `set -euo pipefail; . '${lib}/common.sh'; . '${lib}/bootdisk.sh'; ${call}`]);
  return { ok: r.status === 0, stderr: r.stderr };
}

describe("chroot of the image's tools (bootdisk.sh run_in)", function () {
  const loops = new Loops();
  let dir: string;
  let root: string;
  let server: net.Server;
  let port: number;

  before(async () => {
    requireRootAndTools("the chroot network test", ["losetup", "mkfs.ext4", "unshare", "chroot", "ldd"]);
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
});
