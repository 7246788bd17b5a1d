"""Proves the workers' default image (ami_emulator/ec2_public_images.py): the AL2023 public SSM
parameter names an image with AL2023's root mapping, with or without MOTO_AMIS_PATH (`npm start`),
and a launch mapping that only encrypts its root device keeps the rest.

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import json
from pathlib import Path

from emulator_harness import Server

PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def check_al2023(s: Server) -> None:
    ec2, ssm = s.client("ec2"), s.client("ssm")
    ami_id = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    [image] = ec2.describe_images(ImageIds=[ami_id])["Images"]
    assert (image["RootDeviceName"], image["RootDeviceType"], image["Architecture"]) == ("/dev/xvda", "ebs", "x86_64")
    [root] = image["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert {k: root["Ebs"][k] for k in ("VolumeSize", "VolumeType", "DeleteOnTermination")} == {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True}
    # Encrypting the root with its device name alone: size and type come from the image's mapping.
    run = ec2.run_instances(ImageId=ami_id, MinCount=1, MaxCount=1, InstanceType="m6i.large",
                            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "DeleteOnTermination": True}}])
    instance = run["Instances"][0]
    [mapping] = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"]
    [volume] = ec2.describe_volumes(VolumeIds=[mapping["Ebs"]["VolumeId"]])["Volumes"]
    assert (volume["Encrypted"], volume["Size"], volume["VolumeType"]) == (True, 8, "gp3")
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_al2023_parameter_names_an_image_with_its_root_mapping(server: Server) -> None:
    check_al2023(server)


def test_al2023_image_exists_with_an_amis_path_too(tmp_path: Path) -> None:
    amis = tmp_path / "amis.json"
    amis.write_text(json.dumps([]))
    s = Server(env={"MOTO_AMIS_PATH": str(amis)})
    try:
        check_al2023(s)
    finally:
        s.stop()


def test_describe_snapshots_by_owner(server: Server) -> None:
    ec2, ssm = server.client("ec2"), server.client("ssm")
    ami_id = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    al2023_snap = ec2.describe_images(ImageIds=[ami_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    mine = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [mine]
    assert al2023_snap in [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"]]
    assert mine not in [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"]]
