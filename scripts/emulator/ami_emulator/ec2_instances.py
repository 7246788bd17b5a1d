"""EC2 instances: RunInstances gives an instance its image's block device mappings with the
request's merged over them (EC2 User Guide, "Block device mappings"), an instance-store image makes
instance-store instances that StopInstances refuses (UnsupportedOperation), an unknown or not yet
usable instance profile is InvalidParameterValue as EC2 answers it (and
POST /_ami_factory/ec2/instance-profile-not-ready simulates a fresh profile), and a retried launch
with the same ClientToken gets the first reservation back."""

from __future__ import annotations

import threading
from typing import Any

from .patching import APPLIED, _has_params, _need, _uses_action_result


def patch_instances() -> None:
    """moto launches every instance with an 8 GiB root at /dev/sda1, whatever the image's root device
    name and mappings, uses only the request's BlockDeviceMappings when there are some (EC2 merges
    them over the image's), and makes every instance EBS-backed. Here: an instance from a known image
    gets the image's EBS mappings (device names, snapshots, sizes, types) overlaid by the request's
    (NoDevice removes one), and RootDeviceType instance-store when the image is. StopInstances on an
    instance-store instance fails with UnsupportedOperation, as in EC2."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.instances import Instance, InstanceBackend

    name = "instances"
    _need(hasattr(Instance, "setup_defaults") and hasattr(Instance, "add_block_device"), name,
          "Instance.setup_defaults/add_block_device missing")
    _need(_has_params(Instance.__init__, "ec2_backend", "image_id"), name, "Instance.__init__ signature changed")
    _need(_has_params(InstanceBackend.run_instances, "image_id", "count", "kwargs"), name,
          "InstanceBackend.run_instances signature changed")
    _need(hasattr(InstanceBackend, "stop_instances"), name, "InstanceBackend.stop_instances missing")

    original_init = Instance.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        image = self.ec2_backend.amis.get(self.image_id)
        if image is not None and image.root_device_type == "instance-store":
            self.root_device_type = "instance-store"

    Instance.__init__ = __init__  # type: ignore[method-assign]

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        image = self.amis.get(image_id)
        image_bdms = getattr(image, "_amf_bdms", None) if image is not None else None
        if image_bdms:
            merged: dict[str, dict[str, Any]] = {}
            for m in image_bdms:
                if m.get("Ebs"):
                    e = m["Ebs"]
                    merged[m["DeviceName"]] = {
                        "DeviceName": m["DeviceName"], "VirtualName": None, "NoDevice": None,
                        "Ebs": {"SnapshotId": e.get("SnapshotId"), "VolumeSize": e.get("VolumeSize"),
                                "DeleteOnTermination": e.get("DeleteOnTermination", True),
                                "VolumeType": e.get("VolumeType"), "Iops": e.get("Iops"),
                                "Encrypted": bool(e.get("Encrypted")), "KmsKeyId": e.get("KmsKeyId")},
                    }
            for m in kwargs.get("block_device_mappings") or []:
                device = m.get("DeviceName")
                if m.get("NoDevice") is not None:
                    merged.pop(device, None)
                elif device in merged:
                    given = {k: v for k, v in (m.get("Ebs") or {}).items() if v is not None}
                    # moto's parser fills Encrypted=false when not given: an image's encrypted volume stays so.
                    given["Encrypted"] = bool(merged[device]["Ebs"].get("Encrypted")) or bool(given.get("Encrypted"))
                    merged[device]["Ebs"].update(given)
                else:
                    merged[device] = m
            kwargs["block_device_mappings"] = list(merged.values())
        # A request mapping that changes an image's EBS mapping may give only what it changes
        # (DeleteOnTermination, say); one for a new device needs a size or a snapshot (EC2 refuses it).
        for m in kwargs.get("block_device_mappings") or []:
            ebs = m.get("Ebs") or {}
            if m.get("NoDevice") is None and m.get("Ebs") is not None and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
                raise EC2ClientError("MissingParameter", "The request must contain the parameter size or snapshotId")
        return original_run(self, image_id, count, *args, **kwargs)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]

    # moto checks each request mapping for a size or a snapshot before it knows the image; EC2 lets a
    # mapping of the AMI's device change only DeleteOnTermination (EC2 User Guide, "Block device
    # mappings": update the AMI's block device mapping at launch). The check moves to run_instances.
    from moto.ec2.responses.instances import InstanceResponse

    _need(hasattr(InstanceResponse, "_validate_block_device_mapping"), name,
          "InstanceResponse._validate_block_device_mapping missing")
    original_validate = InstanceResponse._validate_block_device_mapping

    def validate_block_device_mapping(device_mapping: dict[str, Any]) -> None:
        ebs = device_mapping.get("Ebs")
        if isinstance(ebs, dict) and "NoDevice" not in device_mapping and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
            return
        original_validate(device_mapping)

    InstanceResponse._validate_block_device_mapping = staticmethod(validate_block_device_mapping)  # type: ignore[method-assign]

    original_stop = InstanceBackend.stop_instances

    def stop_instances(self: Any, instance_ids: list[str]) -> Any:
        for instance in self.get_multi_instances_by_id(instance_ids):
            if instance.root_device_type != "ebs":
                raise EC2ClientError(
                    "UnsupportedOperation",
                    f"The instance '{instance.id}' does not have an 'ebs' root device type and cannot be stopped.",
                )
        return original_stop(self, instance_ids)

    InstanceBackend.stop_instances = stop_instances  # type: ignore[method-assign]
    APPLIED.append(name)


class Countdown:
    """A number of upcoming calls that should fail (a control knob)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.left = 0

    def set(self, n: Any) -> None:
        if not isinstance(n, int) or n < 0:
            raise ValueError("the count must be a non-negative integer")
        with self.lock:
            self.left = n

    def take(self) -> bool:
        with self.lock:
            if self.left > 0:
                self.left -= 1
                return True
        return False


