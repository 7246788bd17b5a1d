"""The twin's instances: a launched HVM image is a qemu VM booting a copy-on-write volume of its root
snapshot. This module knows qemu (command line, QMP, the serial console, what the boot shows); the
moto side (RunInstances, DescribeInstanceStatus, GetConsoleOutput, TerminateInstances) is in
twin/instances.py.

The VM, per instance:
- firmware by the image's boot mode: legacy-bios = SeaBIOS, uefi = OVMF (as EC2 boots them);
- the root volume by the instance type's hypervisor: on a Nitro type an NVMe controller whose
  serial is the volume id without its dash (EC2 User Guide, "Amazon EBS and NVMe": "The EBS volume
  ID is set as the serial number of the device"); on a Xen type (t2, m4, c4, r4, ...) an IDE disk
  on the PIIX3 controller, which is what a Xen HVM guest first sees before its PV drivers
  (xen-blkfront) unplug the emulated disks. The approximation: the guest sees /dev/sda (ata_piix)
  where a Xen guest with PV drivers would see /dev/xvda; a guest without them sees the same IDE
  disk as here. qemu 7.2's NVMe controller reports its model as "QEMU NVMe Ctrl" (it has no
  property for the model number, which EBS shows as "Amazon Elastic Block Store");
- no network device (-nic none) for an image (a worker's network: twin/network.py), one vCPU, VM_MEMORY_MIB of memory, TCG unless KVM can really run
  a kernel here (detect_accel, as test/support/qemu.ts decides);
- the serial console (ttyS0) into console.log and the firmware's debug port into firmware.log (for
  diagnosis) in
  the VM's folder under the store's run directory, a QMP socket for control (quit, query-status,
  blockdev-snapshot-sync for a snapshot of the volume while it runs).

Every qemu dies with the emulator: it runs in its own process group, is started from one
long-lived thread with PR_SET_PDEATHSIG=SIGKILL (the signal follows the *thread* that forked it,
so not from a request thread that ends), and the emulator's stop stops every VM first
(stop_all())."""

from __future__ import annotations

import ctypes
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..patching import PatchError
from . import worker_disk as wd
from .agent_channel import AgentChannel
from .worker_resume import SavedState

QEMU = "qemu-system-x86_64"
SEABIOS_PATHS = ("/usr/share/seabios/bios-256k.bin", "/usr/share/qemu/bios-256k.bin")
OVMF_PATHS = ("/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd")
VM_MEMORY_MIB = 768

# How long a VM may show no kernel on its console before its instance check is impaired: the
# firmware or the boot loader never handed over (a GRUB prompt, a boot loader waiting for a disk).
# A TCG boot shows "Linux version" 10-60 s after start on a loaded 2-core machine; 5 minutes leaves
# room and still fails a launch test long before its deadline.
NO_KERNEL_SECONDS = 300

# Only the most recent 64 KB of console output is available (GetConsoleOutput, EC2 API Reference:
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html).
CONSOLE_LIMIT = 64 * 1024


class HostToolsMissing(PatchError):
    """qemu or a firmware is not installed: the message names the Debian packages. A PatchError, so
    the launcher exits at start with it (the twin's launch patch cannot work without them)."""


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if os.path.exists(p)), None)


def missing_host_tools(qemu: str = QEMU, seabios: tuple[str, ...] = SEABIOS_PATHS,
                       ovmf: tuple[str, ...] = OVMF_PATHS) -> list[tuple[str, str]]:
    """(what, Debian package) for each tool the twin's VMs need that is not installed."""
    missing = []
    if shutil.which(qemu) is None:
        missing.append((qemu, "qemu-system-x86"))
    if _first(seabios) is None:
        missing.append(("SeaBIOS (bios-256k.bin, for legacy-bios images)", "seabios"))
    if _first(ovmf) is None:
        missing.append(("OVMF (OVMF.fd, for uefi images)", "ovmf"))
    return missing


def require_host_tools(**kwargs: Any) -> None:
    """Checked when the twin starts: an instance launch must not be the first to find qemu missing."""
    missing = missing_host_tools(**kwargs)
    if missing:
        what = "; ".join(f"{w} (Debian package {p})" for w, p in missing)
        packages = " ".join(p for _, p in missing)
        raise HostToolsMissing(f"the twin (AMI_FACTORY_EMULATOR=twin) boots instances in qemu and cannot find {what}: "
                               f"install them with `sudo apt-get install {packages}` (or scripts/install-guest-deps.sh)")


