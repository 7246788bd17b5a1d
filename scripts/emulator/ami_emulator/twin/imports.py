"""ImportSnapshot and DescribeImportSnapshotTasks (moto has neither): a disk image in the emulator's S3
becomes a snapshot whose bytes are the image's, converted in the background by qemu-img.

As AWS documents and reports it:
- DiskContainer.Format is VHD, VMDK or RAW; the image is DiskContainer.UserBucket (S3Bucket, S3Key)
  or DiskContainer.Url (s3://bucket/key) (SnapshotDiskContainer, EC2 API reference:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SnapshotDiskContainer.html).
- The task is `active` ("pending", then "downloading/converting" with a Progress percentage) and
  then `completed` with its SnapshotId, DiskImageSize the image's size in bytes and no Progress or
  StatusMessage (describe-import-snapshot-tasks examples, AWS CLI Command Reference / "Use
  DescribeImportSnapshotTasks with a CLI":
  https://docs.aws.amazon.com/ec2/latest/devguide/example_ec2_DescribeImportSnapshotTasks_section.html;
  SnapshotTaskDetail: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SnapshotTaskDetail.html).
- An image that cannot be read as its format fails the task: Status `deleted`, DiskImageSize 0.0,
  StatusMessage "ClientError: Disk validation failed [Unsupported specified file format]" (as AWS
  answered for a bad image: osbuild/osbuild-composer#706); a VHD whose footer copies differ
  (a truncated dynamic VHD) "ClientError: Footers not identical" (VM Import/Export User Guide,
  "Troubleshoot VM Import/Export": https://docs.aws.amazon.com/vm-import/latest/userguide/vmie_troubleshooting.html).
  A truncated VMDK is caught by qemu-img's open or `check` (sparse extents pointing past the end).
  A raw image has no structure to check: a shorter raw file is a smaller disk.
- ClientToken makes the call idempotent ("Token to enable idempotency for VM import requests",
  ImportSnapshot, EC2 API reference: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportSnapshot.html):
  a retry with the same token answers the first call's task and starts no second import.
- An unknown task id in DescribeImportSnapshotTasks is InvalidConversionTaskId (EC2 API reference,
  "Error codes": https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
- The snapshot's description is "Created by AWS-VMImport service for <task id>", its VolumeSize the
  image's virtual size rounded up to GiB, its VolumeId `vol-ffffffff`: a snapshot not taken from a
  volume has "an arbitrary volume ID that should not be used for any purpose" (Snapshot.VolumeId,
  EC2 API reference: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html, said
  of CopySnapshot); for VM-imported snapshots DescribeSnapshots shows vol-ffffffff (not in AWS's
  documentation; as public describe-snapshots output of imported snapshots shows it, and as tools
  reading it test for it).

Threads: the conversion (qemu-img) runs in a thread of its own, into a store snapshot under a
staging id; moto's snapshot is made on a request thread, by the first DescribeImportSnapshotTasks
that sees the conversion done (moto's dicts are not touched by the import thread: werkzeug serves
requests threaded, and moto iterates them while answering). So a task is `completed`, and its
snapshot visible, only once its bytes are in; every failure path removes what it made.
The role VM Import assumes (vmimport, RoleName) and encryption are not modelled."""

from __future__ import annotations

import copy
import os
import random
import shutil
import subprocess
import threading
from typing import Any

from ..patching import APPLIED, _need
from .store import ImageError, remove_file, store

FORMATS = {"RAW": "raw", "VMDK": "vmdk", "VHD": "vpc"}  # API name -> qemu-img's
UNSUPPORTED = "ClientError: Disk validation failed [Unsupported specified file format]"
FOOTERS = "ClientError: Footers not identical"
GIB = 1 << 30
IMPORTED_VOLUME_ID = "vol-ffffffff"


