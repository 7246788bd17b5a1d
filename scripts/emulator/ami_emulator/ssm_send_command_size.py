"""SSM SendCommand size: an SSM document holds at most 64 KB (MaxDocumentSizeExceeded, SSM API
reference) and a command's parameters are rendered into one; moto takes any size. Applied before
ssm_instances' SendCommand patch, which checks the signature this one keeps."""

from __future__ import annotations

import functools
import json
from typing import Any

from .patching import APPLIED, _has_params, _need
from .ssm_commands import _ssm_error


# ---- issue 9: SendCommand size (one self-contained block) ---------------------------------------
# AWS caps what a command carries: its parameters are rendered into the command document, and an SSM
# document holds at most 64 KB (MaxDocumentSizeExceeded, SSM API reference). moto takes any size, so a
# guest script that grew past it would pass every test here and fail on AWS.
SEND_COMMAND_PARAMETERS_MAX_BYTES = 64 * 1024


def patch_ssm_send_command_size() -> None:
    """SendCommand whose Parameters (as JSON) exceed 64 KB fails with InvalidParameters."""
    from moto.ssm.models import SimpleSystemManagerBackend

    name = "ssm-send-command-size"
    _need(_has_params(SimpleSystemManagerBackend.send_command, "parameters"), name,
          "SimpleSystemManagerBackend.send_command signature changed")
    original = SimpleSystemManagerBackend.send_command

    @functools.wraps(original)  # keeps the signature other patches check
    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        size = len(json.dumps(kwargs.get("parameters") or {}, separators=(",", ":")).encode("utf-8"))
        if size > SEND_COMMAND_PARAMETERS_MAX_BYTES:
            raise _ssm_error("InvalidParameters", f"the command's parameters are {size} bytes; at most "
                             f"{SEND_COMMAND_PARAMETERS_MAX_BYTES} are allowed")
        return original(self, *args, **kwargs)

    SimpleSystemManagerBackend.send_command = send_command  # type: ignore[method-assign]
    APPLIED.append(name)
# ---- end issue 9 block ----------------------------------------------------------------------------
