"""Parameter Store's aws:ec2:image data type, which moto stores without the check: "When you create a
String parameter and specify aws:ec2:image, Systems Manager validates the parameter value is in the
required format, such as ami-12345abcdeEXAMPLE, and that the specified AMI is available in your
account. [...] The aws:ec2:image value is validated asynchronously, and the PutParameter call
returns before the validation is complete. If you submit an invalid AMI value, the PutParameter
operation will return success, but the asynchronous validation will fail and the parameter will not
be created or updated" (PutParameter, DataType, Systems Manager API reference; "Using native
parameter support in Parameter Store for Amazon Machine Image IDs", Systems Manager User Guide).
Here the validation is done at once: PutParameter answers as it would, and an invalid value is then
dropped (the earlier version, if any, stays current)."""

from __future__ import annotations

import functools

import re
from typing import Any

from .patching import APPLIED, _has_params, _need

AMI_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")


def image_available(account_id: str, region: str, image_id: str) -> bool:
    from moto.ec2.models import ec2_backends

    if not AMI_ID.match(image_id):
        return False
    image = ec2_backends[account_id][region].amis.get(image_id)
    return image is not None and getattr(image, "state", "available") == "available"


def patch_ssm_image_parameters() -> None:
    from moto.ssm.models import SimpleSystemManagerBackend

    name = "ssm-image-parameters"
    _need(_has_params(SimpleSystemManagerBackend.put_parameter, "name", "value", "data_type"), name,
          "SimpleSystemManagerBackend.put_parameter signature changed")
    original = SimpleSystemManagerBackend.put_parameter

    @functools.wraps(original)  # later patches (ssm_parameters) read moto's signature through it
    def put_parameter(self: Any, name: str, description: str, value: str, *args: Any, **kwargs: Any) -> Any:
        param = original(self, name, description, value, *args, **kwargs)
        if param.data_type == "aws:ec2:image" and not image_available(self.account_id, self.region_name, value):
            versions = self._parameters[name]
            if versions and versions[-1] is param:
                versions.pop()
            if not versions:
                del self._parameters[name]
        return param

    SimpleSystemManagerBackend.put_parameter = put_parameter  # type: ignore[method-assign]
    APPLIED.append(name)
