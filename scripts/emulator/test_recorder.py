"""Proves the call recorder (ami_emulator/recorder.py, middleware.py) against a launched server
(emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

from emulator_harness import OTHER, REGION, Server, register, run_instance, snapshot


def test_recorder_keeps_what_was_sent(server: Server) -> None:
    ec2 = server.client("ec2")
    snap = snapshot(ec2)
    register(ec2, snap)
    [call] = server.calls("RegisterImage")
    assert call["Action"] == "RegisterImage"
    assert call["Name"] == "ami-factory-test"
    assert call["VirtualizationType"] == "hvm"
    assert call["EnaSupport"] == "true"
    assert call["SriovNetSupport"] == "simple"
    assert call["BootMode"] == "uefi"
    assert call["ImdsSupport"] == "v2.0"
    assert call["BlockDeviceMapping.1.DeviceName"] == "/dev/xvda"
    assert call["BlockDeviceMapping.1.Ebs.SnapshotId"] == snap
    assert call["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3"
    assert call["BlockDeviceMapping.2.VirtualName"] == "ephemeral0"
    assert call["TagSpecification.1.ResourceType"] == "image"
    assert call["TagSpecification.1.Tag.2.Value"] == "b-1"
    assert len(server.calls("CreateVolume")) == 1
    assert len(server.calls("CreateSnapshot")) == 1
    # every call, with its region and service
    everything = server.ok("GET", "calls")
    assert [c["action"] for c in everything] == ["CreateVolume", "CreateSnapshot", "RegisterImage"]
    assert everything[2]["region"] == REGION and everything[2]["service"] == "ec2"


def test_recorder_json_protocol_iam_and_regions(server: Server) -> None:
    ssm = server.client("ssm")
    instance_id = run_instance(server.client("ec2"))
    ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                     Parameters={"commands": ["echo hi"]})
    [body] = server.calls("AmazonSSM.SendCommand")
    assert body["InstanceIds"] == [instance_id]
    assert body["DocumentName"] == "AWS-RunShellScript"
    assert body["Parameters"] == {"commands": ["echo hi"]}
    assert server.calls("SendCommand") == [body]
    iam = server.client("iam")
    iam.create_role(RoleName="builder", AssumeRolePolicyDocument="{}")
    assert server.calls("CreateRole")[0]["RoleName"] == "builder"
    server.client("ec2", OTHER).create_security_group(GroupName="g", Description="d")
    assert len(server.calls("CreateSecurityGroup", region=OTHER)) == 1
    assert server.calls("CreateSecurityGroup", region=REGION) == []


def test_recorder_action_set_is_configurable(server: Server) -> None:
    ec2 = server.client("ec2")
    ec2.describe_images(Owners=["self"])
    assert server.calls("DescribeImages") == []  # reads are not recorded by default
    server.ok("POST", "calls/actions", {"actions": ["DescribeImages"]})
    ec2.describe_images(Owners=["self"])
    ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
    assert len(server.calls("DescribeImages")) == 1
    assert server.calls("CreateVolume") == []
    server.ok("POST", "calls/actions", {"actions": "*"})
    ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
    assert len(server.calls("CreateVolume")) == 1
    status, _ = server.control("POST", "calls/actions", {"actions": 5})
    assert status == 400
    server.ok("DELETE", "calls")
    assert server.ok("GET", "calls") == []
