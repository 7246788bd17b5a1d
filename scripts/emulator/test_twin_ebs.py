"""The twin through the API, as boto3 sees it: disks imported from S3 and read back block by block,
copy-on-write volumes and snapshots, changed blocks, failed imports, images registered on imported
snapshots, and what deletes free."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server

BLOCK = 512 * 1024
DATA_BLOCKS = (0, 2, 3, 6)  # of an 8-block (4 MiB) disk; the others are holes
REGION = "us-east-1"


def raw_disk(blocks: int = 8, data: tuple[int, ...] = DATA_BLOCKS, seed: int = 1) -> bytes:
    """A synthetic disk: pseudo-random bytes in `data` blocks, zeroes elsewhere."""
    rnd = random.Random(seed)
    return b"".join(rnd.randbytes(BLOCK) if i in data else bytes(BLOCK) for i in range(blocks))


def convert(raw: bytes, fmt: str, tmp: Path, *opts: str) -> bytes:
    src, dest = tmp / "disk.raw", tmp / f"disk.{fmt}"
    src.write_bytes(raw)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, *opts, str(src), str(dest)], check=True)
    return dest.read_bytes()


def import_disk(server: Server, data: bytes, fmt: str, key: str = "disk.img", wait: bool = True) -> dict[str, Any]:
    s3, ec2 = server.client("s3"), server.client("ec2")
    try:
        s3.create_bucket(Bucket="images")
    except ClientError:
        pass
    s3.put_object(Bucket="images", Key=key, Body=data)
    started = ec2.import_snapshot(Description="a test disk",
                                  DiskContainer={"Format": fmt, "UserBucket": {"S3Bucket": "images", "S3Key": key}})
    if not wait:
        return started
    return wait_import(server, started["ImportTaskId"])


def wait_import(server: Server, task_id: str) -> dict[str, Any]:
    ec2 = server.client("ec2")
    deadline = time.monotonic() + 60
    while True:
        task = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"][0]
        if task["SnapshotTaskDetail"]["Status"] != "active" or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


def read_back(server: Server, snapshot_id: str, size: int, region: str = REGION) -> tuple[bytes, list[int]]:
    """The snapshot's first `size` bytes through ListSnapshotBlocks / GetSnapshotBlock (checksums checked)."""
    ebs = server.client("ebs", region)
    listed: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"SnapshotId": snapshot_id}
    while True:
        page = ebs.list_snapshot_blocks(**kwargs)
        assert page["BlockSize"] == BLOCK
        listed += page["Blocks"]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    out = bytearray(size)
    for b in listed:
        got = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"])
        data = got["BlockData"].read()
        assert got["DataLength"] == BLOCK == len(data)
        assert got["ChecksumAlgorithm"] == "SHA256"
        assert got["Checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        start = b["BlockIndex"] * BLOCK
        if start < size:
            out[start:start + BLOCK] = data[:size - start]
    return bytes(out), [b["BlockIndex"] for b in listed]


def run_dir(server: Server) -> Path:
    return Path(server.ok("GET", "twin")["runDir"])


def layer_files(server: Server) -> list[str]:
    return sorted(os.listdir(run_dir(server) / "layers"))


def test_a_raw_disk_imported_from_s3_reads_back_block_by_block(twin: Server) -> None:
    raw = raw_disk()
    started = import_disk(twin, raw, "RAW", wait=False)
    detail = started["SnapshotTaskDetail"]
    assert started["ImportTaskId"].startswith("import-snap-")
    assert (detail["Status"], detail["StatusMessage"], detail["Format"]) == ("active", "pending", "RAW")
    assert detail["UserBucket"] == {"S3Bucket": "images", "S3Key": "disk.img"}

    task = wait_import(twin, started["ImportTaskId"])
    detail = task["SnapshotTaskDetail"]
    assert detail["Status"] == "completed", detail
    assert "Progress" not in detail and "StatusMessage" not in detail
    assert detail["DiskImageSize"] == float(len(raw))
    snap = twin.client("ec2").describe_snapshots(SnapshotIds=[detail["SnapshotId"]])["Snapshots"][0]
    assert snap["VolumeSize"] == 1 and snap["State"] == "completed"
    assert snap["Description"] == f"Created by AWS-VMImport service for {task['ImportTaskId']}"

    data, listed = read_back(twin, detail["SnapshotId"], len(raw))
    assert listed == list(DATA_BLOCKS)  # only blocks that hold data
    assert data == raw


@pytest.mark.parametrize("fmt,qemu_fmt,opts", [("VMDK", "vmdk", ()), ("VMDK", "vmdk", ("-o", "subformat=streamOptimized")),
                                               ("VHD", "vpc", ("-o", "force_size=on"))])
def test_vmdk_and_vhd_disks_import_to_the_same_bytes(twin: Server, tmp_path: Path, fmt: str, qemu_fmt: str,
                                                     opts: tuple[str, ...]) -> None:
    raw = raw_disk(seed=2)
    task = import_disk(twin, convert(raw, qemu_fmt, tmp_path, *opts), fmt)
    detail = task["SnapshotTaskDetail"]
    assert (detail["Status"], detail["Format"]) == ("completed", fmt), detail
    data, listed = read_back(twin, detail["SnapshotId"], len(raw))
    assert data == raw and listed == list(DATA_BLOCKS)


def _truncated(raw: bytes, fmt: str, tmp: Path) -> bytes:
    image = convert(raw, fmt, tmp)
    return image[: len(image) * 2 // 3]


@pytest.mark.parametrize("case,fmt,message", [
    ("junk as VMDK", "VMDK", "ClientError: Disk validation failed [Unsupported specified file format]"),
    ("truncated VMDK", "VMDK", "ClientError: Disk validation failed [Unsupported specified file format]"),
    ("junk as VHD", "VHD", "ClientError: Disk validation failed [Unsupported specified file format]"),
    ("truncated VHD", "VHD", "ClientError: Footers not identical"),
    ("empty RAW", "RAW", "ClientError: Disk validation failed [Unsupported specified file format]"),
])
def test_a_corrupt_or_truncated_image_fails_the_task_as_aws_words_it(twin: Server, tmp_path: Path, case: str,
                                                                     fmt: str, message: str) -> None:
    raw = raw_disk(seed=3)
    image = {
        "junk as VMDK": random.Random(4).randbytes(70000),
        "truncated VMDK": _truncated(raw, "vmdk", tmp_path),
        "junk as VHD": random.Random(5).randbytes(70000),
        "truncated VHD": _truncated(raw, "vpc", tmp_path),
        "empty RAW": b"",
    }[case]
    task = import_disk(twin, image, fmt)
    detail = task["SnapshotTaskDetail"]
    assert (detail["Status"], detail["StatusMessage"]) == ("deleted", message), detail
    assert "SnapshotId" not in detail and detail["DiskImageSize"] == 0.0
    assert twin.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert layer_files(twin) == [] and not os.listdir(run_dir(twin) / "imports")


def test_an_imported_snapshot_appears_only_when_its_task_completes_with_aws_volume_id(twin: Server) -> None:
    """The import thread converts into the store only; moto's snapshot is made on a request thread,
    by the DescribeImportSnapshotTasks that sees the conversion done (no import thread mutates moto's
    dicts while requests iterate them; no snapshot is visible before its bytes are in)."""
    ec2 = twin.client("ec2")
    raw = raw_disk(seed=13)
    started = import_disk(twin, raw, "RAW", wait=False)
    imports = run_dir(twin) / "imports"
    deadline = time.monotonic() + 60
    # Converted: the staged layer exists and the downloaded copy is gone (the thread is done).
    while not (layer_files(twin) and imports.is_dir() and not os.listdir(imports)):
        assert time.monotonic() < deadline, "the conversion did not end"
        time.sleep(0.1)
    time.sleep(0.3)
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == [], "a snapshot is visible before its task completes"
    detail = wait_import(twin, started["ImportTaskId"])["SnapshotTaskDetail"]
    assert detail["Status"] == "completed", detail
    snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert [s["SnapshotId"] for s in snaps] == [detail["SnapshotId"]]
    assert snaps[0]["VolumeId"] == "vol-ffffffff" and snaps[0]["VolumeSize"] == 1
    assert ec2.describe_volumes()["Volumes"] == [], "no volume is left from the import"
    assert read_back(twin, detail["SnapshotId"], len(raw))[0] == raw
    # A volume made from it has its bytes and its own size rule.
    vol = ec2.create_volume(SnapshotId=detail["SnapshotId"], AvailabilityZone=REGION + "a")
    assert vol["Size"] == 1 and vol["SnapshotId"] == detail["SnapshotId"]


def test_a_retried_import_with_its_client_token_starts_no_second_task(twin: Server) -> None:
    ec2, s3 = twin.client("ec2"), twin.client("s3")
    s3.create_bucket(Bucket="images")
    s3.put_object(Bucket="images", Key="d.raw", Body=raw_disk(seed=12))
    container = {"Format": "RAW", "UserBucket": {"S3Bucket": "images", "S3Key": "d.raw"}}
    first = ec2.import_snapshot(DiskContainer=container, ClientToken="build-1")
    again = ec2.import_snapshot(DiskContainer=container, ClientToken="build-1")
    other = ec2.import_snapshot(DiskContainer=container, ClientToken="build-2")
    assert again["ImportTaskId"] == first["ImportTaskId"] != other["ImportTaskId"]
    for t in (first, other):
        assert wait_import(twin, t["ImportTaskId"])["SnapshotTaskDetail"]["Status"] == "completed"
    assert len(ec2.describe_import_snapshot_tasks()["ImportSnapshotTasks"]) == 2
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 2


def test_import_snapshot_refuses_a_format_it_does_not_take(twin: Server) -> None:
    with pytest.raises(ClientError) as e:
        twin.client("ec2").import_snapshot(DiskContainer={"Format": "QCOW2", "UserBucket": {"S3Bucket": "b", "S3Key": "k"}})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        twin.client("ec2").describe_import_snapshot_tasks(ImportTaskIds=["import-snap-0123456789abcdef0"])
    assert e.value.response["Error"]["Code"] == "InvalidConversionTaskId"


def write(server: Server, volume_id: str, block: int, pattern: int, length: int = 4096) -> None:
    server.ok("POST", "twin/volume-write", {"volumeId": volume_id, "offset": block * BLOCK, "length": length,
                                            "pattern": pattern})


def test_a_copy_on_write_volume_changed_after_a_snapshot_leaves_the_snapshot_unchanged(twin: Server) -> None:
    ec2, ebs = twin.client("ec2"), twin.client("ebs")
    raw = raw_disk(seed=6)
    first = import_disk(twin, raw, "RAW")["SnapshotTaskDetail"]["SnapshotId"]
    volume = ec2.create_volume(SnapshotId=first, AvailabilityZone=REGION + "a", Size=2)["VolumeId"]
    write(twin, volume, 1, 0xA1)  # a hole of the imported disk
    write(twin, volume, 3, 0xA3)  # a block with data
    second = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    write(twin, volume, 5, 0xA5)  # after the snapshot: in neither

    assert read_back(twin, first, len(raw))[0] == raw
    data, listed = read_back(twin, second, len(raw))
    expected = bytearray(raw)
    expected[1 * BLOCK:1 * BLOCK + 4096] = bytes([0xA1]) * 4096
    expected[3 * BLOCK:3 * BLOCK + 4096] = bytes([0xA3]) * 4096
    assert data == bytes(expected)
    assert listed == [0, 1, 2, 3, 6]

    changed = ebs.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
    assert [b["BlockIndex"] for b in changed["ChangedBlocks"]] == [1, 3]
    by_index = {b["BlockIndex"]: b for b in changed["ChangedBlocks"]}
    assert "FirstBlockToken" not in by_index[1] and by_index[1]["SecondBlockToken"]
    assert by_index[3]["FirstBlockToken"] and by_index[3]["SecondBlockToken"]
    assert changed["VolumeSize"] == 2 and changed["BlockSize"] == BLOCK
    got = ebs.get_snapshot_block(SnapshotId=first, BlockIndex=3, BlockToken=by_index[3]["FirstBlockToken"])
    assert got["BlockData"].read() == raw[3 * BLOCK:4 * BLOCK]

    third = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    assert [b["BlockIndex"] for b in ebs.list_changed_blocks(FirstSnapshotId=second, SecondSnapshotId=third)["ChangedBlocks"]] == [5]
    # "The SecondSnapshotId parameter must be specified with a FirstSnapshotID parameter; otherwise, an error occurs."
    with pytest.raises(ClientError) as e:
        ebs.list_changed_blocks(SecondSnapshotId=third)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (e.value.response["Error"]["Code"], e.value.response["Reason"]) == ("ValidationException", "INVALID_PARAMETER_VALUE")

    unrelated = import_disk(twin, raw_disk(seed=7), "RAW", key="other.img")["SnapshotTaskDetail"]["SnapshotId"]
    with pytest.raises(ClientError) as e:
        ebs.list_changed_blocks(FirstSnapshotId=unrelated, SecondSnapshotId=second)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["Reason"] == "UNRELATED_SNAPSHOTS"


def test_an_empty_volume_lists_only_what_was_written_and_uses_disk_for_that_only(twin: Server) -> None:
    ec2, ebs = twin.client("ec2"), twin.client("ebs")
    volume = ec2.create_volume(Size=500, AvailabilityZone=REGION + "a")["VolumeId"]
    write(twin, volume, 700_000, 0x5A, length=BLOCK)
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    listed = ebs.list_snapshot_blocks(SnapshotId=snap)
    assert [b["BlockIndex"] for b in listed["Blocks"]] == [700_000] and listed["VolumeSize"] == 500
    used = sum(f.stat().st_blocks * 512 for f in (run_dir(twin) / "layers").iterdir())
    assert used < 8 << 20  # a 500 GiB volume with 512 KiB written


def test_block_lists_page_with_next_tokens(twin: Server) -> None:
    ec2, ebs = twin.client("ec2"), twin.client("ebs")
    volume = ec2.create_volume(Size=1, AvailabilityZone=REGION + "a")["VolumeId"]
    for i in range(0, 2 * 130, 2):  # 130 blocks with data, one cluster each
        write(twin, volume, i, 0x10 + i % 200, length=512)
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    page1 = ebs.list_snapshot_blocks(SnapshotId=snap, MaxResults=100)
    assert [b["BlockIndex"] for b in page1["Blocks"]] == list(range(0, 200, 2)) and page1["NextToken"]
    page2 = ebs.list_snapshot_blocks(SnapshotId=snap, MaxResults=100, NextToken=page1["NextToken"])
    assert [b["BlockIndex"] for b in page2["Blocks"]] == list(range(200, 260, 2)) and "NextToken" not in page2
    start = ebs.list_snapshot_blocks(SnapshotId=snap, StartingBlockIndex=251)
    assert [b["BlockIndex"] for b in start["Blocks"]] == list(range(252, 260, 2))


def test_ebs_direct_errors_are_aws_errors(twin: Server) -> None:
    ec2, ebs = twin.client("ec2"), twin.client("ebs")
    with pytest.raises(ClientError) as e:
        ebs.list_snapshot_blocks(SnapshotId="snap-0123456789abcdef0")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert e.value.response["Reason"] == "SNAPSHOT_NOT_FOUND"
    volume = ec2.create_volume(Size=1, AvailabilityZone=REGION + "a")["VolumeId"]
    write(twin, volume, 0, 1)
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    token = ebs.list_snapshot_blocks(SnapshotId=snap)["Blocks"][0]["BlockToken"]
    for index, tok, reason in ((1, token, "INVALID_BLOCK_TOKEN"), (4096, token, "INVALID_BLOCK")):
        with pytest.raises(ClientError) as e:
            ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=index, BlockToken=tok)
        assert (e.value.response["Error"]["Code"], e.value.response["Reason"]) == ("ValidationException", reason)
    with pytest.raises(ClientError) as e:
        ebs.list_snapshot_blocks(SnapshotId=snap, NextToken="bm9wZQ==")
    assert e.value.response["Reason"] == "INVALID_PAGE_TOKEN"


def test_images_register_on_an_imported_snapshot_paravirtual_and_hvm(twin: Server) -> None:
    ec2 = twin.client("ec2")
    snap = import_disk(twin, raw_disk(seed=8), "RAW")["SnapshotTaskDetail"]["SnapshotId"]
    root = [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snap, "DeleteOnTermination": True}}]
    pv = ec2.register_image(Name="pv-image", Architecture="x86_64", RootDeviceName="/dev/sda1", BlockDeviceMappings=root,
                            VirtualizationType="paravirtual", KernelId="aki-919dcaf8")["ImageId"]
    hvm = ec2.register_image(Name="hvm", Architecture="x86_64", RootDeviceName="/dev/xvda", EnaSupport=True,
                             BlockDeviceMappings=[{**root[0], "DeviceName": "/dev/xvda"}],
                             VirtualizationType="hvm", BootMode="legacy-bios")["ImageId"]
    images = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=[pv, hvm])["Images"]}
    assert (images[pv]["VirtualizationType"], images[pv]["KernelId"]) == ("paravirtual", "aki-919dcaf8")
    assert images[hvm]["VirtualizationType"] == "hvm" and "KernelId" not in images[hvm]
    for image, device in ((pv, "/dev/sda1"), (hvm, "/dev/xvda")):
        assert images[image]["RootDeviceName"] == device and images[image]["RootDeviceType"] == "ebs"
        assert images[image]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap
        assert images[image]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 1

    # The snapshot and its file stay while an image uses it; DeregisterImage, then DeleteSnapshot, frees it.
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId=snap)
    assert e.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"
    assert layer_files(twin)
    ec2.deregister_image(ImageId=pv)
    ec2.deregister_image(ImageId=hvm)
    ec2.delete_snapshot(SnapshotId=snap)
    assert layer_files(twin) == []


