"""EC2 EBS volumes and snapshots: DeleteSnapshot of a snapshot a registered or copied image still
uses fails with InvalidSnapshot.InUse as in EC2 (moto deletes it), and DetachVolume works without
InstanceId (optional in EC2; moto answers HTTP 500), an unattached volume being IncorrectState."""

from __future__ import annotations

from typing import Any

from .patching import APPLIED, _has_params, _need


def patch_snapshot_in_use() -> None:
    """moto lets DeleteSnapshot remove a snapshot that a registered/copied image's block device
    mappings still use (it only knows the image's own auto-created snapshot): InvalidSnapshot.InUse."""
    from moto.ec2.exceptions import InvalidSnapshotInUse
    from moto.ec2.models.elastic_block_store import EBSBackend

    name = "snapshot-in-use"
    _need(hasattr(EBSBackend, "delete_snapshot"), name, "EBSBackend.delete_snapshot missing")
    original = EBSBackend.delete_snapshot

    def delete_snapshot(self: Any, snapshot_id: str) -> Any:
        for ami in list(getattr(self, "amis", {}).values()):
            for m in getattr(ami, "_amf_bdms", None) or []:
                if (m.get("Ebs") or {}).get("SnapshotId") == snapshot_id:
                    raise InvalidSnapshotInUse(snapshot_id, ami.id)
        return original(self, snapshot_id)

    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_detach_volume() -> None:
    """moto's DetachVolume without InstanceId (optional in EC2) fails with HTTP 500: detach from the
    instance the volume is attached to; an unattached volume is IncorrectState, as in EC2."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_block_store import EBSBackend

    name = "detach-volume"
    _need(_has_params(EBSBackend.detach_volume, "volume_id", "instance_id", "device_path"), name,
          "EBSBackend.detach_volume signature changed")
    original = EBSBackend.detach_volume

    def detach_volume(self: Any, volume_id: str, instance_id: str | None, device_path: str | None) -> Any:
        if not instance_id:
            attachment = getattr(self.get_volume(volume_id), "attachment", None)
            if attachment is None:
                raise EC2ClientError("IncorrectState", f"Volume '{volume_id}' is in the 'available' state.")
            instance_id = attachment.instance.id
        return original(self, volume_id, instance_id, device_path)

    EBSBackend.detach_volume = detach_volume  # type: ignore[method-assign]
    APPLIED.append(name)
