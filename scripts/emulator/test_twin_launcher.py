"""The emulator's modes at the launcher: which one runs (and says so), the twin's run directory gone
however the server stops, a dead server's run directory swept at the next start, a missing qemu-img
named with its package, and the recorded mode without the twin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emulator_harness import LAUNCHER, Server


def twin_server(runs: Path, **kw: object) -> Server:
    return Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "AMI_FACTORY_EMULATOR": "twin",
                       "AMI_FACTORY_TWIN_DIR": str(runs)}, **kw)  # type: ignore[arg-type]


def with_a_written_volume(s: Server) -> Path:
    run_dir = Path(s.ok("GET", "twin")["runDir"])
    ec2 = s.client("ec2")
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    s.ok("POST", "twin/volume-write", {"volumeId": volume, "offset": 0, "length": 65536, "pattern": 7})
    ec2.create_snapshot(VolumeId=volume)
    assert os.listdir(run_dir / "layers")  # the written layer (the new overlay is made when needed)
    return run_dir


def first_stderr_line(s: Server) -> str:
    return s.proc.stderr.readline().strip()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "stdin EOF"])
def test_the_run_dir_goes_when_the_twin_stops(tmp_path: Path, how: str) -> None:
    s = twin_server(tmp_path, extra_args=["--exit-on-stdin-eof"], stdin=subprocess.PIPE)
    try:
        assert first_stderr_line(s) == f"moto_server.py: mode twin: volumes and snapshots are qcow2 files in " \
                                       f"{s.ok('GET', 'twin')['runDir']}; an HVM image with twin bytes boots in qemu " \
                                       f"when launched (its console is real); the AL2023 worker image boots the twin worker, whose agent " \
                                           f"runs SSM commands and into which AttachVolume hot-plugs volumes"
        run_dir = with_a_written_volume(s)
        if how == "stdin EOF":
            s.proc.stdin.close()
        else:
            s.proc.send_signal(getattr(signal, how))
        assert s.proc.wait(timeout=20) == 0
        assert not run_dir.exists()
        assert os.listdir(tmp_path) == []
    finally:
        s.stop()


def test_a_killed_twins_run_dir_is_swept_at_the_next_start(tmp_path: Path) -> None:
    s = twin_server(tmp_path)
    run_dir = with_a_written_volume(s)
    s.proc.kill()
    s.proc.wait(timeout=10)
    assert run_dir.exists()  # nothing could run at SIGKILL
    s2 = twin_server(tmp_path)
    try:
        assert not run_dir.exists()
        assert os.listdir(tmp_path) == [Path(s2.ok("GET", "twin")["runDir"]).name]
    finally:
        s2.stop()


def test_a_missing_qemu_img_fails_the_start_naming_the_package(tmp_path: Path) -> None:
    env = {**os.environ, "AMI_FACTORY_EMULATOR": "twin", "AMI_FACTORY_TWIN_DIR": str(tmp_path), "PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--port", "0"], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3
    assert "qemu-img" in proc.stderr and "qemu-utils" in proc.stderr
    assert "ready" not in proc.stdout
    assert os.listdir(tmp_path) == []


def test_an_unknown_mode_fails_the_start() -> None:
    env = {**os.environ, "AMI_FACTORY_EMULATOR": "real"}
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--port", "0"], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3
    assert "AMI_FACTORY_EMULATOR='real'" in proc.stderr and "'recorded'" in proc.stderr and "'twin'" in proc.stderr


def test_the_recorded_mode_says_so_and_has_no_twin(tmp_path: Path) -> None:
    s = Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "AMI_FACTORY_TWIN_DIR": str(tmp_path)})
    try:
        assert first_stderr_line(s).startswith("moto_server.py: mode recorded: SSM answers and consoles are scripted")
        assert s.ok("GET", "twin") == {"mode": "recorded", "runDir": None, "workersReady": {}}
        ec2 = s.client("ec2")
        volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
        status, body = s.control("POST", "twin/volume-write", {"volumeId": volume, "offset": 0, "length": 1, "pattern": 1})
        assert status == 400 and "AMI_FACTORY_EMULATOR=twin" in body["error"]
        assert not any(p.startswith("twin-") for p in s.ok("GET", "health")["patches"])
        assert os.listdir(tmp_path) == []
    finally:
        s.stop()
