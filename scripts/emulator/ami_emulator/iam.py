"""IAM: RemoveRoleFromInstanceProfile of a role that is not in the profile is NoSuchEntity (404) as
in IAM, where moto crashes (HTTP 500 with an HTML page that the SDK retries and cannot parse)."""

from __future__ import annotations

from typing import Any

from .patching import APPLIED, _has_params, _need


def patch_iam_remove_role_from_instance_profile() -> None:
    """moto's RemoveRoleFromInstanceProfile of a role that is not in the profile crashes (list.remove:
    HTTP 500 with an HTML page, which the SDK retries and cannot parse); IAM answers NoSuchEntity
    (404). Matters for a retried remove whose first answer was lost."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import IAMBackend

    name = "iam-remove-role-from-instance-profile"
    _need(_has_params(IAMBackend.remove_role_from_instance_profile, "profile_name", "role_name"), name,
          "IAMBackend.remove_role_from_instance_profile signature changed")
    original = IAMBackend.remove_role_from_instance_profile

    def remove_role_from_instance_profile(self: Any, profile_name: str, role_name: str) -> None:
        profile = self.get_instance_profile(profile_name)
        if not any(getattr(r, "name", None) == role_name for r in profile.roles):
            raise NotFoundException(f"The role {role_name} is not in the instance profile {profile_name}.")
        original(self, profile_name, role_name)

    IAMBackend.remove_role_from_instance_profile = remove_role_from_instance_profile  # type: ignore[method-assign]
    APPLIED.append(name)
