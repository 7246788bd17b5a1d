"""Twin workers resumed from the saved post-boot state (ami_emulator/twin/worker_resume.py), through
the AWS API: two workers from one state, each registers with SSM in seconds, runs commands as root
with the host's time, shows a boot on its console, hot-plugs a volume found by its id, and neither
sees what the other wrote (nor draws the same random numbers). No boot here: the one boot was
`setup.sh --twin`'s.

Needs the worker disk and its saved state: `bash scripts/setup.sh --twin`.
Run: python3 -m pytest -q scripts/emulator/test_twin_worker_resume.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ami_emulator.twin.instances import WORKER_MEMORY_MIB
from ami_emulator.twin.vm import detect_accel
from ami_emulator.twin.worker_disk import has_vmgenid, worker_disk
from ami_emulator.twin.worker_resume import evict_unused, saved_state
from emulator_harness import Server, wait_for

PARAM = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
# A resume is well under a second of CPU; this leaves room for two loaded cores.
REGISTER_TIMEOUT = 60
# A cold boot under TCG on two loaded cores (worker.py's READY_TIMEOUT bounds it too).
COLD_BOOT_TIMEOUT = 600


STATE: dict[str, Any] = {}


def run(ssm: Any, iid: str, lines: list[str], timeout: float = 120) -> dict[str, Any]:
    cid = ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": lines})["Command"]["CommandId"]

    def done() -> Any:
        out = ssm.get_command_invocation(CommandId=cid, InstanceId=iid)
        return None if out["Status"] in ("Pending", "InProgress", "Delayed") else out

    return wait_for(done, timeout, f"command {cid}")


def test_setup_saved_a_worker_state_for_the_current_disk() -> None:
    state = saved_state(worker_disk(), detect_accel()[0], WORKER_MEMORY_MIB)
    assert state is not None, "no current saved worker state: run 'bash scripts/setup.sh --twin'"
    STATE["saved"] = state


def test_two_workers_resume_and_register_with_ssm_in_seconds(emu: Server) -> None:
    ssm, ec2 = emu.client("ssm"), emu.client("ec2")
    image_id = ssm.get_parameter(Name=PARAM)["Parameter"]["Value"]
    run_dir = Path(emu.ok("GET", "twin")["runDir"])
    began = time.monotonic()
    iids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image_id, MinCount=2, MaxCount=2,
                                                         InstanceType="m6i.large")["Instances"]]
    for iid in iids:
        argv = json.loads((run_dir / "vms" / iid / "argv.json").read_text())
        assert argv[argv.index("-incoming") + 1] == f"exec:cat {STATE['saved'].state}", "resumed, not booted"
    wait_for(lambda: len(ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": iids}])["InstanceInformationList"]) == 2,
        REGISTER_TIMEOUT, "both resumed workers to register")
    took = time.monotonic() - began
    print(f"two resumed workers registered {took:.1f} s after RunInstances "
          f"(the saved state's boot took {STATE['saved'].manifest['bootSeconds']} s)", file=sys.stderr)
    STATE["iids"] = iids


def test_a_resumed_worker_runs_commands_as_root_with_the_hosts_time(emu: Server) -> None:
    ssm = emu.client("ssm")
    for iid in STATE["iids"]:
        out = run(ssm, iid, ["id -u", "date +%s.%N"])
        assert out["Status"] == "Success", out
        uid, guest_time = out["StandardOutputContent"].split()
        assert uid == "0"
        # The state was saved at setup (minutes or days ago): the agent set the clock at hello.
        assert abs(float(guest_time) - time.time()) < 5, "the guest's clock is the host's"


def test_a_resumed_workers_console_shows_the_boot(emu: Server) -> None:
    ec2 = emu.client("ec2")
    with open(STATE["saved"].console, errors="replace", newline="") as f:
        boot = f.read()
    assert "ami-worker: clean" in boot, "the saved boot's console shows its fsck of the root"
    assert ec2.get_console_output(InstanceId=STATE["iids"][0])["Output"].startswith(boot)  # boto3 decodes it


def test_a_volume_hot_plugs_into_a_resumed_worker_found_by_its_id(emu: Server) -> None:
    ssm, ec2 = emu.client("ssm"), emu.client("ec2")
    iid = STATE["iids"][0]
    az = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(Size=1, AvailabilityZone=az)["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    dev = f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{vol.replace('-', '')}"
    out = run(ssm, iid, ["set -e", "udevadm settle", f"test -b {dev}", f"blockdev --getsize64 {dev}",
                         f"cat /sys/block/$(basename $(readlink -f {dev}))/device/serial"])
    assert out["Status"] == "Success", out
    assert out["StandardOutputContent"].split() == [str(2**30), vol.replace("-", "")]
    ec2.detach_volume(VolumeId=vol)
    gone = run(ssm, iid, ["udevadm settle", f"test -e {dev} && echo present || echo gone"])
    assert gone["StandardOutputContent"] == "gone\n"


def test_two_workers_from_one_state_are_independent(emu: Server) -> None:
    ssm = emu.client("ssm")
    a, b = STATE["iids"]
    token = f"written-in-{a}"
    assert run(ssm, a, [f"echo {token} > /root/marker", "sync"])["Status"] == "Success"
    there = run(ssm, a, ["cat /root/marker"])
    assert there["StandardOutputContent"] == f"{token}\n"
    absent = run(ssm, b, ["test -e /root/marker && cat /root/marker || echo absent"])
    assert absent["StandardOutputContent"] == "absent\n", "the other worker's disk is its own"
    # The kernel's random pool was reseeded from each host hello (and by the kernel on its new VM
    # generation ID): no shared random numbers.
    ready = emu.ok("GET", "twin")["workersReady"]
    assert ready[a]["reseeded"] is True and ready[b]["reseeded"] is True, ready
    if has_vmgenid("qemu-system-x86_64"):
        for i in (a, b):
            seen = run(ssm, i, ["dmesg | grep -c 'crng reseeded due to virtual machine fork' || true"])
            assert seen["StandardOutputContent"] == "1\n", "the kernel saw its new VM generation ID once"
    uuids = [run(ssm, i, ["cat /proc/sys/kernel/random/uuid"])["StandardOutputContent"] for i in (a, b)]
    assert uuids[0] != uuids[1]
    # Each has a machine id of its own, not the template boot's both resumed with.
    ids = [run(ssm, i, ["cat /etc/machine-id"])["StandardOutputContent"].strip() for i in (a, b)]
    assert ids[0] != ids[1] and all(len(i) == 32 for i in ids), ids
    assert ids == [ready[a]["machineId"], ready[b]["machineId"]]


def test_a_worker_whose_saved_state_does_not_load_cold_boots_and_registers(emu: Server) -> None:
    ssm, ec2 = emu.client("ssm"), emu.client("ec2")
    image_id = ssm.get_parameter(Name=PARAM)["Parameter"]["Value"]
    run_dir = Path(emu.ok("GET", "twin")["runDir"])
    emu.ok("POST", "twin/worker-state-damaged", {"workers": 1})
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m6i.large")["Instances"][0]["InstanceId"]
    wait_for(lambda: len(ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [iid]}])["InstanceInformationList"]) == 1,
        COLD_BOOT_TIMEOUT, "the worker whose state did not load to cold-boot and register")
    argv = json.loads((run_dir / "vms" / iid / "argv.json").read_text())
    assert "-incoming" not in argv, "it booted again without the state"
    out = run(ssm, iid, ["set -e", "id -u", "test ! -e /root/marker && echo clean"])
    assert out["Status"] == "Success" and out["StandardOutputContent"].split() == ["0", "clean"], out
    ec2.terminate_instances(InstanceIds=[iid])


def test_a_build_evicts_only_states_unused_for_a_day(tmp_path: Path) -> None:
    for name, age in (("current", 0), ("used-an-hour-ago", 3600), ("unused-two-days", 2 * 86400), ("keep", 9 * 86400)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "state").write_bytes(b"x")
        t = time.time() - age
        os.utime(tmp_path / name, (t, t))
    (tmp_path / "state").write_bytes(b"old layout")  # an older checkout's single state: left alone
    os.utime(tmp_path / "state", (0, 0))
    assert evict_unused(str(tmp_path), keep="keep") == ["unused-two-days"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "keep", "state", "used-an-hour-ago"]


def test_terminate_removes_the_resumed_workers(emu: Server) -> None:
    ec2 = emu.client("ec2")
    run_dir = Path(emu.ok("GET", "twin")["runDir"])
    ec2.terminate_instances(InstanceIds=STATE["iids"])
    assert not any((run_dir / "vms" / i).exists() for i in STATE["iids"])
    assert Path(STATE["saved"].disk).exists() and Path(STATE["saved"].state).exists(), "the saved state stays"


def test_cold_boots_can_be_forced(tmp_path: Path) -> None:
    s = Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "AMI_FACTORY_EMULATOR": "twin",
                    "AMI_FACTORY_TWIN_DIR": str(tmp_path), "AMI_FACTORY_TWIN_COLD_BOOT": "1"})
    try:
        ssm, ec2 = s.client("ssm"), s.client("ec2")
        image_id = ssm.get_parameter(Name=PARAM)["Parameter"]["Value"]
        iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m6i.large")["Instances"][0]["InstanceId"]
        argv = json.loads((Path(s.ok("GET", "twin")["runDir"]) / "vms" / iid / "argv.json").read_text())
        assert "-incoming" not in argv and argv[argv.index("-append") + 1] == worker_disk().cmdline
        ec2.terminate_instances(InstanceIds=[iid])  # before its boot costs anything
    finally:
        s.stop()
