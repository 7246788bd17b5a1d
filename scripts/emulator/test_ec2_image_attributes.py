"""Proves image deprecation and ModifyImageAttribute (ami_emulator/ec2_image_attributes.py) against a
launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server, image, register, snapshot


def test_enable_and_disable_image_deprecation(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    assert "DeprecationTime" not in image(ec2, image_id)
    at = dt.datetime(2031, 5, 4, 3, 2, 40, tzinfo=dt.timezone.utc)
    assert ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=at)["Return"] is True
    assert image(ec2, image_id)["DeprecationTime"] == "2031-05-04T03:03:00.000Z"  # rounded to the minute
    assert ec2.disable_image_deprecation(ImageId=image_id)["Return"] is True
    assert "DeprecationTime" not in image(ec2, image_id)
    with pytest.raises(ClientError) as e:
        ec2.enable_image_deprecation(ImageId="ami-0123456789abcdef0", DeprecateAt=at)
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"


def test_private_image_deprecation_ahead_and_within_ten_years(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    now = dt.datetime.now(dt.timezone.utc)
    for at in (now - dt.timedelta(hours=1), now + dt.timedelta(days=3700)):
        with pytest.raises(ClientError) as e:
            ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=at)
        assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "DeprecationTime" not in image(ec2, image_id)
    ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=now + dt.timedelta(minutes=1))
    assert "DeprecationTime" in image(ec2, image_id)
    near_limit = now + dt.timedelta(days=3640)  # a private image: up to 10 years ahead
    ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=near_limit)
    assert image(ec2, image_id)["DeprecationTime"].startswith(near_limit.strftime("%Y-%m-%d"))


def test_public_image_deprecation_within_two_years_of_its_creation(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})
    created = dt.datetime.fromisoformat(image(ec2, image_id)["CreationDate"].replace("Z", "+00:00"))
    with pytest.raises(ClientError) as e:
        ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=created + dt.timedelta(days=740))
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "2 years from its creation date" in e.value.response["Error"]["Message"]
    ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=created + dt.timedelta(days=720))
    assert "DeprecationTime" in image(ec2, image_id)
    # Private again: 10 years from now.
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"Group": "all"}]})
    ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=created + dt.timedelta(days=740))


def test_modify_image_description(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "new words"})
    assert image(ec2, image_id)["Description"] == "new words"
    ec2.modify_image_attribute(ImageId=image_id, Attribute="description", Value="other words")
    assert image(ec2, image_id)["Description"] == "other words"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": "111122223333"}]
    assert image(ec2, image_id)["Description"] == "other words"
