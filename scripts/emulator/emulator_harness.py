"""What the emulator's tests share: a launched server (Server) and the boto3 calls most tests make.
The pytest fixtures over it are in conftest.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "moto_server.py"
REGION = "us-east-1"
OTHER = "eu-west-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str] | None = None, extra_args: list[str] | None = None,
                 stdin: Any = subprocess.DEVNULL):
        self.port = free_port()
        full_env = {**os.environ, **(env or {})}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--port", str(self.port), *(extra_args or [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin, env=full_env, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise AssertionError(f"launcher did not get ready: {line!r} {self.proc.stderr.read()}")
        self.ready_line = line.strip()
        self.startup_seconds = time.monotonic() - self.started
        self.endpoint = line.split(" ", 1)[1].strip()

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + "/_ami_factory/" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, result = self.control(method, path, body)
        assert status == 200, result
        return result

    def calls(self, action: str, region: str | None = None) -> list[dict[str, Any]]:
        q = f"calls?action={action}" + (f"&region={region}" if region else "")
        return self.ok("GET", q)

    def moto_reset(self) -> None:
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=60).read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def wait_for(check: Any, timeout: float = 60, what: str = "") -> Any:
    """Poll check() until it returns something true (that value), or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")


def snapshot(ec2: Any, size: int = 8, tags: dict[str, str] | None = None) -> str:
    vol = ec2.create_volume(Size=size, AvailabilityZone=ec2.meta.region_name + "a")
    kwargs: dict[str, Any] = {"VolumeId": vol["VolumeId"]}
    if tags:
        kwargs["TagSpecifications"] = [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    return ec2.create_snapshot(**kwargs)["SnapshotId"]


def register(ec2: Any, snap: str, **extra: Any) -> str:
    kwargs: dict[str, Any] = dict(
        Name="ami-factory-test", Description="a test image", Architecture="arm64",
        VirtualizationType="hvm", RootDeviceName="/dev/xvda", EnaSupport=True, SriovNetSupport="simple",
        BootMode="uefi", ImdsSupport="v2.0",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeSize": 10, "VolumeType": "gp3", "DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ],
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "img"}, {"Key": "build", "Value": "b-1"}]}],
    )
    kwargs.update(extra)
    return ec2.register_image(**kwargs)["ImageId"]


def image(ec2: Any, image_id: str) -> dict[str, Any]:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def run_instance(ec2: Any, image_id: str = "ami-12c6146b") -> str:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]


def send(ssm: Any, instance_id: str, commands: list[str]) -> str:
    return ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                            Parameters={"commands": commands})["Command"]["CommandId"]
