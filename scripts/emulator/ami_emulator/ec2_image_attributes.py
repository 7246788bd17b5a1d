"""EC2 image attributes after registration: EnableImageDeprecation/DisableImageDeprecation, which
moto lacks (DeprecationTime rounded to the nearest minute, as EC2 does), and ModifyImageAttribute's
Description and ImdsSupport, which moto ignores (it applies launch permissions only)."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

from .ec2_models import _set_attr, time_str
from .patching import APPLIED, _need, _uses_action_result


def requested_image(response: Any) -> Any:
    """The image a request's ImageId names (InvalidAMIID.NotFound when there is none)."""
    from moto.ec2.exceptions import InvalidAMIIdError

    image_id = response._get_param("ImageId")
    image = response.ec2_backend.amis.get(image_id)
    if image is None:
        raise InvalidAMIIdError(image_id)
    return image


def _years_after(t: dt.datetime, years: int) -> dt.datetime:
    """The same date and time `years` later (28 February for a 29 February that year lacks)."""
    try:
        return t.replace(year=t.year + years)
    except ValueError:
        return t.replace(year=t.year + years, day=28)


def _created(image: Any) -> dt.datetime:
    """The image's creation date (moto keeps a datetime, or an ISO string for images loaded from JSON)."""
    c = image.creation_date
    if isinstance(c, str):
        c = dt.datetime.fromisoformat(c.replace("Z", "+00:00"))
    return c if c.tzinfo else c.replace(tzinfo=dt.timezone.utc)


def patch_image_deprecation() -> None:
    """moto has no EnableImageDeprecation/DisableImageDeprecation (HTTP 500 'not implemented'):
    keep DeprecationTime on the image (rounded to the nearest minute, as EC2 does) and remove it."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses.amis import AmisResponse

    name = "image-deprecation"
    _need(not hasattr(AmisResponse, "enable_image_deprecation"), name,
          "moto now implements EnableImageDeprecation: check it and drop this patch")

    _image = requested_image

    def enable_image_deprecation(self: Any) -> ActionResult:
        at = self._get_param("DeprecateAt")
        self.error_on_dryrun()
        image = _image(self)
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.timezone.utc)
        at = (at + dt.timedelta(seconds=30)).replace(second=0, microsecond=0)
        # "You can't specify a date in the past. The upper limit for DeprecateAt is 10 years from now,
        # except for public AMIs, where the upper limit is 2 years from the creation date"
        # (EnableImageDeprecation, DeprecateAt, EC2 API reference; no error code is documented for it).
        now = dt.datetime.now(dt.timezone.utc)
        public = {"Group": "all"} in image.launch_permissions
        limit = _years_after(_created(image), 2) if public else _years_after(now, 10)
        if at < now.replace(second=0, microsecond=0) or at > limit:
            from moto.ec2.exceptions import EC2ClientError

            bound = "2 years from its creation date (a public image)" if public else "10 years from now"
            raise EC2ClientError("InvalidParameterValue", f"DeprecateAt {time_str(at)} must be in the future and at most {bound}: {time_str(limit)}")
        image.deprecation_time = time_str(at)
        return ActionResult({"Return": True})

    def disable_image_deprecation(self: Any) -> ActionResult:
        self.error_on_dryrun()
        _image(self).deprecation_time = None
        return ActionResult({"Return": True})

    AmisResponse.enable_image_deprecation = enable_image_deprecation  # type: ignore[attr-defined]
    AmisResponse.disable_image_deprecation = disable_image_deprecation  # type: ignore[attr-defined]
    APPLIED.append(name)


def patch_modify_image_attribute() -> None:
    """moto's ModifyImageAttribute handles launch permissions only and ignores Description (and
    ImdsSupport): apply them."""
    from moto.ec2.responses.amis import AmisResponse

    name = "modify-image-attribute"
    _need(_uses_action_result(AmisResponse.modify_image_attribute) or "EmptyResult" in inspect.getsource(AmisResponse.modify_image_attribute),
          name, "AmisResponse.modify_image_attribute changed")
    original = AmisResponse.modify_image_attribute

    def modify_image_attribute(self: Any) -> Any:
        result = original(self)  # validates the image and applies launch permissions
        image = self.ec2_backend.amis[self._get_param("ImageId")]
        attribute, value = self._get_param("Attribute"), self._get_param("Value")
        description = (self._get_param("Description") or {}).get("Value")
        if description is None and attribute == "description":
            description = value
        if description is not None:
            image.description = description
        imds = (self._get_param("ImdsSupport") or {}).get("Value")
        if imds is None and attribute == "imdsSupport":
            imds = value
        if imds is not None:
            _set_attr(image, imds_support=imds)
        return result

    AmisResponse.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]
    APPLIED.append(name)
