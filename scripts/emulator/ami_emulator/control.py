"""The control API: what a test tells the emulator and asks it, outside AWS's API.

Control API (only under /_ami_factory/, JSON in and out):
  GET    /_ami_factory/health                      {"moto": version, "patches": [...]}
  GET    /_ami_factory/calls?action=A[&region=R]   recorded request parameters of action A (a list
                                                   of flat dicts for query protocol, the JSON body
                                                   for JSON protocol; A may be "SendCommand" or
                                                   "AmazonSSM.SendCommand")
  GET    /_ami_factory/calls                       every recorded call: [{action, service, region,
                                                   target, params}]
  DELETE /_ami_factory/calls                       forget recorded calls
  POST   /_ami_factory/calls/actions               {"actions": [..] | "*" | null}: what to record
                                                   (null: the default, every action whose name does
                                                   not start with Describe/Get/List)
  POST   /_ami_factory/ssm/fail                    add an SSM command outcome rule (see SsmRules)
  GET    /_ami_factory/ssm/fail                    the rules
  DELETE /_ami_factory/ssm/fail                    clear the rules
  POST   /_ami_factory/ec2/root-device-type        {"region", "id": "i-..|ami-..", "type"}
  POST   /_ami_factory/ec2/product-codes           {"region", "imageId", "productCodes": [...]}
  POST   /_ami_factory/ec2/image-state             {"region", "imageId", "state", "stateReason"?:
                                                   {"Code", "Message"}}: e.g. keep an image pending
  POST   /_ami_factory/ec2/instance-profile-not-ready {"runs": N}: the next N RunInstances naming
                                                   an instance profile fail with InvalidParameterValue
  POST   /_ami_factory/ec2/tag-lag                 {"seconds": N}: image tag writes take effect N
                                                   seconds late (EC2's eventual consistency; see
                                                   ec2_tag_lag.py); 0 applies them and stops
  POST   /_ami_factory/ssm/unregistered            {"sends": N, "instanceIds"?}: the next N
                                                   SendCommand calls fail with InvalidInstanceId
  DELETE /_ami_factory/ssm/unregistered            forget those
  POST   /_ami_factory/ec2/boot                    {"outcome": "boots"|"panics"|"impaired"|"never",
                                                   "afterPolls"?, "imageId"? | "imageName"?, "console"?,
                                                   "notVisibleFor"?}:
                                                   how instances of an image boot (see BootScripts)
  GET    /_ami_factory/ec2/boot                    the rules
  DELETE /_ami_factory/ec2/boot                    clear the rules
  POST   /_ami_factory/calls/fail                  {"action", "code", "region"?, "message"?, "times"?}:
                                                   the next calls of an EC2 action fail (see CallFailures)
  GET    /_ami_factory/calls/fail                  the rules
  DELETE /_ami_factory/calls/fail                  clear the rules
  POST   /_ami_factory/twin/volume-write           twin mode only: {"volumeId", "offset", "length",
                                                   "pattern": 0-255}: write `length` bytes of `pattern` at
                                                   `offset` into the volume's file (what a guest would
                                                   write; not for a volume open in a running VM: 409)
  POST   /_ami_factory/twin/worker-agent-off       twin mode only: {"workers": N}: the next N worker
                                                   VMs boot with their agent's unit masked (a worker
                                                   whose SSM agent never registers)
  POST   /_ami_factory/twin/worker-state-damaged   twin mode only: {"workers": N}: the next N workers
                                                   that would resume load a truncated saved state (they
                                                   cold-boot instead)
  GET    /_ami_factory/twin                        {"mode", "runDir", "workersReady": {instance id: the
                                                   agent's last ready message}}: which mode runs (runDir null
                                                   in the recorded mode)
  POST   /_ami_factory/reset                       clear recorder, record config, SSM rules, the
                                                   failure counts above, call failures, boot rules (not moto's state: that is
                                                   POST /moto-api/reset)
"""

from __future__ import annotations

from typing import Any