PROFILE_NOT_READY = Countdown()


def patch_run_instances_profile_and_token() -> None:
    """RunInstances gaps: (1) an unknown IamInstanceProfile surfaces as IAM's NoSuchEntity, where EC2
    answers InvalidParameterValue "... Invalid IAM Instance Profile name"; a new profile is also not
    usable by EC2 for some seconds, which `POST /_ami_factory/ec2/instance-profile-not-ready {"runs": N}`
    simulates for the next N launches naming a profile. (2) moto ignores ClientToken: a retried
    RunInstances with the same token must return the first launch's reservation, not a second instance."""
    import moto.ec2.responses.instances as instance_responses
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError

    name = "run-instances-profile-and-token"
    _need(callable(getattr(instance_responses, "filter_iam_instance_profiles", None)), name,
          "moto.ec2.responses.instances.filter_iam_instance_profiles missing")
    _need(_has_params(instance_responses.filter_iam_instance_profiles, "iam_instance_profile_arn", "iam_instance_profile_name"),
          name, "filter_iam_instance_profiles signature changed")
    original_filter = instance_responses.filter_iam_instance_profiles

    def invalid(value: str | None) -> EC2ClientError:
        return EC2ClientError("InvalidParameterValue",
                              f"Value ({value}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")

    def filter_iam_instance_profiles(*args: Any, **kwargs: Any) -> Any:
        value = kwargs.get("iam_instance_profile_name") or kwargs.get("iam_instance_profile_arn")
        if PROFILE_NOT_READY.take():
            raise invalid(value)
        try:
            profile = original_filter(*args, **kwargs)
        except EC2ClientError:
            raise
        except Exception as e:
            if "NoSuchEntity" in (getattr(e, "code", None), getattr(e, "error_type", None)):
                raise invalid(value) from e
            raise
        if profile is None:
            raise invalid(value)
        return profile

    instance_responses.filter_iam_instance_profiles = filter_iam_instance_profiles

    response_cls = instance_responses.InstanceResponse
    _need(_uses_action_result(response_cls.run_instances), name, "InstanceResponse.run_instances changed")
    original_run = response_cls.run_instances

    def run_instances(self: Any) -> Any:
        token = self._get_param("ClientToken")
        if token:
            _need(hasattr(self.ec2_backend, "reservations"), name, "InstanceBackend.reservations missing")
            for reservation in list(self.ec2_backend.reservations.values()):
                if any(getattr(i, "client_token", None) == token for i in reservation.instances):
                    self.error_on_dryrun()
                    return ActionResult(reservation)
        return original_run(self)

    response_cls.run_instances = run_instances  # type: ignore[method-assign]
    APPLIED.append(name)
