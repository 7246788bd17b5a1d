"""What ami-factory's retirement relies on and moto lacks (HTTP 500 'not implemented'):
- deregistration protection: Enable/DisableImageDeregistrationProtection, the image's
  DeregistrationProtection in DescribeImages, and DeregisterImage refused while it is on;
- LastLaunchedTime, set when an instance is launched from the image;
- DescribeImageReferences over instances, launch template versions and SSM parameters.

AWS docs:
- "Protect an Amazon EC2 AMI from deregistration" (EC2 User Guide,
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deregistration-protection.html) and the API
  reference of EnableImageDeregistrationProtection: "When deregistration protection is enabled, the
  AMI can't be deregistered"; WithCooldown "enforces deregistration protection for 24 hours after
  deregistration protection is disabled". DescribeImages' DeregistrationProtection reads
  "enabled-without-cooldown", "enabled-with-cooldown" or "disabled". The API reference names no
  error code for the refused DeregisterImage: modelled as OperationNotPermitted (ami-factory never
  matches it: it always lifts protection before it deregisters).
- Image.LastLaunchedTime (API reference, Image): "when the AMI was last used to launch an EC2
  instance. When the AMI is used to launch an instance, there is a 24-hour delay before that usage
  is reported": here a launch shows after AMI_EMULATOR_LAUNCH_REPORT_DELAY seconds (default
  86400, the 24 hours; a test shortens it in the emulator's environment).
- DescribeImageReferences and "How AMI reference checks work"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-ami-references.html): resource types
  ec2:Instance (option state-name, default all states), ec2:LaunchTemplate (option version-depth,
  default 10 newest versions), ssm:Parameter (parameters whose value is the image id; the API
  reference of ResourceTypeOption: version-depth 1 to 10000). Image Builder recipes are not
  modelled (nothing here makes them). The API reference of DescribeImageReferences: ImageId.N
  "Required", "Array Members: Minimum number of 1 item. Maximum number of 10 items" (refused with
  InvalidParameterValue here; the reference names no code); MaxResults 5 to 1000, and NextToken for
  the next page.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from .ec2_image_attributes import requested_image
from .ec2_models import time_str
from .patching import APPLIED, _need

COOLDOWN = dt.timedelta(hours=24)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def launch_report_delay() -> dt.timedelta:
    """How late a launch shows in LastLaunchedTime (AWS: up to 24 hours)."""
    return dt.timedelta(seconds=float(os.environ.get("AMI_EMULATOR_LAUNCH_REPORT_DELAY", "86400")))


def reported_launch(image: Any, now: dt.datetime | None = None) -> str | None:
    """LastLaunchedTime as DescribeImages reports it: the last launch once the reporting delay passed."""
    launches: list[dt.datetime] = getattr(image, "_amf_launches", [])
    shown = [t for t in launches if t + launch_report_delay() <= (now or _now())]
    return time_str(max(shown)) if shown else None


MAX_IMAGE_IDS = 10


def page(items: list[Any], max_results: Any, token: Any) -> tuple[list[Any], str | None]:
    """One page of `items` from `token` (an offset), MaxResults at a time (all without it)."""
    start = int(token) if token else 0
    if max_results is None:
        return items[start:], None
    end = start + int(max_results)
    return items[start:end], (str(end) if end < len(items) else None)


def protection_state(image: Any) -> str:
    """What DescribeImages says: enabled-with(out)-cooldown, or disabled (also while a cooldown runs)."""
    return getattr(image, "_amf_protection", None) or "disabled"


def refuses_deregistration(image: Any, now: dt.datetime | None = None) -> bool:
    """Protected, or disabled less than 24 h ago after protection with cooldown."""
    if protection_state(image) != "disabled":
        return True
    until = getattr(image, "_amf_protection_until", None)
    return until is not None and (now or _now()) < until


def image_references(ec2_backend: Any, ssm_backend: Any, image_ids: list[str], types: dict[str, dict[str, list[str]]]) -> list[dict[str, str]]:
    """The references of `image_ids` among the asked resource types (type -> options)."""
    account, region = ec2_backend.account_id, ec2_backend.region_name
    wanted = set(image_ids)
    refs: list[dict[str, str]] = []
    if "ec2:Instance" in types:
        states = set(types["ec2:Instance"].get("state-name") or [])
        for reservation in ec2_backend.reservations.values():
            for instance in reservation.instances:
                if instance.image_id in wanted and (not states or instance._state.name in states):
                    refs.append({"ImageId": instance.image_id, "ResourceType": "ec2:Instance",
                                 "Arn": f"arn:aws:ec2:{region}:{account}:instance/{instance.id}"})
    if "ec2:LaunchTemplate" in types:
        depth = int((types["ec2:LaunchTemplate"].get("version-depth") or ["10"])[0])
        if not 1 <= depth <= 10000:
            from moto.ec2.exceptions import EC2ClientError
            raise EC2ClientError("InvalidParameterValue", f"version-depth must be from 1 to 10000, got {depth}")
        for template in ec2_backend.launch_templates.values():
            for version in template.versions[-depth:]:
                if version.image_id in wanted:
                    refs.append({"ImageId": version.image_id, "ResourceType": "ec2:LaunchTemplate",
                                 "Arn": f"arn:aws:ec2:{region}:{account}:launch-template/{template.id}"})
                    break
    if "ssm:Parameter" in types and ssm_backend is not None:
        for name, versions in list(ssm_backend._parameters.items()):
            if versions and versions[-1].value in wanted:
                refs.append({"ImageId": versions[-1].value, "ResourceType": "ssm:Parameter",
                             "Arn": f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"})
    return refs


def patch_image_lifecycle() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError
    from moto.ec2.models.amis import Ami, AmiBackend
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.amis import AmisResponse

    name = "image-lifecycle"
    _need(not hasattr(AmisResponse, "enable_image_deregistration_protection"), name,
          "moto now implements EnableImageDeregistrationProtection: check it and drop this patch")
    _need(not hasattr(AmisResponse, "describe_image_references"), name,
          "moto now implements DescribeImageReferences: check it and drop this patch")
    _need(hasattr(AmiBackend, "deregister_image") and hasattr(InstanceBackend, "run_instances"), name,
          "AmiBackend.deregister_image or InstanceBackend.run_instances is gone")

    # Serialized by DescribeImages from the model's attributes.
    Ami.deregistration_protection = property(lambda self: protection_state(self))  # type: ignore[attr-defined]
    _need(not hasattr(Ami, "last_launched_time"), name, "moto now models LastLaunchedTime: check it and drop this patch")
    Ami.last_launched_time = property(lambda self: reported_launch(self))  # type: ignore[attr-defined]

    _image = requested_image

    def enable_image_deregistration_protection(self: Any) -> ActionResult:
        with_cooldown = str(self._get_param("WithCooldown")).lower() == "true"
        self.error_on_dryrun()
        image = _image(self)
        image._amf_protection = "enabled-with-cooldown" if with_cooldown else "enabled-without-cooldown"
        image._amf_protection_until = None
        return ActionResult({"Return": image._amf_protection})

    def disable_image_deregistration_protection(self: Any) -> ActionResult:
        self.error_on_dryrun()
        image = _image(self)
        if protection_state(image) == "enabled-with-cooldown":
            image._amf_protection_until = _now() + COOLDOWN
        image._amf_protection = None
        return ActionResult({"Return": "disabled"})

    original_deregister = AmiBackend.deregister_image

    def deregister_image(self: Any, ami_id: str) -> None:
        image = self.amis.get(ami_id)
        if image is not None and refuses_deregistration(image):
            raise EC2ClientError("OperationNotPermitted", f"The image {ami_id} has deregistration protection enabled: disable it (DisableImageDeregistrationProtection) first")
        original_deregister(self, ami_id)

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, *args: Any, **kwargs: Any) -> Any:
        result = original_run(self, image_id, *args, **kwargs)
        image = self.amis.get(image_id) if hasattr(self, "amis") else None
        if image is not None:
            image._amf_launches = [*getattr(image, "_amf_launches", []), _now()]
        return result

    def describe_image_references(self: Any) -> ActionResult:
        from moto.ssm.models import ssm_backends

        self.error_on_dryrun()
        image_ids = self._get_param("ImageIds") or []
        if not 1 <= len(image_ids) <= MAX_IMAGE_IDS:
            raise EC2ClientError("InvalidParameterValue", f"ImageId takes 1 to {MAX_IMAGE_IDS} image ids, got {len(image_ids)}")
        max_results = self._get_param("MaxResults")
        if max_results is not None and not 5 <= int(max_results) <= 1000:
            raise EC2ClientError("InvalidParameterValue", f"MaxResults must be from 5 to 1000, got {max_results}")
        all_types = str(self._get_param("IncludeAllResourceTypes")).lower() == "true"
        types: dict[str, dict[str, list[str]]] = {}
        for request in self._get_param("ResourceTypes") or []:
            options = {o.get("OptionName"): o.get("OptionValues") or [] for o in request.get("ResourceTypeOptions") or []}
            types[request.get("ResourceType")] = options
        if all_types:
            for t in ("ec2:Instance", "ec2:LaunchTemplate", "ssm:Parameter"):
                types.setdefault(t, {})
        if not types:
            raise EC2ClientError("InvalidParameterCombination", "Either IncludeAllResourceTypes or ResourceTypes must be specified")
        for image_id in image_ids:
            if image_id not in self.ec2_backend.amis:
                raise InvalidAMIIdError(image_id)
        ssm = ssm_backends[self.ec2_backend.account_id][self.ec2_backend.region_name]
        refs, token = page(image_references(self.ec2_backend, ssm, image_ids, types), max_results, self._get_param("NextToken"))
        return ActionResult({"ImageReferences": refs, **({"NextToken": token} if token else {})})

    AmisResponse.enable_image_deregistration_protection = enable_image_deregistration_protection  # type: ignore[attr-defined]
    AmisResponse.disable_image_deregistration_protection = disable_image_deregistration_protection  # type: ignore[attr-defined]
    AmisResponse.describe_image_references = describe_image_references  # type: ignore[attr-defined]
    AmiBackend.deregister_image = deregister_image  # type: ignore[method-assign]
    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
    APPLIED.append(name)
