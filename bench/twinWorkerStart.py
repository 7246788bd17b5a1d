#!/usr/bin/env python3
"""How long a twin worker VM takes to be ready (its agent's ready: SSM registration), cold boot
against resume from the saved post-boot state (scripts/emulator/ami_emulator/twin/worker_resume.py),
side by side in one run, one VM at a time (the machine's two cores would blur the times). By hand,
not npm test:

  bash scripts/setup.sh --twin && python3 bench/twinWorkerStart.py [RESUMES]   (default 3)

Each VM runs the emulator's own worker command line (vm.qemu_argv). Printed per VM: seconds from
qemu's start to the agent's ready (for a resume also the state's load), then the guest clock's
offset from the host's after the agent set it (hello's time), and the qemu process's CPU seconds."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "emulator"))

from ami_emulator.twin import worker_disk as wd  # noqa: E402
from ami_emulator.twin.agent_channel import AgentChannel  # noqa: E402
from ami_emulator.twin.instances import WORKER_MEMORY_MIB  # noqa: E402
from ami_emulator.twin.vm import detect_accel  # noqa: E402
from ami_emulator.twin.worker_resume import resume_when_loaded, saved_state, template_argv  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_one(disk: wd.WorkerDisk, accel: str, folder: str, resume: bool) -> dict[str, float]:
    state = saved_state(disk, accel, WORKER_MEMORY_MIB) if resume else None
    if resume and state is None:
        sys.exit("no current saved worker state: run 'bash scripts/setup.sh --twin'")
    os.makedirs(folder)
    root = os.path.join(folder, "disk.qcow2")
    backing = state.disk if state is not None else disk.disk
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, root], check=True)
    if state is not None:
        shutil.copyfile(state.console, os.path.join(folder, "console.log"))
    argv = template_argv(disk, folder, accel, WORKER_MEMORY_MIB, resume=state)
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    agent = AgentChannel(os.path.join(folder, "agent.sock"))
    try:
        loaded = resume_when_loaded(os.path.join(folder, "qmp.sock")) if state is not None else 0.0
        agent.wait_ready(timeout=900)
        ready = time.monotonic() - began
        cpu = cpu_seconds(proc.pid)
        agent.send("clock", ["date +%s.%N"])
        offset = float(agent.wait("clock", timeout=60).stdout) - time.time()
        return {"ready": ready, "load": loaded, "cpu": cpu, "clock": offset}
    finally:
        agent.close()
        os.killpg(proc.pid, 9)
        proc.wait()


def main() -> None:
    resumes = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    disk, accel = wd.worker_disk(), detect_accel()[0]
    work = tempfile.mkdtemp(prefix="twin-worker-start.")
    try:
        rows = [("cold boot", start_one(disk, accel, os.path.join(work, "cold"), resume=False))]
        rows += [(f"resume #{i + 1}", start_one(disk, accel, os.path.join(work, f"resume{i}"), resume=True))
                 for i in range(resumes)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"twin worker start ({accel}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}): qemu start -> agent ready")
    print(f"  {'':10} {'ready s':>8} {'load s':>7} {'qemu CPU s':>10} {'guest clock - host s':>21}")
    for name, r in rows:
        print(f"  {name:10} {r['ready']:8.1f} {r['load']:7.1f} {r['cpu']:10.1f} {r['clock']:21.2f}")
    cold = rows[0][1]["ready"]
    median = statistics.median(r["ready"] for _, r in rows[1:])
    print(f"  cold {cold:.1f} s, resume {median:.1f} s (median of {resumes}): {cold / median:.0f}x faster")


if __name__ == "__main__":
    main()
