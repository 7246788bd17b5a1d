"""The twin's worker machine: where its disk is, how qemu boots it, how EBS volumes hot-plug into it.

The disk is built by scripts/emulator/twin_worker/build-worker-disk.sh (through `setup.sh --twin`)
into a cache outside the repository, never here: worker_disk() only finds it, and fails naming the
setup command when it is missing or stale.

  disk = worker_disk()                            # WorkerDiskMissing if setup --twin did not run
  argv = qemu_argv(disk, overlay, agent_sock, qmp_sock, console_log)
                                                  # q35, direct kernel boot, the agent's virtio-serial
                                                  # port, HOTPLUG_PORTS free PCIe slots, a NIC that
                                                  # reaches IMDS and S3 only (twin/network.py)
  with Qmp(qmp_sock) as q:
      attach_nvme(q, "vol-0123456789abcdef0", "/path/vol.qcow2", port=0)
      detach_nvme(q, "vol-0123456789abcdef0")     # waits until the guest let it go

A Nitro instance sees an EBS volume as an NVMe controller whose serial number is the volume id
without its dash, model "Amazon Elastic Block Store" ("Amazon EBS and NVMe", EC2 User Guide,
https://docs.aws.amazon.com/ebs/latest/userguide/nvme-ebs-volumes.html). qemu's nvme device takes
the serial; its model is fixed ("QEMU NVMe Ctrl"), so the worker disk's udev rule gives the volume
the by-id name EC2's model gives it (twin_worker/rootfs/61-ami-factory-ebs-nvme.rules).
"""
from __future__ import annotations

import functools
import json
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from . import network
from .agent_channel import qemu_args as agent_qemu_args

BUILD_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "twin_worker", "build-worker-disk.sh")
# Free PCIe root ports a worker boots with: one per volume attached at a time (the source, the
# target and a spare).
HOTPLUG_PORTS = 4


class WorkerDiskMissing(RuntimeError):
    """No current worker disk in the cache: `bash scripts/setup.sh --twin` builds it."""


@dataclass(frozen=True)
class WorkerDisk:
    folder: str
    disk: str
    kernel: str
    initrd: str
    cmdline: str
    manifest: dict[str, Any]

    @property
    def s3_address(self) -> str:
        """Where the disk's /etc/hosts puts S3 and SSM (its network's guestfwd address for them)."""
        return network.check_address(self.manifest.get("s3Address") or network.S3_ADDRESS)

    @property
    def ca_dir(self) -> str:
        """The twin's CA the disk trusts (ca.pem, ca.key): the emulator signs S3's certificate with it."""
        return str(self.manifest["caDir"])

    def s3_names(self) -> list[str]:
        """The endpoint names (S3, SSM) the disk's /etc/hosts maps to s3_address."""
        with open(os.path.join(self.folder, "endpoint-hosts")) as f:
            return [line.strip() for line in f if line.strip()]


def worker_disk(script: str = BUILD_SCRIPT) -> WorkerDisk:
    """The cached worker disk for the current sources (WorkerDiskMissing names the fix otherwise)."""
    done = subprocess.run(["bash", script, "path"], capture_output=True, text=True)
    if done.returncode != 0:
        raise WorkerDiskMissing(done.stderr.strip() or "the twin's worker disk is missing: run 'bash scripts/setup.sh --twin'")
    folder = done.stdout.strip()
    with open(os.path.join(folder, "cmdline")) as f:
        cmdline = f.read().strip()
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    return WorkerDisk(folder, os.path.join(folder, "disk.qcow2"), os.path.join(folder, "vmlinux"),
                      os.path.join(folder, "initrd.img"), cmdline, manifest)


