// Boots a raw disk image in qemu-system-x86_64 with SeaBIOS (a BIOS boot, as an EC2 HVM/Nitro
// instance does it) and watches its serial console for a marker line.
//
// Accelerator: KVM only where it can really run a stock kernel. On machines whose /dev/kvm is
// nested virtualisation without VMX (the kvm_pvm module), firmware and GRUB run but the kernel
// hangs after decompression, so TCG is used there (-accel tcg -cpu max). AMI_FACTORY_QEMU_ACCEL=
// kvm|tcg overrides the detection.
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";

export type Accel = "kvm" | "tcg";
export type DiskBus = "nvme" | "virtio" | "ide";

export interface AccelChoice {
  accel: Accel;
  /** Why this accelerator was chosen. */
  why: string;
}

export interface BootOptions {
  /** Raw disk image to boot (the only disk). */
  image: string;
  /** The exact text whose appearance on the serial console means "booted". */
  marker: string;
  /** Give up after this long. */
  timeoutMs: number;
  /** Serial console output goes here (kept for diagnosis). */
  serialLog: string;
  /** SeaBIOS debug output (isa-debugcon) goes here. Default: serialLog + ".bios". */
  biosLog?: string;
  /** Guest memory. Default 1024 MiB. */
  memMiB?: number;
  /** How the disk is attached. Default "nvme", as EBS volumes on Nitro instances. */
  bus?: DiskBus;
  /** Default: detectAccel(). */
  accel?: Accel;
  /** Firmware: "seabios" (BIOS, default) or "ovmf" (UEFI, /usr/share/ovmf/OVMF.fd, package ovmf). */
  firmware?: "seabios" | "ovmf";
  /** Stop as soon as SeaBIOS reports that nothing is bootable. Default true. */
  stopWhenNotBootable?: boolean;
  /** Let the guest reboot within the run (the overlay of snapshot=on is kept across it). Default false: a reboot ends qemu. */
  allowReboot?: boolean;
}

export type BootOutcome = "marker" | "not-bootable" | "timeout" | "exited";

export interface BootResult {
  outcome: BootOutcome;
  seconds: number;
  accel: Accel;
  /** Serial console text. */
  serial: string;
  /** SeaBIOS debug text. */
  bios: string;
  /** qemu exit code when it exited on its own. */
  exitCode: number | null;
  /** The command line used. */
  argv: string[];
}

const NOT_BOOTABLE = /No bootable device|Boot failed: not a bootable disk/;

/** Decides between KVM and TCG for this machine. */
export function detectAccel(): AccelChoice {
  const forced = process.env.AMI_FACTORY_QEMU_ACCEL;
  if (forced === "kvm" || forced === "tcg") return { accel: forced, why: "AMI_FACTORY_QEMU_ACCEL" };
  if (fs.existsSync("/sys/module/kvm_pvm")) {
    return { accel: "tcg", why: "kvm_pvm loaded: nested KVM without VMX cannot run a stock kernel" };
  }
  try {
    fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accel: "tcg", why: "/dev/kvm missing or not accessible" };
  }
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
    return { accel: "tcg", why: "the CPU shows neither vmx nor svm" };
  }
  return { accel: "kvm", why: "/dev/kvm usable and the CPU has hardware virtualisation" };
}

/** The SeaBIOS image qemu should load (explicit, so that a missing package shows up clearly). */
export function seabiosPath(): string {
  for (const p of ["/usr/share/seabios/bios-256k.bin", "/usr/share/qemu/bios-256k.bin"]) {
    if (fs.existsSync(p)) return p;
  }
  throw new Error("SeaBIOS firmware (bios-256k.bin) not found: run scripts/install-guest-deps.sh as root");
}

/** The OVMF (UEFI) image for qemu-system-x86_64 (package ovmf). */
export function ovmfPath(): string {
  for (const p of ["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"]) {
    if (fs.existsSync(p)) return p;
  }
  throw new Error("OVMF firmware (OVMF.fd) not found: run scripts/install-guest-deps.sh as root (package ovmf)");
}

