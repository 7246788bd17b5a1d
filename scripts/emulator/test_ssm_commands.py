"""Proves SSM command outcomes and CancelCommand (ami_emulator/ssm_commands.py, ssm_rules.py) against a
launched server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from botocore.exceptions import ClientError

from emulator_harness import Server, run_instance, send


def test_ssm_failure_rule(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    server.ok("POST", "ssm/fail", {"match": "install-guest-deps", "output": "partial\n", "status": "Failed",
                                   "stderr": "E: Unable to locate package"})
    sent = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                            Parameters={"commands": ["set -e", "bash /tmp/install-guest-deps.sh"]})["Command"]
    assert (sent["Status"], sent["CompletedCount"], sent["ErrorCount"]) == ("Pending", 0, 0)  # as AWS answers
    failed = sent["CommandId"]
    fine = send(ssm, instance_id, ["uname -a"])
    inv = ssm.get_command_invocation(CommandId=failed, InstanceId=instance_id)
    assert inv["Status"] == "Failed" and inv["StatusDetails"] == "Failed"
    assert inv["ResponseCode"] == 1
    assert inv["StandardOutputContent"] == "partial\n"
    assert inv["StandardErrorContent"] == "E: Unable to locate package"
    ok = ssm.get_command_invocation(CommandId=fine, InstanceId=instance_id)
    assert (ok["Status"], ok["ResponseCode"], ok["StandardOutputContent"]) == ("Success", 0, "")
    listed = {c["CommandId"]: c for c in ssm.list_commands()["Commands"]}
    assert listed[failed]["Status"] == "Failed" and listed[failed]["ErrorCount"] == 1
    assert listed[fine]["Status"] == "Success" and listed[fine]["ErrorCount"] == 0
    [detail] = ssm.list_command_invocations(CommandId=failed, Details=True)["CommandInvocations"]
    assert detail["Status"] == "Failed"
    [plugin] = detail["CommandPlugins"]
    assert plugin["ResponseCode"] == 1 and plugin["Status"] == "Failed"
    assert plugin["Output"] == "partial\n\n----------ERROR-------\nE: Unable to locate package"
    assert len(ssm.list_command_invocations(InstanceId=instance_id)["CommandInvocations"]) == 2
    # rules are fixed at send time; clearing them affects later commands only
    server.ok("DELETE", "ssm/fail")
    again = send(ssm, instance_id, ["bash /tmp/install-guest-deps.sh"])
    assert ssm.get_command_invocation(CommandId=again, InstanceId=instance_id)["Status"] == "Success"
    assert ssm.get_command_invocation(CommandId=failed, InstanceId=instance_id)["Status"] == "Failed"


def test_ssm_rule_exit_status(server: Server) -> None:
    """A script that exits 3 (pv2hvm --in-place declining): Failed, ResponseCode 3, its stdout kept."""
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    refusal = json.dumps({"script": "pv2hvm", "schemaVersion": 4, "refused": "in-place", "reason": "gap-too-small", "detail": "31 KiB before partition 1"})
    server.ok("POST", "ssm/fail", {"match": "--in-place", "status": "Failed", "responseCode": 3, "output": f"{refusal}\n"})
    inv = ssm.get_command_invocation(CommandId=send(ssm, instance_id, ["bash pv2hvm.sh --in-place vol-1"]), InstanceId=instance_id)
    assert (inv["Status"], inv["ResponseCode"], inv["StandardOutputContent"]) == ("Failed", 3, f"{refusal}\n")
    for rule in ({"status": "Success", "responseCode": 3}, {"status": "Failed", "responseCode": 0}):
        status, body = server.control("POST", "ssm/fail", {"match": "x", **rule})
        assert status == 400 and "responseCode" in body["error"]


def test_ssm_success_output_and_truncation(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    facts = json.dumps({"kernel": "6.1.0-18-amd64", "virtualization": "hvm"})
    server.ok("POST", "ssm/fail", {"match": "collect-facts", "status": "Success", "output": f"log line\n{facts}\n"})
    cmd = send(ssm, instance_id, ["/opt/ami-factory/collect-facts"])
    inv = ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)
    assert inv["Status"] == "Success" and inv["ResponseCode"] == 0
    assert json.loads(inv["StandardOutputContent"].strip().splitlines()[-1]) == json.loads(facts)
    # AWS keeps only the first 24,000 characters (2,500 in ListCommandInvocations' plugin Output)
    server.ok("POST", "ssm/fail", {"match": "noisy", "status": "Success", "output": "x" * 30000 + "\n" + facts})
    noisy = send(ssm, instance_id, ["noisy build"])
    assert len(ssm.get_command_invocation(CommandId=noisy, InstanceId=instance_id)["StandardOutputContent"]) == 24000
    [detail] = ssm.list_command_invocations(CommandId=noisy, Details=True)["CommandInvocations"]
    assert len(detail["CommandPlugins"][0]["Output"]) == 2500
    # stderr: the first 8,000 characters, its end cut off
    server.ok("POST", "ssm/fail", {"match": "chatty", "status": "Failed", "stderr": "progress\n" * 2000 + "the error\n"})
    chatty = ssm.get_command_invocation(CommandId=send(ssm, instance_id, ["chatty build"]), InstanceId=instance_id)
    assert len(chatty["StandardErrorContent"]) == 8000 and "the error" not in chatty["StandardErrorContent"]


def test_ssm_no_output_before_the_end(server: Server) -> None:
    """Both outputs are empty while the command runs (AWS: "If the command hasn't finished running,
    then this string is empty")."""
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    server.ok("POST", "ssm/fail", {"match": "slow", "status": "InProgress", "output": "half\n", "stderr": "step 1/8\n"})
    inv = ssm.get_command_invocation(CommandId=send(ssm, instance_id, ["slow build"]), InstanceId=instance_id)
    assert (inv["Status"], inv["StandardOutputContent"], inv["StandardErrorContent"]) == ("InProgress", "", "")


def test_ssm_rule_options_and_validation(server: Server) -> None:
    ec2 = server.client("ec2")
    a, b = run_instance(ec2), run_instance(ec2)
    ssm = server.client("ssm")
    server.ok("POST", "ssm/fail", {"match": "", "status": "TimedOut", "instanceIds": [b], "times": 1})
    cmd = ssm.send_command(InstanceIds=[a, b], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": ["true"]})["Command"]["CommandId"]
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=a)["Status"] == "Success"
    timed_out = ssm.get_command_invocation(CommandId=cmd, InstanceId=b)
    assert timed_out["Status"] == "TimedOut" and timed_out["ResponseCode"] == -1
    later = send(ssm, b, ["true"])  # times: 1 is used up
    assert ssm.get_command_invocation(CommandId=later, InstanceId=b)["Status"] == "Success"
    assert len(server.ok("GET", "ssm/fail")) == 1
    status, body = server.control("POST", "ssm/fail", {"match": "x", "status": "Exploded"})
    assert status == 400 and "status" in body["error"]
    server.ok("POST", "reset")
    assert server.ok("GET", "ssm/fail") == []


def test_ssm_rule_matches_the_script_identity(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    pv2hvm = ["cat > /root/ami-factory-pv2hvm.sh <<'X'", '# @facts {"script":"pv2hvm","schemaVersion":2,"fields":{}}',
              "# (the surrogate build shares this library)", "X", "exec bash /root/ami-factory-pv2hvm.sh"]
    surrogate = ["cat > /root/ami-factory-surrogate.sh <<'X'", '# @facts {"script":"surrogate","schemaVersion":1,"fields":{}}', "X"]
    server.ok("POST", "ssm/fail", {"match": "", "script": "surrogate", "status": "Success", "output": "surrogate facts\n"})
    server.ok("POST", "ssm/fail", {"match": "", "script": "pv2hvm", "status": "Success", "output": "pv2hvm facts\n"})
    # A later rule matching the substring "surrogate" would also take the pv2hvm command: identities do not.
    for commands, output in [(pv2hvm, "pv2hvm facts\n"), (surrogate, "surrogate facts\n"), (["uname -a"], "")]:
        cmd = send(ssm, instance_id, commands)
        assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["StandardOutputContent"] == output
    status, body = server.control("POST", "ssm/fail", {"match": "", "script": 3})
    assert status == 400 and "script" in body["error"]


def compressed_command(name: str, script: str) -> list[str]:
    """A command in the shape providers/worker/command.ts sends: the script gzip+base64 in a here-document."""
    packed = base64.b64encode(gzip.compress(script.encode())).decode()
    return [f"base64 -d <<'AMI_FACTORY_GUEST_SCRIPT' | gunzip > /root/ami-factory-{name}.sh",
            *[packed[i:i + 1024] for i in range(0, len(packed), 1024)], "AMI_FACTORY_GUEST_SCRIPT",
            f"exec bash /root/ami-factory-{name}.sh '--target' 'vol-1'"]


def test_ssm_rules_see_inside_compressed_guest_scripts(server: Server) -> None:
    instance_id = run_instance(server.client("ec2"))
    ssm = server.client("ssm")
    filler = "".join(f"# line {i}: {i * 7919 % 10007}\n" for i in range(2000))  # several payload lines
    pv2hvm = compressed_command("pv2hvm", '#!/bin/bash\n# @facts {"script":"pv2hvm","schemaVersion":2,"fields":{}}\n'
                                          + filler + "# mentions surrogate and GRUB_MARKER_IN_BODY\n")
    surrogate = compressed_command("surrogate", '#!/bin/bash\n# @facts {"script":"surrogate","schemaVersion":1,"fields":{}}\n')
    assert "GRUB_MARKER_IN_BODY" not in "\n".join(pv2hvm)
    server.ok("POST", "ssm/fail", {"match": "", "script": "surrogate", "status": "Success", "output": "surrogate facts\n"})
    server.ok("POST", "ssm/fail", {"match": "", "script": "pv2hvm", "status": "Success", "output": "pv2hvm facts\n"})
    for commands, output in [(pv2hvm, "pv2hvm facts\n"), (surrogate, "surrogate facts\n")]:
        cmd = send(ssm, instance_id, commands)
        assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["StandardOutputContent"] == output
    # A substring of the script's body matches too, as it did when scripts travelled uncompressed.
    server.ok("POST", "ssm/fail", {"match": "GRUB_MARKER_IN_BODY", "status": "Failed", "stderr": "boom"})
    cmd = send(ssm, instance_id, pv2hvm)
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["Status"] == "Failed"
    cmd = send(ssm, instance_id, surrogate)
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=instance_id)["StandardOutputContent"] == "surrogate facts\n"


def test_ssm_cancel_command(server: Server) -> None:
    ec2 = server.client("ec2")
    a, b = run_instance(ec2), run_instance(ec2)
    ssm = server.client("ssm")
    server.ok("POST", "ssm/fail", {"match": "long-running", "status": "InProgress", "instanceIds": [a]})
    cmd = ssm.send_command(InstanceIds=[a, b], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": ["long-running"]})["Command"]["CommandId"]
    assert ssm.list_commands(CommandId=cmd)["Commands"][0]["Status"] == "InProgress"
    ssm.cancel_command(CommandId=cmd)
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=a)["Status"] == "Cancelled"
    assert ssm.get_command_invocation(CommandId=cmd, InstanceId=b)["Status"] == "Success"  # finished: stays
    assert ssm.list_commands(CommandId=cmd)["Commands"][0]["Status"] == "Cancelled"
    with pytest.raises(ClientError) as e:
        ssm.cancel_command(CommandId="00000000-0000-0000-0000-000000000000")
    assert e.value.response["Error"]["Code"] == "InvalidCommandId"
