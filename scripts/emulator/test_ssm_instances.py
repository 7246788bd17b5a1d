"""Proves SSM managed instances (ami_emulator/ssm_instances.py) against a launched server
(emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server, run_instance, send


def test_ssm_send_command_needs_a_running_instance(server: Server) -> None:
    ec2 = server.client("ec2")
    ssm = server.client("ssm")
    with pytest.raises(ClientError) as e:
        send(ssm, "i-0123456789abcdef0", ["true"])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    instance_id = run_instance(ec2)
    ec2.stop_instances(InstanceIds=[instance_id])
    with pytest.raises(ClientError) as e:
        send(ssm, instance_id, ["true"])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    ec2.start_instances(InstanceIds=[instance_id])
    # a fresh instance whose agent has not registered yet, for two sends
    server.ok("POST", "ssm/unregistered", {"sends": 2, "instanceIds": [instance_id]})
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            send(ssm, instance_id, ["true"])
        assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    assert send(ssm, instance_id, ["true"])
    status, _ = server.control("POST", "ssm/unregistered", {"sends": 0})
    assert status == 400


def test_ssm_describe_instance_information(server: Server) -> None:
    ec2 = server.client("ec2")
    a, b = run_instance(ec2), run_instance(ec2)
    ec2.stop_instances(InstanceIds=[b])
    ssm = server.client("ssm")
    infos = ssm.describe_instance_information()["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"], i["PlatformType"]) for i in infos] == [(a, "Online", "Linux")]
    assert ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [b]}])["InstanceInformationList"] == []
