// scripts/guest/lib/copy.sh on loop devices (needs root; no boots): the whole copy of an unclean
// source moves its filesystem, not all of its partition, and an XFS filesystem the worker cannot
// check is not called clean.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { must, run } from "../support/host";

const lib = path.resolve(__dirname, "../../scripts/guest/lib");
const MiB = 1024 * 1024;

/** Runs bash with copy.sh sourced (common.sh first: log, die). */
const bash = (script: string, env: NodeJS.ProcessEnv = {}) =>
  run("bash", ["-c", `set -euo pipefail; . ${lib}/common.sh; . ${lib}/copy.sh; ${script}`], { env });

describe("lib/copy.sh on loop devices", function () {
  let work: string;
  const loops: string[] = [];
  const loop = (name: string, bytes: number) => {
    const file = path.join(work, name);
    fs.writeFileSync(file, "");
    fs.truncateSync(file, bytes);
    const dev = must("losetup", ["--find", "--show", file]).trim();
    loops.push(dev);
    return dev;
  };

  beforeEach(() => (work = fs.mkdtempSync(path.join(os.tmpdir(), "copy-test-"))));
  afterEach(() => {
    while (loops.length) run("losetup", ["-d", loops.pop()!]);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("a whole copy of an ext filesystem smaller than its partition copies the filesystem's size into a target that fits it", () => {
    const src = loop("src.img", 48 * MiB);
    must("mkfs.ext4", ["-q", "-F", "-L", "wholecopy", src, "32M"]);
    const dst = loop("dst.img", 36 * MiB);
    const r = bash(`copy_filesystem ${src} ${dst} ext4 whole; echo "$COPY_METHOD|$COPY_BYTES"`, { COPY_PROGRESS_SECONDS: "0" });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout.trim().split("\n").pop(), `dd bs=64M|${32 * MiB}`);
    const check = run("e2fsck", ["-fn", dst]);
    assert.strictEqual(check.status, 0, check.stdout + check.stderr);
    assert.strictEqual(must("blkid", ["-p", "-o", "value", "-s", "LABEL", dst]).trim(), "wholecopy");
  });

  it("an XFS filesystem is unclean, not clean, when the worker has no xfs_repair to check it", () => {
    // fs_unclean only reads the type it is given: no XFS is needed on the device.
    const dev = loop("xfs.img", 16 * MiB);
    const r = bash(`PATH=/nonexistent; if fs_unclean ${dev} xfs; then echo "unclean: $FS_UNCLEAN"; else echo clean; fi`);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /^unclean: no xfs_repair on the worker: the XFS filesystem on \/dev\/loop\d+ cannot be checked/m);
  });
});
