"""Proves IAM (ami_emulator/iam.py) against a launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server


def test_remove_role_not_in_instance_profile_is_no_such_entity(server: Server) -> None:
    iam = server.client("iam")
    iam.create_role(RoleName="worker", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="worker")
    iam.add_role_to_instance_profile(InstanceProfileName="worker", RoleName="worker")
    iam.remove_role_from_instance_profile(InstanceProfileName="worker", RoleName="worker")
    with pytest.raises(ClientError) as e:  # a retry whose first answer was lost
        iam.remove_role_from_instance_profile(InstanceProfileName="worker", RoleName="worker")
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("NoSuchEntity", 404)
    assert iam.get_instance_profile(InstanceProfileName="worker")["InstanceProfile"]["Roles"] == []
