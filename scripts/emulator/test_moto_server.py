"""Proves each patch of scripts/emulator/moto_server.py with boto3 against a launched server.

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

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


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        s = request.getfixturevalue("server")
        s.moto_reset()
        s.ok("POST", "reset")


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


# --- launcher -------------------------------------------------------------------------------------


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
        assert on.client("ec2").describe_images(Owners=["amazon"])["Images"]
        assert off.client("ec2").describe_images(Owners=["amazon"])["Images"] == []
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
        assert [i["ImageId"] for i in images] == ["ami-0123456789abcdef0"]
        assert images[0]["Name"] == "fixture-image"
    finally:
        s.stop()


# --- 1. call recorder ---------------------------------------------------------------------------------


def test_recorder_keeps_what_was_sent(server: Server) -> None:
    ec2 = server.client("ec2")
    snap = snapshot(ec2)
    register(ec2, snap)
    [call] = server.calls("RegisterImage")
    assert call["Action"] == "RegisterImage"
    assert call["Name"] == "ami-factory-test"
    assert call["VirtualizationType"] == "hvm"
    assert call["EnaSupport"] == "true"
    assert call["SriovNetSupport"] == "simple"
    assert call["BootMode"] == "uefi"
    assert call["ImdsSupport"] == "v2.0"
    assert call["BlockDeviceMapping.1.DeviceName"] == "/dev/xvda"
    assert call["BlockDeviceMapping.1.Ebs.SnapshotId"] == snap
    assert call["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3"
    assert call["BlockDeviceMapping.2.VirtualName"] == "ephemeral0"
    assert call["TagSpecification.1.ResourceType"] == "image"
    assert call["TagSpecification.1.Tag.2.Value"] == "b-1"
    assert len(server.calls("CreateVolume")) == 1
    assert len(server.calls("CreateSnapshot")) == 1
    # every call, with its region and service
    everything = server.ok("GET", "calls")
    assert [c["action"] for c in everything] == ["CreateVolume", "CreateSnapshot", "RegisterImage"]
    assert everything[2]["region"] == REGION and everything[2]["service"] == "ec2"


def test_recorder_json_protocol_iam_and_regions(server: Server) -> None:
    ssm = server.client("ssm")
    instance_id = run_instance(server.client("ec2"))
    ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                     Parameters={"commands": ["echo hi"]})
    [body] = server.calls("AmazonSSM.SendCommand")
    assert body["InstanceIds"] == [instance_id]
    assert body["DocumentName"] == "AWS-RunShellScript"
    assert body["Parameters"] == {"commands": ["echo hi"]}
    assert server.calls("SendCommand") == [body]
    iam = server.client("iam")
    iam.create_role(RoleName="builder", AssumeRolePolicyDocument="{}")
    assert server.calls("CreateRole")[0]["RoleName"] == "builder"
    server.client("ec2", OTHER).create_security_group(GroupName="g", Description="d")
    assert len(server.calls("CreateSecurityGroup", region=OTHER)) == 1
    assert server.calls("CreateSecurityGroup", region=REGION) == []


def test_recorder_action_set_is_configurable(server: Server) -> None:
    ec2 = server.client("ec2")
    ec2.describe_images(Owners=["self"])
    assert server.calls("DescribeImages") == []  # reads are not recorded by default
    server.ok("POST", "calls/actions", {"actions": ["DescribeImages"]})
    ec2.describe_images(Owners=["self"])
    ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
    assert len(server.calls("DescribeImages")) == 1
    assert server.calls("CreateVolume") == []
    server.ok("POST", "calls/actions", {"actions": "*"})
    ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
    assert len(server.calls("CreateVolume")) == 1
    status, _ = server.control("POST", "calls/actions", {"actions": 5})
    assert status == 400
    server.ok("DELETE", "calls")
    assert server.ok("GET", "calls") == []


# --- 2. RegisterImage ------------------------------------------------------------------------------


def test_register_image_keeps_its_attributes(server: Server) -> None:
    ec2 = server.client("ec2")
    snap = snapshot(ec2, size=8)
    before = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    img = image(ec2, register(ec2, snap))
    assert img["Architecture"] == "arm64"
    assert img["VirtualizationType"] == "hvm"
    assert img["RootDeviceName"] == "/dev/xvda"
    assert img["RootDeviceType"] == "ebs"
    assert img["EnaSupport"] is True
    assert img["SriovNetSupport"] == "simple"
    assert img["BootMode"] == "uefi"
    assert img["ImdsSupport"] == "v2.0"
    assert img["Description"] == "a test image"
    assert (img["Hypervisor"], img["PlatformDetails"], img["UsageOperation"]) == ("xen", "Linux/UNIX", "RunInstances")
    assert tags_of(img) == {"Name": "img", "build": "b-1"}
    assert img["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True, "SnapshotId": snap, "VolumeSize": 10,
                                           "VolumeType": "gp3", "Encrypted": False, "Iops": 3000, "Throughput": 125}},
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
    ]
    # RegisterImage makes no snapshot of its own (moto adds a 15 GiB one)
    after = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert after == before
    attr = ec2.describe_image_attribute(ImageId=img["ImageId"], Attribute="sriovNetSupport")
    assert attr["SriovNetSupport"]["Value"] == "simple"
    assert ec2.describe_image_attribute(ImageId=img["ImageId"], Attribute="imdsSupport")["ImdsSupport"]["Value"] == "v2.0"
    # filters on the kept attributes
    assert [i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": "architecture", "Values": ["arm64"]}])["Images"]] == [img["ImageId"]]
    assert ec2.describe_images(Filters=[{"Name": "virtualization-type", "Values": ["paravirtual"]}])["Images"] == []


def test_register_image_defaults_like_ec2(server: Server) -> None:
    ec2 = server.client("ec2")
    snap = snapshot(ec2, size=4)
    image_id = ec2.register_image(
        Name="minimal", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snap}}],
    )["ImageId"]
    img = image(ec2, image_id)
    assert img["Architecture"] == "i386"
    assert img["VirtualizationType"] == "paravirtual"
    assert img["RootDeviceType"] == "ebs"
    assert "EnaSupport" not in img and "BootMode" not in img
    assert img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 4
    assert img["BlockDeviceMappings"][0]["Ebs"]["VolumeType"] == "gp2"


def test_register_image_checks_snapshots_and_protects_them(server: Server) -> None:
    ec2 = server.client("ec2")
    with pytest.raises(ClientError) as e:
        register(ec2, "snap-0123456789abcdef0")
    assert e.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
    snap = snapshot(ec2)
    image_id = register(ec2, snap)
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId=snap)
    assert e.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"
    ec2.deregister_image(ImageId=image_id)
    ec2.delete_snapshot(SnapshotId=snap)


def test_register_image_rejects_other_tag_resource_types(server: Server) -> None:
    ec2 = server.client("ec2")
    with pytest.raises(ClientError) as e:
        register(ec2, snapshot(ec2), TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --- 3. CopyImage ------------------------------------------------------------------------------------


def test_copy_image_tags_and_own_snapshots(server: Server) -> None:
    src_ec2 = server.client("ec2")
    dst_ec2 = server.client("ec2", OTHER)
    snap = snapshot(src_ec2, size=8)
    source_id = register(src_ec2, snap)
    copy_id = dst_ec2.copy_image(
        SourceImageId=source_id, SourceRegion=REGION, Name="copied",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "the-copy"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "kind", "Value": "copy-snap"}]},
        ],
    )["ImageId"]
    img = image(dst_ec2, copy_id)
    assert tags_of(img) == {"Name": "the-copy"}
    assert img["Name"] == "copied"
    assert img["Description"] == "a test image"
    assert (img["Architecture"], img["VirtualizationType"], img["RootDeviceName"], img["RootDeviceType"]) == ("arm64", "hvm", "/dev/xvda", "ebs")
    assert (img["EnaSupport"], img["SriovNetSupport"], img["BootMode"], img["ImdsSupport"]) == (True, "simple", "uefi", "v2.0")
    assert img["SourceImageId"] == source_id and img["SourceImageRegion"] == REGION
    root = img["BlockDeviceMappings"][0]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["VolumeSize"] == 10 and root["Ebs"]["VolumeType"] == "gp3"
    new_snap = root["Ebs"]["SnapshotId"]
    assert new_snap != snap
    assert img["BlockDeviceMappings"][1] == {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}
    # the copy's snapshot lives in the target region, tagged; the source region does not have it
    [dst_snap] = dst_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert dst_snap["SnapshotId"] == new_snap
    assert tags_of(dst_snap) == {"kind": "copy-snap"}
    assert f"SourceAmi {source_id}" in dst_snap["Description"]
    assert new_snap not in {s["SnapshotId"] for s in src_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    # the source image's tags stay on the source only
    assert tags_of(image(src_ec2, source_id)) == {"Name": "img", "build": "b-1"}
    with pytest.raises(ClientError) as e:
        dst_ec2.delete_snapshot(SnapshotId=new_snap)
    assert e.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"


def test_copy_image_tags_option(server: Server) -> None:
    src_ec2 = server.client("ec2")
    source_id = register(src_ec2, snapshot(src_ec2))
    copy_id = src_ec2.copy_image(SourceImageId=source_id, SourceRegion=REGION, Name="same-region", CopyImageTags=True)["ImageId"]
    assert tags_of(image(src_ec2, copy_id)) == {"Name": "img", "build": "b-1"}


# --- 4. image deprecation ------------------------------------------------------------------------


def test_enable_and_disable_image_deprecation(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    assert "DeprecationTime" not in image(ec2, image_id)
    at = dt.datetime(2031, 5, 4, 3, 2, 40, tzinfo=dt.timezone.utc)
    assert ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=at)["Return"] is True
    assert image(ec2, image_id)["DeprecationTime"] == "2031-05-04T03:03:00.000Z"  # rounded to the minute
    assert ec2.disable_image_deprecation(ImageId=image_id)["Return"] is True
    assert "DeprecationTime" not in image(ec2, image_id)
    with pytest.raises(ClientError) as e:
        ec2.enable_image_deprecation(ImageId="ami-0123456789abcdef0", DeprecateAt=at)
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"


# --- 5. SSM command outcomes --------------------------------------------------------------------------


def run_instance(ec2: Any, image_id: str = "ami-12c6146b") -> str:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]


def send(ssm: Any, instance_id: str, commands: list[str]) -> str:
    return ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                            Parameters={"commands": commands})["Command"]["CommandId"]


def test_ssm_failure_rule(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    server.ok("POST", "ssm/fail", {"match": "install-guest-deps", "output": "partial\n", "status": "Failed",
                                   "stderr": "E: Unable to locate package"})
    sent = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                            Parameters={"commands": ["set -e", "bash /tmp/install-guest-deps.sh"]})["Command"]
    assert (sent["Status"], sent["CompletedCount"], sent["ErrorCount"]) == ("Pending", 0, 0)  # as AWS answers
    failed = sent["CommandId"]
    fine = send(ssm, instance_id, ["uname -a"])
    inv = ssm.get_command_invocation(CommandId=failed, InstanceId=instance_id)
    assert inv["Status"] == "Failed" and inv["StatusDetails"] == "Failed"
    assert inv["ResponseCode"] == 1
    assert inv["StandardOutputContent"] == "partial\n"
    assert inv["StandardErrorContent"] == "E: Unable to locate package"
    ok = ssm.get_command_invocation(CommandId=fine, InstanceId=instance_id)
    assert (ok["Status"], ok["ResponseCode"], ok["StandardOutputContent"]) == ("Success", 0, "")
    listed = {c["CommandId"]: c for c in ssm.list_commands()["Commands"]}
    assert listed[failed]["Status"] == "Failed" and listed[failed]["ErrorCount"] == 1
    assert listed[fine]["Status"] == "Success" and listed[fine]["ErrorCount"] == 0
    [detail] = ssm.list_command_invocations(CommandId=failed, Details=True)["CommandInvocations"]
    assert detail["Status"] == "Failed"
    [plugin] = detail["CommandPlugins"]
    assert plugin["ResponseCode"] == 1 and plugin["Status"] == "Failed"
    assert plugin["Output"] == "partial\n\n----------ERROR-------\nE: Unable to locate package"
    assert len(ssm.list_command_invocations(InstanceId=instance_id)["CommandInvocations"]) == 2
    # rules are fixed at send time; clearing them affects later commands only
    server.ok("DELETE", "ssm/fail")
    again = send(ssm, instance_id, ["bash /tmp/install-guest-deps.sh"])
    assert ssm.get_command_invocation(CommandId=again, InstanceId=instance_id)["Status"] == "Success"
    assert ssm.get_command_invocation(CommandId=failed, InstanceId=instance_id)["Status"] == "Failed"


def test_ssm_success_output_and_truncation(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    facts = json.dumps({"kernel": "6.1.0-18-amd64", "virtualization": "hvm"})
    server.ok("POST", "ssm/fail", {"match": "collect-facts", "status": "Success", "output": f"log line\n{facts}\n"})
    cmd = send(ssm, instance_id, ["/opt/ami-factory/collect-facts"])
    inv = ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)
    assert inv["Status"] == "Success" and inv["ResponseCode"] == 0
    assert json.loads(inv["StandardOutputContent"].strip().splitlines()[-1]) == json.loads(facts)
    # AWS keeps only the first 24,000 characters (2,500 in ListCommandInvocations' plugin Output)
    server.ok("POST", "ssm/fail", {"match": "noisy", "status": "Success", "output": "x" * 30000 + "\n" + facts})
    noisy = send(ssm, instance_id, ["noisy build"])
    assert len(ssm.get_command_invocation(CommandId=noisy, InstanceId=instance_id)["StandardOutputContent"]) == 24000
    [detail] = ssm.list_command_invocations(CommandId=noisy, Details=True)["CommandInvocations"]
    assert len(detail["CommandPlugins"][0]["Output"]) == 2500


def test_ssm_rule_options_and_validation(server: Server) -> None:
    ec2 = server.client("ec2")
    a, b = run_instance(ec2), run_instance(ec2)
    ssm = server.client("ssm")
    server.ok("POST", "ssm/fail", {"match": "", "status": "TimedOut", "instanceIds": [b], "times": 1})
    cmd = ssm.send_command(InstanceIds=[a, b], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": ["true"]})["Command"]["CommandId"]
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=a)["Status"] == "Success"
    timed_out = ssm.get_command_invocation(CommandId=cmd, InstanceId=b)
    assert timed_out["Status"] == "TimedOut" and timed_out["ResponseCode"] == -1
    later = send(ssm, b, ["true"])  # times: 1 is used up
    assert ssm.get_command_invocation(CommandId=later, InstanceId=b)["Status"] == "Success"
    assert len(server.ok("GET", "ssm/fail")) == 1
    status, body = server.control("POST", "ssm/fail", {"match": "x", "status": "Exploded"})
    assert status == 400 and "status" in body["error"]
    server.ok("POST", "reset")
    assert server.ok("GET", "ssm/fail") == []


def test_ssm_rule_matches_the_script_identity(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    pv2hvm = ["cat > /root/ami-factory-pv2hvm.sh <<'X'", '# @facts {"script":"pv2hvm","schemaVersion":2,"fields":{}}',
              "# (the surrogate build shares this library)", "X", "exec bash /root/ami-factory-pv2hvm.sh"]
    surrogate = ["cat > /root/ami-factory-surrogate.sh <<'X'", '# @facts {"script":"surrogate","schemaVersion":1,"fields":{}}', "X"]
    server.ok("POST", "ssm/fail", {"match": "", "script": "surrogate", "status": "Success", "output": "surrogate facts\n"})
    server.ok("POST", "ssm/fail", {"match": "", "script": "pv2hvm", "status": "Success", "output": "pv2hvm facts\n"})
    # A later rule matching the substring "surrogate" would also take the pv2hvm command: identities do not.
    for commands, output in [(pv2hvm, "pv2hvm facts\n"), (surrogate, "surrogate facts\n"), (["uname -a"], "")]:
        cmd = send(ssm, instance_id, commands)
        assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["StandardOutputContent"] == output
    status, body = server.control("POST", "ssm/fail", {"match": "", "script": 3})
    assert status == 400 and "script" in body["error"]


def compressed_command(name: str, script: str) -> list[str]:
    """A command in the shape providers/worker/command.ts sends: the script gzip+base64 in a here-document."""
    packed = base64.b64encode(gzip.compress(script.encode())).decode()
    return [f"base64 -d <<'AMI_FACTORY_GUEST_SCRIPT' | gunzip > /root/ami-factory-{name}.sh",
            *[packed[i:i + 1024] for i in range(0, len(packed), 1024)], "AMI_FACTORY_GUEST_SCRIPT",
            f"exec bash /root/ami-factory-{name}.sh '--target' 'vol-1'"]


def test_ssm_rules_see_inside_compressed_guest_scripts(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    filler = "".join(f"# line {i}: {i * 7919 % 10007}\n" for i in range(2000))  # several payload lines
    pv2hvm = compressed_command("pv2hvm", '#!/bin/bash\n# @facts {"script":"pv2hvm","schemaVersion":2,"fields":{}}\n'
                                          + filler + "# mentions surrogate and GRUB_MARKER_IN_BODY\n")
    surrogate = compressed_command("surrogate", '#!/bin/bash\n# @facts {"script":"surrogate","schemaVersion":1,"fields":{}}\n')
    assert "GRUB_MARKER_IN_BODY" not in "\n".join(pv2hvm)
    server.ok("POST", "ssm/fail", {"match": "", "script": "surrogate", "status": "Success", "output": "surrogate facts\n"})
    server.ok("POST", "ssm/fail", {"match": "", "script": "pv2hvm", "status": "Success", "output": "pv2hvm facts\n"})
    for commands, output in [(pv2hvm, "pv2hvm facts\n"), (surrogate, "surrogate facts\n")]:
        cmd = send(ssm, instance_id, commands)
        assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["StandardOutputContent"] == output
    # A substring of the script's body matches too, as it did when scripts travelled uncompressed.
    server.ok("POST", "ssm/fail", {"match": "GRUB_MARKER_IN_BODY", "status": "Failed", "stderr": "boom"})
    cmd = send(ssm, instance_id, pv2hvm)
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["Status"] == "Failed"
    cmd = send(ssm, instance_id, surrogate)
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["StandardOutputContent"] == "surrogate facts\n"


def test_register_image_refuses_encrypted_beside_a_snapshot(server: Server) -> None:
    ec2 = server.client("ec2")
    snap = snapshot(ec2)
    with pytest.raises(ClientError) as e:
        ec2.register_image(Name="enc", RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
                           BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "Encrypted": False}}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_ssm_cancel_command(server: Server) -> None:
    ec2 = server.client("ec2")
    a, b = run_instance(ec2), run_instance(ec2)
    ssm = server.client("ssm")
    server.ok("POST", "ssm/fail", {"match": "long-running", "status": "InProgress", "instanceIds": [a]})
    cmd = ssm.send_command(InstanceIds=[a, b], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": ["long-running"]})["Command"]["CommandId"]
    assert ssm.list_commands(CommandId=cmd)["Commands"][0]["Status"] == "InProgress"
    ssm.cancel_command(CommandId=cmd)
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=a)["Status"] == "Cancelled"
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=b)["Status"] == "Success"  # finished: stays
    assert ssm.list_commands(CommandId=cmd)["Commands"][0]["Status"] == "Cancelled"
    with pytest.raises(ClientError) as e:
        ssm.cancel_command(CommandId="00000000-0000-0000-0000-000000000000")
    assert e.value.response["Error"]["Code"] == "InvalidCommandId"


def test_ssm_send_command_needs_a_running_instance(server: Server) -> None:
    ec2 = server.client("ec2")
    ssm = server.client("ssm")
    with pytest.raises(ClientError) as e:
        send(ssm, "i-0123456789abcdef0", ["true"])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    instance_id = run_instance(ec2)
    ec2.stop_instances(InstanceIds=[instance_id])
    with pytest.raises(ClientError) as e:
        send(ssm, instance_id, ["true"])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    ec2.start_instances(InstanceIds=[instance_id])
    # a fresh instance whose agent has not registered yet, for two sends
    server.ok("POST", "ssm/unregistered", {"sends": 2, "instanceIds": [instance_id]})
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            send(ssm, instance_id, ["true"])
        assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    assert send(ssm, instance_id, ["true"])
    status, _ = server.control("POST", "ssm/unregistered", {"sends": 0})
    assert status == 400


def test_ssm_describe_instance_information(server: Server) -> None:
    ec2 = server.client("ec2")
    a, b = run_instance(ec2), run_instance(ec2)
    ec2.stop_instances(InstanceIds=[b])
    ssm = server.client("ssm")
    infos = ssm.describe_instance_information()["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"], i["PlatformType"]) for i in infos] == [(a, "Online", "Linux")]
    assert ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [b]}])["InstanceInformationList"] == []


# --- 6. instance-store roots, product codes, CreateImage ----------------------------------------


def test_create_image_from_unknown_image_instance(server: Server) -> None:
    ec2 = server.client("ec2")
    instance_id = run_instance(ec2, "ami-12c6146b")  # not a known image
    image_id = ec2.create_image(
        InstanceId=instance_id, Name="from-instance",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "img"}]},
                           {"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "snap"}]}],
    )["ImageId"]
    img = image(ec2, image_id)
    # what moto gives an image of an instance launched from an unknown image id
    assert img["VirtualizationType"] == "paravirtual"
    assert img["RootDeviceType"] == "ebs"  # moto says "standard", which EC2 never does
    assert img["RootDeviceName"] == "/dev/sda1"
    assert tags_of(img) == {"k": "img"}
    [mapping] = img["BlockDeviceMappings"]
    assert mapping["DeviceName"] == "/dev/sda1" and mapping["Ebs"]["VolumeSize"] == 8
    snap = ec2.describe_snapshots(SnapshotIds=[mapping["Ebs"]["SnapshotId"]])["Snapshots"][0]
    assert tags_of(snap) == {"k": "snap"}
    assert snap["Description"].startswith(f"Created by CreateImage({instance_id}) for {image_id}")


def test_instances_follow_the_image_and_create_image_round_trips(server: Server) -> None:
    ec2 = server.client("ec2")
    source_id = register(ec2, snapshot(ec2, size=8))
    instance = ec2.run_instances(ImageId=source_id, MinCount=1, MaxCount=1,
                                 BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}])["Instances"][0]
    described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert described["VirtualizationType"] == "hvm"
    assert described["RootDeviceName"] == "/dev/xvda"
    assert sorted(m["DeviceName"] for m in described["BlockDeviceMappings"]) == ["/dev/sdf", "/dev/xvda"]
    image_id = ec2.create_image(InstanceId=instance["InstanceId"], Name="baked")["ImageId"]
    img = image(ec2, image_id)
    assert (img["VirtualizationType"], img["RootDeviceName"], img["RootDeviceType"], img["EnaSupport"]) == ("hvm", "/dev/xvda", "ebs", True)
    sizes = {m["DeviceName"]: m["Ebs"]["VolumeSize"] for m in img["BlockDeviceMappings"]}
    assert sizes == {"/dev/sdf": 20, "/dev/xvda": 10}


def test_run_instances_profiles_and_client_token(server: Server) -> None:
    ec2 = server.client("ec2")
    iam = server.client("iam")
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "missing"})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Invalid IAM Instance Profile name" in e.value.response["Error"]["Message"]
    iam.create_instance_profile(InstanceProfileName="worker")
    server.ok("POST", "ec2/instance-profile-not-ready", {"runs": 1})
    with pytest.raises(ClientError) as e:  # a new profile, not usable by EC2 yet
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "worker"})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    first = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "worker"},
                              ClientToken="build-1-worker")["Instances"][0]["InstanceId"]
    again = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "worker"},
                              ClientToken="build-1-worker")["Instances"][0]["InstanceId"]
    assert again == first
    other = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert other != first
    assert run_instance(ec2) != other  # no token: a new instance each time



def test_copy_image_and_create_volume_honour_client_token(server: Server) -> None:
    # A retry after a lost response (same token, same parameters) gets the first call's resource.
    ec2 = server.client("ec2")
    source = register(server.client("ec2", OTHER), snapshot(server.client("ec2", OTHER)))
    copy = dict(SourceImageId=source, SourceRegion=OTHER, Name="copied", ClientToken="b-1-us-east-1")
    first = ec2.copy_image(**copy)["ImageId"]
    assert ec2.copy_image(**copy)["ImageId"] == first
    assert len([i for i in ec2.describe_images(Owners=["self"])["Images"] if i["Name"] == "copied"]) == 1
    with pytest.raises(ClientError) as e:  # the same token for another request
        ec2.copy_image(**{**copy, "Name": "other"})
    assert e.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert ec2.copy_image(**{**copy, "ClientToken": "b-2", "Name": "copied-2"})["ImageId"] != first
    ec2.deregister_image(ImageId=first)  # remembered while the image exists
    assert ec2.copy_image(**copy)["ImageId"] != first

    vol = dict(Size=8, AvailabilityZone="us-east-1a", ClientToken="b-1-target")
    volume = ec2.create_volume(**vol)
    assert volume["Size"] == 8 and volume["AvailabilityZone"] == "us-east-1a"
    assert ec2.create_volume(**vol)["VolumeId"] == volume["VolumeId"]
    with pytest.raises(ClientError) as e:
        ec2.create_volume(**{**vol, "Size": 9})
    assert e.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"] != volume["VolumeId"]  # no token
    assert len(ec2.describe_volumes()["Volumes"]) == 2



def test_image_names_are_unique_per_account_and_region(server: Server) -> None:
    ec2 = server.client("ec2")
    first = register(ec2, snapshot(ec2), Name="built")
    for call in (lambda: register(ec2, snapshot(ec2), Name="built"),
                 lambda: ec2.copy_image(SourceImageId=first, SourceRegion=REGION, Name="built"),
                 lambda: ec2.create_image(InstanceId=run_instance(ec2), Name="built")):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"
    assert register(server.client("ec2", OTHER), snapshot(server.client("ec2", OTHER)), Name="built")  # another region
    ec2.deregister_image(ImageId=first)
    assert register(ec2, snapshot(ec2), Name="built") != first  # the name is free again

def test_remove_role_not_in_instance_profile_is_no_such_entity(server: Server) -> None:
    iam = server.client("iam")
    iam.create_role(RoleName="worker", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="worker")
    iam.add_role_to_instance_profile(InstanceProfileName="worker", RoleName="worker")
    iam.remove_role_from_instance_profile(InstanceProfileName="worker", RoleName="worker")
    with pytest.raises(ClientError) as e:  # a retry whose first answer was lost
        iam.remove_role_from_instance_profile(InstanceProfileName="worker", RoleName="worker")
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("NoSuchEntity", 404)
    assert iam.get_instance_profile(InstanceProfileName="worker")["InstanceProfile"]["Roles"] == []

def test_detach_volume_without_instance_id(server: Server) -> None:
    ec2 = server.client("ec2")
    instance_id = run_instance(ec2)
    volume_id = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    assert ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"] == "in-use"
    ec2.detach_volume(VolumeId=volume_id)
    assert ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"] == "available"
    with pytest.raises(ClientError) as e:
        ec2.detach_volume(VolumeId=volume_id)
    assert e.value.response["Error"]["Code"] == "IncorrectState"


def test_instance_store_roots(server: Server) -> None:
    ec2 = server.client("ec2")
    instance_id = run_instance(ec2)
    server.ok("POST", "ec2/root-device-type", {"region": REGION, "id": instance_id, "type": "instance-store"})
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert described["RootDeviceType"] == "instance-store"
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[instance_id])
    assert e.value.response["Error"]["Code"] == "UnsupportedOperation"

    image_id = register(ec2, snapshot(ec2))
    server.ok("POST", "ec2/root-device-type", {"region": REGION, "id": image_id, "type": "instance-store"})
    assert image(ec2, image_id)["RootDeviceType"] == "instance-store"
    filtered = ec2.describe_images(Filters=[{"Name": "root-device-type", "Values": ["instance-store"]}])["Images"]
    assert [i["ImageId"] for i in filtered] == [image_id]
    from_image = run_instance(ec2, image_id)
    assert ec2.describe_instances(InstanceIds=[from_image])["Reservations"][0]["Instances"][0]["RootDeviceType"] == "instance-store"

    status, body = server.control("POST", "ec2/root-device-type", {"region": REGION, "id": image_id, "type": "floppy"})
    assert status == 400
    status, body = server.control("POST", "ec2/root-device-type", {"region": OTHER, "id": image_id, "type": "ebs"})
    assert status == 404


def test_product_codes(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    server.ok("POST", "ec2/product-codes", {"region": REGION, "imageId": image_id,
                                            "productCodes": [{"ProductCodeId": "abc", "ProductCodeType": "marketplace"}]})
    assert image(ec2, image_id)["ProductCodes"] == [{"ProductCodeId": "abc", "ProductCodeType": "marketplace"}]
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="productCodes")["ProductCodes"] == [
        {"ProductCodeId": "abc", "ProductCodeType": "marketplace"}]
    other = register(ec2, snapshot(ec2), Name="no-codes")
    assert image(ec2, other)["ProductCodes"] == []


def test_modify_image_description(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "new words"})
    assert image(ec2, image_id)["Description"] == "new words"
    ec2.modify_image_attribute(ImageId=image_id, Attribute="description", Value="other words")
    assert image(ec2, image_id)["Description"] == "other words"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": "111122223333"}]
    assert image(ec2, image_id)["Description"] == "other words"


def test_image_state_control(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    server.ok("POST", "ec2/image-state", {"region": REGION, "imageId": image_id, "state": "pending"})
    assert image(ec2, image_id)["State"] == "pending"
    server.ok("POST", "ec2/image-state", {"region": REGION, "imageId": image_id, "state": "failed",
                                          "stateReason": {"Code": "Client.UnsupportedOperation", "Message": "copy failed"}})
    img = image(ec2, image_id)
    assert img["State"] == "failed"
    assert img["StateReason"] == {"Code": "Client.UnsupportedOperation", "Message": "copy failed"}
    status, _ = server.control("POST", "ec2/image-state", {"region": REGION, "imageId": image_id, "state": "sleepy"})
    assert status == 400


def test_call_failure_rule(server: Server) -> None:
    import botocore.exceptions

    ec2 = server.client("ec2")
    other = server.client("ec2", OTHER)
    image_id = register(ec2, snapshot(ec2))
    server.ok("POST", "calls/fail", {"action": "CopyImage", "region": OTHER, "code": "ResourceLimitExceeded"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="copy-1")
    assert e.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert other.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="copy-2")["ImageId"], "only the next call"
    server.ok("POST", "calls/fail", {"action": "DeregisterImage", "code": "InvalidParameter", "times": 2})
    server.ok("POST", "reset")
    ec2.deregister_image(ImageId=image_id)
    status, _ = server.control("POST", "calls/fail", {"action": "CopyImage", "code": "X", "times": 0})
    assert status == 400


# --- 7. reset -----------------------------------------------------------------------------------------


def test_reset_clears_recorder_and_rules_not_moto(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    server.ok("POST", "calls/actions", {"actions": ["RegisterImage"]})
    server.ok("POST", "ssm/fail", {"match": "x"})
    assert server.calls("RegisterImage")
    server.ok("POST", "reset")
    assert server.ok("GET", "calls") == []
    assert server.ok("GET", "ssm/fail") == []
    ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")  # the default action set is back
    assert len(server.calls("CreateVolume")) == 1
    assert image(ec2, image_id)["ImageId"] == image_id


# --- boot outcomes (launch verification) -------------------------------------------------------------


def statuses(ec2: Any, instance_id: str) -> tuple[str, str] | None:
    found = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    return (found[0]["SystemStatus"]["Status"], found[0]["InstanceStatus"]["Status"]) if found else None


def console(ec2: Any, instance_id: str, latest: bool = True) -> str | None:
    # boto3 decodes Output from base64 itself; the raw wire shape is checked below.
    return ec2.get_console_output(InstanceId=instance_id, Latest=latest).get("Output")


def test_boot_rule_boots_after_n_polls(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="verified-boots", Architecture="x86_64", BootMode="legacy-bios")
    server.ok("POST", "ec2/boot", {"imageName": "verified-boots", "outcome": "boots", "afterPolls": 2, "console": "debian login: "})
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert console(ec2, iid) is None, "an empty console has no Output, as on EC2"
    assert statuses(ec2, iid) == ("initializing", "initializing")
    assert statuses(ec2, iid) == ("ok", "ok")
    assert console(ec2, iid) == "debian login: "
    assert server.ok("GET", "ec2/boot")[0]["outcome"] == "boots"


def test_boot_rule_outcomes_and_default_consoles(server: Server) -> None:
    ec2 = server.client("ec2")
    expected = {"panics": ("ok", "impaired", "Kernel panic - not syncing"), "impaired": ("ok", "impaired", "Linux version"),
                "never": ("initializing", "initializing", "Loading Linux")}
    for outcome, (system, inst, text) in expected.items():
        image_id = register(ec2, snapshot(ec2), Name=f"outcome-{outcome}", Architecture="x86_64", BootMode="legacy-bios")
        server.ok("POST", "ec2/boot", {"imageId": image_id, "outcome": outcome, "afterPolls": 0})
        iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        assert statuses(ec2, iid) == (system, inst), outcome
        assert text in console(ec2, iid), outcome
        if outcome == "impaired":
            assert "panic" not in console(ec2, iid).lower()


def test_boot_rules_match_by_image_most_recent_first_and_default_to_moto(server: Server) -> None:
    ec2 = server.client("ec2")
    a = register(ec2, snapshot(ec2), Name="rule-a", Architecture="x86_64")
    b = register(ec2, snapshot(ec2), Name="rule-b", Architecture="x86_64")
    plain = ec2.run_instances(ImageId=a, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert statuses(ec2, plain) == ("ok", "ok"), "unscripted: moto's answer"
    assert "Linux version 2.6.16-xenU" in console(ec2, plain), "unscripted: moto's sample console, no userspace"
    server.ok("POST", "ec2/boot", {"outcome": "boots", "afterPolls": 0})
    server.ok("POST", "ec2/boot", {"imageId": b, "outcome": "never", "afterPolls": 0})
    on_a = ec2.run_instances(ImageId=a, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    on_b = ec2.run_instances(ImageId=b, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert statuses(ec2, on_a) == ("ok", "ok")
    assert statuses(ec2, on_b) == ("initializing", "initializing")
    server.ok("DELETE", "ec2/boot")
    assert server.ok("GET", "ec2/boot") == []


def test_boot_rule_validation(server: Server) -> None:
    for bad in ({"outcome": "explodes"}, {"outcome": "boots", "afterPolls": -1}, {"outcome": "boots", "imageId": 5},
                {"outcome": "boots", "colour": "red"}):
        status, body = server.control("POST", "ec2/boot", bad)
        assert status == 400, bad
        assert body["error"]


def test_get_console_output_is_base64_on_the_wire(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="wire", Architecture="x86_64")
    server.ok("POST", "ec2/boot", {"imageId": image_id, "outcome": "boots", "afterPolls": 0, "console": "héllo login: "})
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    query = urllib.parse.urlencode({"Action": "GetConsoleOutput", "Version": "2016-11-15", "InstanceId": iid, "Latest": "true"})
    req = urllib.request.Request(server.endpoint + "/", data=query.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x"})
    body = urllib.request.urlopen(req, timeout=30).read().decode()
    output = re.search(r"<output>([^<]*)</output>", body).group(1)
    assert base64.b64decode(output).decode() == "héllo login: "


def test_latest_console_needs_a_nitro_type_and_nitro_needs_ena(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="no-ena", Architecture="x86_64", BootMode="legacy-bios", EnaSupport=False)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "ENA) is required for the 't3.micro' instance type" in e.value.response["Error"]["Message"]
    xen = ec2.run_instances(ImageId=image_id, InstanceType="t2.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        console(ec2, xen, latest=True)
    assert e.value.response["Error"]["Code"] == "UnsupportedOperation"
    assert console(ec2, xen, latest=False)  # the buffered console works on Xen


def test_reset_clears_boot_rules(server: Server) -> None:
    server.ok("POST", "ec2/boot", {"outcome": "never"})
    server.ok("POST", "reset")
    assert server.ok("GET", "ec2/boot") == []


def test_a_new_instance_can_be_invisible_for_a_few_calls(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="eventual", Architecture="x86_64")
    server.ok("POST", "ec2/boot", {"imageId": image_id, "outcome": "boots", "afterPolls": 0, "notVisibleFor": 2})
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    for call in (lambda: statuses(ec2, iid), lambda: console(ec2, iid)):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    assert statuses(ec2, iid) == ("ok", "ok")
    status, body = server.control("POST", "ec2/boot", {"outcome": "boots", "notVisibleFor": -1})
    assert status == 400


def test_run_instances_may_change_only_delete_on_termination_of_an_image_mapping(server: Server) -> None:
    ec2 = server.client("ec2")
    root, data = snapshot(ec2), snapshot(ec2)
    image = ec2.register_image(Name="with-data", RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root}},
                                                    {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": data, "DeleteOnTermination": False}}])["ImageId"]
    out = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                            BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    mappings = {m["DeviceName"]: m["Ebs"] for m in out["Instances"][0]["BlockDeviceMappings"]}
    assert mappings["/dev/sdf"]["DeleteOnTermination"] is True
    volume = ec2.describe_volumes(VolumeIds=[mappings["/dev/sdf"]["VolumeId"]])["Volumes"][0]
    assert volume["SnapshotId"] == data
    # A device the image does not map still needs a size or a snapshot.
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                          BlockDeviceMappings=[{"DeviceName": "/dev/sdg", "Ebs": {"DeleteOnTermination": True}}])
    assert e.value.response["Error"]["Code"] == "MissingParameter"
