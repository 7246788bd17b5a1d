"""Proves RegisterImage, CopyImage, CreateImage and unique image names (ami_emulator/ec2_images.py)
against a launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_harness import OTHER, REGION, Server, image, register, run_instance, snapshot, tags_of


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
    # filters on the kept attributes (this account's images: the public AL2023 ones match too, as on AWS)
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=[{"Name": "architecture", "Values": ["arm64"]}])["Images"]] == [img["ImageId"]]
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "virtualization-type", "Values": ["paravirtual"]}])["Images"] == []


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


def test_register_image_refuses_encrypted_beside_a_snapshot(server: Server) -> None:
    ec2 = server.client("ec2")
    snap = snapshot(ec2)
    with pytest.raises(ClientError) as e:
        ec2.register_image(Name="enc", RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
                           BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "Encrypted": False}}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"


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


def test_image_tags_stop_at_fifty(server: Server) -> None:
    """"Maximum number of tags per resource: 50" (Amazon EC2 User Guide, "Tag restrictions",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions): moto's
    CreateTags refuses the 51st with TagLimitExceeded, which SharedAmi's grant records rely on."""
    ec2 = server.client("ec2")
    img = register(ec2, snapshot(ec2, size=8))
    own = len(tags_of(image(ec2, img)))
    ec2.create_tags(Resources=[img], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50 - own)])
    ec2.create_tags(Resources=[img], Tags=[{"Key": "k0", "Value": "changed"}])  # a key it has: no new tag
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=[img], Tags=[{"Key": "one-more", "Value": "v"}])
    assert e.value.response["Error"]["Code"] == "TagLimitExceeded"
