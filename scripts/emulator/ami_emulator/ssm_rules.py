"""Outcome rules for SSM SendCommand (POST /_ami_factory/ssm/fail): how a command's invocations turn
out. Not a moto patch: on AWS the command runs on the instance; here a test says what happened
(ssm_commands applies the rules). Rules see inside the compressed guest scripts the provider sends."""

from __future__ import annotations

import base64
import gzip
import re
from typing import Any

from .rule_list import RuleList


FACTS_DECLARATION = re.compile(r'^# @facts \{"script":"([A-Za-z0-9_-]+)"', re.MULTILINE)


# issue-9 ships guest scripts gzip+base64 in a here-document (providers/worker/command.ts):
#   base64 -d <<'AMI_FACTORY_GUEST_SCRIPT' | gunzip > /root/ami-factory-NAME.sh
# Rules and the script identity look at what the worker would run, so the payload is decoded first
# (a harness convenience: AWS never looks inside a command).
GUEST_SCRIPT_HEREDOC = re.compile(
    r"^base64 -d <<'(?P<tag>[A-Z_]+)' \| gunzip > \S+\n(?P<payload>.*?)^(?P=tag)$", re.MULTILINE | re.DOTALL
)


def expand_guest_scripts(commands_text: str) -> str:
    """The command text with each compressed guest-script here-document replaced by the script itself."""

    def decode(m: "re.Match[str]") -> str:
        try:
            script = gzip.decompress(base64.b64decode("".join(m.group("payload").split()))).decode("utf-8")
        except (ValueError, OSError, UnicodeDecodeError):
            return m.group(0)  # not a payload this harness made: matched as sent
        return m.group(0).split("\n", 1)[0] + "\n" + script + "\n" + m.group("tag")

    return GUEST_SCRIPT_HEREDOC.sub(decode, commands_text)


def script_identity(commands_text: str) -> str | None:
    """The guest script a command carries: the first `# @facts {"script":"NAME"` line, if any."""
    m = FACTS_DECLARATION.search(commands_text)
    return m.group(1) if m else None


def _check_exit_status(rule: dict[str, Any]) -> None:
    """A rule's exit status as AWS-RunShellScript reports it: the script's exit status is the
    ResponseCode, and a non-zero one makes the invocation Failed ("For a plugin, this indicates that
    the result code wasn't zero", https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html;
    https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-handle-exit-status.html).
    So a Success rule cannot carry a non-zero code, nor a Failed rule a zero one (pv2hvm --in-place's
    refusal: status Failed, responseCode 3, its refusal line as output)."""
    code = rule.get("responseCode")
    if code is None:
        return
    if rule["status"] == "Success" and code != 0:
        raise ValueError("'responseCode' of a Success rule must be 0: a non-zero exit status is Failed")
    if rule["status"] == "Failed" and code == 0:
        raise ValueError("'responseCode' of a Failed rule must not be 0: exit status 0 is Success")


class SsmRules(RuleList):
    """Outcome rules for SSM SendCommand. A rule matches a command when `match` is a substring of its
    `commands` parameter (joined with newlines, compressed guest scripts decoded: expand_guest_scripts;
    all parameter values when it has no `commands`),
    when `script` (optional) is the identity of the guest script the command carries (the name in
    its `# @facts {"script":"NAME",…}` declaration: a substring would also match a script that
    merely mentions another one) and, if given, the invocation's instance id is in `instanceIds`.
    The most recently added matching rule wins; `times` (optional) limits how many commands a rule
    applies to.

    Rule fields: match (str), script (str), status (Success|Failed|TimedOut|Cancelled|InProgress|Pending|Delayed),
    output (stdout), stderr, responseCode (int), statusDetails, instanceIds, times."""

    STATUSES = {"Success", "Failed", "TimedOut", "Cancelled", "InProgress", "Pending", "Delayed"}


    def add(self, rule: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(rule, dict):
            raise ValueError("a rule is a JSON object")
        rule = dict(rule)
        rule.setdefault("match", "")
        rule.setdefault("status", "Failed")
        if not isinstance(rule["match"], str):
            raise ValueError("'match' must be a string")
        if "script" in rule and not isinstance(rule["script"], str):
            raise ValueError("'script' must be a string")
        if rule["status"] not in self.STATUSES:
            raise ValueError(f"'status' must be one of {sorted(self.STATUSES)}")
        for key in ("output", "stderr", "statusDetails"):
            if key in rule and not isinstance(rule[key], str):
                raise ValueError(f"'{key}' must be a string")
        if "responseCode" in rule and not isinstance(rule["responseCode"], int):
            raise ValueError("'responseCode' must be an integer")
        _check_exit_status(rule)
        if "instanceIds" in rule and not (
            isinstance(rule["instanceIds"], list) and all(isinstance(i, str) for i in rule["instanceIds"])
        ):
            raise ValueError("'instanceIds' must be a list of strings")
        if "times" in rule and not (isinstance(rule["times"], int) and rule["times"] > 0):
            raise ValueError("'times' must be a positive integer")
        return self._append(rule)

    def take(self, commands_text: str, instance_id: str, used: set[int]) -> dict[str, Any] | None:
        """The rule for one invocation. `used` collects rules already counted for this command."""
        with self.lock:
            identity = script_identity(commands_text)
            for rule in reversed(self.rules):
                if rule["match"] not in commands_text:
                    continue
                if "script" in rule and rule["script"] != identity:
                    continue
                if "instanceIds" in rule and instance_id not in rule["instanceIds"]:
                    continue
                if "times" in rule and id(rule) not in used:
                    if rule.get("_used", 0) >= rule["times"]:
                        continue
                    rule["_used"] = rule.get("_used", 0) + 1
                used.add(id(rule))
                return {k: v for k, v in rule.items() if not k.startswith("_")}
        return None


SSM_RULES = SsmRules()
