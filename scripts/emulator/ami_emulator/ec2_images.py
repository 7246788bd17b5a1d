"""EC2 images, how they are made: RegisterImage, CopyImage and CreateImage keep what EC2 keeps
(attributes with EC2's defaults from the RegisterImage API reference, block device mappings with
snapshots of their own, tags from TagSpecifications; EbsBlockDevice, EC2 API reference: no
Encrypted beside a SnapshotId), where moto keeps a name, a description and one 15 GiB snapshot; and
an image name is unique per account and region (InvalidAMIName.Duplicate), as in EC2."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, Callable

from .ec2_models import (
    IMAGE_ATTRS,
    _drop_auto_snapshot,
    _ebs_from_param,
    _ec2_backend,
    _notify_snapshot,
    _set_attr,
    _set_bdms,
    _snapshot_from,
    _tags_from_specs,
    time_str,
)
from .patching import APPLIED, _has_params, _need, _uses_action_result


def patch_register_image() -> None:
    """moto's RegisterImage keeps only Name and Description: keep Architecture, VirtualizationType,
    RootDeviceName, BlockDeviceMappings (the given snapshots, which must exist), EnaSupport,
    SriovNetSupport, BootMode, ImdsSupport, TpmSupport, UefiData, ImageLocation, KernelId,
    RamdiskId, and apply TagSpecifications (image) — with EC2's defaults for what is not given."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    name = "register-image"
    _need(_uses_action_result(AmisResponse.register_image), name, "AmisResponse.register_image does not use ActionResult")
    _need(_has_params(AmiBackend.register_image, "name", "description"), name, "AmiBackend.register_image signature changed")

    def register_image(self: Any) -> ActionResult:
        p = self._get_param
        bdms_in = p("BlockDeviceMappings") or []
        tags = _tags_from_specs(p("TagSpecifications") or [], {"image"})
        self.error_on_dryrun()
        backend = self.ec2_backend
        bdms = []
        for m in bdms_in:  # validates the snapshots first, like EC2
            ebs_in = m.get("Ebs") or {}
            # "You can't specify both a snapshot ID and an encryption value": a volume from a
            # snapshot has the snapshot's encryption (EbsBlockDevice, EC2 API reference).
            if ebs_in.get("SnapshotId") and ebs_in.get("Encrypted") is not None:
                from moto.ec2.exceptions import EC2ClientError

                raise EC2ClientError(
                    "InvalidParameterCombination",
                    f"The parameter Encrypted cannot be used with SnapshotId ({m.get('DeviceName')}): "
                    "a volume from a snapshot has the snapshot's encryption.",
                )
            out: dict[str, Any] = {"DeviceName": m.get("DeviceName")}
            if m.get("Ebs") is not None:
                out["Ebs"] = _ebs_from_param(backend, m)
            if m.get("VirtualName") is not None:
                out["VirtualName"] = m["VirtualName"]
            if m.get("NoDevice") is not None:
                out["NoDevice"] = m["NoDevice"]
            bdms.append(out)
        image = backend.register_image(p("Name"), p("Description", ""))
        root_name = p("RootDeviceName") or (bdms[0]["DeviceName"] if bdms else image.root_device_name)
        image.root_device_name = root_name
        root = next((m for m in bdms if m["DeviceName"] == root_name), None)
        if root is not None and "Ebs" in root:
            image.root_device_type = "ebs"
        elif p("ImageLocation"):
            image.root_device_type = "instance-store"
        # EC2 defaults (RegisterImage API reference): architecture i386, virtualization paravirtual.
        image.architecture = p("Architecture") or "i386"
        image.virtualization_type = p("VirtualizationType") or "paravirtual"
        image.image_location = p("ImageLocation") or image.image_location
        image.kernel_id = p("KernelId") or image.kernel_id
        image.ramdisk_id = p("RamdiskId")
        _set_attr(
            image,
            ena_support=p("EnaSupport"),
            sriov_net_support=p("SriovNetSupport"),
            boot_mode=p("BootMode"),
            imds_support=p("ImdsSupport"),
            tpm_support=p("TpmSupport"),
            uefi_data=p("UefiData"),
        )
        if bdms:
            _drop_auto_snapshot(image)
            _set_bdms(image, bdms)
        for key, value in tags.get("image", {}).items():
            image.add_tag(key, value)
        return ActionResult({"ImageId": image.id})

    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_copy_image() -> None:
    """moto's CopyImage ignores TagSpecifications and CopyImageTags, copies only virtualization,
    architecture, kernel and platform, and gives the copy one 15 GiB snapshot whatever the source
    had. Here: the copy keeps the source's root device, block device mappings (one new snapshot in the
    target region per source EBS snapshot, same size/type), ENA/SR-IOV/boot mode/IMDS/TPM
    attributes, reports SourceImageId/SourceImageRegion, gets `image` tags on the image and `snapshot`
    tags on its new snapshots, and the source's user tags with CopyImageTags."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    name = "copy-image"
    _need(_uses_action_result(AmisResponse.copy_image), name, "AmisResponse.copy_image does not use ActionResult")
    _need(_has_params(AmiBackend.copy_image, "source_image_id", "source_region", "name", "description"), name,
          "AmiBackend.copy_image signature changed")

    def copy_image(self: Any) -> ActionResult:
        p = self._get_param
        source_image_id = p("SourceImageId")
        source_region = p("SourceRegion")
        tags = _tags_from_specs(p("TagSpecifications") or [], {"image", "snapshot"})
        encrypted = bool(p("Encrypted"))
        kms_key_id = p("KmsKeyId")
        self.error_on_dryrun()
        backend = self.ec2_backend
        image = backend.copy_image(source_image_id, source_region, p("Name"), p("Description"))
        source = _ec2_backend(source_region, backend.account_id).describe_images(ami_ids=[source_image_id])[0]

        image.root_device_name = source.root_device_name
        image.root_device_type = source.root_device_type
        image.source_image_id = source.id
        image.source_image_region = source_region
        _set_attr(image, **{a: getattr(source, a, None) for a in IMAGE_ATTRS})

        _drop_auto_snapshot(image)
        created = time_str(dt.datetime.now(dt.timezone.utc))
        bdms = []
        new_snapshots = []
        for m in source.block_device_mappings:
            m = copy.deepcopy(m)
            ebs = m.get("Ebs")
            if ebs and ebs.get("SnapshotId"):
                src_snap = _ec2_backend(source_region, backend.account_id).snapshots.get(ebs["SnapshotId"])
                enc = encrypted or bool(ebs.get("Encrypted")) or bool(src_snap is not None and src_snap.encrypted)
                snap = _snapshot_from(
                    backend, int(ebs.get("VolumeSize") or 8),
                    f"Copied for DestinationAmi {image.id} from SourceAmi {source.id} for SourceSnapshot "
                    f"{ebs['SnapshotId']}. Task created on {created}.",
                    image.owner_id, image.id, encrypted=enc,
                    kms_key_id=kms_key_id or (src_snap.kms_key_id if src_snap is not None else None),
                )
                _notify_snapshot("copied", snap.id, ebs["SnapshotId"])  # the copy has the source's bytes
                ebs["SnapshotId"] = snap.id
                ebs["Encrypted"] = enc
                if enc and (kms_key_id or snap.kms_key_id):
                    ebs["KmsKeyId"] = kms_key_id or snap.kms_key_id
                new_snapshots.append(snap)
            bdms.append(m)
        _set_bdms(image, bdms)

        if p("CopyImageTags"):
            for tag in source.get_tags():
                if not tag["key"].startswith("aws:"):
                    image.add_tag(tag["key"], tag["value"])
        for key, value in tags.get("image", {}).items():
            image.add_tag(key, value)
        for snap in new_snapshots:
            for key, value in tags.get("snapshot", {}).items():
                snap.add_tag(key, value)
        return ActionResult({"ImageId": image.id})

    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_unique_image_names() -> None:
    """EC2 refuses a second image of the same name in an account and region (RegisterImage,
    CopyImage, CreateImage: InvalidAMIName.Duplicate); moto registers both. Matters for a retried
    RegisterImage whose first answer was lost: EC2 says Duplicate, moto made a second image. Applied
    before patch_client_tokens, so a CopyImage retried with its ClientToken gets its image back first."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.amis import AmisResponse

    name = "unique-image-names"
    for action in ("register_image", "copy_image", "create_image"):
        _need(callable(getattr(AmisResponse, action, None)), name, f"AmisResponse.{action} missing")

    def unique(original: Callable[..., Any]) -> Callable[..., Any]:
        def handler(self: Any) -> Any:
            wanted = self._get_param("Name")
            backend = self.ec2_backend
            for ami in list(backend.amis.values()):
                if wanted and ami.name == wanted and ami.owner_id == backend.account_id and getattr(ami, "state", "") != "deregistered":
                    raise EC2ClientError("InvalidAMIName.Duplicate", f"AMI name {wanted} is already in use by AMI {ami.id}")
            return original(self)
        return handler

    AmisResponse.register_image = unique(AmisResponse.register_image)  # type: ignore[method-assign]
    AmisResponse.copy_image = unique(AmisResponse.copy_image)  # type: ignore[method-assign]
    AmisResponse.create_image = unique(AmisResponse.create_image)  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_create_image() -> None:
    """moto's CreateImage fails (HTTP 500, NotImplementedError) on `snapshot` TagSpecifications and
    gives the image one 15 GiB snapshot and root /dev/sda1 whatever the instance has. Here: one
    snapshot per EBS volume of the instance (honouring BlockDeviceMappings NoDevice and size/type
    overrides), the instance's root device name and type, the source image's ENA/boot mode
    attributes, and `snapshot` tags on those snapshots."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    name = "create-image"
    _need(_uses_action_result(AmisResponse.create_image), name, "AmisResponse.create_image does not use ActionResult")
    _need(_has_params(AmiBackend.create_image, "instance_id", "name", "description", "tag_specifications"), name,
          "AmiBackend.create_image signature changed")

    def create_image(self: Any) -> ActionResult:
        p = self._get_param
        instance_id = p("InstanceId")
        specs = p("TagSpecifications") or []
        tags = _tags_from_specs(specs, {"image", "snapshot"})
        overrides = {m.get("DeviceName"): m for m in (p("BlockDeviceMappings") or [])}
        self.error_on_dryrun()
        backend = self.ec2_backend
        image_specs = [s for s in specs if s.get("ResourceType") == "image"]
        image = backend.create_image(instance_id, p("Name"), p("Description", ""), tag_specifications=image_specs)
        instance = backend.get_instance(instance_id)

        image.root_device_name = instance.root_device_name
        image.root_device_type = instance.root_device_type
        source = backend.amis.get(instance.image_id)
        if source is not None:
            _set_attr(image, **{a: getattr(source, a, None) for a in ("ena_support", "boot_mode", "tpm_support", "uefi_data")})
        _set_attr(image, sriov_net_support=getattr(instance, "sriov_net_support", None))

        _drop_auto_snapshot(image)
        bdms = []
        snapshots = []
        for device, bdt in sorted(instance.block_device_mapping.items()):
            override = overrides.pop(device, {})
            if override.get("NoDevice") is not None:
                continue
            volume = backend.get_volume(bdt.volume_id)
            snap = backend.create_snapshot(
                volume.id, f"Created by CreateImage({instance_id}) for {image.id} from {volume.id}",
                image.owner_id, from_ami=image.id,
            )
            o_ebs = override.get("Ebs") or {}
            ebs = {
                "DeleteOnTermination": o_ebs.get("DeleteOnTermination", bool(bdt.delete_on_termination)),
                "SnapshotId": snap.id,
                "VolumeSize": o_ebs.get("VolumeSize") or volume.size,
                "VolumeType": o_ebs.get("VolumeType") or volume.volume_type or "gp2",
                "Encrypted": bool(volume.encrypted),
            }
            if ebs["VolumeType"] in ("gp3", "io1", "io2"):
                iops = o_ebs.get("Iops") or getattr(volume, "iops", None)
                if iops:
                    ebs["Iops"] = iops
            bdms.append({"DeviceName": device, "Ebs": ebs})
            snapshots.append(snap)
        for device, m in overrides.items():  # extra mappings named only in the request
            if m.get("NoDevice") is not None:
                continue
            out: dict[str, Any] = {"DeviceName": device}
            if m.get("Ebs") is not None:
                out["Ebs"] = _ebs_from_param(backend, m)
            if m.get("VirtualName") is not None:
                out["VirtualName"] = m["VirtualName"]
            bdms.append(out)
        _set_bdms(image, bdms)
        for snap in snapshots:
            for key, value in tags.get("snapshot", {}).items():
                snap.add_tag(key, value)
        return ActionResult({"ImageId": image.id})

    AmisResponse.create_image = create_image  # type: ignore[method-assign]
    APPLIED.append(name)
