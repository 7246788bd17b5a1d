// The disks the twin boot test imports: an unconverted PV disk (test/support/pv-image.sh, flat
// layout: ext4 on the whole disk, a PV-GRUB menu, no boot loader), the same disk with a journal to
// replay (snapshotted while it ran: pv2hvm refuses it in place, filesystem-unclean), and the same
// disk converted in place by scripts/guest/pv2hvm.sh on a loop device, as test/guest/pv2hvm.test.ts
// does it. All as
// stream-optimized VMDK (what VM Import takes, and a few hundred MiB instead of a sparse GiB to
// upload). Cached outside the repository, keyed on the hashes of what makes them: the root tarball,
// pv-image.sh, and the guest scripts. Needs root (loop devices, debootstrap on the first run).
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { filesUnder, leftovers, Loops, must, run, tail } from "./host";

const repo = path.resolve(__dirname, "../..");
const pvImage = path.join(repo, "test/support/pv-image.sh");
const guest = path.join(repo, "scripts/guest");

export interface TwinDisks {
  /** The converted disk (boots with SeaBIOS). */
  hvm: string;
  /** The unconverted PV disk (no boot loader: SeaBIOS finds nothing to boot). */
  pv: string;
  /** The PV disk whose ext4 has a journal to replay (needs_recovery), as a root snapshotted while it ran. */
  unclean: string;
  /** Whether this call built them (false: from the cache). */
  built: boolean;
}


function inputsKey(tarball: string): string {
  const h = crypto.createHash("sha256");
  h.update("twin-disks v2\n");
  h.update(path.basename(tarball)); // the tarball's name carries its own recipe key
  for (const f of [pvImage, __filename.replace(/\.js$/, ".ts"), ...filesUnder(guest).sort()]) {
    if (fs.existsSync(f)) h.update(f.slice(repo.length)).update(fs.readFileSync(f));
  }
  return h.digest("hex").slice(0, 16);
}

/** The three disks, built on the first call (a few minutes) and cached. */
export function twinDisks(log: (line: string) => void = () => undefined): TwinDisks {
  if (process.getuid && process.getuid() !== 0) throw new Error("the twin boot disks need root (loop devices, debootstrap): run mocha as root, as CI does");
  const tarball = must("bash", [pvImage, "rootfs"]).trim().split("\n").pop()!;
  const cache = path.join(process.env.AMI_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "ami-factory"), "twin-disks");
  const key = inputsKey(tarball);
  const hvm = path.join(cache, `${key}-hvm.vmdk`);
  const pv = path.join(cache, `${key}-pv.vmdk`);
  const unclean = path.join(cache, `${key}-unclean.vmdk`);
  if ([hvm, pv, unclean].every((f) => fs.existsSync(f))) return { hvm, pv, unclean, built: false };
  const vmdk = (raw: string, out: string) => {
    must("qemu-img", ["convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, `${out}.tmp`]);
    fs.renameSync(`${out}.tmp`, out);
  };

  fs.mkdirSync(cache, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "twin-disks-"));
  const loops = new Loops();
  try {
    for (const kind of ["pv", "hvm"] as const) {
      const raw = path.join(work, `${kind}.img`);
      log(`twin disks: building the ${kind} disk`);
      must("bash", [pvImage, "build", "--layout", "flat", "--out", raw, "--marker", `twin-${kind}`, "--size-mib", "1024", "--stay-up"]);
      if (kind === "hvm") {
        // The image's test hook reboots after its first boot and powers off after its second (the
        // guest test's kernel-update check); a launch test wants a guest that stays up.
        must("debugfs", ["-w", "-R", "rm /etc/systemd/system/multi-user.target.wants/ami-factory-marker.service", raw]);
        const dev = loops.attach(raw);
        try {
          const r = run("bash", [path.join(guest, "pv2hvm.sh"), "--in-place", dev, "--sanitize"]);
          if (r.status !== 0) throw new Error(`pv2hvm --in-place failed:\n${tail(r.stderr)}`);
          const left = leftovers(dev);
          if (left.length) throw new Error(`pv2hvm left ${left.join(", ")} behind`);
        } finally {
          loops.detach(dev);
        }
      }
      if (kind === "pv") {
        // A journal to replay, as a root snapshotted while it ran has (the journal itself is empty:
        // e2fsck's replay of the copy finds nothing to apply). Whole-disk ext4, so the image is the filesystem.
        log("twin disks: the unclean disk (needs_recovery)");
        const dirty = path.join(work, "unclean.img");
        must("cp", ["--sparse=always", raw, dirty]);
        must("debugfs", ["-w", "-R", "feature needs_recovery", dirty]);
        vmdk(dirty, unclean);
        fs.rmSync(dirty);
      }
      vmdk(raw, kind === "hvm" ? hvm : pv);
      fs.rmSync(raw);
    }
  } finally {
    loops.detachAll();
    fs.rmSync(work, { recursive: true, force: true });
  }
  // Builds of other inputs unused for a day go: the cache is shared by every checkout (worktrees,
  // CI) on the machine, and one on another commit may be importing its disks right now.
  const dayAgo = Date.now() - 86_400_000;
  for (const f of fs.readdirSync(cache)) {
    const p = path.join(cache, f);
    if (!f.startsWith(key) && fs.statSync(p).atimeMs < dayAgo && fs.statSync(p).mtimeMs < dayAgo) fs.rmSync(p, { force: true });
  }
  return { hvm, pv, unclean, built: true };
}
