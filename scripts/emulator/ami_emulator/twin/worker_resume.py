"""A worker VM resumed from a saved post-boot state: seconds instead of a TCG boot (30-90 s of CPU).

Made once per worker disk by `setup.sh --twin` (`python3 -m ami_emulator.twin.worker_resume build`)
into the disk's cache folder, never at run time, one folder per state key (below):

  <disk folder>/resume/<key>/disk.qcow2    the disk as the booted worker left it: a qcow2 overlay on
                                           the worker disk, frozen (new workers write into overlays on it)
  <disk folder>/resume/<key>/state         the VM's state (RAM, devices) after the agent said ready,
                                           saved by QMP stop + migrate to "exec:cat > state"
  <disk folder>/resume/<key>/console.log   the boot's serial console (a resumed worker's console starts
                                           with it: GetConsoleOutput still shows a boot)
  <disk folder>/resume/<key>/manifest.json key, accel, cmdline, boot seconds, the template's command line

Every checkout on the machine shares the cache, each with its own worker command line maybe: a state
folder is made in a temporary folder and renamed into place, never replaced or removed while it may be
in use. An emulator touches the folder of the state it resumes from; a build removes only other states
unused for a day (the rule build-worker-disk.sh's keep_newest applies to worker disks).

The state restores only into the same machine: the same qemu, the same command line up to its file
paths (machine, CPU model, memory, devices: worker_disk.qemu_argv), the same kernel command line. The
key hashes those; saved_state() answers None when it differs, and the worker cold-boots (the
emulator says so once). A worker resumes with `-incoming "exec:cat STATE"`, waits paused for the
load to finish, then `cont`s (resume_when_loaded). Its agent then sets the guest's clock from the
host's hello (agent.py): the saved clock is the template's; it reseeds the kernel's random pool
with the hello's seed (its ready says "reseeded") and gives the worker a machine id of its own.
The worker's qemu has a VM generation ID device (guid=auto: new per qemu) when qemu has one: the
guest kernel reseeds its RNG as the state loads, before any hello. A state that does not load
(qemu exits, a file gone or damaged): the worker cold-boots instead (worker.cold_boot_instead).

AMI_FACTORY_TWIN_COLD_BOOT=1 makes every worker cold-boot (to debug a boot)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from . import worker_disk as wd
from .agent_channel import AgentChannel

RESUME_DIR = "resume"
COLD_BOOT_ENV = "AMI_FACTORY_TWIN_COLD_BOOT"
# The template's boot: TCG on two shared cores.
BOOT_TIMEOUT = 900.0
# A saved state nobody resumed from for this long is removed by the next build (keep_newest's rule).
UNUSED_FOR = 24 * 3600
# What saved_state() said in the emulator's log (each once).
_SAID: set[str] = set()


@dataclass(frozen=True)
class SavedState:
    folder: str
    disk: str  # the frozen post-boot overlay (backing: the worker disk)
    state: str
    console: str
    manifest: dict[str, Any]

    def incoming(self) -> str:
        """qemu's -incoming URI that loads the state (qemu 7.2 has no file: URI; exec: it is)."""
        return "exec:cat " + shlex.quote(self.state)


