"""The call recorder behind /_ami_factory/calls: the parameters of each request the middleware passes
to moto (by default every action whose name does not start with Describe/Get/List), so a test can
assert what was SENT to AWS. Not a moto patch: AWS has no such thing."""

from __future__ import annotations

import threading
from typing import Any


READ_PREFIXES = ("Describe", "Get", "List")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.actions: set[str] | str | None = None  # None: default (writes), "*": all, set: exactly

    def wants(self, action: str, target: str | None) -> bool:
        with self.lock:
            actions = self.actions
        if actions == "*":
            return True
        if actions is None:
            return not action.startswith(READ_PREFIXES)
        return action in actions or (target is not None and target in actions)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(entry)

    def query(self, action: str | None, region: str | None) -> list[dict[str, Any]]:
        with self.lock:
            calls = list(self.calls)
        out = []
        for c in calls:
            if region and c["region"] != region:
                continue
            if action is None:
                out.append(c)
            elif action in (c["action"], c["target"]):
                out.append(c["params"])
        return out

    def clear(self, config_too: bool = False) -> None:
        with self.lock:
            self.calls.clear()
            if config_too:
                self.actions = None


RECORDER = Recorder()