def make_overlay(disk: WorkerDisk, path: str) -> None:
    """A copy-on-write layer over the cached disk: a worker never writes to the cache."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", disk.disk, path], check=True)


# The CPU model, named: a saved worker state (twin/worker_resume.py) restores only into the CPU it
# was saved from. qemu64 is what q35 gave the worker when it was not named.
CPU_MODEL = "qemu64"


@functools.lru_cache(maxsize=None)
def has_vmgenid(qemu: str) -> bool:
    """qemu has the VM generation ID device (ACPI "Virtual Machine Generation ID")."""
    done = subprocess.run([qemu, "-device", "help"], capture_output=True, text=True)
    return re.search(r'^name "vmgenid"', done.stdout, re.M) is not None


def qemu_argv(disk: WorkerDisk, overlay: str, agent_sock: str, qmp_sock: str, console_log: str,
              memory_mib: int = 1024, cpus: int = 1, accel: str = "tcg", qemu: str = "qemu-system-x86_64",
              incoming: str | None = None, imds_sock: str | None = None, s3_sock: str | None = None) -> list[str]:
    """The worker VM's command line: the root disk as virtio, the kernel booted directly, the serial
    console appended to a file (a resumed worker's starts with the saved boot's), QMP and the agent's
    port as unix sockets, and one virtio NIC on restricted user networking that reaches only IMDS and
    S3 through imds_sock and s3_sock (network.py; by default next to the agent's socket).
    `incoming`: a saved state's migration URI (qemu -incoming): the VM loads it instead of booting,
    and waits paused for `cont`."""
    default_imds, default_s3 = network.sockets(os.path.dirname(agent_sock))
    argv = [qemu, "-machine", f"q35,accel={accel}", "-cpu", CPU_MODEL, "-m", str(memory_mib), "-smp", str(cpus),
            "-display", "none", "-no-user-config", "-nodefaults",
            *network.netdev_args(imds_sock or default_imds, s3_sock or default_s3, disk.s3_address),
            "-kernel", disk.kernel, "-initrd", disk.initrd, "-append", disk.cmdline,
            "-drive", f"file={overlay},format=qcow2,if=virtio,cache=unsafe",
            "-chardev", f"file,id=console,path={console_log},append=on", "-serial", "chardev:console",
            "-qmp", f"unix:{qmp_sock},server=on,wait=off",
            *agent_qemu_args(agent_sock)]
    for i in range(HOTPLUG_PORTS):
        argv += ["-device", f"pcie-root-port,id=hp{i},chassis={i + 1},bus=pcie.0"]
    if has_vmgenid(qemu):
        # A new generation ID per qemu (guid=auto), written into the guest after a state loads:
        # the guest kernel's vmgenid driver then reseeds its RNG (workers resumed from one state
        # draw their own random numbers even before the agent's hello reseeds it).
        argv += ["-device", "vmgenid,guid=auto"]
    if incoming is not None:
        argv += ["-incoming", incoming]
    return argv


class QmpError(RuntimeError):
    pass


class Qmp:
    """A QMP connection that keeps the events it reads (device_del completes with DEVICE_DELETED)."""

    def __init__(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile("rwb")
        self.events: list[dict[str, Any]] = []
        greeting = self._read(timeout)
        if "QMP" not in greeting:
            raise QmpError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def __enter__(self) -> "Qmp":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def _read(self, timeout: float) -> dict[str, Any]:
        self.sock.settimeout(timeout)
        line = self.file.readline()
        if not line:
            raise QmpError("qemu closed the QMP connection")
        return json.loads(line)

    def execute(self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            answer = self._read(timeout)
            if "event" in answer:
                self.events.append(answer)
            elif "error" in answer:
                raise QmpError(f"{command}: {answer['error'].get('desc')}")
            elif "return" in answer:
                return answer["return"]

    def wait_event(self, name: str, timeout: float, **data: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e["event"] == name and all(e.get("data", {}).get(k) == v for k, v in data.items()):
                    self.events.remove(e)
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {name} {data} from qemu within {timeout:g} s")
            try:
                answer = self._read(left)
            except socket.timeout:
                continue
            if "event" in answer:
                self.events.append(answer)


def nvme_serial(volume_id: str) -> str:
    """The NVMe serial a Nitro instance shows for a volume: its id without the dash."""
    if not re.fullmatch(r"vol-[0-9a-f]{8}(?:[0-9a-f]{9})?", volume_id):
        raise ValueError(f"not an EBS volume id: {volume_id!r}")
    return volume_id.replace("-", "")


def attach_nvme(qmp: Qmp, volume_id: str, path: str, port: int, fmt: str = "qcow2") -> None:
    """Hot-plugs the file at `path` as the volume's NVMe controller into free root port hp<port>."""
    serial = nvme_serial(volume_id)
    qmp.execute("blockdev-add", {"driver": fmt, "node-name": f"node-{serial}",
                                 "file": {"driver": "file", "filename": path}})
    try:
        qmp.execute("device_add", {"driver": "nvme", "id": f"dev-{serial}", "serial": serial,
                                   "drive": f"node-{serial}", "bus": f"hp{port}"})
    except QmpError:
        qmp.execute("blockdev-del", {"node-name": f"node-{serial}"})
        raise


def detach_nvme(qmp: Qmp, volume_id: str, timeout: float = 60) -> None:
    """Unplugs the volume's controller; returns once the guest has released it and its file is closed."""
    serial = nvme_serial(volume_id)
    qmp.execute("device_del", {"id": f"dev-{serial}"})
    qmp.wait_event("DEVICE_DELETED", timeout, device=f"dev-{serial}")
    qmp.execute("blockdev-del", {"node-name": f"node-{serial}"})
