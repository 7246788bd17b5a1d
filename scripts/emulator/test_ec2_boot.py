"""Proves boot outcomes: status checks and serial consoles (ami_emulator/ec2_boot.py) against a
launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import base64
import re
import urllib.parse
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server, register, snapshot


def statuses(ec2: Any, instance_id: str) -> tuple[str, str] | None:
    found = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    return (found[0]["SystemStatus"]["Status"], found[0]["InstanceStatus"]["Status"]) if found else None


def console(ec2: Any, instance_id: str, latest: bool = True) -> str | None:
    # boto3 decodes Output from base64 itself; the raw wire shape is checked below.
    return ec2.get_console_output(InstanceId=instance_id, Latest=latest).get("Output")


def test_boot_rule_boots_after_n_polls(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="verified-boots", Architecture="x86_64", BootMode="legacy-bios")
    server.ok("POST", "ec2/boot", {"imageName": "verified-boots", "outcome": "boots", "afterPolls": 2, "console": "debian login: "})
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert console(ec2, iid) is None, "an empty console has no Output, as on EC2"
    assert statuses(ec2, iid) == ("initializing", "initializing")
    assert statuses(ec2, iid) == ("ok", "ok")
    assert console(ec2, iid) == "debian login: "
    assert server.ok("GET", "ec2/boot")[0]["outcome"] == "boots"


def test_boot_rule_outcomes_and_default_consoles(server: Server) -> None:
    ec2 = server.client("ec2")
    expected = {"panics": ("ok", "impaired", "Kernel panic - not syncing"), "impaired": ("ok", "impaired", "Linux version"),
                "never": ("initializing", "initializing", "Loading Linux")}
    for outcome, (system, inst, text) in expected.items():
        image_id = register(ec2, snapshot(ec2), Name=f"outcome-{outcome}", Architecture="x86_64", BootMode="legacy-bios")
        server.ok("POST", "ec2/boot", {"imageId": image_id, "outcome": outcome, "afterPolls": 0})
        iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        assert statuses(ec2, iid) == (system, inst), outcome
        assert text in console(ec2, iid), outcome
        if outcome == "impaired":
            assert "panic" not in console(ec2, iid).lower()


def test_boot_rules_match_by_image_most_recent_first_and_default_to_moto(server: Server) -> None:
    ec2 = server.client("ec2")
    a = register(ec2, snapshot(ec2), Name="rule-a", Architecture="x86_64")
    b = register(ec2, snapshot(ec2), Name="rule-b", Architecture="x86_64")
    plain = ec2.run_instances(ImageId=a, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert statuses(ec2, plain) == ("ok", "ok"), "unscripted: moto's answer"
    assert "Linux version 2.6.16-xenU" in console(ec2, plain), "unscripted: moto's sample console, no userspace"
    server.ok("POST", "ec2/boot", {"outcome": "boots", "afterPolls": 0})
    server.ok("POST", "ec2/boot", {"imageId": b, "outcome": "never", "afterPolls": 0})
    on_a = ec2.run_instances(ImageId=a, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    on_b = ec2.run_instances(ImageId=b, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert statuses(ec2, on_a) == ("ok", "ok")
    assert statuses(ec2, on_b) == ("initializing", "initializing")
    server.ok("DELETE", "ec2/boot")
    assert server.ok("GET", "ec2/boot") == []


def test_boot_rule_validation(server: Server) -> None:
    for bad in ({"outcome": "explodes"}, {"outcome": "boots", "afterPolls": -1}, {"outcome": "boots", "imageId": 5},
                {"outcome": "boots", "colour": "red"}):
        status, body = server.control("POST", "ec2/boot", bad)
        assert status == 400, bad
        assert body["error"]


def test_get_console_output_is_base64_on_the_wire(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="wire", Architecture="x86_64")
    server.ok("POST", "ec2/boot", {"imageId": image_id, "outcome": "boots", "afterPolls": 0, "console": "héllo login: "})
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    query = urllib.parse.urlencode({"Action": "GetConsoleOutput", "Version": "2016-11-15", "InstanceId": iid, "Latest": "true"})
    req = urllib.request.Request(server.endpoint + "/", data=query.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x"})
    body = urllib.request.urlopen(req, timeout=30).read().decode()
    output = re.search(r"<output>([^<]*)</output>", body).group(1)
    assert base64.b64decode(output).decode() == "héllo login: "


def test_latest_console_needs_a_nitro_type_and_nitro_needs_ena(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="no-ena", Architecture="x86_64", BootMode="legacy-bios", EnaSupport=False)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "ENA) is required for the 't3.micro' instance type" in e.value.response["Error"]["Message"]
    xen = ec2.run_instances(ImageId=image_id, InstanceType="t2.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        console(ec2, xen, latest=True)
    assert e.value.response["Error"]["Code"] == "UnsupportedOperation"
    assert console(ec2, xen, latest=False)  # the buffered console works on Xen


def test_reset_clears_boot_rules(server: Server) -> None:
    server.ok("POST", "ec2/boot", {"outcome": "never"})
    server.ok("POST", "reset")
    assert server.ok("GET", "ec2/boot") == []


def test_a_new_instance_can_be_invisible_for_a_few_calls(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2), Name="eventual", Architecture="x86_64")
    server.ok("POST", "ec2/boot", {"imageId": image_id, "outcome": "boots", "afterPolls": 0, "notVisibleFor": 2})
    iid = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    for call in (lambda: statuses(ec2, iid), lambda: console(ec2, iid)):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    assert statuses(ec2, iid) == ("ok", "ok")
    status, body = server.control("POST", "ec2/boot", {"outcome": "boots", "notVisibleFor": -1})
    assert status == 400
