"""Helpers over moto's EC2 models, shared by the EC2 patches: a region's backend, tags from
TagSpecifications (an unknown resource type fails like EC2), a snapshot that belongs to an image,
an image's block device mappings and attributes under the names moto reads, an EBS mapping from
request parameters with EC2's defaults, and EC2's time format."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

#: Told (event, snapshot id, source snapshot id) when a snapshot enters or leaves moto's dicts outside
#: EBSBackend's methods: "dropped" (an image's auto-created snapshot), "copied" (CopyImage's copy of
#: a source snapshot). The twin keeps its files in step (twin/ec2_volumes.py); empty otherwise.
SNAPSHOT_LISTENERS: list[Callable[[str, str, "str | None"], None]] = []


def _notify_snapshot(event: str, snapshot_id: str, source_id: str | None = None) -> None:
    for listener in SNAPSHOT_LISTENERS:
        listener(event, snapshot_id, source_id)


def _ec2_backend(region: str, account_id: str | None = None) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id or DEFAULT_ACCOUNT_ID][region]


def _tags_from_specs(specs: list[dict[str, Any]], allowed: set[str]) -> dict[str, dict[str, str]]:
    """{resource type: {key: value}} from TagSpecifications; an unknown type fails like EC2 does."""
    from moto.ec2.exceptions import InvalidTaggableResourceType

    out: dict[str, dict[str, str]] = {}
    for spec in specs or []:
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise InvalidTaggableResourceType(rtype)
        for tag in spec.get("Tags") or []:
            out.setdefault(rtype, {})[tag["Key"]] = tag.get("Value", "")
    return out


def _snapshot_from(backend: Any, size: int, description: str, owner_id: str, ami_id: str,
                   encrypted: bool = False, kms_key_id: str | None = None) -> Any:
    """A completed snapshot of `size` GiB that belongs to image `ami_id` (moto's own way: a
    throw-away volume, snapshot, delete the volume)."""
    zone = backend.region_name + "a"
    volume = backend.create_volume(size=size, zone_name=zone, encrypted=bool(encrypted),
                                   kms_key_id=kms_key_id if encrypted else None)
    snap = backend.create_snapshot(volume.id, description, owner_id, from_ami=ami_id)
    backend.delete_volume(volume.id)
    return snap


def _drop_auto_snapshot(ami: Any) -> None:
    """moto gives every new image a 15 GiB 'Auto-created snapshot'; drop it when the image gets
    real block device mappings."""
    snap = getattr(ami, "ebs_snapshot", None)
    if snap is not None:
        ami.ec2_backend.snapshots.pop(snap.id, None)
        _notify_snapshot("dropped", snap.id)


def _set_bdms(ami: Any, bdms: list[dict[str, Any]]) -> None:
    ami._amf_bdms = bdms
    root = next((m for m in bdms if m.get("DeviceName") == ami.root_device_name and "Ebs" in m), None)
    root = root or next((m for m in bdms if "Ebs" in m), None)
    if root is not None and root["Ebs"].get("SnapshotId"):
        snap = ami.ec2_backend.snapshots.get(root["Ebs"]["SnapshotId"])
        if snap is not None:
            ami.ebs_snapshot = snap


def _set_attr(ami: Any, **attrs: Any) -> None:
    """Set image attributes under the names moto's serializer picks (EnaSupport -> ena_support, ...)
    and the names moto's DescribeImageAttribute reads (sriov, imds, tmp [sic], uefi)."""
    aliases = {"sriov_net_support": "sriov", "imds_support": "imds", "tpm_support": "tmp", "uefi_data": "uefi"}
    for name, value in attrs.items():
        setattr(ami, name, value)
        if name in aliases:
            setattr(ami, aliases[name], value)


IMAGE_ATTRS = ("ena_support", "sriov_net_support", "boot_mode", "imds_support", "tpm_support", "uefi_data")


def _ebs_from_param(backend: Any, m: dict[str, Any], default_delete: bool = True) -> dict[str, Any]:
    ebs_in = m.get("Ebs") or {}
    snap = backend.get_snapshot(ebs_in["SnapshotId"]) if ebs_in.get("SnapshotId") else None
    ebs: dict[str, Any] = {
        "DeleteOnTermination": ebs_in.get("DeleteOnTermination", default_delete),
        "VolumeSize": ebs_in.get("VolumeSize") or (snap.volume.size if snap is not None else None),
        "VolumeType": ebs_in.get("VolumeType") or "gp2",
        "Encrypted": bool(ebs_in.get("Encrypted", snap.encrypted if snap is not None else False)),
    }
    if snap is not None:
        ebs["SnapshotId"] = snap.id
    for key in ("Iops", "Throughput", "KmsKeyId", "OutpostArn"):
        if ebs_in.get(key) is not None:
            ebs[key] = ebs_in[key]
    if ebs["VolumeType"] == "gp3":
        ebs.setdefault("Iops", 3000)
        ebs.setdefault("Throughput", 125)
    return {k: v for k, v in ebs.items() if v is not None}


def time_str(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
