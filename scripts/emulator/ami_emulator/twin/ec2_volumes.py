"""moto's EBS backend, kept in step with the twin's store: every volume moto makes (CreateVolume,
RunInstances' root and mapped volumes, the throw-away volumes images are made with) gets a file, every
snapshot a frozen layer, and the files go when nothing uses them.

EC2 rules the twin adds here (moto has no bytes, so it does not check them):
- CreateVolume from a snapshot with a Size smaller than the snapshot's fails with
  InvalidParameterValue (CreateVolume, EC2 API reference, Size: "you can specify a volume size that is
  equal to or larger than the snapshot size":
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html).
- A volume made from a snapshot outlives the snapshot's deletion with its bytes ("After you create a
  volume from a snapshot, the volume is independent of the snapshot", Amazon EBS User Guide,
  "Delete an Amazon EBS snapshot": https://docs.aws.amazon.com/ebs/latest/userguide/ebs-deleting-snapshot.html).
- CreateSnapshot captures the data written at that moment; later writes to the volume do not change
  it ("Snapshots are incremental backups ... point-in-time", Amazon EBS User Guide, "Amazon EBS
  snapshots": https://docs.aws.amazon.com/ebs/latest/userguide/ebs-snapshots.html)."""

from __future__ import annotations

from typing import Any

from ..ec2_models import SNAPSHOT_LISTENERS
from ..patching import APPLIED, _has_params, _need
from .store import store

GIB = 1 << 30


def _store() -> Any:
    s = store()
    if s is None:  # the patches are applied only in twin mode, after the store opened
        raise RuntimeError("the twin's store is not open")
    return s


def patch_volume_files() -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_block_store import EBSBackend

    name = "twin-volume-files"
    for method, params in (("create_volume", ("size", "zone_name", "snapshot_id")), ("delete_volume", ("volume_id",)),
                           ("create_snapshot", ("volume_id", "description")), ("delete_snapshot", ("snapshot_id",)),
                           ("copy_snapshot", ("source_snapshot_id", "source_region"))):
        _need(_has_params(getattr(EBSBackend, method, None), *params), name, f"EBSBackend.{method} signature changed")
    create_volume, delete_volume = EBSBackend.create_volume, EBSBackend.delete_volume
    create_snapshot, delete_snapshot = EBSBackend.create_snapshot, EBSBackend.delete_snapshot
    copy_snapshot = EBSBackend.copy_snapshot

    def twin_create_volume(self: Any, size: int, zone_name: str, snapshot_id: str | None = None, *a: Any, **kw: Any) -> Any:
        if snapshot_id and size is not None:
            snap = self.get_snapshot(snapshot_id)
            if int(size) < int(snap.volume.size):
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Volume of {size}GiB is smaller than snapshot '{snapshot_id}', expect size >= {snap.volume.size}GiB")
        volume = create_volume(self, size, zone_name, snapshot_id, *a, **kw)
        s = _store()
        from_snapshot = snapshot_id if snapshot_id and s.has_snapshot(snapshot_id) else None
        try:
            s.add_volume(volume.id, int(volume.size) * GIB, from_snapshot)
        except BaseException:
            self.volumes.pop(volume.id, None)
            raise
        return volume

    def twin_delete_volume(self: Any, volume_id: str) -> Any:
        volume = delete_volume(self, volume_id)
        _store().delete_volume(volume_id)
        return volume

    def twin_create_snapshot(self: Any, volume_id: str, description: str, *a: Any, **kw: Any) -> Any:
        snapshot = create_snapshot(self, volume_id, description, *a, **kw)
        try:
            _store().create_snapshot(snapshot.id, volume_id)
        except BaseException:
            self.snapshots.pop(snapshot.id, None)
            raise
        return snapshot

    def twin_delete_snapshot(self: Any, snapshot_id: str) -> Any:
        snapshot = delete_snapshot(self, snapshot_id)  # InvalidSnapshot.InUse first, as in EC2
        _store().delete_snapshot(snapshot_id)
        return snapshot

    def twin_copy_snapshot(self: Any, source_snapshot_id: str, source_region: str, *a: Any, **kw: Any) -> Any:
        snapshot = copy_snapshot(self, source_snapshot_id, source_region, *a, **kw)
        s = _store()
        if s.has_snapshot(source_snapshot_id):
            s.copy_snapshot(snapshot.id, source_snapshot_id)
        return snapshot

    EBSBackend.create_volume = twin_create_volume  # type: ignore[method-assign]
    EBSBackend.delete_volume = twin_delete_volume  # type: ignore[method-assign]
    EBSBackend.create_snapshot = twin_create_snapshot  # type: ignore[method-assign]
    EBSBackend.delete_snapshot = twin_delete_snapshot  # type: ignore[method-assign]
    EBSBackend.copy_snapshot = twin_copy_snapshot  # type: ignore[method-assign]

    def on_snapshot(event: str, snapshot_id: str, source_id: str | None) -> None:
        s = _store()
        if event == "dropped":
            s.delete_snapshot(snapshot_id)
        elif event == "copied" and source_id and s.has_snapshot(source_id):
            s.copy_snapshot(snapshot_id, source_id)

    SNAPSHOT_LISTENERS.append(on_snapshot)
    APPLIED.append(name)


def patch_reset(*also: Any) -> None:
    """moto's reset (POST /moto-api/reset) forgets every volume and snapshot: so does the store (and
    `also`, callables that forget the twin's other state)."""
    from moto.moto_api._internal.models import MotoAPIBackend

    name = "twin-reset"
    _need(callable(getattr(MotoAPIBackend, "reset", None)), name, "MotoAPIBackend.reset missing")
    original = MotoAPIBackend.reset

    def reset(self: Any) -> None:
        original(self)
        _store().reset()
        for forget in also:
            forget()

    MotoAPIBackend.reset = reset  # type: ignore[method-assign]
    APPLIED.append(name)
