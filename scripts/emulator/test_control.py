"""Proves the control API's reset and image-state knobs (ami_emulator/control.py) against a launched
server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import botocore.exceptions
import pytest

from emulator_harness import OTHER, REGION, Server, image, register, snapshot, tags_of


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


def test_call_failure_rule(server: Server) -> None:
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


def test_tag_lag_refuses_a_create_past_50_tags_at_once(server: Server) -> None:
    """EC2 answers a CreateTags past 50 user tags with TagLimitExceeded ("Tag restrictions"); with
    tag-lag on, it is checked against the tags once the pending writes land, not when it lands."""
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))  # tagged Name and build
    server.ok("POST", "ec2/tag-lag", {"seconds": 30})
    try:
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(47)])
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            ec2.create_tags(Resources=[image_id], Tags=[{"Key": "one-more", "Value": "v"}, {"Key": "two-more", "Value": "v"}])
        assert refused.value.response["Error"]["Code"] == "TagLimitExceeded"
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": "k0", "Value": "again"}, {"Key": "fiftieth", "Value": "v"}])
        ec2.delete_tags(Resources=[image_id], Tags=[{"Key": "k1"}])
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": "after-a-delete", "Value": "v"}])
        assert len(tags_of(image(ec2, image_id))) == 2, "the writes have not landed yet"
    finally:
        server.ok("POST", "ec2/tag-lag", {"seconds": 0})
    tags = tags_of(image(ec2, image_id))
    assert len(tags) == 50 and tags["k0"] == "again" and "k1" not in tags and "one-more" not in tags
