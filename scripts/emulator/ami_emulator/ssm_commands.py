"""SSM Run Command: each SendCommand invocation gets the outcome the SsmRules (ssm_rules) give it,
reported by GetCommandInvocation, ListCommands and ListCommandInvocations with AWS's output
truncation (AWS API reference), SendCommand answers Pending as AWS does, and ListCommandInvocations
and CancelCommand, which moto lacks, exist. moto reports every invocation Success with no output."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .patching import APPLIED, _has_params, _need
from .ssm_rules import SSM_RULES, expand_guest_scripts


# GetCommandInvocation returns the first 24,000 characters of stdout/stderr; ListCommandInvocations
# (Details=true) the first 2,500 of a plugin's Output (AWS API reference).
SSM_STDOUT_LIMIT = 24000
SSM_PLUGIN_OUTPUT_LIMIT = 2500


def _clip(text: str, limit: int) -> str:
    return text[:limit]


UNFINISHED = ("InProgress", "Pending", "Delayed")

# Hooks that run an invocation for real (the twin's worker VMs, twin/worker.py): each takes
# (command, invocation) and returns True when it took the invocation; the SsmRules decide the rest.
INVOCATION_RUNNERS: list[Any] = []


def _ssm_error(code: str, message: str) -> Exception:
    """An SSM error moto serializes as JSON: SSMException (5.2) or JsonRESTError (5.1, whose SSM
    RESTError comes out as a bare HTTP 400)."""
    try:
        from moto.ssm.exceptions import SSMException

        return SSMException(code, message)
    except ImportError:
        from moto.core.exceptions import JsonRESTError

        return JsonRESTError(code, message)


def _ssm_command(backend: Any, command_id: str) -> Any:
    try:
        return backend.get_command_by_id(command_id)
    except Exception as e:
        if "InvalidCommandId" in (getattr(e, "code", None), getattr(e, "error_type", None)):
            raise _ssm_error("InvalidCommandId", "Invalid command id.") from e
        raise


def _summarise(command: Any) -> None:
    """A command's Status/StatusDetails/ErrorCount/CompletedCount from its invocations."""
    statuses = [inv["Status"] for inv in command.invocations]
    command.error_count = sum(1 for s in statuses if s in ("Failed", "TimedOut"))
    command.completed_count = sum(1 for s in statuses if s not in UNFINISHED)
    for s in ("InProgress", "Pending", "Delayed", "Failed", "TimedOut", "Cancelled"):
        if s in statuses:
            command.status = command.status_details = s
            break
    else:
        command.status = command.status_details = "Success"


