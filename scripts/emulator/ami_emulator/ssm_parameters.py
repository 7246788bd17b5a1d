"""SSM parameter tiers: a parameter's value holds at most 4 KB in the Standard tier and 8 KB in the
Advanced tier (Systems Manager User Guide, "Managing parameter tiers",
https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html);
PutParameter with a larger value fails with ValidationException ("Standard tier parameters support a
maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the
parameter to use the advanced-parameter tier."). Intelligent-Tiering picks Advanced when the value
needs it ("Specifying a default parameter tier", same guide). moto stores any size. SecureString,
WithDecryption and tags are moto's own."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .patching import APPLIED, _has_params, _need


TIER_VALUE_MAX = {"Standard": 4096, "Advanced": 8192}


def _validation(message: str) -> Exception:
    from moto.ssm.exceptions import ValidationException

    return ValidationException(message)


def patch_ssm_parameter_tiers() -> None:
    """PutParameter holds each tier to its value size; Intelligent-Tiering stores what fits."""
    from moto.ssm.models import SimpleSystemManagerBackend

    name = "ssm-parameter-tiers"
    _need(_has_params(SimpleSystemManagerBackend.put_parameter, "value", "tier"), name,
          "SimpleSystemManagerBackend.put_parameter signature changed")
    original = SimpleSystemManagerBackend.put_parameter

    signature = inspect.signature(original)

    @functools.wraps(original)
    def put_parameter(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        value, tier, name_ = bound.arguments.get("value"), bound.arguments.get("tier"), bound.arguments.get("name")
        previous = self._parameters[name_] if name_ in self._parameters else None
        effective = tier or (previous[-1].tier if previous else None) or self.default_parameter_tier
        size = len((value or "").encode("utf-8"))
        if effective == "Intelligent-Tiering":
            effective = "Standard" if size <= TIER_VALUE_MAX["Standard"] else "Advanced"
            bound.arguments["tier"] = effective
        if effective == "Standard" and size > TIER_VALUE_MAX["Standard"]:
            raise _validation("Standard tier parameters support a maximum parameter value of 4096 characters. "
                              "To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. "
                              "For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
        if effective == "Advanced" and size > TIER_VALUE_MAX["Advanced"]:
            raise _validation("1 validation error detected: Value at 'value' failed to satisfy constraint: "
                              f"Member must have length less than or equal to {TIER_VALUE_MAX['Advanced']}")
        return original(*bound.args, **bound.kwargs)

    SimpleSystemManagerBackend.put_parameter = put_parameter  # type: ignore[method-assign]
    APPLIED.append(name)
