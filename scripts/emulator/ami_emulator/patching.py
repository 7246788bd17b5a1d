"""How a patch guards itself. Every patch is a monkeypatch applied at start-up (nothing in
site-packages is edited), and each one first checks the moto internals it relies on (`_need`): a
moto whose internals changed makes the launcher exit non-zero at start-up naming the patch
(PatchError), never serve silently wrong answers. APPLIED names the patches applied, in order
(GET /_ami_factory/health)."""

from __future__ import annotations

import inspect
from typing import Any, Callable


APPLIED: list[str] = []


class PatchError(RuntimeError):
    pass


def _need(ok: bool, patch: str, what: str) -> None:
    """Guard: a moto internal a patch relies on is not what the patch was written against."""
    if not ok:
        import moto

        raise PatchError(
            f"moto {getattr(moto, '__version__', '?')}: cannot apply patch '{patch}': {what}. "
            "The launcher was written against the internals of moto 5.1.17 to 5.2.5; update scripts/emulator/ami_emulator/."
        )


def _has_params(func: Callable[..., Any], *names: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return all(n in params for n in names)


def _uses_action_result(func: Callable[..., Any]) -> bool:
    try:
        return "ActionResult" in inspect.getsource(func)
    except (OSError, TypeError):
        return False
