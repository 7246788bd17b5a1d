"""EC2 boot outcomes: what an instance of an image does after launch (status checks, serial
console), scripted by POST /_ami_factory/ec2/boot (BootScripts); and two EC2 rules moto does not
enforce: GetConsoleOutput Latest=true only on Nitro instance types (GetConsoleOutput API reference),
and a Nitro type needs an image with ENA (EC2 User Guide, Enhanced networking)."""

from __future__ import annotations

from typing import Any, Callable

from .rule_list import RuleList
from .patching import APPLIED, _need, _uses_action_result


# What a console shows when a rule gives no text of its own (short, but in the real shapes).
DEFAULT_CONSOLES = {
    "boots": "Booting `Debian GNU/Linux'\r\n\r\nLoading Linux 6.1.0-28-amd64 ...\r\nLoading initial ramdisk ...\r\n"
             "[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r\n"
             "[  OK  ] Reached target multi-user.target - Multi-User System.\r\n\r\n"
             "Debian GNU/Linux 12 debian ttyS0\r\n\r\ndebian login: ",
    "panics": "Loading Linux 6.1.0-28-amd64 ...\r\n[    2.104512] VFS: Cannot open root device \"UUID=3f0c2a57\" or unknown-block(0,0): error -6\r\n"
              "[    2.104699] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n"
              "[    2.104861] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---\r\n",
    "impaired": "Loading Linux 6.1.0-28-amd64 ...\r\n[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r\n",
    "never": "Booting `Debian GNU/Linux'\r\n\r\nLoading Linux 6.1.0-28-amd64 ...\r\n",
}
BOOT_OUTCOMES = set(DEFAULT_CONSOLES)


class BootScripts(RuleList):
    """`POST /_ami_factory/ec2/boot`: how instances of an image boot. A rule matches an instance whose
    image id is `imageId`, or whose image name contains `imageName` (no selector: every image); the
    most recent matching rule wins, fixed for an instance when it is first looked at.

    Rule fields: outcome ("boots" | "panics" | "impaired" | "never"), afterPolls (int >= 0, default 1:
    DescribeInstanceStatus calls naming the instance before the outcome shows; until then both checks
    are "initializing" and the console is empty), console (the serial console text once the outcome
    shows; default DEFAULT_CONSOLES[outcome]), notVisibleFor (int >= 0, default 0: the first N
    DescribeInstanceStatus / GetConsoleOutput calls naming the instance fail with
    InvalidInstanceID.NotFound, as right after RunInstances: EC2 is eventually consistent).
    Outcomes: boots: system ok, instance ok. panics: system ok, instance impaired. impaired: system
    ok, instance impaired, and the console shows no panic. never: both stay initializing.
    Without a matching rule an instance behaves as moto makes it (both checks ok at once, moto's
    sample console, which shows no userspace)."""

    def __init__(self) -> None:
        super().__init__()
        self.instances: dict[str, dict[str, Any]] = {}  # instance id -> {"rule", "polls"}

    def add(self, rule: Any) -> dict[str, Any]:
        if not isinstance(rule, dict):
            raise ValueError("a rule is a JSON object")
        rule = dict(rule)
        if rule.get("outcome") not in BOOT_OUTCOMES:
            raise ValueError(f"'outcome' must be one of {sorted(BOOT_OUTCOMES)}")
        polls = rule.setdefault("afterPolls", 1)
        if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
            raise ValueError("'afterPolls' must be a non-negative integer")
        hidden = rule.setdefault("notVisibleFor", 0)
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 0:
            raise ValueError("'notVisibleFor' must be a non-negative integer")
        for key in ("imageId", "imageName", "console"):
            if key in rule and not isinstance(rule[key], str):
                raise ValueError(f"'{key}' must be a string")
        unknown = set(rule) - {"outcome", "afterPolls", "imageId", "imageName", "console", "notVisibleFor"}
        if unknown:
            raise ValueError(f"unknown rule fields: {sorted(unknown)}")
        return self._append(rule)

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.instances.clear()

    def _state(self, instance: Any) -> dict[str, Any]:
        """Under the lock: the instance's rule (None: moto's behaviour) and poll count."""
        state = self.instances.get(instance.id)
        if state is None:
            image = instance.ec2_backend.amis.get(instance.image_id)
            name = getattr(image, "name", None) or ""
            rule = None
            for r in reversed(self.rules):
                if "imageId" in r and r["imageId"] != instance.image_id:
                    continue
                if "imageName" in r and r["imageName"] not in name:
                    continue
                rule = r
                break
            state = self.instances[instance.id] = {"rule": rule, "polls": 0, "hidden": rule["notVisibleFor"] if rule else 0}
        return state

    def hidden(self, instance: Any) -> bool:
        """True while the instance is still invisible to this call (counts the call)."""
        with self.lock:
            state = self._state(instance)
            if state["hidden"] > 0:
                state["hidden"] -= 1
                return True
            return False

    def polled(self, instance: Any) -> None:
        with self.lock:
            self._state(instance)["polls"] += 1

    def view(self, instance: Any) -> tuple[str | None, str | None]:
        """(outcome shown now or None while initializing / unscripted, console text or None)."""
        with self.lock:
            state = self._state(instance)
            rule = state["rule"]
            if rule is None:
                return "moto", None
            if state["polls"] < rule["afterPolls"]:
                return None, ""
            return rule["outcome"], rule.get("console", DEFAULT_CONSOLES[rule["outcome"]])


BOOT_SCRIPTS = BootScripts()


