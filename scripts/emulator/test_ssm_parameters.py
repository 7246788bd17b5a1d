"""Proves SSM parameter tiers (ami_emulator/ssm_parameters.py) and the SecureString behaviour the
build secrets rely on (providers/worker/buildSecret.ts) against a launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server


def test_standard_tier_holds_4_kb(server: Server) -> None:
    ssm = server.client("ssm")
    assert ssm.put_parameter(Name="/t/std", Value="a" * 4096, Type="SecureString")["Tier"] == "Standard"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/t/std-big", Value="a" * 4097, Type="SecureString")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "4096" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        ssm.put_parameter(Name="/t/std-big", Value="a" * 4097, Type="SecureString", Tier="Standard")


def test_advanced_tier_holds_8_kb(server: Server) -> None:
    ssm = server.client("ssm")
    assert ssm.put_parameter(Name="/t/adv", Value="a" * 8192, Type="SecureString", Tier="Advanced")["Tier"] == "Advanced"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/t/adv-big", Value="a" * 8193, Type="SecureString", Tier="Advanced")
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_intelligent_tiering_picks_what_fits(server: Server) -> None:
    ssm = server.client("ssm")
    assert ssm.put_parameter(Name="/t/it-small", Value="a", Type="String", Tier="Intelligent-Tiering")["Tier"] == "Standard"
    assert ssm.put_parameter(Name="/t/it-big", Value="a" * 5000, Type="String", Tier="Intelligent-Tiering")["Tier"] == "Advanced"


def test_secure_string_is_decrypted_only_when_asked_and_not_overwritten(server: Server) -> None:
    ssm = server.client("ssm")
    ssm.put_parameter(Name="/ami-factory/build/b1/x/0", Value="s3cr3t", Type="SecureString", Overwrite=False,
                      Tags=[{"Key": "ami-factory:build-id", "Value": "b1"}])
    assert ssm.get_parameter(Name="/ami-factory/build/b1/x/0")["Parameter"]["Value"] != "s3cr3t"
    assert ssm.get_parameter(Name="/ami-factory/build/b1/x/0", WithDecryption=True)["Parameter"]["Value"] == "s3cr3t"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/ami-factory/build/b1/x/0", Value="other", Type="SecureString", Overwrite=False)
    assert e.value.response["Error"]["Code"] == "ParameterAlreadyExists"
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": ["/ami-factory/build"]}])["Parameters"]
    assert [p["Name"] for p in found] == ["/ami-factory/build/b1/x/0"]
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/ami-factory/build/b1/x/0")["TagList"] == [
        {"Key": "ami-factory:build-id", "Value": "b1"}]
    out = ssm.delete_parameters(Names=["/ami-factory/build/b1/x/0", "/ami-factory/build/b1/x/1"])
    assert out["DeletedParameters"] == ["/ami-factory/build/b1/x/0"] and out["InvalidParameters"] == ["/ami-factory/build/b1/x/1"]


def test_worker_policy_with_exact_parameter_arn_is_accepted(server: Server) -> None:
    iam = server.client("iam")
    iam.create_role(RoleName="w2", AssumeRolePolicyDocument="{}")
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/ami-factory/build/b1/x/0"
    iam.put_role_policy(RoleName="w2", PolicyName="agent", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Sid":"SsmAgent","Effect":"Allow","Action":["ssm:UpdateInstanceInformation"],"Resource":"*"},'
        f'{{"Sid":"BuildSecret","Effect":"Allow","Action":["ssm:GetParameter"],"Resource":["{arn}"]}}]}}'))
    doc = iam.get_role_policy(RoleName="w2", PolicyName="agent")["PolicyDocument"]
    assert doc["Statement"][1]["Resource"] == [arn]