def test_a_volume_outlives_its_snapshot_and_the_last_delete_frees_the_files(twin: Server) -> None:
    ec2 = twin.client("ec2")
    raw = raw_disk(seed=9)
    snap = import_disk(twin, raw, "RAW")["SnapshotTaskDetail"]["SnapshotId"]
    volume = ec2.create_volume(SnapshotId=snap, AvailabilityZone=REGION + "a")["VolumeId"]
    ec2.delete_snapshot(SnapshotId=snap)
    again = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    assert read_back(twin, again, len(raw))[0] == raw
    ec2.delete_volume(VolumeId=volume)
    copy = ec2.copy_snapshot(SourceSnapshotId=again, SourceRegion=REGION)["SnapshotId"]
    ec2.delete_snapshot(SnapshotId=again)
    assert read_back(twin, copy, len(raw))[0] == raw
    ec2.delete_snapshot(SnapshotId=copy)
    assert layer_files(twin) == []


def test_a_volume_smaller_than_its_snapshot_is_refused(twin: Server) -> None:
    ec2 = twin.client("ec2")
    volume = ec2.create_volume(Size=4, AvailabilityZone=REGION + "a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    with pytest.raises(ClientError) as e:
        ec2.create_volume(SnapshotId=snap, Size=2, AvailabilityZone=REGION + "a")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "smaller than snapshot" in e.value.response["Error"]["Message"]


def test_an_instance_root_volume_is_an_overlay_of_the_images_snapshot(twin: Server) -> None:
    ec2 = twin.client("ec2")
    raw = raw_disk(seed=10)
    snap = import_disk(twin, raw, "RAW")["SnapshotTaskDetail"]["SnapshotId"]
    image = ec2.register_image(Name="hvm-root", Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                     "Ebs": {"SnapshotId": snap, "DeleteOnTermination": True}}])["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    root = next(m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda")
    # The instance runs as a VM (twin/instances.py) holding the volume: stopped, the volume takes a write.
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    write(twin, root, 7, 0xB7)  # what the instance writes
    after = ec2.create_snapshot(VolumeId=root)["SnapshotId"]
    expected = bytearray(raw)
    expected[7 * BLOCK:7 * BLOCK + 4096] = bytes([0xB7]) * 4096
    assert read_back(twin, after, len(raw))[0] == bytes(expected)
    assert read_back(twin, snap, len(raw))[0] == raw
    write(twin, root, 6, 0xB6)  # after the snapshot: into the root volume's own new layer
    before = len(layer_files(twin))
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    assert len(layer_files(twin)) < before  # the root volume's own layer went with it (DeleteOnTermination)