class ImportTasks:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (account, region) -> id -> task
        self.tokens: dict[tuple[str, str, str], str] = {}  # (account, region, ClientToken) -> task id
        # converted, waiting for a request thread to make moto's snapshot (finish_converted):
        # task id -> (account, region, backend, task, staging snapshot id, virtual size, image size)
        self.converted: dict[str, tuple[str, str, Any, dict[str, Any], str, int, int]] = {}

    def by_token(self, account: str, region: str, token: str | None) -> dict[str, Any] | None:
        """A copy of the task a ClientToken started, else None."""
        with self.lock:
            task_id = self.tokens.get((account, region, token or ""))
        return next((t for t in self.list(account, region) if t["ImportTaskId"] == task_id), None)

    def get_or_add(self, account: str, region: str, task: dict[str, Any], token: str | None) -> tuple[dict[str, Any], bool]:
        """Add the task unless its ClientToken already started one, in one step (two concurrent
        retries start one import): (a copy of the task the token started, False) or (task, True)."""
        with self.lock:
            known = self.tokens.get((account, region, token)) if token else None
            earlier = self.tasks.get((account, region), {}).get(known) if known else None
            if earlier is not None:
                return {**earlier, "SnapshotTaskDetail": dict(earlier["SnapshotTaskDetail"])}, False
            self.tasks.setdefault((account, region), {})[task["ImportTaskId"]] = task
            if token:
                self.tokens[(account, region, token)] = task["ImportTaskId"]
            return task, True

    def add(self, account: str, region: str, task: dict[str, Any], token: str | None) -> None:
        self.get_or_add(account, region, task, token)

    def mark_converted(self, account: str, region: str, backend: Any, task: dict[str, Any], staging: str,
                       virtual: int, size: int) -> bool:
        """Hand a converted image to the request threads; False if the task was forgotten (moto reset)."""
        with self.lock:
            if self.tasks.get((account, region), {}).get(task["ImportTaskId"]) is not task:
                return False
            self.converted[task["ImportTaskId"]] = (account, region, backend, task, staging, virtual, size)
            return True

    def take_converted(self, account: str, region: str) -> list[tuple[str, str, Any, dict[str, Any], str, int, int]]:
        """The region's converted tasks, each handed to exactly one caller."""
        with self.lock:
            ids = [i for i, c in self.converted.items() if c[:2] == (account, region)]
            return [self.converted.pop(i) for i in ids]

    def list(self, account: str, region: str) -> list[dict[str, Any]]:
        """Copies of the region's tasks (the import threads update the originals)."""
        with self.lock:
            return [{**t, "SnapshotTaskDetail": dict(t["SnapshotTaskDetail"])}
                    for t in self.tasks.get((account, region), {}).values()]

    def update(self, detail: dict[str, Any], drop: tuple[str, ...] = (), **values: Any) -> None:
        with self.lock:
            for key in drop:
                detail.pop(key, None)
            detail.update(values)

    def clear(self) -> None:
        with self.lock:
            self.tasks.clear()
            self.tokens.clear()
            self.converted.clear()  # the store's reset removes their staging snapshots


IMPORT_TASKS = ImportTasks()


def _s3_object(account: str, bucket: str, key: str) -> Any:
    """moto's S3 object (FakeKey), or None."""
    from moto.s3.models import s3_backends

    backend = s3_backends[account]["aws"]
    try:
        return backend.get_object(bucket, key)
    except Exception:  # MissingBucket
        return None


def _copy_object(obj: Any, dest: str) -> int:
    with obj.lock, open(dest, "wb") as f:
        obj._value_buffer.seek(0)
        shutil.copyfileobj(obj._value_buffer, f, 16 << 20)
        return f.tell()