def patch_ssm_commands() -> None:
    """moto reports every SendCommand invocation as Success with empty output and has no
    ListCommandInvocations. Here: SsmRules decide an invocation's Status/StatusDetails/ResponseCode/
    StandardOutputContent/StandardErrorContent at send time (GetCommandInvocation, ListCommands and
    ListCommandInvocations report it, with AWS's output truncation), and ListCommandInvocations
    exists (CommandId, InstanceId, Details)."""
    from moto.core.responses import ActionResult
    from moto.ssm.models import Command
    from moto.ssm.responses import SimpleSystemManagerResponse

    name = "ssm-commands"
    _need(_has_params(Command.__init__, "parameters", "instance_ids"), name, "ssm Command.__init__ signature changed")
    _need(hasattr(Command, "invocation_response") and hasattr(Command, "response_object"), name,
          "ssm Command.invocation_response/response_object missing")
    _need(not hasattr(SimpleSystemManagerResponse, "list_command_invocations"), name,
          "moto now implements ListCommandInvocations: check it and drop that part of this patch")

    # moto turns an empty Targets into "every instance of the region" (its EC2 filter of nothing
    # matches all): a SendCommand with InstanceIds only got an invocation on every instance, the
    # terminated ones too. SendCommand targets "InstanceIds" or "Targets" (SSM API Reference,
    # SendCommand): no Targets, no extra instances.
    _need(hasattr(Command, "_get_instance_ids_from_targets"), name, "Command._get_instance_ids_from_targets missing")
    original_targets = Command._get_instance_ids_from_targets

    def _get_instance_ids_from_targets(self: Any) -> list[str]:
        return original_targets(self) if self.targets else []

    Command._get_instance_ids_from_targets = _get_instance_ids_from_targets  # type: ignore[method-assign]

    original_init = Command.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        params = self.parameters or {}
        if "commands" in params:
            text = "\n".join(str(c) for c in params["commands"])
        else:
            text = "\n".join(str(v) for vs in params.values() for v in (vs if isinstance(vs, list) else [vs]))
        text = expand_guest_scripts(text)
        used: set[int] = set()
        for inv in self.invocations:
            _need(isinstance(inv, dict) and "Status" in inv, name, "ssm invocations are no longer dicts")
            if any(run(self, inv) for run in INVOCATION_RUNNERS):
                continue
            rule = SSM_RULES.take(text, inv["InstanceId"], used)
            status = rule["status"] if rule else "Success"
            stdout = rule.get("output", "") if rule else ""
            default_err = "failed to run commands: exit status 1" if status == "Failed" else ""
            stderr = rule.get("stderr", default_err) if rule else ""
            code = rule.get("responseCode") if rule else None
            if code is None:
                code = {"Success": 0, "Failed": 1}.get(status, -1)
            details = rule.get("statusDetails") if rule else None
            details = details or {"TimedOut": "ExecutionTimedOut"}.get(status, status)
            inv.update(Status=status, StatusDetails=details, ResponseCode=code,
                       StandardOutputContent=_clip(stdout, SSM_STDOUT_LIMIT),
                       StandardErrorContent=_clip(stderr, SSM_STDOUT_LIMIT))
            inv["_amf_output"] = stdout
            inv["_amf_stderr"] = stderr
            if status in UNFINISHED:
                inv["ExecutionEndDateTime"] = ""
        _summarise(self)

    Command.__init__ = __init__  # type: ignore[method-assign]

    original_get_invocation = Command.get_invocation

    def get_invocation(self: Any, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
        inv = original_get_invocation(self, instance_id, plugin_name)
        return {k: v for k, v in inv.items() if not k.startswith("_amf")}

    Command.get_invocation = get_invocation  # type: ignore[method-assign]

    def list_command_invocations(self: Any) -> ActionResult:
        command_id = self._get_param("CommandId")
        instance_id = self._get_param("InstanceId")
        details = bool(self._get_param("Details", False))
        backend = self.ssm_backend
        commands = [_ssm_command(backend, command_id)] if command_id else backend.list_commands(None, None)
        out = []
        for command in commands:
            for inv in command.invocations:
                if instance_id and inv["InstanceId"] != instance_id:
                    continue
                item: dict[str, Any] = {
                    "CommandId": command.command_id,
                    "InstanceId": inv["InstanceId"],
                    "InstanceName": "",
                    "Comment": command.comment,
                    "DocumentName": command.document_name,
                    "DocumentVersion": "$DEFAULT",
                    "RequestedDateTime": command.requested_date_time,
                    "Status": inv["Status"],
                    "StatusDetails": inv["StatusDetails"],
                    "StandardOutputUrl": "",
                    "StandardErrorUrl": "",
                    "CommandPlugins": [],
                    "ServiceRole": command.service_role_arn,
                    "NotificationConfig": command.notification_config,
                    "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
                }
                if details:
                    output = inv.get("_amf_output", inv.get("StandardOutputContent", ""))
                    stderr = inv.get("_amf_stderr", inv.get("StandardErrorContent", ""))
                    if stderr:
                        output = f"{output}\n----------ERROR-------\n{stderr}"
                    plugin: dict[str, Any] = {
                        "Name": inv.get("PluginName", "aws:runShellScript"),
                        "Status": inv["Status"],
                        "StatusDetails": inv["StatusDetails"],
                        "ResponseCode": inv["ResponseCode"],
                        "ResponseStartDateTime": command.requested_date_time,
                        "Output": _clip(output, SSM_PLUGIN_OUTPUT_LIMIT),
                        "StandardOutputUrl": "",
                        "StandardErrorUrl": "",
                        "OutputS3Region": command.output_s3_region or backend.region_name,
                        "OutputS3BucketName": command.output_s3_bucket_name,
                        "OutputS3KeyPrefix": command.output_s3_key_prefix,
                    }
                    if inv.get("ExecutionEndDateTime"):
                        plugin["ResponseFinishDateTime"] = command.requested_date_time + dt.timedelta(minutes=5)
                    item["CommandPlugins"] = [plugin]
                out.append(item)
        return ActionResult({"CommandInvocations": out})

    SimpleSystemManagerResponse.list_command_invocations = list_command_invocations  # type: ignore[attr-defined]

    # SendCommand's own answer: AWS reports the command Pending with zero counts (the outcome shows
    # in GetCommandInvocation/ListCommands afterwards); moto says Success.
    original_send = SimpleSystemManagerResponse.send_command

    def send_command(self: Any) -> Any:
        result = original_send(self)
        pending = {"Status": "Pending", "StatusDetails": "Pending", "CompletedCount": 0, "ErrorCount": 0}
        if isinstance(result, str):  # moto 5.1: a JSON string
            body = json.loads(result)
            _need(isinstance(body.get("Command"), dict), name, "SendCommand's result has no Command")
            body["Command"].update(pending)
            return json.dumps(body)
        command = result.result.get("Command") if isinstance(getattr(result, "result", None), dict) else None
        _need(isinstance(command, dict), name, "SendCommand's result has no Command dict")
        return ActionResult({**result.result, "Command": {**command, **pending}})

    SimpleSystemManagerResponse.send_command = send_command  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_ssm_cancel_command() -> None:
    """moto has no CancelCommand (HTTP 500): unfinished invocations (Pending/InProgress/Delayed) of
    the command, for the given instances or all, become Cancelled; finished ones stay as they are;
    an unknown command id is InvalidCommandId."""
    from moto.core.responses import ActionResult
    from moto.ssm.responses import SimpleSystemManagerResponse

    name = "ssm-cancel-command"
    _need(not hasattr(SimpleSystemManagerResponse, "cancel_command"), name,
          "moto now implements CancelCommand: check it and drop this patch")

    def cancel_command(self: Any) -> ActionResult:
        command = _ssm_command(self.ssm_backend, self._get_param("CommandId"))
        instance_ids = self._get_param("InstanceIds") or []
        for inv in command.invocations:
            if instance_ids and inv["InstanceId"] not in instance_ids:
                continue
            if inv["Status"] in UNFINISHED:
                inv.update(Status="Cancelled", StatusDetails="Cancelled", ResponseCode=-1)
        _summarise(command)
        return ActionResult({})

    SimpleSystemManagerResponse.cancel_command = cancel_command  # type: ignore[attr-defined]
    APPLIED.append(name)
