"""Proves DetachVolume (ami_emulator/ec2_ebs.py; DeleteSnapshot InUse: test_ec2_images.py) against a
launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server, run_instance


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