def detect_accel() -> tuple[str, str]:
    """("kvm" | "tcg", why): KVM only where it can run a stock kernel (test/support/qemu.ts detectAccel)."""
    forced = os.environ.get("AMI_FACTORY_QEMU_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced, "AMI_FACTORY_QEMU_ACCEL"
    if os.path.exists("/sys/module/kvm_pvm"):
        return "tcg", "kvm_pvm loaded: nested KVM without VMX cannot run a stock kernel"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm missing or not accessible"
    try:
        with open("/proc/cpuinfo") as f:
            if not re.search(r"^flags\s*:.*\b(vmx|svm)\b", f.read(), re.M):
                return "tcg", "the CPU shows neither vmx nor svm"
    except OSError:
        return "tcg", "/proc/cpuinfo unreadable"
    return "kvm", "/dev/kvm usable and the CPU has hardware virtualisation"


@dataclass
class VmSpec:
    instance_id: str
    volume_id: str
    disk: str  # the volume's qcow2 file
    boot_mode: str = "legacy-bios"  # or "uefi"
    storage: str = "nvme"  # or "xen"
    memory_mib: int = VM_MEMORY_MIB
    # The twin worker (twin/worker.py): its disk's kernel is booted directly, with the agent's port
    # and free PCIe root ports for hot-plugged volumes (worker_disk.qemu_argv); None for an image.
    worker: "wd.WorkerDisk | None" = None
    # A worker resumed from the saved post-boot state (twin/worker_resume.py) instead of booted: its
    # disk is an overlay on the state's frozen disk; None: a cold boot.
    resume: "SavedState | None" = None


def qemu_argv(spec: VmSpec, folder: str, accel: str, qemu: str = QEMU) -> list[str]:
    if spec.worker is not None:
        return [*wd.qemu_argv(spec.worker, spec.disk, os.path.join(folder, "agent.sock"), os.path.join(folder, "qmp.sock"),
                              os.path.join(folder, "console.log"), memory_mib=spec.memory_mib, accel=accel, qemu=qemu,
                              incoming=spec.resume.incoming() if spec.resume is not None else None),
                "-name", spec.instance_id, "-no-shutdown"]
    firmware = _first(OVMF_PATHS if spec.boot_mode == "uefi" else SEABIOS_PATHS)
    if firmware is None:
        require_host_tools()
    drive = f"file={spec.disk},format=qcow2,if=none,id=root,cache=unsafe,discard=unmap"
    if spec.storage == "nvme":
        disk = ["-device", f"nvme,drive=root,serial={spec.volume_id.replace('-', '')}"]
    else:
        disk = ["-device", "ide-hd,drive=root,bus=ide.0"]
    sercon: list[str] = []
    if spec.boot_mode != "uefi":
        # SeaBIOS shows its screen (the boot attempts, "No bootable device.") on the serial port
        # when fw_cfg names it (SeaBIOS's sercon, etc/sercon-port = 0x3f8); OVMF uses the serial
        # port by itself.
        port = os.path.join(folder, "sercon-port")
        with open(port, "wb") as f:
            f.write((0x3F8).to_bytes(2, "little"))
        sercon = ["-fw_cfg", f"name=etc/sercon-port,file={port}"]
    return [
        qemu, "-name", spec.instance_id,
        "-machine", "pc", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
        "-m", str(spec.memory_mib), "-smp", "1",
        "-bios", firmware,  # type: ignore[list-item]
        "-display", "none", "-vga", "none", "-monitor", "none", "-nodefaults",
        "-chardev", f"file,id=console,path={os.path.join(folder, 'console.log')}",
        "-serial", "chardev:console",
        "-chardev", f"file,id=firmware,path={os.path.join(folder, 'firmware.log')}",
        "-device", "isa-debugcon,iobase=0x402,chardev=firmware",
        "-qmp", f"unix:{os.path.join(folder, 'qmp.sock')},server=on,wait=off",
        "-nic", "none",
        # A guest power-off keeps qemu (and its state "shutdown") for the status check to see.
        "-no-shutdown",
        "-boot", "order=c,strict=on",
        *sercon,
        "-drive", drive, *disk,
    ]


# -- starting processes that die with the emulator ---------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class _Spawner:
    """One daemon thread that forks every qemu: PR_SET_PDEATHSIG fires when the forking thread
    ends, and this one lives as long as the emulator."""

    def __init__(self) -> None:
        self._jobs: "queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]]" = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            job, answer = self._jobs.get()
            try:
                answer.put((True, job()))
            except BaseException as e:  # handed back to the caller
                answer.put((False, e))

    def run(self, job: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="twin-vm-spawner", daemon=True)
                self._thread.start()
        answer: "queue.Queue[Any]" = queue.Queue()
        self._jobs.put((job, answer))
        ok, value = answer.get()
        if not ok:
            raise value
        return value


_SPAWNER = _Spawner()


# -- QMP ------------------------------------------------------------------------------------------

QmpError = wd.QmpError


def qmp(sock_path: str, command: str, arguments: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    """One QMP command on a fresh connection (worker_disk.Qmp, the twin's one QMP client); its
    "return" value (QmpError on an error answer)."""
    with wd.Qmp(sock_path, timeout=timeout) as q:
        return q.execute(command, arguments, timeout=timeout)


# -- what the console shows ---------------------------------------------------------------------------

# The firmware's last words on the serial console when no disk boots: SeaBIOS (its screen, through
# sercon) ends with "No bootable device." once every boot entry failed; OVMF says so or falls back
# to its shell. Whole lines only: the console is read while the firmware is still writing it.
FIRMWARE_GAVE_UP = re.compile(rb"No bootable device\.|No bootable option or device was found\.|UEFI Interactive Shell")
KERNEL_STARTED = re.compile(rb"Linux version \d")
# Userspace is up: a getty's login prompt, systemd's multi-user target, cloud-init's last line.
USERSPACE_UP = re.compile(rb"^[\w.-]+ login: |Reached target\b.*Multi-User System|^Cloud-init v\. \S+ finished at", re.M)
# The guest can no longer answer: a crash, a halt, a boot stuck in a rescue shell.
GUEST_DOWN = [
    (re.compile(rb"Kernel panic - not syncing"), "the kernel panicked"),
    (re.compile(rb"reboot: System halted"), "the guest halted"),
    (re.compile(rb"You are in emergency mode|Entering emergency mode"), "systemd is in emergency mode"),
    (re.compile(rb"Gave up waiting for root (file system )?device|Dropping to a shell!"), "the initramfs dropped to a shell"),
    (re.compile(rb"^grub rescue> *$", re.M), "GRUB is in its rescue shell"),
]


def _last(pattern: re.Pattern[bytes], text: bytes) -> int:
    """Where the last match starts, -1 if none."""
    pos = -1
    for m in pattern.finditer(text):
        pos = m.start()
    return pos


@dataclass
class Health:
    """Both status checks of EC2's DescribeInstanceStatus: "initializing" | "ok" | "impaired"."""
    system: str
    instance: str
    reason: str


def judge(console: bytes, run_state: str | None, exit_code: int | None, seconds: float) -> Health:
    """The status checks from what the VM shows (pure, so it is tested without a boot).

    EC2's instance check is a reachability test (an ARP request to the instance's network interface,
    EC2 User Guide, "Status checks for Amazon EC2 instances":
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-system-instance-status-check.html),
    which passes once the guest's userspace has configured its network, and fails for the causes that
    page lists (incorrect startup configuration, kernel panic / incompatible kernel, corrupted file
    system, ...). A twin VM has no network, so its reachability is read off the serial console:
    passed once userspace shows up (a login prompt, systemd's multi-user target, cloud-init's final
    line), failed when the firmware found nothing to boot, the kernel never appeared within
    NO_KERNEL_SECONDS, the guest crashed, halted, or powered off, or qemu itself died. The system
    check (the host) is ok while qemu runs, impaired when qemu could not run the instance."""
    if exit_code is not None:
        return Health("impaired", "impaired", f"qemu exited with status {exit_code}")
    if run_state in ("shutdown", "guest-panicked", "internal-error"):
        what = {"shutdown": "the guest powered off", "guest-panicked": "the guest panicked",
                "internal-error": "qemu stopped the guest on an internal error"}[run_state]
        return Health("ok", "impaired", what)
    up = _last(USERSPACE_UP, console)
    down = max(((_last(p, console), why) for p, why in GUEST_DOWN), default=(-1, ""))
    if down[0] > up:
        return Health("ok", "impaired", down[1])
    if up >= 0:
        return Health("ok", "ok", "userspace is up")
    if FIRMWARE_GAVE_UP.search(console):
        return Health("ok", "impaired", "the firmware found no bootable disk")
    if not KERNEL_STARTED.search(console) and seconds > NO_KERNEL_SECONDS:
        return Health("ok", "impaired", f"no kernel on the console {NO_KERNEL_SECONDS} s after the start")
    return Health("ok", "initializing", "booting")


# -- the VM ---------------------------------------------------------------------------------------

@dataclass
class Vm:
    spec: VmSpec
    folder: str
    accel: str = "tcg"
    proc: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)
    start_error: str | None = None
    stopped: bool = False
    _exit_noted: bool = False  # qemu's exit message is on the console
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # A worker's: the agent's channel (SSM's end) and the volumes hot-plugged into it.
    agent: AgentChannel | None = None
    attachments: dict[str, "Attachment"] = field(default_factory=dict)
    resumed_in: float | None = None  # a resumed worker: seconds its saved state took to load
    # A worker's IMDS and S3 listeners (twin/network.py), closed with the VM.
    network: Any = None

    @property
    def console_path(self) -> str:
        return os.path.join(self.folder, "console.log")

    @property
    def qmp_path(self) -> str:
        return os.path.join(self.folder, "qmp.sock")

    def start(self, qemu: str = QEMU) -> None:
        """Start qemu. A qemu that cannot start leaves its message on the console (and the instance
        impaired), as the serial console is where an EC2 user looks."""
        os.makedirs(self.folder, exist_ok=True)
        for name in ("console.log", "firmware.log"):
            open(os.path.join(self.folder, name), "wb").close()
        if self.spec.resume is not None:
            # The boot that made the saved state: the console of a resumed worker shows a boot, as
            # an instance's does (qemu appends to it).
            shutil.copyfile(self.spec.resume.console, self.console_path)
        argv = qemu_argv(self.spec, self.folder, self.accel, qemu)
        with open(os.path.join(self.folder, "argv.json"), "w") as f:
            json.dump(argv, f)
        stderr = open(os.path.join(self.folder, "qemu.stderr"), "wb")
        try:
            self.proc = _SPAWNER.run(lambda: subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                start_new_session=True, preexec_fn=_die_with_parent, close_fds=True))
        except OSError as e:
            self.start_error = f"qemu could not start: {e}"
            self._note(self.start_error)
        finally:
            stderr.close()

    def _note(self, text: str) -> None:
        with open(self.console_path, "ab") as f:
            f.write(f"\r\n[twin] {text}\r\n".encode())

    def exit_code(self) -> int | None:
        """qemu's exit status once it ended on its own (None while it runs or after stop())."""
        if self.start_error is not None:
            return 127
        if self.proc is None or self.stopped:
            return None
        code = self.proc.poll()
        if code is not None:
            with self._lock:
                noted, self._exit_noted = self._exit_noted, True
            if not noted:
                message = self._stderr()
                self._note(f"qemu exited with status {code}" + (f": {message}" if message else ""))
        return code

    def _stderr(self) -> str:
        try:
            with open(os.path.join(self.folder, "qemu.stderr"), "rb") as f:
                # Not the warning our own etc/sercon-port item always draws.
                return "\n".join(ln for ln in f.read().decode("utf-8", "replace").splitlines()
                                 if "externally provided fw_cfg" not in ln).strip()
        except OSError:
            return ""

    def run_state(self) -> str | None:
        """QMP query-status ("running", "shutdown", "guest-panicked", ...), None if qemu does not answer."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            return qmp(self.qmp_path, "query-status", timeout=5).get("status")
        except (OSError, QmpError, ValueError):
            return None

    def console(self) -> bytes:
        try:
            with open(self.console_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def health(self) -> Health:
        code = self.exit_code()
        state = self.run_state() if code is None else None
        return judge(self.console(), state, code, time.monotonic() - self.started)

    def control(self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 10) -> Any:
        """A QMP command, waiting (up to `timeout`) for a just-started qemu to open its socket."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.qmp_path):
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                raise QmpError(f"qemu of {self.spec.instance_id} has no QMP socket")
            time.sleep(0.05)
        return qmp(self.qmp_path, command, arguments, timeout=timeout)

    def freeze(self, new_path: str) -> None:
        """The store's live freezer: continue writing into a new overlay at new_path (the file open
        so far becomes the snapshot's frozen layer)."""
        device = "virtio0" if self.spec.worker is not None else "root"  # the worker's root is -drive if=virtio
        self.control("blockdev-snapshot-sync",
                     {"device": device, "snapshot-file": new_path, "format": "qcow2", "mode": "absolute-paths"}, timeout=60)

    # -- a worker's hot-plugged volumes (AttachVolume / DetachVolume, twin/worker.py) ---------------

    def attach_volume(self, volume_id: str, path: str, size_bytes: int) -> None:
        """Hot-plug the volume's file as an NVMe controller (serial = the volume id without its
        dash) into a free PCIe root port. AttachmentLimit when every port is taken."""
        self._wait_running()  # outside the lock: a failed resume's cold boot takes it
        with self._lock:
            if volume_id in self.attachments:
                return
            used = {a.port for a in self.attachments.values()}
            port = next((i for i in range(wd.HOTPLUG_PORTS) if i not in used), None)
            if port is None:
                raise AttachmentLimit(f"the twin's worker has {wd.HOTPLUG_PORTS} slots for volumes, all in use")
            self._wait_qmp()
            with wd.Qmp(self.qmp_path) as q:
                wd.attach_nvme(q, volume_id, path, port)
            self.attachments[volume_id] = Attachment(port, size_bytes, [f"node-{wd.nvme_serial(volume_id)}"], [path])

    def freeze_volume(self, volume_id: str, new_path: str) -> None:
        """The store's live freezer for a hot-plugged volume: a new qcow2 overlay at new_path on the
        file the VM writes now, made the volume's top node (QMP blockdev-add + blockdev-snapshot, so
        every node stays the monitor's and DetachVolume can delete them all)."""
        with self._lock:
            a = self.attachments[volume_id]
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", a.paths[-1], "-F", "qcow2",
                            new_path, str(a.size_bytes)], check=True, capture_output=True)
            node = f"{a.nodes[0]}-{len(a.nodes)}"
            with wd.Qmp(self.qmp_path) as q:
                q.execute("blockdev-add", {"driver": "qcow2", "node-name": node,
                                           "file": {"driver": "file", "filename": new_path}, "backing": None})
                try:
                    q.execute("blockdev-snapshot", {"node": a.nodes[-1], "overlay": node}, timeout=60)
                except QmpError:
                    q.execute("blockdev-del", {"node-name": node})
                    raise
            a.nodes.append(node)
            a.paths.append(new_path)

    def detach_volume(self, volume_id: str, timeout: float = 120) -> None:
        """Unplug the volume's controller; returns once the guest released it and qemu closed its files."""
        with self._lock:
            a = self.attachments.get(volume_id)
            if a is None:
                return
            with wd.Qmp(self.qmp_path) as q:
                q.execute("device_del", {"id": f"dev-{wd.nvme_serial(volume_id)}"})
                q.wait_event("DEVICE_DELETED", timeout, device=f"dev-{wd.nvme_serial(volume_id)}")
                for node in reversed(a.nodes):
                    q.execute("blockdev-del", {"node-name": node})
            del self.attachments[volume_id]

    def _wait_running(self, timeout: float = 180) -> None:
        """Until the guest runs: a worker resumed from a saved state is paused while it loads (until
        `cont`), and a device plugged in then is not in the state the guest resumes with, so its
        hot-plug would never reach the guest. A VM that never runs is left to fail at the plug."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return
            if self.run_state() == "running":
                return
            time.sleep(0.2)

    def _wait_qmp(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.qmp_path):
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                raise QmpError(f"qemu of {self.spec.instance_id} has no QMP socket")
            time.sleep(0.05)

    def stop(self, grace: float = 5) -> None:
        """QMP quit, then SIGKILL to the process group; waits for qemu to be gone."""
        self.stopped = True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            self.control("quit", timeout=grace)
        except (OSError, QmpError, ValueError):
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
        if self.agent is not None:
            self.agent.close()
        if self.network is not None:
            self.network.close()


@dataclass
class Attachment:
    """A volume hot-plugged into a worker: its PCIe root port, its size, its block nodes and their
    files (bottom first; each snapshot through the VM adds one)."""
    port: int
    size_bytes: int
    nodes: list[str]
    paths: list[str]


class AttachmentLimit(RuntimeError):
    pass


def console_output(vm: Vm) -> bytes:
    """What GetConsoleOutput returns: the most recent 64 KB of the serial console."""
    return vm.console()[-CONSOLE_LIMIT:]


# -- every VM of the process -------------------------------------------------------------------------

_VMS: dict[str, Vm] = {}
_VMS_LOCK = threading.Lock()


def add(vm: Vm) -> None:
    with _VMS_LOCK:
        _VMS[vm.spec.instance_id] = vm


def get(instance_id: str) -> Vm | None:
    with _VMS_LOCK:
        return _VMS.get(instance_id)


def remove(instance_id: str) -> Vm | None:
    with _VMS_LOCK:
        return _VMS.pop(instance_id, None)


def stop_all() -> None:
    """Stop every VM (the emulator's stop, moto's reset): before the store removes their files."""
    with _VMS_LOCK:
        vms = list(_VMS.values())
        _VMS.clear()
    threads = [threading.Thread(target=vm.stop, daemon=True) for vm in vms]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
