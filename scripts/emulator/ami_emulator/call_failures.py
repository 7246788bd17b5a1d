"""Injected call failures (control API `POST /_ami_factory/calls/fail`): an EC2 call that fails
halfway through an operation, before moto sees it, so that a test proves the provider compensates
what already ran (SharedAmi's update)."""

from __future__ import annotations

from typing import Any

from .rule_list import RuleList


class CallFailures(RuleList):
    """`POST /_ami_factory/calls/fail`: the next `times` (default 1) calls of a query-protocol (EC2)
    action, in `region` if given, answer HTTP 400 with the error `code` without reaching moto: a call
    failing halfway through an operation (e.g. CopyImage's ResourceLimitExceeded while too many
    copies are in flight), which the provider must compensate. A code the SDK does not retry fails
    the operation at once."""


    def add(self, rule: Any) -> dict[str, Any]:
        if not isinstance(rule, dict) or not isinstance(rule.get("action"), str) or not isinstance(rule.get("code"), str):
            raise ValueError("a call failure needs 'action' and 'code' (strings)")
        times = rule.get("times", 1)
        if not isinstance(times, int) or times < 1:
            raise ValueError("'times' must be a positive integer")
        rule = {"region": None, "message": f"{rule['action']} failed (injected by the emulator)", **rule, "times": times}
        return self._append(rule)

    def take(self, action: str, region: str | None) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule["action"] == action and rule["region"] in (None, region) and rule["times"] > 0:
                    rule["times"] -= 1
                    return rule
        return None


CALL_FAILURES = CallFailures()