def _validation_error(qemu_img: str, path: str, fmt: str) -> str | None:
    """AWS's StatusMessage for an image that is not a readable `fmt`, else None."""
    if fmt == "vpc":
        with open(path, "rb") as f:
            head = f.read(512)
            f.seek(max(0, os.path.getsize(path) - 512))
            tail = f.read(512)
        if tail[:8] != b"conectix":
            return UNSUPPORTED if head[:8] != b"conectix" else FOOTERS
        if head[:8] == b"conectix" and head != tail:  # a dynamic VHD keeps a copy of its footer in front
            return FOOTERS
    r = subprocess.run([qemu_img, "check", "-q", "-f", fmt, path], capture_output=True, text=True)
    if r.returncode not in (0, 63):  # 63: the format has no check (raw, vpc)
        return UNSUPPORTED
    return None


def _staging_id(task: dict[str, Any]) -> str:
    return "staging-" + task["ImportTaskId"]


def _run_import(backend: Any, task: dict[str, Any], source: tuple[str, str], fmt: str) -> None:
    """The import thread: download, check and convert into the store under a staging id. It does
    not touch moto's dicts (module docstring): finish_converted makes the snapshot."""
    detail = task["SnapshotTaskDetail"]
    s = store()
    work = None
    staged = False
    try:
        if s is None:
            raise RuntimeError("the twin's store is closed")
        obj = _s3_object(backend.account_id, *source)
        if obj is None:
            # AWS's words for an object it cannot read are not documented; this names it.
            return _fail(detail, f"ClientError: Unable to read the disk image s3://{source[0]}/{source[1]}: no such object")
        os.makedirs(os.path.join(s.run_dir(), "imports"), exist_ok=True)
        work = os.path.join(s.run_dir(), "imports", task["ImportTaskId"])
        IMPORT_TASKS.update(detail, StatusMessage="downloading/converting", Progress="10")
        size = _copy_object(obj, work)
        IMPORT_TASKS.update(detail, Progress="40")
        error = _validation_error(s.qemu_img, work, FORMATS[fmt]) if size else UNSUPPORTED
        if error:
            return _fail(detail, error)
        try:
            staged = True
            virtual = s.import_snapshot(_staging_id(task), work, FORMATS[fmt])
        except ImageError:
            return _fail(detail, UNSUPPORTED)
        IMPORT_TASKS.update(detail, Progress="90")
        if IMPORT_TASKS.mark_converted(backend.account_id, backend.region_name, backend, task, _staging_id(task), virtual, size):
            staged = False  # finish_converted owns it now
    except Exception as e:  # never leave a task active forever
        _fail(detail, f"ClientError: {e}")
    finally:
        if work:
            remove_file(work)
        if staged and s is not None:
            s.delete_snapshot(_staging_id(task))