def test_copy_image_and_create_image_keep_the_bytes(twin: Server) -> None:
    ec2 = twin.client("ec2")
    raw = raw_disk(seed=11)
    snap = import_disk(twin, raw, "RAW")["SnapshotTaskDetail"]["SnapshotId"]
    image = ec2.register_image(Name="source-image", Architecture="x86_64", RootDeviceName="/dev/xvda",
                               VirtualizationType="hvm", BlockDeviceMappings=[
                                   {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "DeleteOnTermination": True}}])["ImageId"]
    other = twin.client("ec2", "eu-west-1")
    copy = other.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copied-image")["ImageId"]
    copied_snap = other.describe_images(ImageIds=[copy])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert copied_snap != snap
    assert read_back(twin, copied_snap, len(raw), "eu-west-1")[0] == raw
    with pytest.raises(ClientError):  # a snapshot is regional: not in us-east-1
        read_back(twin, copied_snap, len(raw))
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    root = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])  # its VM lets go of the volume
    write(twin, root, 4, 0xC4)
    made = ec2.create_image(InstanceId=instance["InstanceId"], Name="made-image")["ImageId"]
    made_snap = ec2.describe_images(ImageIds=[made])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    expected = bytearray(raw)
    expected[4 * BLOCK:4 * BLOCK + 4096] = bytes([0xC4]) * 4096
    assert read_back(twin, made_snap, len(raw))[0] == bytes(expected)
