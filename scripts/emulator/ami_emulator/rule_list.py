"""The rules a test sets through the control API (SSM outcomes, boot outcomes, call failures): a
list behind a lock, since moto's server answers requests on several threads."""

from __future__ import annotations

import threading
from typing import Any


class RuleList:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []

    def add(self, rule: Any) -> dict[str, Any]:
        """Checks a rule (ValueError naming what is wrong) and keeps it: each list's own rules."""
        raise NotImplementedError

    def _append(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Keeps a rule the subclass's `add` has checked, and returns it as kept."""
        with self.lock:
            self.rules.append(rule)
        return rule

    def list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.rules]

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
