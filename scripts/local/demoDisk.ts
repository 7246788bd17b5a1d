// The classic PV disk `npm start` (twin) and bench/twinConversion.ts import: Debian 12 with ext4 on
// the whole disk, a PV-GRUB menu.lst (console=hvc0), Xen device names in fstab and no boot loader
// (test/support/pv-image.sh, layout "flat"), as a stream-optimized VMDK (what VM Import takes; a
// few hundred MiB instead of a sparse GiB to upload). Built without loop devices or mounts
// (mke2fs -d), but pv-image.sh needs root: debootstrap on the very first run, then unpacking the
// cached root with its ownership. Cached outside the repository, keyed on what makes it.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "./toolchain";

const pvImage = path.join(REPO_ROOT, "test/support/pv-image.sh");
export const DEMO_DISK_MIB = 1024;
export const DEMO_MARKER = "ami-factory-demo";

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status}):\n${(r.stderr || "").split("\n").slice(-20).join("\n")}`);
  return r.stdout;
}

export interface DemoDisk {
  /** The stream-optimized VMDK. */
  file: string;
  /** Whether this call built it (false: from the cache). */
  built: boolean;
}

/** Whether the disk must be built (and so root is needed) for the current inputs. */
export function demoDiskCached(): string | undefined {
  const file = demoDiskPath();
  return file && fs.existsSync(file) ? file : undefined;
}

function cacheDir(): string {
  return path.join(process.env.AMI_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "ami-factory"), "demo-disk");
}

/** The cache path for the current inputs, or undefined while the debootstrap root is not cached yet. */
function demoDiskPath(): string | undefined {
  const tarball = spawnSync("bash", [pvImage, "tarball-path"], { encoding: "utf8" }).stdout.trim();
  if (!tarball || !fs.existsSync(tarball)) return undefined;
  const h = crypto.createHash("sha256").update("demo-disk v1\n").update(path.basename(tarball));
  for (const f of [pvImage, __filename.replace(/\.js$/, ".ts")]) if (fs.existsSync(f)) h.update(fs.readFileSync(f));
  return path.join(cacheDir(), `${h.digest("hex").slice(0, 16)}-pv.vmdk`);
}

/** Builds the disk when it is not cached (needs root), else returns the cached one. */
export function demoDisk(log: (line: string) => void): DemoDisk {
  const cached = demoDiskCached();
  if (cached) return { file: cached, built: false };
  if (process.getuid && process.getuid() !== 0) {
    throw new Error("building the demo PV disk needs root (test/support/pv-image.sh: debootstrap once, then unpacking its root with ownership): run `npm start` as root once, or `npm run start:recorded`");
  }
  log("debootstrap root (cached after the first run): bash test/support/pv-image.sh rootfs");
  must("bash", [pvImage, "rootfs"]);
  const out = demoDiskPath()!;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "demo-disk-"));
  try {
    const raw = path.join(work, "pv.img");
    log(`building the PV disk (ext4 on the whole disk by mke2fs -d, PV-GRUB menu.lst, console=hvc0, ${DEMO_DISK_MIB} MiB)`);
    must("bash", [pvImage, "build", "--layout", "flat", "--out", raw, "--marker", DEMO_MARKER, "--size-mib", String(DEMO_DISK_MIB), "--stay-up"]);
    // The test hook of pv-image.sh reboots after the first boot (the guest tests' kernel-update
    // check); an image that launch verification boots must stay up: the hook goes (debugfs: no mount).
    must("debugfs", ["-w", "-R", "rm /etc/systemd/system/multi-user.target.wants/ami-factory-marker.service", raw]);
    must("qemu-img", ["convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, `${out}.tmp`]);
    fs.renameSync(`${out}.tmp`, out);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  for (const f of fs.readdirSync(path.dirname(out))) if (path.join(path.dirname(out), f) !== out) fs.rmSync(path.join(path.dirname(out), f), { force: true });
  return { file: out, built: true };
}
