"""Proves ClientToken on CopyImage and CreateVolume (ami_emulator/ec2_client_tokens.py) against a
launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_harness import OTHER, Server, register, snapshot


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
