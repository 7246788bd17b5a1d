"""SSM managed instances: DescribeInstanceInformation, which moto lacks, lists the region's running
EC2 instances as online; SendCommand to an instance that does not exist or is not running fails
with InvalidInstanceId, as on AWS (moto accepts any id), and so do the next sends while a fresh
instance's agent has not registered (POST /_ami_factory/ssm/unregistered, SsmAgents)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from .ec2_models import _ec2_backend
from .patching import APPLIED, _has_params, _need
from .ssm_commands import _ssm_error


def patch_ssm_describe_instance_information() -> None:
    """moto has no DescribeInstanceInformation (HTTP 500): every running EC2 instance of the region
    is a managed instance, Online, with a Linux agent. Filters: InstanceIds (both filter lists),
    PingStatus; no pagination."""
    from moto.core.responses import ActionResult
    from moto.ssm.responses import SimpleSystemManagerResponse

    name = "ssm-describe-instance-information"
    _need(not hasattr(SimpleSystemManagerResponse, "describe_instance_information"), name,
          "moto now implements DescribeInstanceInformation: check it and drop this patch")

    def describe_instance_information(self: Any) -> ActionResult:
        wanted: dict[str, set[str]] = {}
        for f in (self._get_param("InstanceInformationFilterList") or []):
            wanted.setdefault(f.get("key", ""), set()).update(f.get("valueSet") or [])
        for f in (self._get_param("Filters") or []):
            wanted.setdefault(f.get("Key", ""), set()).update(f.get("Values") or [])
        ec2 = _ec2_backend(self.ssm_backend.region_name, self.ssm_backend.account_id)
        now = dt.datetime.now(dt.timezone.utc)
        out = []
        for reservation in list(ec2.reservations.values()):
            for instance in reservation.instances:
                if not instance.is_running():
                    continue
                if "InstanceIds" in wanted and instance.id not in wanted["InstanceIds"]:
                    continue
                if "PingStatus" in wanted and "Online" not in wanted["PingStatus"]:
                    continue
                out.append({
                    "InstanceId": instance.id, "PingStatus": "Online", "LastPingDateTime": now,
                    "AgentVersion": "3.3.0.0", "IsLatestVersion": True, "PlatformType": "Linux",
                    "PlatformName": "Amazon Linux", "PlatformVersion": "2023", "ResourceType": "EC2Instance",
                    "IPAddress": getattr(instance, "private_ip", None) or "", "ComputerName": f"ip-{instance.id}",
                })
        return ActionResult({"InstanceInformationList": out})

    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]
    APPLIED.append(name)


class SsmAgents:
    """`POST /_ami_factory/ssm/unregistered {"sends": N, "instanceIds"?: [...]}`: the next N SendCommand
    calls (to those instances, or any) fail with InvalidInstanceId, as while the SSM agent of a fresh
    instance has not registered yet."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[dict[str, Any]] = []

    def add(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("sends"), int) or body["sends"] < 1:
            raise ValueError("'sends' must be a positive integer")
        ids = body.get("instanceIds")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise ValueError("'instanceIds' must be a list of strings")
        with self.lock:
            self.pending.append({"sends": body["sends"], "instanceIds": ids})

    def take(self, instance_ids: list[str]) -> bool:
        with self.lock:
            for entry in self.pending:
                if entry["sends"] > 0 and (entry["instanceIds"] is None or set(instance_ids) & set(entry["instanceIds"])):
                    entry["sends"] -= 1
                    return True
        return False

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()


SSM_AGENTS = SsmAgents()


def patch_ssm_send_command_targets() -> None:
    """moto's SendCommand accepts any instance id. EC2/SSM answer InvalidInstanceId for an instance
    that does not exist in the region or is not running (no agent to talk to); the SsmAgents control
    makes fresh instances look unregistered for a number of sends."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ssm.models import SimpleSystemManagerBackend

    name = "ssm-send-command-targets"
    _need(_has_params(SimpleSystemManagerBackend.send_command, "instance_ids"), name,
          "SimpleSystemManagerBackend.send_command signature changed")
    original = SimpleSystemManagerBackend.send_command

    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        instance_ids = list(kwargs.get("instance_ids") or [])
        ec2 = _ec2_backend(self.region_name, self.account_id)
        bad = []
        for instance_id in instance_ids:
            try:
                if not ec2.get_instance(instance_id).is_running():
                    bad.append(instance_id)
            except InvalidInstanceIdError:
                bad.append(instance_id)
        if not bad and instance_ids and SSM_AGENTS.take(instance_ids):
            bad = instance_ids
        if bad:
            raise _ssm_error("InvalidInstanceId", f"Instances [[{', '.join(bad)}]] not in a valid state for account {self.account_id}")
        return original(self, *args, **kwargs)

    SimpleSystemManagerBackend.send_command = send_command  # type: ignore[method-assign]
    APPLIED.append(name)