def _check(status: str) -> dict[str, Any]:
    if status == "ok":
        return {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}
    if status == "impaired":
        return {"Status": "impaired", "Details": [{"Name": "reachability", "Status": "failed"}]}
    return {"Status": "initializing", "Details": [{"Name": "reachability", "Status": "initializing"}]}


def _instance_type_info(instance_type: str) -> dict[str, Any]:
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    return INSTANCE_TYPES.get(instance_type) or {}


def latest_console_check(instance: Any, latest: bool) -> None:
    """GetConsoleOutput with Latest=true is "supported on instance types that use the Nitro
    hypervisor" (GetConsoleOutput API reference): on a Xen type it fails with UnsupportedOperation."""
    from moto.ec2.exceptions import EC2ClientError

    if latest and _instance_type_info(instance.instance_type).get("Hypervisor") != "nitro":
        raise EC2ClientError("UnsupportedOperation",
                             f"The instance type {instance.instance_type} does not support retrieving the latest console output.")


def patch_boot_outcomes() -> None:
    """DescribeInstanceStatus and GetConsoleOutput as an instance of a scripted image would answer
    (BootScripts); GetConsoleOutput's Output is base64 and absent while the console is empty, as on
    EC2. Two EC2 rules moto does not enforce:
    - GetConsoleOutput with Latest=true is "supported on instance types that use the Nitro
      hypervisor" (GetConsoleOutput API reference): on a Xen type it fails with UnsupportedOperation.
    - Nitro types need ENA: RunInstances of an image without EnaSupport on an instance type whose
      ENA support is "required" fails with InvalidParameterCombination "Enhanced networking with the
      Elastic Network Adapter (ENA) is required for the '<type>' instance type. Ensure that you are
      using an AMI that is enabled for ENA." (EC2 User Guide, Enhanced networking: all Nitro-based
      instances use ENA). Images whose ENA support moto does not know (its own) are let through."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.exceptions import EC2ClientError, InvalidInstanceIdError
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses.general import General
    from moto.ec2.utils import Base64EncodedString

    name = "boot-outcomes"
    _need(isinstance(getattr(Instance, "instance_status", None), property)
          and isinstance(getattr(Instance, "system_status", None), property), name,
          "Instance.instance_status/system_status are not properties")
    _need(hasattr(InstanceBackend, "describe_instance_status"), name, "InstanceBackend.describe_instance_status missing")
    _need(_uses_action_result(General.get_console_output), name, "General.get_console_output changed")
    _need(hasattr(Base64EncodedString, "from_raw_string"), name, "Base64EncodedString.from_raw_string missing")

    original_instance_status = Instance.instance_status.fget
    original_system_status = Instance.system_status.fget

    def status_of(which: str) -> Callable[[Any], dict[str, Any]]:
        original = original_instance_status if which == "instance" else original_system_status

        def getter(self: Any) -> dict[str, Any]:
            answer = original(self)
            if self.state_code != 16:
                return answer
            outcome, _ = BOOT_SCRIPTS.view(self)
            if outcome == "moto":
                return answer
            if outcome is None or outcome == "never":
                return _check("initializing")
            if outcome == "boots" or which == "system":
                return _check("ok")
            return _check("impaired")

        return getter

    Instance.instance_status = property(status_of("instance"))  # type: ignore[method-assign,assignment]
    Instance.system_status = property(status_of("system"))  # type: ignore[method-assign,assignment]

    original_describe = InstanceBackend.describe_instance_status

    def describe_instance_status(self: Any, instance_ids: list[str], include_all_instances: bool, filters: Any) -> Any:
        for instance_id in instance_ids or []:
            if BOOT_SCRIPTS.hidden(self.get_instance(instance_id)):
                raise InvalidInstanceIdError(instance_id)
        instances = original_describe(self, instance_ids, include_all_instances, filters)
        for instance in instances:  # one poll per call naming the instance
            if instance.is_running():
                BOOT_SCRIPTS.polled(instance)
        return instances

    InstanceBackend.describe_instance_status = describe_instance_status  # type: ignore[method-assign]

    original_console = General.get_console_output

    def get_console_output(self: Any) -> Any:
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        if BOOT_SCRIPTS.hidden(instance):
            raise InvalidInstanceIdError(instance.id)
        latest_console_check(instance, str(self._get_param("Latest", False)).lower() == "true")
        outcome, console = BOOT_SCRIPTS.view(instance)
        if outcome == "moto":
            return original_console(self)
        result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
        if console:
            result["Output"] = Base64EncodedString.from_raw_string(console[-64 * 1024:])  # the latest 64 KB
        return ActionResult(result)

    General.get_console_output = get_console_output  # type: ignore[method-assign]

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        image = self.amis.get(image_id)
        instance_type = kwargs.get("instance_type") or "m1.small"
        # Only an image known to lack ENA (EnaSupport false, as RegisterImage was told): moto's own
        # images do not say, and the images they stand for (Amazon Linux, ...) have ENA.
        no_ena = image is not None and str(getattr(image, "ena_support", None)).lower() == "false"
        if no_ena and (_instance_type_info(instance_type).get("NetworkInfo") or {}).get("EnaSupport") == "required":
            raise EC2ClientError(
                "InvalidParameterCombination",
                f"Enhanced networking with the Elastic Network Adapter (ENA) is required for the '{instance_type}' "
                "instance type. Ensure that you are using an AMI that is enabled for ENA.",
            )
        return original_run(self, image_id, count, *args, **kwargs)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
    APPLIED.append(name)
