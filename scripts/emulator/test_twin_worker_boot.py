"""The twin's worker really runs commands (one qemu VM, TCG, shared by every test here, resumed from
the booted worker's state that setup.sh --twin saved: that save is the worker disk's real boot,
through the same command line): the cached worker disk, its agent over virtio-serial, a command's
stdout/stderr/exit status, its execution timeout and cancel, and an EBS volume hot-plugged as a
Nitro instance sees it, found by lib/devices.sh by its volume id, then unplugged.

Needs the worker disk: `bash scripts/setup.sh --twin` builds it (the test fails saying so).
Run: python3 -m pytest -q scripts/emulator/test_twin_worker_boot.py
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Iterator

import pytest

from ami_emulator.twin.agent_channel import AgentChannel, CommandResult
from ami_emulator.twin.instances import WORKER_MEMORY_MIB
from ami_emulator.twin.vm import detect_accel
from ami_emulator.twin.worker_resume import resume_when_loaded, saved_state, template_argv
from ami_emulator.twin.worker_disk import (Qmp, WorkerDisk, WorkerDiskMissing, attach_nvme, detach_nvme,
                                           make_overlay, nvme_serial, qemu_argv, worker_disk)

GUEST_LIB = os.path.join(os.path.dirname(__file__), "..", "guest", "lib")
DEVICES_SH, TOOLS_SH, COMMON_SH = (os.path.join(GUEST_LIB, f) for f in ("devices.sh", "tools.sh", "common.sh"))
VOLUME = "vol-0123456789abcdef0"
BOOT_TIMEOUT = 120  # a resume: seconds, on two shared cores


@dataclass
class Worker:
    disk: WorkerDisk
    agent: AgentChannel
    qmp: Qmp
    folder: str
    console: str
    boot_seconds: float
    ready: dict


def _say(text: str) -> None:
    print(f"twin worker boot: {text}", file=sys.stderr)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    disk = worker_disk()  # fails naming `bash scripts/setup.sh --twin` when it is missing or stale
    state = saved_state(disk, detect_accel()[0], WORKER_MEMORY_MIB)
    assert state is not None, "no current saved worker state: run 'bash scripts/setup.sh --twin'"
    folder = str(tmp_path_factory.mktemp("twin-worker"))
    overlay, console = os.path.join(folder, "disk.qcow2"), os.path.join(folder, "console.log")
    agent_sock, qmp_sock = os.path.join(folder, "agent.sock"), os.path.join(folder, "qmp.sock")
    make_overlay(dataclasses.replace(disk, disk=state.disk), overlay)  # on the disk as the boot left it
    shutil.copyfile(state.console, console)
    started = time.monotonic()
    # The emulator's own worker command line (vm.qemu_argv), resuming.
    proc = subprocess.Popen(template_argv(disk, folder, detect_accel()[0], WORKER_MEMORY_MIB, resume=state),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    qmp = agent = None
    try:
        _say(f"saved state loaded in {resume_when_loaded(qmp_sock):.1f} s")  # (qemu serves one QMP client at a time)
        qmp = Qmp(qmp_sock)
        agent = AgentChannel(agent_sock)
        try:
            ready = agent.wait_ready(timeout=BOOT_TIMEOUT)
        except Exception:
            with open(console, errors="replace") as f:
                tail = f.read()[-3000:]
            raise AssertionError(f"the worker's agent never announced itself; console:\n{tail}")
        boot = time.monotonic() - started
        _say(f"agent ready {boot:.1f} s after qemu started (the saved boot took {state.manifest['bootSeconds']} s); "
             f"disk {disk.manifest.get('diskBytes', 0) / 2**20:.0f} MiB")
        yield Worker(disk, agent, qmp, folder, console, boot, ready)
    finally:
        if agent is not None:
            agent.close()
        if qmp is not None:
            try:
                qmp.execute("quit", timeout=5)
            except Exception:
                pass
            qmp.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def test_a_missing_worker_disk_names_the_setup_command(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMI_FACTORY_CACHE", str(tmp_path))
    with pytest.raises(WorkerDiskMissing, match=r"run 'bash scripts/setup.sh --twin'"):
        worker_disk()


def test_the_worker_vm_has_one_restricted_nic_and_free_hotplug_slots() -> None:
    disk = WorkerDisk("/c", "/c/disk.qcow2", "/c/vmlinux", "/c/initrd.img", "root=/dev/vda console=ttyS0", {})
    argv = qemu_argv(disk, "/r/root.qcow2", "/r/agent.sock", "/r/qmp.sock", "/r/console.log")
    assert "-nic" not in argv and "-nodefaults" in argv
    # IMDS and S3 only (twin/network.py, test_twin_network.py), their sockets next to the agent's.
    assert argv.count("-netdev") == 1 and [a for a in argv if a.startswith("virtio-net")] == [
        "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56"]
    assert "restrict=on" in argv[argv.index("-netdev") + 1].split(",")
    assert "/r/imds.sock" in argv[argv.index("-netdev") + 1] and "/r/s3.sock" in argv[argv.index("-netdev") + 1]
    assert [a for a in argv if a.startswith("pcie-root-port")] == [
        f"pcie-root-port,id=hp{i},chassis={i + 1},bus=pcie.0" for i in range(4)]
    assert "file=/r/root.qcow2,format=qcow2,if=virtio,cache=unsafe" in argv  # the overlay, never the cache
    assert nvme_serial("vol-0123456789abcdef0") == "vol0123456789abcdef0"
    with pytest.raises(ValueError, match="not an EBS volume id"):
        nvme_serial("vol-xyz")


def run(w: Worker, cid: str, commands: list[str], timeout: float = 120, **kw) -> CommandResult:
    w.agent.send(cid, commands, **kw)
    return w.agent.wait(cid, timeout=timeout)


def test_the_agent_announces_itself_from_the_worker(worker: Worker) -> None:
    assert worker.ready["hostname"] == "ami-factory-worker" and worker.ready["protocol"] == 1


def test_a_command_runs_as_root_with_its_stdout_stderr_and_exit_status(worker: Worker) -> None:
    r = run(worker, "id", ["id -u", "echo to-stderr >&2", "ls /sys/class/net | grep -c '^eth' || true",
                           "exit 3"])
    assert (r.status, r.exit_code) == ("Failed", 3)
    assert r.stdout.decode().split() == ["0", "1"]  # root, and one NIC (IMDS and S3 only: test_twin_network.py)
    assert r.stderr == b"to-stderr\n"
    # The round trip of a command that does nothing: the agent's overhead.
    began = time.monotonic()
    assert run(worker, "nothing", ["true"]).status == "Success"
    _say(f"a command that does nothing takes {time.monotonic() - began:.2f} s end to end")


def _tools_table() -> list[str]:
    """Every tool of lib/tools.sh's table that Debian has a package for (the apt-get column)."""
    with open(TOOLS_SH) as f:
        table = f.read().split("<<'TABLE'\n", 1)[1].split("\nTABLE\n", 1)[0]
    tools = []
    for row in table.splitlines():
        cols = row.split()
        if cols and not row.lstrip().startswith("#") and cols[2] != "-":
            tools += cols[0].split(",")
    # The scripts take lsinitramfs or dracut's lsinitrd; an x86_64 worker builds x86_64 images.
    return [t for t in tools if t not in ("lsinitrd", "grub-modules:arm64-efi")]