from .call_failures import CALL_FAILURES
from .ec2_boot import BOOT_SCRIPTS
from .ec2_instances import PROFILE_NOT_READY
from .ec2_tag_lag import TAG_LAG
from .ec2_models import _ec2_backend
from .patching import APPLIED
from .recorder import RECORDER
from .rule_list import RuleList
from .ssm_instances import SSM_AGENTS
from .ssm_rules import SSM_RULES
from .twin.store import store as twin_store


CONTROL_PREFIX = "/_ami_factory/"


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


#: Control paths of the rule lists: POST adds a rule (400 naming what is wrong), GET lists, DELETE clears.
RULE_LISTS: dict[str, RuleList] = {"ssm/fail": SSM_RULES, "ec2/boot": BOOT_SCRIPTS, "calls/fail": CALL_FAILURES}


def _rule_list_route(rules: RuleList, method: str, body: Any) -> tuple[int, Any]:
    if method == "POST":
        try:
            return 200, {"ok": True, "rule": rules.add(body)}
        except ValueError as e:
            raise HttpError(400, str(e)) from e
    if method == "GET":
        return 200, rules.list()
    if method == "DELETE":
        rules.clear()
        return 200, {"ok": True}
    raise HttpError(405, f"{method} is not allowed on a rule list (POST, GET, DELETE)")


def _image_of(body: dict[str, Any]) -> Any:
    """The moto image a control call names (imageId, region, accountId), else 404."""
    backend = _ec2_backend(body.get("region") or "us-east-1", body.get("accountId"))
    image = backend.amis.get(body.get("imageId"))
    if image is None:
        raise HttpError(404, f"{body.get('imageId')} not found in {backend.region_name}")
    return image


def _workers_ready() -> dict[str, Any]:
    """Each running worker VM's agent's last ready message (what it reported: reseeded, machineId)."""
    from .twin import vm as vms

    with vms._VMS_LOCK:
        running = list(vms._VMS.values())
    return {v.spec.instance_id: v.agent.ready for v in running if v.agent is not None and v.agent.ready is not None}