def finish_converted(account: str, region: str) -> None:
    """On a request thread: make moto's snapshot for each converted import of the region (its bytes
    are in the store already), then complete the task. On any failure nothing is left behind."""
    s = store()
    for _, _, backend, task, staging, virtual, size in IMPORT_TASKS.take_converted(account, region):
        detail = task["SnapshotTaskDetail"]
        snap = volume = None
        try:
            if s is None:
                raise RuntimeError("the twin's store is closed")
            volume = backend.create_volume(size=max(1, -(-virtual // GIB)), zone_name=backend.region_name + "a")
            snap = backend.create_snapshot(volume.id, f"Created by AWS-VMImport service for {task['ImportTaskId']}")
            backend.delete_volume(volume.id)
            volume = None
            s.copy_snapshot(snap.id, staging)  # the converted layer becomes the snapshot's
            snap.volume = copy.copy(snap.volume)  # VolumeSize is read from it; VolumeId as AWS shows it
            snap.volume.id = IMPORTED_VOLUME_ID
            IMPORT_TASKS.update(detail, ("Progress", "StatusMessage"), Status="completed", SnapshotId=snap.id,
                                DiskImageSize=float(size))
        except Exception as e:
            if snap is not None:
                backend.snapshots.pop(snap.id, None)
                s and s.delete_snapshot(snap.id)
            if volume is not None:
                backend.volumes.pop(volume.id, None)
                s and s.delete_volume(volume.id)
            _fail(detail, f"ClientError: {e}")
        finally:
            if s is not None:
                s.delete_snapshot(staging)


def _fail(detail: dict[str, Any], message: str) -> None:
    IMPORT_TASKS.update(detail, ("Progress",), Status="deleted", StatusMessage=message, DiskImageSize=0.0)


def patch_import_snapshot() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses import EC2Response

    from ..ec2_models import _tags_from_specs

    name = "twin-import-snapshot"
    _need(not hasattr(EC2Response, "import_snapshot"), name, "moto now has ImportSnapshot: drop the twin's")
    _need(callable(getattr(EC2Response, "_get_param", None)), name, "EC2Response._get_param missing")

    def import_snapshot(self: Any) -> Any:
        p = self._get_param
        container = p("DiskContainer") or {}
        tags = _tags_from_specs(p("TagSpecifications") or [], {"import-snapshot-task"}).get("import-snapshot-task", {})
        self.error_on_dryrun()
        token = p("ClientToken")
        earlier = IMPORT_TASKS.by_token(self.current_account, self.region, token) if token else None
        if earlier is not None:
            return ActionResult({**earlier, "ClientToken": token})
        fmt = (container.get("Format") or "").upper()
        if fmt not in FORMATS:
            raise EC2ClientError("InvalidParameterValue",
                                 f"Value ({container.get('Format')}) for parameter DiskContainer.Format is invalid. "
                                 "Valid values: VHD | VMDK | RAW")
        bucket = container.get("UserBucket") or {}
        source = (bucket.get("S3Bucket"), bucket.get("S3Key"))
        url = container.get("Url") or ""
        if not all(source) and url.startswith("s3://") and "/" in url[5:]:
            source = tuple(url[5:].split("/", 1))  # type: ignore[assignment]
        if not all(source):
            raise EC2ClientError("MissingParameter",
                                 "The request must contain DiskContainer.UserBucket (S3Bucket and S3Key) or an s3:// DiskContainer.Url")
        task_id = "import-snap-" + "".join(random.choice("0123456789abcdef") for _ in range(17))
        detail: dict[str, Any] = {
            "DiskImageSize": 0.0,
            "Format": fmt,
            "Progress": "3",
            "Status": "active",
            "StatusMessage": "pending",
            "UserBucket": {"S3Bucket": source[0], "S3Key": source[1]},
        }
        description = p("Description")
        if container.get("Description") or description:
            detail["Description"] = container.get("Description") or description
        task: dict[str, Any] = {"ImportTaskId": task_id, "SnapshotTaskDetail": detail,
                                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        if description:
            task["Description"] = description
        answer = {**task, "SnapshotTaskDetail": dict(detail), "ClientToken": token}
        earlier, added = IMPORT_TASKS.get_or_add(self.current_account, self.region, task, token)
        if not added:  # a retry with the same token raced this one: answer the first call's task
            return ActionResult({**earlier, "ClientToken": token})
        threading.Thread(target=_run_import, args=(self.ec2_backend, task, source, fmt), daemon=True,
                         name=f"import {task_id}").start()
        return ActionResult({k: v for k, v in answer.items() if v is not None})

    def describe_import_snapshot_tasks(self: Any) -> Any:
        ids = self._get_param("ImportTaskIds") or []
        finish_converted(self.current_account, self.region)
        tasks = IMPORT_TASKS.list(self.current_account, self.region)
        if ids:
            known = {t["ImportTaskId"] for t in tasks}
            missing = [i for i in ids if i not in known]
            if missing:
                raise EC2ClientError("InvalidConversionTaskId", f"The import task ID '{missing[0]}' does not exist")
            tasks = [t for t in tasks if t["ImportTaskId"] in ids]
        return ActionResult({"ImportSnapshotTasks": tasks})

    EC2Response.import_snapshot = import_snapshot  # type: ignore[attr-defined]
    EC2Response.describe_import_snapshot_tasks = describe_import_snapshot_tasks  # type: ignore[attr-defined]
    APPLIED.append(name)
