"""Proves the launcher (scripts/emulator/moto_server.py, ami_emulator/launcher.py): its ready line,
ports, ways to stop, start-up guards and moto's own environment switches against a launched server
(emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ami_emulator.ec2_public_images import al2023_parameters
from emulator_harness import LAUNCHER, REGION, Server


def test_ready_line_health_and_sigterm() -> None:
    s = Server()
    try:
        assert s.ready_line == f"ready http://127.0.0.1:{s.port}"
        health = s.ok("GET", "health")
        assert health["moto"].startswith("5.")
        assert {"register-image", "copy-image", "image-deprecation", "ssm-commands", "instances"} <= set(health["patches"])
        status, _ = s.control("GET", "no-such-endpoint")
        assert status == 404
    finally:
        assert s.stop() == 0


def test_port_zero_reports_the_port() -> None:
    proc = subprocess.Popen([sys.executable, str(LAUNCHER), "--port", "0"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().strip()
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ami_factory/health", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_exits_when_stdin_closes() -> None:
    s = Server(extra_args=["--exit-on-stdin-eof"], stdin=subprocess.PIPE)
    assert s.proc.poll() is None
    s.proc.stdin.close()
    assert s.proc.wait(timeout=15) == 0


def test_stdin_is_ignored_without_the_flag() -> None:
    s = Server()  # stdin is /dev/null (EOF at once), as in CI
    try:
        time.sleep(0.5)
        assert s.proc.poll() is None
        assert s.ok("GET", "health")
    finally:
        s.stop()


def test_a_changed_moto_internal_fails_at_start_up(tmp_path: Path) -> None:
    # Simulate a newer moto that implements ListCommandInvocations itself: the launcher must refuse
    # to start (and say which patch), not serve with a half-applied patch.
    (tmp_path / "sitecustomize.py").write_text(
        "from moto.ssm.responses import SimpleSystemManagerResponse as R\n"
        "R.list_command_invocations = lambda self: None\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--port", "0"], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3, proc.stderr
    assert "ssm-commands" in proc.stderr and "ListCommandInvocations" in proc.stderr
    assert "ready" not in proc.stdout


def test_load_default_amis_switch_is_honoured() -> None:
    on = Server()  # moto's default: load its AMIs
    off = Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
    try:
        assert len(on.client("ec2").describe_images(Owners=["amazon"])["Images"]) > 2
        # Off: none of moto's, only the AL2023 images the public SSM parameters name (the workers'
        # default image, which exists on AWS whatever moto loads: ec2_public_images.py).
        off_ids = {i["ImageId"] for i in off.client("ec2").describe_images(Owners=["amazon"])["Images"]}
        assert off_ids == set(al2023_parameters(REGION).values())
    finally:
        on.stop()
        off.stop()


def test_amis_path_is_honoured(tmp_path: Path) -> None:
    amis = tmp_path / "amis.json"
    amis.write_text(json.dumps([{
        "ami_id": "ami-0123456789abcdef0", "name": "fixture-image", "description": "from MOTO_AMIS_PATH",
        "owner_id": "137112412989", "public": True, "virtualization_type": "hvm", "architecture": "x86_64",
        "state": "available", "platform": None, "image_type": "machine", "image_location": "amazon/fixture",
        "hypervisor": "xen", "root_device_name": "/dev/xvda", "root_device_type": "ebs", "sriov": "simple",
    }]))
    s = Server(env={"MOTO_AMIS_PATH": str(amis)})
    try:
        images = s.client("ec2").describe_images(Owners=["amazon"])["Images"]
        # Beside moto's, the AL2023 images the public SSM parameters name (ec2_public_images.py).
        al2023 = set(al2023_parameters(REGION).values())
        assert [i["ImageId"] for i in images if i["ImageId"] not in al2023] == ["ami-0123456789abcdef0"]
        assert [i["Name"] for i in images if i["ImageId"] == "ami-0123456789abcdef0"] == ["fixture-image"]
    finally:
        s.stop()
