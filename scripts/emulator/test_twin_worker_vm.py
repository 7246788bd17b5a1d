"""The twin's worker through the AWS API (ami_emulator/twin/worker.py), one worker boot (TCG) shared by
every test here, in order: the AL2023 parameter names the twin worker image, its instance is a worker
VM, SSM registers it only once its agent is ready, SendCommand runs for real (outputs clipped as
AWS, empty until the end; TimedOut; Cancelled), AttachVolume hot-plugs (found by id in the guest),
CreateSnapshot of an attached volume freezes through the VM, DetachVolume unplugs, an agent that
dies fails its command, terminate removes the VM and its files.

Needs the worker disk: `bash scripts/setup.sh --twin`.
Run: python3 -m pytest -q scripts/emulator/test_twin_worker_vm.py
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server, wait_for

PARAM = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
BOOT_TIMEOUT = 600


STATE: dict[str, Any] = {}


def invocation(ssm: Any, cid: str, iid: str, timeout: float = 300) -> dict[str, Any]:
    def done() -> Any:
        out = ssm.get_command_invocation(CommandId=cid, InstanceId=iid)
        if out["Status"] in ("Pending", "InProgress", "Delayed"):
            assert out["StandardOutputContent"] == "" and out["StandardErrorContent"] == "", "outputs come at the end"
            return None
        return out

    return wait_for(done, timeout, f"command {cid}")


def send(ssm: Any, iid: str, lines: list[str], timeout: str = "600") -> str:
    return ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript",
                            Parameters={"commands": lines, "executionTimeout": [timeout]})["Command"]["CommandId"]


def test_the_al2023_parameter_names_the_twin_worker_and_xen_types_are_refused(emu: Server) -> None:
    ssm, ec2 = emu.client("ssm"), emu.client("ec2")
    image_id = ssm.get_parameter(Name=PARAM)["Parameter"]["Value"]
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert (img["VirtualizationType"], img["Architecture"], img["RootDeviceName"]) == ("hvm", "x86_64", "/dev/xvda")
    assert ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == image_id, "made once per region"
    with pytest.raises(ClientError, match="Nitro instance types only"):
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t2.micro")
    STATE["image"] = image_id


def test_the_worker_registers_with_ssm_once_its_agent_is_ready(emu: Server) -> None:
    ssm, ec2 = emu.client("ssm"), emu.client("ec2")
    iid = ec2.run_instances(ImageId=STATE["image"], MinCount=1, MaxCount=1, InstanceType="m6i.large")["Instances"][0]["InstanceId"]
    STATE["iid"] = iid
    listed = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])["InstanceInformationList"]
    assert listed == [], "not registered while it boots"
    with pytest.raises(ClientError, match="InvalidInstanceId"):
        send(ssm, iid, ["true"])
    began = time.monotonic()
    wait_for(lambda: ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])["InstanceInformationList"],
             BOOT_TIMEOUT, "the worker's agent to register")
    print(f"worker registered {time.monotonic() - began:.0f} s after RunInstances")


def test_a_worker_can_be_told_to_boot_without_its_agent(emu: Server) -> None:
    ec2 = emu.client("ec2")
    emu.ok("POST", "twin/worker-agent-off", {"workers": 1})
    run_dir = Path(emu.ok("GET", "twin")["runDir"])
    iids = [ec2.run_instances(ImageId=STATE["image"], MinCount=1, MaxCount=1, InstanceType="m6i.large")["Instances"][0]["InstanceId"]
            for _ in range(2)]
    appends = [json.loads((run_dir / "vms" / i / "argv.json").read_text()) for i in iids]
    appends = [a[a.index("-append") + 1] for a in appends]
    assert "systemd.mask=ami-factory-agent.service" in appends[0] and "systemd.mask" not in appends[1], "the next one only"
    argvs = [json.loads((run_dir / "vms" / i / "argv.json").read_text()) for i in iids]
    assert "-incoming" not in argvs[0], "an agent-off worker boots: no saved state has its agent masked"
    assert "-incoming" in argvs[1], "the other resumes from setup's saved state (setup.sh --twin)"
    ec2.terminate_instances(InstanceIds=iids)
    assert not any((run_dir / "vms" / i).exists() for i in iids)


def test_a_command_runs_on_the_worker_with_aws_clipping(emu: Server) -> None:
    ssm, iid = emu.client("ssm"), STATE["iid"]
    cid = send(ssm, iid, ["id -u", "echo to-stderr >&2", "head -c 30000 /dev/zero | tr '\\0' o",
                          "head -c 9000 /dev/zero | tr '\\0' e >&2", "exit 3"])
    out = invocation(ssm, cid, iid)
    assert (out["Status"], out["ResponseCode"]) == ("Failed", 3)
    assert out["StandardOutputContent"].startswith("0\n") and len(out["StandardOutputContent"]) == 24_000
    assert out["StandardErrorContent"].startswith("to-stderr\n") and len(out["StandardErrorContent"]) == 8_000
    ok = invocation(ssm, send(ssm, iid, ["echo hello"]), iid)
    assert (ok["Status"], ok["ResponseCode"], ok["StandardOutputContent"]) == ("Success", 0, "hello\n")
    listed = ssm.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"]
    assert listed[0]["Status"] == "Failed", listed


def test_execution_timeout_and_cancel_are_honoured(emu: Server) -> None:
    ssm, iid = emu.client("ssm"), STATE["iid"]
    timed = send(ssm, iid, ["sleep 120"], timeout="3")
    cancelled = send(ssm, iid, ["sleep 120"])
    wait_for(lambda: ssm.get_command_invocation(CommandId=cancelled, InstanceId=iid)["Status"] == "InProgress", 60, "InProgress")
    ssm.cancel_command(CommandId=cancelled)
    assert invocation(ssm, cancelled, iid, 60)["Status"] == "Cancelled"
    out = invocation(ssm, timed, iid, 120)
    assert (out["Status"], out["StatusDetails"]) == ("TimedOut", "ExecutionTimedOut")


def test_attach_hot_plugs_and_a_snapshot_of_an_attached_volume_freezes_through_the_vm(emu: Server) -> None:
    ssm, ec2, ebs, iid = emu.client("ssm"), emu.client("ec2"), emu.client("ebs"), STATE["iid"]
    az = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(Size=1, AvailabilityZone=az)["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    dev = f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{vol.replace('-', '')}"
    write = lambda ch: invocation(ssm, send(ssm, iid, [f"udevadm settle; test -b {dev}",
                                                       f"head -c 524288 /dev/zero | tr '\\0' {ch} | dd of={dev} oflag=direct bs=512k status=none",
                                                       "sync"]), iid)
    first = write("A")
    assert first["Status"] == "Success", first
    snap_a = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]  # attached: frozen through the VM
    assert write("B")["Status"] == "Success"
    ec2.detach_volume(VolumeId=vol)
    gone = invocation(ssm, send(ssm, iid, ["udevadm settle", f"test -e {dev} && echo present || echo gone"]), iid)
    assert gone["StandardOutputContent"] == "gone\n"
    snap_b = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]  # detached: offline
    for snap, ch in ((snap_a, b"A"), (snap_b, b"B")):
        token = ebs.list_snapshot_blocks(SnapshotId=snap)["Blocks"][0]["BlockToken"]
        data = ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=0, BlockToken=token)["BlockData"].read()
        assert data == ch * 524288, f"{snap} holds the bytes of its moment"
    # Attached again, the volume shows B (the file that the snapshot left current).
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    again = invocation(ssm, send(ssm, iid, ["udevadm settle", f"head -c 4 {dev}"]), iid)
    assert again["StandardOutputContent"] == "BBBB"
    ec2.detach_volume(VolumeId=vol)


def test_an_agent_that_dies_fails_its_command_and_terminate_removes_the_vm(emu: Server) -> None:
    ssm, ec2, iid = emu.client("ssm"), emu.client("ec2"), STATE["iid"]
    run_dir = Path(emu.ok("GET", "twin")["runDir"])
    cid = send(ssm, iid, ["sleep 300"])
    wait_for(lambda: ssm.get_command_invocation(CommandId=cid, InstanceId=iid)["Status"] == "InProgress", 60, "InProgress")
    pid = int([p for p in os.listdir("/proc") if p.isdigit() and iid.encode() in Path(f"/proc/{p}/cmdline").read_bytes()
               and Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"qemu-system")][0])
    os.kill(pid, signal.SIGKILL)
    out = invocation(ssm, cid, iid, 60)
    assert out["Status"] == "Failed" and "agent went away" in out["StandardErrorContent"], out
    ec2.terminate_instances(InstanceIds=[iid])
    assert not (run_dir / "vms" / iid).exists()
