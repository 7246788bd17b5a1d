"""Proves launch = boot in the twin's moto (ami_emulator/twin/instances.py) against a launched server
in twin mode (conftest's `twin`, reset before each test), without booting a kernel: the image here is an empty disk, so the VM's firmware finds
nothing to boot (seconds). The real boot to userspace is test/e2e/twinBoot.test.ts.

Run: python3 -m pytest scripts/emulator/test_twin_instances.py
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ami_emulator.twin import vm as vms
from emulator_harness import Server, wait_for


def qemu_of(instance_id: str) -> list[int]:
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and instance_id.encode() in argv:
            pids.append(int(p))
    return pids


def run_dir(s: Server) -> Path:
    return Path(s.ok("GET", "twin")["runDir"])


def empty_image(ec2: Any, virtualization: str = "hvm", boot_mode: str = "legacy-bios", server: Server | None = None) -> str:
    """An image of a 1 GiB disk with no boot sector. With `server`, a few bytes are written at 1 MiB
    first (twin/volume-write), so the chain holds real bytes and the image boots as a VM (the
    firmware still finds nothing to boot); without, it is a disk nobody wrote and keeps the recorded
    behaviour."""
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    if server is not None:
        server.ok("POST", "twin/volume-write", {"volumeId": vol, "offset": 1 << 20, "length": 512, "pattern": 0x5A})
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    extra: dict[str, Any] = {"KernelId": "aki-919dcaf8"} if virtualization == "paravirtual" else {"BootMode": boot_mode, "EnaSupport": True}
    return ec2.register_image(
        Name=f"empty-{virtualization}-{time.monotonic_ns()}", Architecture="x86_64", VirtualizationType=virtualization,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "DeleteOnTermination": True}}], **extra,
    )["ImageId"]


def checks(ec2: Any, instance_id: str) -> tuple[str, str]:
    s = ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)["InstanceStatuses"][0]
    return s["SystemStatus"]["Status"], s["InstanceStatus"]["Status"]


def test_an_hvm_image_with_twin_bytes_runs_as_a_vm_until_terminated(twin: Server) -> None:
    ec2 = twin.client("ec2")
    image = empty_image(ec2, server=twin)
    inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    iid = inst["InstanceId"]
    root = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    vm_dir = run_dir(twin) / "vms" / iid
    assert len(qemu_of(iid)) == 1
    argv = (vm_dir / "argv.json").read_text()
    assert f"serial={root.replace('-', '')}" in argv, "a Nitro type's root volume is NVMe with the volume id as serial"
    assert '"-nic", "none"' in argv
    volume_file = Path(twin.ok("GET", "twin")["runDir"]) / "layers"
    layers_running = sorted(volume_file.iterdir())

    # The firmware finds nothing on the empty disk: instance check impaired, SeaBIOS's screen on the console.
    wait_for(lambda: checks(ec2, iid) == ("ok", "impaired"), 60, "the instance check to fail")
    out = ec2.get_console_output(InstanceId=iid, Latest=True)
    assert "No bootable device." in out["Output"], out.get("Output")

    ec2.terminate_instances(InstanceIds=[iid])
    assert qemu_of(iid) == []
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [root]}])["Volumes"] == []
    layers_after = sorted(volume_file.iterdir())
    assert len(layers_after) == len(layers_running) - 1, "the root volume's overlay file is removed (DeleteOnTermination)"
    # The console stays readable after termination, as EC2 keeps the last output for a while.
    assert "No bootable device." in ec2.get_console_output(InstanceId=iid)["Output"]


def test_a_xen_type_gets_an_ide_disk_and_latest_console_stays_nitro_only(twin: Server) -> None:
    ec2 = twin.client("ec2")
    iid = ec2.run_instances(ImageId=empty_image(ec2, server=twin), MinCount=1, MaxCount=1, InstanceType="t2.micro")["Instances"][0]["InstanceId"]
    try:
        argv = (run_dir(twin) / "vms" / iid / "argv.json").read_text()
        assert "ide-hd,drive=root,bus=ide.0" in argv and "nvme," not in argv
        with pytest.raises(ClientError) as e:
            ec2.get_console_output(InstanceId=iid, Latest=True)
        assert e.value.response["Error"]["Code"] == "UnsupportedOperation"
        wait_for(lambda: "No bootable device." in (ec2.get_console_output(InstanceId=iid).get("Output") or ""), 60, "the firmware's message")
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
    assert qemu_of(iid) == []


def test_a_uefi_image_boots_with_ovmf(twin: Server) -> None:
    ec2 = twin.client("ec2")
    iid = ec2.run_instances(ImageId=empty_image(ec2, boot_mode="uefi", server=twin), MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    try:
        assert "OVMF.fd" in (run_dir(twin) / "vms" / iid / "argv.json").read_text()
    finally:
        ec2.terminate_instances(InstanceIds=[iid])


def test_instances_of_images_without_twin_bytes_keep_the_recorded_behaviour(twin: Server) -> None:
    ec2 = twin.client("ec2")
    pv = ec2.run_instances(ImageId=empty_image(ec2, "paravirtual"), MinCount=1, MaxCount=1, InstanceType="m1.small")["Instances"][0]["InstanceId"]
    twin.ok("POST", "ec2/boot", {"outcome": "boots", "afterPolls": 0})
    assert qemu_of(pv) == []
    assert checks(ec2, pv) == ("ok", "ok")
    assert "debian login:" in ec2.get_console_output(InstanceId=pv)["Output"]  # the scripted console (boto3 decodes base64)
    ec2.terminate_instances(InstanceIds=[pv])


def test_an_x86_hvm_image_with_no_bytes_starts_no_vm_and_keeps_the_recorded_behaviour(twin: Server) -> None:
    """An image of a volume nobody wrote has a snapshot in the store but no bytes in it: nothing to
    boot, so the recorded behaviour answers. (The AL2023 parameter's image is the twin worker in twin
    mode, which boots: test_twin_worker_vm.py.)"""
    ec2 = twin.client("ec2")
    image_id = empty_image(ec2)
    twin.ok("POST", "ec2/boot", {"outcome": "boots", "afterPolls": 0})
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    try:
        assert qemu_of(iid) == []
        assert not (run_dir(twin) / "vms" / iid).exists()
        assert checks(ec2, iid) == ("ok", "ok")
        assert "debian login:" in ec2.get_console_output(InstanceId=iid)["Output"]  # the scripted console
    finally:
        ec2.terminate_instances(InstanceIds=[iid])


def test_moto_reset_stops_every_vm(twin: Server) -> None:
    ec2 = twin.client("ec2")
    iid = ec2.run_instances(ImageId=empty_image(ec2, server=twin), MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    assert len(qemu_of(iid)) == 1
    twin.moto_reset()
    assert qemu_of(iid) == []


@pytest.mark.parametrize("end", ["stop", "kill -9"])
def test_every_vm_ends_with_the_emulator(tmp_path: Path, end: str) -> None:
    """stop (SIGTERM): VMs stopped and the run directory removed; kill -9: PR_SET_PDEATHSIG kills them."""
    s = Server(env={"AMI_FACTORY_EMULATOR": "twin", "AMI_FACTORY_TWIN_DIR": str(tmp_path)})
    try:
        ec2 = s.client("ec2")
        iid = ec2.run_instances(ImageId=empty_image(ec2, server=s), MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
        assert len(qemu_of(iid)) == 1
        root = run_dir(s)
    finally:
        if end == "stop":
            assert s.stop() == 0
        else:
            s.proc.kill()
            s.proc.wait()
    wait_for(lambda: qemu_of(iid) == [], 10, f"the VM to end with the emulator ({end})")
    if end == "stop":
        assert not root.exists()


def test_twin_mode_without_qemu_exits_at_start_naming_the_package(tmp_path: Path) -> None:
    # A PATH with qemu-img (the store's) and no qemu-system-x86_64.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("qemu-img"), bin_dir / "qemu-img")
    with pytest.raises(AssertionError) as e:
        Server(env={"AMI_FACTORY_EMULATOR": "twin", "AMI_FACTORY_TWIN_DIR": str(tmp_path / "runs"), "PATH": str(bin_dir)})
    assert "qemu-system-x86_64 (Debian package qemu-system-x86)" in str(e.value)
    assert "apt-get install qemu-system-x86" in str(e.value)


def test_a_snapshot_of_a_running_instances_root_volume_freezes_through_the_vm(twin: Server) -> None:
    ec2 = twin.client("ec2")
    inst = ec2.run_instances(ImageId=empty_image(ec2, server=twin), MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    iid, root = inst["InstanceId"], inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    try:
        vm_dir = run_dir(twin) / "vms" / iid
        launched_on = next(a for a in json.loads((vm_dir / "argv.json").read_text()) if a.startswith("file=")).split(",")[0][5:]
        snap = ec2.create_snapshot(VolumeId=root)["SnapshotId"]  # at once: qemu may not have opened QMP yet
        now = vms.qmp(str(vm_dir / "qmp.sock"), "query-block")[0]["inserted"]
        assert now["file"] != launched_on, "the VM writes into a new overlay after the snapshot (blockdev-snapshot-sync)"
        assert now["backing_file"] == launched_on, "the file the VM had open is the new overlay's backing: the snapshot's frozen layer"
        assert len(qemu_of(iid)) == 1, "the VM keeps running"
        assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["VolumeId"] == root
    finally:
        ec2.terminate_instances(InstanceIds=[iid])


def test_an_arm64_image_keeps_the_recorded_behaviour(twin: Server) -> None:
    ec2 = twin.client("ec2")
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    image = ec2.register_image(Name="arm", Architecture="arm64", VirtualizationType="hvm", RootDeviceName="/dev/xvda", EnaSupport=True,
                               BootMode="uefi", BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])["ImageId"]
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t4g.micro")["Instances"][0]["InstanceId"]
    assert qemu_of(iid) == [], "qemu-system-x86_64 cannot run an arm64 image"
    ec2.terminate_instances(InstanceIds=[iid])
