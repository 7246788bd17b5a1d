"""Proves deregistration protection, LastLaunchedTime and DescribeImageReferences
(ami_emulator/ec2_image_lifecycle.py) against a launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server, image, register, run_instance, snapshot


def test_protection_refuses_deregistration_until_lifted(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    assert image(ec2, image_id)["DeregistrationProtection"] == "disabled"
    ec2.enable_image_deregistration_protection(ImageId=image_id)
    assert image(ec2, image_id)["DeregistrationProtection"] == "enabled-without-cooldown"
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId=image_id)
    assert e.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert image(ec2, image_id)["State"] == "available"
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    ec2.deregister_image(ImageId=image_id)
    assert [i for i in ec2.describe_images(Owners=["self"])["Images"] if i["ImageId"] == image_id and i["State"] != "deregistered"] == []


def test_protection_with_cooldown_keeps_refusing_after_it_is_disabled(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    ec2.enable_image_deregistration_protection(ImageId=image_id, WithCooldown=True)
    assert image(ec2, image_id)["DeregistrationProtection"] == "enabled-with-cooldown"
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId=image_id)
    assert e.value.response["Error"]["Code"] == "OperationNotPermitted"


def test_last_launched_time_is_reported_a_day_late(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Architecture="x86_64", BootMode="legacy-bios")
    assert "LastLaunchedTime" not in image(ec2, image_id)
    run_instance(ec2, image_id)
    assert "LastLaunchedTime" not in image(ec2, image_id), "not before the reporting delay (24 h by default)"


def test_last_launched_time_shows_after_a_shortened_delay() -> None:
    quick = Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "AMI_EMULATOR_LAUNCH_REPORT_DELAY": "1"})
    try:
        ec2 = quick.client("ec2")
        image_id = register(ec2, snapshot(ec2), Architecture="x86_64", BootMode="legacy-bios")
        run_instance(ec2, image_id)
        assert "LastLaunchedTime" not in image(ec2, image_id)
        time.sleep(1.2)
        assert image(ec2, image_id)["LastLaunchedTime"].endswith("Z")
    finally:
        quick.stop()


def test_image_references_take_1_to_10_ids_and_pages(server: Server) -> None:
    ec2 = server.client("ec2")
    ssm = server.client("ssm")
    ids = [register(ec2, snapshot(ec2), Name=f"img-{n}") for n in range(11)]
    for n, image_id in enumerate(ids):
        ssm.put_parameter(Name=f"/ami-factory/p{n}", Value=image_id, Type="String", DataType="aws:ec2:image")
    # 11 ids (botocore itself refuses an empty list before sending).
    with pytest.raises(ClientError) as e:
        ec2.describe_image_references(ImageIds=ids, IncludeAllResourceTypes=True)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    seen: list[str] = []
    token: dict[str, str] = {}
    pages = 0
    while True:
        out = ec2.describe_image_references(ImageIds=ids[:10], IncludeAllResourceTypes=True, MaxResults=5, **token)
        seen += [r["ImageId"] for r in out["ImageReferences"]]
        pages += 1
        if "NextToken" not in out:
            break
        token = {"NextToken": out["NextToken"]}
    assert pages == 2 and sorted(seen) == sorted(ids[:10])


def test_image_references_see_every_launch_template_version_asked(server: Server) -> None:
    ec2 = server.client("ec2")
    old = register(ec2, snapshot(ec2), Name="old")
    other = register(ec2, snapshot(ec2), Name="other")
    ec2.create_launch_template(LaunchTemplateName="lt-old", LaunchTemplateData={"ImageId": old})
    for _ in range(10):
        ec2.create_launch_template_version(LaunchTemplateName="lt-old", LaunchTemplateData={"ImageId": other})

    def refs(**options: list[str]) -> list[dict[str, str]]:
        rt: dict[str, object] = {"ResourceType": "ec2:LaunchTemplate"}
        if options:
            rt["ResourceTypeOptions"] = [{"OptionName": k.replace("_", "-"), "OptionValues": v} for k, v in options.items()]
        return ec2.describe_image_references(ImageIds=[old], ResourceTypes=[rt])["ImageReferences"]

    assert refs() == [], "version 1 of 11 is beyond the default depth of 10"
    assert [r["ResourceType"] for r in refs(version_depth=["10000"])] == ["ec2:LaunchTemplate"]
    with pytest.raises(ClientError) as e:
        refs(version_depth=["10001"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_image_references_see_instances_launch_templates_and_parameters(server: Server) -> None:
    ec2 = server.client("ec2")
    ssm = server.client("ssm")
    used = register(ec2, snapshot(ec2), Name="used", Architecture="x86_64", BootMode="legacy-bios")
    unused = register(ec2, snapshot(ec2), Name="unused")

    def refs(image_id: str, **kw: object) -> set[str]:
        args = kw or {"IncludeAllResourceTypes": True}
        return {r["ResourceType"] for r in ec2.describe_image_references(ImageIds=[image_id], **args)["ImageReferences"]}

    assert refs(used) == set()
    ec2.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": used})
    ssm.put_parameter(Name="/ami-factory/web", Value=used, Type="String", DataType="aws:ec2:image")
    instance = run_instance(ec2, used)
    assert refs(used) == {"ec2:Instance", "ec2:LaunchTemplate", "ssm:Parameter"}
    assert refs(unused) == set()
    assert refs(used, ResourceTypes=[{"ResourceType": "ec2:Instance", "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": ["stopped"]}]}]) == set()
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.create_launch_template_version(LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": unused})
    assert refs(used, ResourceTypes=[{"ResourceType": "ec2:LaunchTemplate", "ResourceTypeOptions": [{"OptionName": "version-depth", "OptionValues": ["1"]}]}]) == set()
    assert refs(used, ResourceTypes=[{"ResourceType": "ec2:LaunchTemplate"}]) == {"ec2:LaunchTemplate"}
    with pytest.raises(ClientError) as e:
        ec2.describe_image_references(ImageIds=["ami-0123456789abcdef0"], IncludeAllResourceTypes=True)
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"


def test_an_image_parameter_naming_no_available_image_is_dropped_after_put(server: Server) -> None:
    ec2 = server.client("ec2")
    ssm = server.client("ssm")
    image_id = register(ec2, snapshot(ec2))
    ssm.put_parameter(Name="/ami-factory/web", Value=image_id, Type="String", DataType="aws:ec2:image")
    assert ssm.get_parameter(Name="/ami-factory/web")["Parameter"]["Value"] == image_id
    # Accepted, then dropped by the validation: the earlier value stays.
    ssm.put_parameter(Name="/ami-factory/web", Value="ami-0123456789abcdef0", Type="String", DataType="aws:ec2:image", Overwrite=True)
    assert ssm.get_parameter(Name="/ami-factory/web")["Parameter"]["Value"] == image_id
    ssm.put_parameter(Name="/ami-factory/new", Value="not-an-ami", Type="String", DataType="aws:ec2:image")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/ami-factory/new")
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"
    ssm.put_parameter(Name="/plain", Value="not-an-ami", Type="String")
    assert ssm.get_parameter(Name="/plain")["Parameter"]["Value"] == "not-an-ami"
