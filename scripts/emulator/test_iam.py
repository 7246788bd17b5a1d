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


def test_worker_role_with_inline_policy_path_and_boundary(server: Server) -> None:
    """What providers/worker/iam.ts calls: CreateRole with Path and PermissionsBoundary, PutRolePolicy,
    and DeleteRole refused while an inline policy is left ("You must delete the inline policies
    first", IAM API Reference, DeleteRole), which moto models as DeleteConflict."""
    iam = server.client("iam")
    iam.create_policy(PolicyName="boundary", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}')
    boundary = f"arn:aws:iam::{iam.get_user()['User']['Arn'].split(':')[4]}:policy/boundary"
    role = iam.create_role(RoleName="w", AssumeRolePolicyDocument="{}", Path="/ami-factory/", PermissionsBoundary=boundary)["Role"]
    assert role["Path"] == "/ami-factory/"
    assert iam.get_role(RoleName="w")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    iam.put_role_policy(RoleName="w", PolicyName="agent", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:UpdateInstanceInformation"],"Resource":"*"}]}')
    assert iam.list_role_policies(RoleName="w")["PolicyNames"] == ["agent"]
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName="w")
    assert e.value.response["Error"]["Code"] == "DeleteConflict"
    iam.delete_role_policy(RoleName="w", PolicyName="agent")
    iam.delete_role(RoleName="w")
