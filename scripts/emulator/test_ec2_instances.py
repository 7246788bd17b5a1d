"""Proves RunInstances and StopInstances (ami_emulator/ec2_instances.py) against a launched server
(emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_harness import OTHER, REGION, Server, image, register, run_instance, snapshot


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
