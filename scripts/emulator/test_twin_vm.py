"""Proves the twin's VM module (ami_emulator/twin/vm.py) without booting a kernel: the command line,
the status checks read off a console, qemu that cannot start, firmware that finds nothing to boot,
stop and parent death, and GetConsoleOutput's 64 KB. Real qemu runs here (firmware only: seconds).

Run: python3 -m pytest scripts/emulator/test_twin_vm.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ami_emulator.twin import vm as vms
from emulator_harness import wait_for


def empty_disk(folder: Path, mib: int = 16) -> str:
    path = folder / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{mib}M"], check=True)
    return str(path)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- missing tools ------------------------------------------------------------------------------------

def test_missing_qemu_and_firmware_name_the_debian_packages(tmp_path: Path) -> None:
    none = (str(tmp_path / "nope.bin"),)
    missing = vms.missing_host_tools(qemu="qemu-system-x86_64-not-here", seabios=none, ovmf=none)
    assert [p for _, p in missing] == ["qemu-system-x86", "seabios", "ovmf"]
    with pytest.raises(vms.HostToolsMissing) as e:
        vms.require_host_tools(qemu="qemu-system-x86_64-not-here", seabios=none, ovmf=none)
    assert "apt-get install qemu-system-x86 seabios ovmf" in str(e.value)
    only_ovmf = vms.missing_host_tools(ovmf=none)
    assert only_ovmf == [("OVMF (OVMF.fd, for uefi images)", "ovmf")]
    assert vms.missing_host_tools() == [], "this machine has the twin's tools (scripts/install-guest-deps.sh)"


# -- the command line ---------------------------------------------------------------------------------

def test_nitro_types_get_nvme_with_the_volume_id_as_serial_xen_types_an_ide_disk(tmp_path: Path) -> None:
    nitro = vms.qemu_argv(vms.VmSpec("i-1", "vol-0123456789abcdef0", "/d.qcow2", storage="nvme"), str(tmp_path), "tcg")
    assert "nvme,drive=root,serial=vol0123456789abcdef0" in nitro
    assert nitro[nitro.index("-nic") + 1] == "none"
    assert nitro[nitro.index("-smp") + 1] == "1"
    assert int(nitro[nitro.index("-m") + 1]) <= 1024
    assert nitro[nitro.index("-bios") + 1].endswith("bios-256k.bin")
    assert nitro[nitro.index("-accel") + 1] == "tcg"
    xen = vms.qemu_argv(vms.VmSpec("i-1", "vol-1", "/d.qcow2", storage="xen", boot_mode="uefi"), str(tmp_path), "tcg")
    assert "ide-hd,drive=root,bus=ide.0" in xen and not any(a.startswith("nvme,") for a in xen)
    assert xen[xen.index("-bios") + 1].endswith("OVMF.fd")
    assert not any("sercon" in a for a in xen), "OVMF writes to the serial port by itself"


# -- the status checks, read off the console ---------------------------------------------------------

BOOTED = b"SeaBIOS\r\nLoading Linux ...\r\n[    0.000000] Linux version 6.1.0-28-amd64\r\n[  OK  ] Reached target multi-user.target - Multi-User System.\r\n\r\ndebian login: "


@pytest.mark.parametrize("console, state, code, seconds, expected", [
    (b"", "running", None, 1, ("ok", "initializing")),
    (b"Linux version 6.1\r\n", "running", None, 10_000, ("ok", "initializing")),
    (BOOTED, "running", None, 100, ("ok", "ok")),
    (BOOTED + b"\r\n[  99.1] Kernel panic - not syncing: Attempted to kill init!\r\n", "running", None, 100, ("ok", "impaired")),
    (b"Linux version 6.1\r\n[ 2.1] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n", "running", None, 100, ("ok", "impaired")),
    (b"Gave up waiting for root file system device.\r\nALERT!  UUID=x does not exist.  Dropping to a shell!\r\n", "running", None, 100, ("ok", "impaired")),
    (b"You are in emergency mode.\r\n", "running", None, 100, ("ok", "impaired")),
    (b"Booting from Hard Disk...\nBoot failed: not a bootable disk\nNo bootable device.", "running", None, 5, ("ok", "impaired")),
    # Read while SeaBIOS is still writing its last line: not yet.
    (b"Booting from Hard Disk...\nBoot failed: not a bootable disk\nNo bootable device", "running", None, 5, ("ok", "initializing")),
    (b"", "running", None, vms.NO_KERNEL_SECONDS + 1, ("ok", "impaired")),
    (BOOTED, "shutdown", None, 100, ("ok", "impaired")),
    (b"", None, 1, 1, ("impaired", "impaired")),
])
def test_status_checks_follow_what_the_vm_shows(console: bytes, state: str | None, code: int | None,
                                                seconds: float, expected: tuple[str, str]) -> None:
    health = vms.judge(console, state, code, seconds)
    assert (health.system, health.instance) == expected, health.reason


# -- real qemu, firmware only ----------------------------------------------------------------------------

def test_a_qemu_that_cannot_start_is_impaired_with_its_message_on_the_console(tmp_path: Path) -> None:
    vm = vms.Vm(spec=vms.VmSpec("i-0bad", "vol-0bad", str(tmp_path / "missing.qcow2")), folder=str(tmp_path / "vm"))
    vm.start()
    try:
        wait_for(lambda: vm.exit_code() is not None, 30, "qemu to exit")
        health = vm.health()
        assert (health.system, health.instance) == ("impaired", "impaired")
        console = vm.console().decode()
        assert "qemu exited with status 1" in console
        assert "missing.qcow2" in console and "No such file or directory" in console, console
        assert "externally provided fw_cfg" not in console
    finally:
        vm.stop()


def test_a_qemu_binary_that_is_not_there_is_impaired_with_the_error(tmp_path: Path) -> None:
    vm = vms.Vm(spec=vms.VmSpec("i-0nq", "vol-0nq", empty_disk(tmp_path)), folder=str(tmp_path / "vm"))
    vm.start(qemu=str(tmp_path / "no-qemu-here"))
    assert (vm.health().system, vm.health().instance) == ("impaired", "impaired")
    assert "qemu could not start" in vm.console().decode()


def test_firmware_that_finds_nothing_to_boot_shows_it_on_the_console_and_stop_ends_qemu(tmp_path: Path) -> None:
    vm = vms.Vm(spec=vms.VmSpec("i-0empty", "vol-0empty", empty_disk(tmp_path)), folder=str(tmp_path / "vm"))
    vm.start()
    try:
        assert vm.proc is not None
        wait_for(lambda: vm.health().instance == "impaired", 60, "the firmware to give up")
        health = vm.health()
        assert health.system == "ok" and health.reason == "the firmware found no bootable disk"
        assert "No bootable device." in vm.console().decode("latin-1"), "SeaBIOS's screen is on the serial console"
        assert vm.run_state() == "running", "QMP answers"
    finally:
        vm.stop()
    assert vm.proc.poll() is not None and not alive(vm.proc.pid)


def test_stop_kills_a_qemu_that_does_not_answer_qmp(tmp_path: Path) -> None:
    vm = vms.Vm(spec=vms.VmSpec("i-0stuck", "vol-0stuck", empty_disk(tmp_path)), folder=str(tmp_path / "vm"))
    vm.start()
    assert vm.proc is not None
    wait_for(lambda: os.path.exists(vm.qmp_path), 30, "the QMP socket")
    os.kill(vm.proc.pid, signal.SIGSTOP)  # a hung qemu: QMP never answers
    t0 = time.monotonic()
    vm.stop(grace=1)
    assert not alive(vm.proc.pid)
    assert time.monotonic() - t0 < 20


def test_qemu_dies_with_the_emulator_even_when_a_finished_request_thread_launched_it(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG follows the forking thread: the spawner thread must be the one that forks."""
    script = textwrap.dedent(f"""
        import sys, threading, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from ami_emulator.twin import vm as vms
        vm = vms.Vm(spec=vms.VmSpec("i-0orphan", "vol-0orphan", {empty_disk(tmp_path)!r}), folder={str(tmp_path / "vm")!r})
        t = threading.Thread(target=vm.start)  # as a werkzeug request thread
        t.start(); t.join()
        print(vm.proc.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        qemu_pid = int(parent.stdout.readline())
        time.sleep(1)
        assert alive(qemu_pid), "qemu must outlive the request thread that launched it"
        parent.kill()
        parent.wait()
        wait_for(lambda: not alive(qemu_pid), 10, "qemu to die with its parent")
    finally:
        if parent.poll() is None:
            parent.kill()


# -- GetConsoleOutput's size -------------------------------------------------------------------------------

def test_console_output_is_the_most_recent_64_kb(tmp_path: Path) -> None:
    vm = vms.Vm(spec=vms.VmSpec("i-0long", "vol-0long", "/nothing"), folder=str(tmp_path))
    text = b"".join(b"line %06d\r\n" % i for i in range(20_000))  # 240 KB
    (tmp_path / "console.log").write_bytes(text)
    out = vms.console_output(vm)
    assert len(out) == 64 * 1024
    assert out == text[-64 * 1024:]
    (tmp_path / "console.log").write_bytes(b"short")
    assert vms.console_output(vm) == b"short"