@functools.lru_cache(maxsize=None)
def _qemu_version(qemu: str) -> str:
    return subprocess.run([qemu, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def template_argv(disk: wd.WorkerDisk, folder: str, accel: str, memory_mib: int, qemu: str = "qemu-system-x86_64",
                  resume: "SavedState | None" = None) -> list[str]:
    """The command line every worker VM runs with (vm.qemu_argv), the files in `folder` (its root
    disk folder/disk.qcow2); with `resume`, the one that resumes from that saved state."""
    from . import vm as vms

    spec = vms.VmSpec(instance_id="i-template", volume_id="vol-template", disk=os.path.join(folder, "disk.qcow2"),
                      worker=disk, memory_mib=memory_mib, resume=resume)
    return vms.qemu_argv(spec, folder, accel, qemu)


def state_key(disk: wd.WorkerDisk, accel: str, memory_mib: int, qemu: str = "qemu-system-x86_64") -> str:
    """What a saved state depends on: qemu's version and the worker's command line with its per-VM
    paths taken out (the disk folder's key covers the kernel, initrd and disk)."""
    argv = template_argv(disk, "/VM", accel, memory_mib, qemu)
    text = json.dumps([_qemu_version(qemu), disk.manifest.get("key"), argv[1:]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cold_boot_forced() -> bool:
    return os.environ.get(COLD_BOOT_ENV, "").strip() not in ("", "0", "false")


def _say_once(what: str) -> None:
    if what not in _SAID:
        _SAID.add(what)
        print(f"twin: {what}", file=sys.stderr, flush=True)


def _base_cmdline(disk: wd.WorkerDisk) -> bool:
    """The disk's own kernel command line (not one worker-agent-off added to): its state is expected."""
    try:
        with open(os.path.join(disk.folder, "cmdline")) as f:
            return f.read().strip() == disk.cmdline
    except OSError:
        return True


def saved_state(disk: wd.WorkerDisk, accel: str, memory_mib: int, qemu: str = "qemu-system-x86_64",
                quiet: bool = False) -> SavedState | None:
    """The saved worker state a worker with this disk (its kernel command line included), accel and
    memory can resume from; None (and a line in the emulator's log, once) when it cold-boots."""
    if cold_boot_forced():
        _say_once(f"{COLD_BOOT_ENV} is set: worker VMs cold-boot")
        return None
    key = state_key(disk, accel, memory_mib, qemu)
    folder = os.path.join(disk.folder, RESUME_DIR, key)
    try:
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        if not quiet and _base_cmdline(disk):
            _say_once(f"no saved worker state in {folder} (for this qemu and worker command line): worker VMs "
                      "cold-boot (30-90 s each under TCG); 'bash scripts/setup.sh --twin' saves one")
        return None
    if manifest.get("cmdline") != disk.cmdline or manifest.get("key") != key:
        return None  # a worker with its own kernel command line (worker-agent-off): it boots
    if not quiet:
        try:
            os.utime(folder)  # in use: a build elsewhere keeps it for a day
        except OSError:
            pass
    return SavedState(folder, os.path.join(folder, "disk.qcow2"), os.path.join(folder, "state"),
                      os.path.join(folder, "console.log"), manifest)


def resume_when_loaded(qmp_sock: str, timeout: float = 300) -> float:
    """Wait until an -incoming qemu has loaded its state, then let it run (QMP cont). Returns the
    seconds the load took. QmpError/TimeoutError when it fails (qemu exits on a bad state)."""
    began = time.monotonic()
    with wd.Qmp(qmp_sock, timeout=timeout) as q:
        while True:
            status = q.execute("query-status")["status"]
            if status == "paused" or status == "running":
                break
            if status != "inmigrate":
                raise wd.QmpError(f"the saved worker state did not load: the VM is {status}")
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"the saved worker state did not load within {timeout:g} s")
            time.sleep(0.05)
        if status == "paused":
            q.execute("cont")
    return time.monotonic() - began


def _migrate_to(q: wd.Qmp, state: str, timeout: float) -> None:
    q.execute("stop")
    q.execute("migrate", {"uri": "exec:cat > " + shlex.quote(state)})
    deadline = time.monotonic() + timeout
    while True:
        info = q.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"saving the worker state failed: {info.get('error-desc', status)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"saving the worker state took over {timeout:g} s")
        time.sleep(0.1)


def make_saved_state(disk: wd.WorkerDisk, accel: str, memory_mib: int, qemu: str = "qemu-system-x86_64") -> SavedState:
    """Boot the worker disk as a worker VM, wait for its agent's ready, save its state: the folder
    described in the module docstring, made in a temporary folder and renamed into place."""
    key = state_key(disk, accel, memory_mib, qemu)
    states = os.path.join(disk.folder, RESUME_DIR)
    os.makedirs(states, exist_ok=True)
    target = os.path.join(states, key)
    work = tempfile.mkdtemp(prefix=".new.", dir=states)
    try:
        overlay = os.path.join(work, "disk.qcow2")
        wd.make_overlay(disk, overlay)
        open(os.path.join(work, "console.log"), "wb").close()
        argv = template_argv(disk, work, accel, memory_mib, qemu)
        began = time.monotonic()
        with open(os.path.join(work, "qemu.stderr"), "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
        try:
            agent = AgentChannel(os.path.join(work, "agent.sock"))
            try:
                ready = agent.wait_ready(timeout=BOOT_TIMEOUT)
            finally:
                agent.close()  # saved with no host on the port: a resumed worker's host connects anew
            boot = time.monotonic() - began
            with wd.Qmp(os.path.join(work, "qmp.sock")) as q:
                _migrate_to(q, os.path.join(work, "state"), timeout=600)
                q.execute("quit")
            proc.wait(timeout=60)
        except BaseException:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait()
            with open(os.path.join(work, "console.log"), errors="replace") as f:
                tail = f.read()[-2000:]
            print(f"twin: the worker template's console ended with:\n{tail}", file=sys.stderr)
            raise
        for name in ("agent.sock", "qmp.sock", "argv.json", "qemu.stderr", "sercon-port"):
            try:
                os.remove(os.path.join(work, name))
            except FileNotFoundError:
                pass
        manifest = {"key": key, "accel": accel, "memoryMiB": memory_mib,
                    "cmdline": disk.cmdline, "bootSeconds": round(boot, 1), "guestUptime": ready.get("uptime"),
                    "stateBytes": os.path.getsize(os.path.join(work, "state")), "argv": argv}
        with open(os.path.join(work, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        os.chmod(overlay, 0o444)  # frozen: workers write into overlays on it
        os.chmod(work, 0o755)
        try:
            os.rename(work, target)  # atomic; an existing state is never replaced (it may be in use)
        except OSError:
            if not os.path.exists(os.path.join(target, "manifest.json")):
                raise
            shutil.rmtree(work, ignore_errors=True)  # another checkout saved the same state meanwhile
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    evict_unused(states, keep=key)
    found = saved_state(disk, accel, memory_mib, qemu, quiet=True)
    assert found is not None, "the state just saved does not match its own key"
    return found


def evict_unused(states: str, keep: str, unused_for: float = UNUSED_FOR) -> list[str]:
    """Remove the saved states in `states` other than `keep` that nobody resumed from (saved_state
    touches the folder it hands out) nor made for `unused_for` seconds; the removed names."""
    gone = []
    now = time.time()
    for name in sorted(os.listdir(states)):
        path = os.path.join(states, name)
        if name == keep or not os.path.isdir(path) or os.path.islink(path):
            continue  # files of the old single-state layout stay: an older checkout may resume from them
        try:
            if now - os.stat(path).st_mtime < unused_for:
                continue
        except FileNotFoundError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        gone.append(name)
    return gone


def main(argv: list[str]) -> int:
    """`build`: save the worker state unless a current one is there; prints its folder.
    `path`: print it, or fail when there is none."""
    from .instances import WORKER_MEMORY_MIB
    from .vm import detect_accel

    if argv not in (["build"], ["path"]):
        print("usage: python3 -m ami_emulator.twin.worker_resume build | path", file=sys.stderr)
        return 2
    disk = wd.worker_disk()
    accel = detect_accel()[0]
    if argv == ["build"] and not os.access(disk.folder, os.W_OK):
        # A cache built by root, set up by a user: workers cold-boot, as they did before.
        print(f"twin: cannot save the worker state into {disk.folder} (not writable): worker VMs will cold-boot; "
              "run 'sudo bash scripts/setup.sh --twin' once to save it", file=sys.stderr)
        return 0
    os.environ.pop(COLD_BOOT_ENV, None)
    found = saved_state(disk, accel, WORKER_MEMORY_MIB, quiet=True)
    if found is None and argv == ["build"]:
        print("twin: saving a booted worker's state (one cold boot, 1-3 minutes under TCG)", file=sys.stderr, flush=True)
        found = make_saved_state(disk, accel, WORKER_MEMORY_MIB)
        print(f"twin: worker state saved after a {found.manifest['bootSeconds']} s boot: "
              f"{found.manifest['stateBytes'] / 2**20:.0f} MiB in {found.folder}", file=sys.stderr)
    if found is None:
        return 1
    print(found.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