def test_the_tools_of_the_guest_scripts_are_on_the_worker(worker: Worker) -> None:
    tools = _tools_table()
    assert {"sfdisk", "mkfs.ext4", "qemu-img", "grub-install", "grub-modules:i386-pc", "debootstrap"} <= set(tools)
    # With no package manager to fall back on, ensure_tools names whatever is missing.
    r = run(worker, "tools", [*_shipped(COMMON_SH, "/root/lib/common.sh"), *_shipped(TOOLS_SH, "/root/lib/tools.sh"),
                              f"GUEST_PKG_MANAGER=none bash /root/lib/tools.sh ensure {' '.join(tools)}",
                              "for t in nvme rsync python3; do command -v $t >/dev/null || echo missing $t; done"])
    assert (r.status, r.stdout, r.stderr) == ("Success", b"", b""), r.stderr.decode()


def test_execution_timeout_and_cancel(worker: Worker) -> None:
    r = run(worker, "slow", ["echo before", "sleep 60"], execution_timeout=3)
    assert r.status == "TimedOut" and r.stdout == b"before\n"
    worker.agent.send("to-cancel", ["sleep 120"])
    deadline = time.monotonic() + 60
    while not worker.agent.started("to-cancel"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    worker.agent.cancel("to-cancel")
    assert worker.agent.wait("to-cancel", timeout=60).status == "Cancelled"


def _shipped(path: str, to: str) -> list[str]:
    """Command lines that write the file at `path` to `to` on the worker, as the provider sends a
    script (gzip + base64 in a here-document)."""
    with open(path, "rb") as f:
        packed = base64.b64encode(gzip.compress(f.read())).decode()
    return [f"mkdir -p {os.path.dirname(to)}", f"base64 -d <<'EOF' | gunzip > {to}",
            *[packed[i:i + 1024] for i in range(0, len(packed), 1024)], "EOF"]


def _devices_sh_lines() -> list[str]:
    return _shipped(DEVICES_SH, "/root/devices.sh")


def test_a_hot_plugged_volume_is_found_by_its_id_and_gone_after_unplug(worker: Worker) -> None:
    vol = os.path.join(worker.folder, "vol.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", vol, "1G"], check=True)
    attach_nvme(worker.qmp, VOLUME, vol, port=0)
    r = run(worker, "resolve", [*_devices_sh_lines(), "set -e",
                                f"dev=$(GUEST_DEVICE_WAIT_SECONDS=120 bash /root/devices.sh resolve {VOLUME})",
                                "echo $dev", "blockdev --getsize64 $dev", "cat /sys/block/${dev##*/}/device/serial",
                                "echo data | dd of=$dev bs=512 count=1 conv=sync,fsync status=none"])
    assert r.status == "Success", r.stderr.decode()
    dev, size, serial = r.stdout.decode().split()
    assert dev.startswith("/dev/nvme") and size == str(2**30) and serial == "vol0123456789abcdef0"

    detach_nvme(worker.qmp, VOLUME)
    r = run(worker, "gone", [*_devices_sh_lines(), f"! ls /dev/disk/by-id | grep -q {VOLUME.replace('-', '')}",
                             "! ls /dev/nvme*n* 2>/dev/null",
                             f"GUEST_DEVICE_WAIT_SECONDS=0 bash /root/devices.sh resolve {VOLUME}"])
    assert (r.status, r.exit_code) == ("Failed", 1), (r.stdout, r.stderr)
    assert b"no NVMe device has serial vol0123456789abcdef0" in r.stderr
    # What the worker wrote reached the volume's file: the first block holds it.
    raw = os.path.join(worker.folder, "vol.raw")
    subprocess.run(["qemu-img", "convert", "-O", "raw", vol, raw], check=True)
    with open(raw, "rb") as f:
        assert f.read(5) == b"data\n"