/** Throws a clear error when qemu-system-x86_64 is not installed. */
export function requireQemu(): void {
  const r = spawnSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error("qemu-system-x86_64 is not installed: run scripts/install-guest-deps.sh as root");
  }
}

export function qemuArgs(o: BootOptions, accel: Accel): string[] {
  const biosLog = o.biosLog ?? `${o.serialLog}.bios`;
  // snapshot=on: the boot writes to a throwaway overlay, so the image stays exactly as the guest
  // script left it for the tests that inspect it (a VM killed after its marker leaves a dirty journal).
  const disk: string[] = [`-drive`, `file=${o.image},format=raw,if=none,id=d0,cache=unsafe,snapshot=on`];
  switch (o.bus ?? "nvme") {
    case "nvme":
      disk.push("-device", "nvme,drive=d0,serial=vol0123456789abcdef0");
      break;
    case "virtio":
      disk.push("-device", "virtio-blk-pci,drive=d0");
      break;
    case "ide":
      disk.push("-device", "ide-hd,drive=d0,bus=ide.0");
      break;
  }
  return [
    "-accel", accel,
    "-cpu", accel === "kvm" ? "host" : "max",
    "-m", String(o.memMiB ?? 1024),
    "-smp", "2",
    "-bios", o.firmware === "ovmf" ? ovmfPath() : seabiosPath(),
    "-display", "none", "-vga", "none", "-monitor", "none",
    "-serial", `file:${o.serialLog}`,
    "-chardev", `file,id=biosdbg,path=${biosLog}`,
    "-device", "isa-debugcon,iobase=0x402,chardev=biosdbg",
    "-boot", "order=c,strict=on",
    "-nic", "none",
    ...(o.allowReboot ? [] : ["-no-reboot"]),
    ...disk,
  ];
}

function readText(p: string): string {
  try {
    return fs.readFileSync(p, "latin1");
  } catch {
    return "";
  }
}

/**
 * Boots `image` and resolves when the marker appears on the serial console (outcome "marker"),
 * SeaBIOS finds nothing to boot ("not-bootable"), qemu exits ("exited") or the timeout passes
 * ("timeout"). qemu is always killed before this resolves.
 */
export async function bootImage(o: BootOptions): Promise<BootResult> {
  requireQemu();
  const accel = o.accel ?? detectAccel().accel;
  const biosLog = o.biosLog ?? `${o.serialLog}.bios`;
  for (const f of [o.serialLog, biosLog]) fs.writeFileSync(f, "");
  const argv = qemuArgs(o, accel);
  const t0 = Date.now();
  const child = spawn("qemu-system-x86_64", argv, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let exitCode: number | null = null;
  let exited = false;
  const exitedP = new Promise<void>((resolve) =>
    child.on("exit", (code) => {
      exited = true;
      exitCode = code;
      resolve();
    }),
  );
  child.on("error", () => {
    exited = true;
  });

  let outcome: BootOutcome = "timeout";
  try {
    for (;;) {
      const serial = readText(o.serialLog);
      if (serial.includes(o.marker)) {
        outcome = "marker";
        break;
      }
      if ((o.stopWhenNotBootable ?? true) && (NOT_BOOTABLE.test(readText(biosLog)) || NOT_BOOTABLE.test(serial))) {
        outcome = "not-bootable";
        break;
      }
      if (exited) {
        // Flushes may land just after exit: one more look.
        outcome = readText(o.serialLog).includes(o.marker) ? "marker" : "exited";
        break;
      }
      if (Date.now() - t0 > o.timeoutMs) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    if (!exited) {
      child.kill("SIGKILL");
      await exitedP;
    }
  }
  const seconds = (Date.now() - t0) / 1000;
  const serial = readText(o.serialLog);
  if (outcome === "exited" && exitCode !== 0 && stderr) {
    fs.appendFileSync(o.serialLog, `\n[qemu stderr]\n${stderr}`);
  }
  return { outcome, seconds, accel, serial, bios: readText(biosLog), exitCode, argv };
}