def _control(method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    rules = RULE_LISTS.get(path)
    if rules is not None:
        return _rule_list_route(rules, method, body)
    import moto

    if path == "health" and method == "GET":
        return 200, {"moto": moto.__version__, "patches": APPLIED}
    if path == "calls":
        if method == "GET":
            return 200, RECORDER.query(query.get("action"), query.get("region"))
        if method == "DELETE":
            RECORDER.clear()
            return 200, {"ok": True}
    if path == "calls/actions" and method == "POST":
        actions = (body or {}).get("actions")
        if actions is None or actions == "*":
            value: Any = actions
        elif isinstance(actions, list) and all(isinstance(a, str) for a in actions):
            value = set(actions)
        else:
            raise HttpError(400, "'actions' must be a list of action names, \"*\" or null")
        with RECORDER.lock:
            RECORDER.actions = value
        return 200, {"ok": True}
    if path == "ssm/unregistered":
        if method == "POST":
            try:
                SSM_AGENTS.add(body)
            except ValueError as e:
                raise HttpError(400, str(e)) from e
            return 200, {"ok": True}
        if method == "DELETE":
            SSM_AGENTS.clear()
            return 200, {"ok": True}
    if path == "ec2/tag-lag" and method == "POST":
        try:
            TAG_LAG.set((body or {}).get("seconds"))
        except ValueError as e:
            raise HttpError(400, str(e)) from e
        return 200, {"ok": True}
    if path == "ec2/instance-profile-not-ready" and method == "POST":
        try:
            PROFILE_NOT_READY.set((body or {}).get("runs"))
        except ValueError as e:
            raise HttpError(400, str(e)) from e
        return 200, {"ok": True}
    if path == "reset" and method == "POST":
        RECORDER.clear(config_too=True)
        CALL_FAILURES.clear()
        SSM_RULES.clear()
        SSM_AGENTS.clear()
        from .twin.worker import AGENT_OFF, STATE_DAMAGED

        AGENT_OFF.clear()
        STATE_DAMAGED.clear()
        PROFILE_NOT_READY.set(0)
        BOOT_SCRIPTS.clear()
        TAG_LAG.set(0)
        return 200, {"ok": True}
    if path == "ec2/image-state" and method == "POST":
        body = body or {}
        image = _image_of(body)
        if body.get("state") not in ("pending", "available", "invalid", "deregistered", "transient", "failed", "error", "disabled"):
            raise HttpError(400, "'state' must be an EC2 image state (pending, available, failed, ...)")
        reason = body.get("stateReason")
        if reason is not None and not (isinstance(reason, dict) and {"Code", "Message"} >= set(reason)):
            raise HttpError(400, "'stateReason' must be {Code, Message}")
        image.state = body["state"]
        image.state_reason = reason
        return 200, {"ok": True}
    if path == "twin" and method == "GET":
        s = twin_store()
        return 200, {"mode": "twin" if s else "recorded", "runDir": s.run_dir() if s else None,
                     "workersReady": _workers_ready()}
    if path in ("twin/worker-agent-off", "twin/worker-state-damaged") and method == "POST":
        # The next N worker VMs boot with their agent masked, or load a damaged saved state.
        if twin_store() is None:
            raise HttpError(400, f"{path} needs the twin (AMI_FACTORY_EMULATOR=twin)")
        from .twin.worker import AGENT_OFF, STATE_DAMAGED

        n = (body or {}).get("workers")
        if not isinstance(n, int) or n < 1:
            raise HttpError(400, "'workers' must be a positive integer")
        (AGENT_OFF if path == "twin/worker-agent-off" else STATE_DAMAGED).add(n)
        return 200, {"ok": True}
    if path == "twin/volume-write" and method == "POST":
        s = twin_store()
        if s is None:
            raise HttpError(400, "twin/volume-write needs the twin (AMI_FACTORY_EMULATOR=twin)")
        body = body or {}
        try:
            args = (str(body["volumeId"]), int(body["offset"]), int(body["length"]), int(body["pattern"]))
        except (KeyError, TypeError, ValueError) as e:
            raise HttpError(400, f"body must be {{volumeId, offset, length, pattern}}: {e!r}") from e
        try:
            s.write_pattern(*args)
        except ValueError as e:
            raise HttpError(400, str(e)) from e
        except LookupError as e:
            raise HttpError(404, str(e)) from e
        except RuntimeError as e:
            raise HttpError(409, str(e)) from e
        return 200, {"ok": True}
    if path == "ec2/root-device-type" and method == "POST":
        body = body or {}
        rtype, rid = body.get("type"), body.get("id", "")
        if rtype not in ("ebs", "instance-store"):
            raise HttpError(400, "'type' must be 'ebs' or 'instance-store'")
        backend = _ec2_backend(body.get("region") or "us-east-1", body.get("accountId"))
        if rid.startswith("i-"):
            target = backend.get_instance(rid)
        elif rid.startswith("ami-"):
            target = backend.amis.get(rid)
        else:
            raise HttpError(400, "'id' must be an instance id (i-...) or image id (ami-...)")
        if target is None:
            raise HttpError(404, f"{rid} not found in {backend.region_name}")
        target.root_device_type = rtype
        return 200, {"ok": True}
    if path == "ec2/product-codes" and method == "POST":
        body = body or {}
        image = _image_of(body)
        codes = body.get("productCodes") or []
        if not all(isinstance(c, dict) and isinstance(c.get("ProductCodeId"), str) for c in codes):
            raise HttpError(400, "'productCodes' must be a list of {ProductCodeId, ProductCodeType}")
        image.product_codes = {c["ProductCodeId"] for c in codes}
        image._amf_product_code_types = {c["ProductCodeId"]: c.get("ProductCodeType", "marketplace") for c in codes}
        return 200, {"ok": True}
    raise HttpError(404, f"no control endpoint {method} {CONTROL_PREFIX}{path}")
