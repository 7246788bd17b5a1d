"""The EBS direct APIs that read snapshots, answered from the twin's files: ListSnapshotBlocks,
GetSnapshotBlock, ListChangedBlocks (REST-JSON, signing name `ebs`; moto already routes that
service to its own EBS backend, whose read methods are patched here). Snapshots made by moto's own
StartSnapshot/PutSnapshotBlock keep moto's answers.

As the EBS direct APIs reference documents them (https://docs.aws.amazon.com/ebs/latest/APIReference/):
- BlockSize 524288; VolumeSize in GiB (the snapshot's); ExpiryTime the block tokens' expiry (not
  documented how long: the twin's tokens last 7 days); the block indexes are unique and in numerical
  order (EBS direct APIs FAQ, https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-faq.html).
- ListSnapshotBlocks lists the blocks that hold data. ListChangedBlocks lists "the blocks that are
  different between two snapshots of the same volume/snapshot lineage": FirstBlockToken where the
  first snapshot has the block, SecondBlockToken where the second has it. "The SecondSnapshotId
  parameter must be specified with a FirstSnapshotID parameter; otherwise, an error occurs"
  (ListChangedBlocks, https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListChangedBlocks.html):
  without firstSnapshotId, ValidationException INVALID_PARAMETER_VALUE (a ValidationExceptionReason
  of the API; AWS's message text is not documented). Snapshots of no common lineage: ValidationException
  UNRELATED_SNAPSHOTS.
- MaxResults: valid range 100-10000; under 100 the API still returns up to 100 (FAQ); NextToken
  (pageToken) supersedes StartingBlockIndex; a bad one is ValidationException INVALID_PAGE_TOKEN.
- GetSnapshotBlock: the data with headers x-amz-Data-Length, x-amz-Checksum (base64 SHA256 of the
  data) and x-amz-Checksum-Algorithm SHA256; a token that is not the block's is ValidationException
  INVALID_BLOCK_TOKEN, an index past the volume INVALID_BLOCK.
- An unknown snapshot is ResourceNotFoundException (HTTP 404) with Reason SNAPSHOT_NOT_FOUND; a
  ValidationException is HTTP 400 with its Reason (ValidationException / ResourceNotFoundException,
  EBS API reference "Errors")."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..patching import APPLIED, _need
from .blocks import BLOCK_SIZE, SnapshotBlocks
from .store import store

TOKEN_LIFETIME = dt.timedelta(days=7)
GIB = 1 << 30


class EbsError(Exception):
    def __init__(self, status: int, code: str, reason: str, message: str):
        super().__init__(message)
        self.status, self.code, self.reason = status, code, reason

    def response(self) -> tuple[int, dict[str, str], str]:
        body = json.dumps({"__type": self.code, "Message": str(self), "message": str(self), "Reason": self.reason})
        # moto takes the HTTP status from a "status" header (BaseResponse._transform_response)
        headers = {"status": str(self.status), "x-amzn-ErrorType": self.code, "Content-Type": "application/json"}
        return self.status, headers, body


def _invalid(reason: str, message: str) -> EbsError:
    return EbsError(400, "ValidationException", reason, message)


def _token(snapshot_id: str, index: int) -> str:
    return base64.b64encode(f"{snapshot_id}/{index}".encode()).decode()


def _page_token(index: int) -> str:
    return base64.b64encode(f"next/{index}".encode()).decode()


def _from_page_token(token: str) -> int:
    try:
        kind, index = base64.b64decode(token, validate=True).decode().split("/")
        if kind == "next":
            return int(index)
    except ValueError:
        pass
    raise _invalid("INVALID_PAGE_TOKEN", "The pagination token is not valid.")


def _expiry() -> float:
    return (dt.datetime.now(dt.timezone.utc) + TOKEN_LIFETIME).timestamp()


def _snapshot(ec2: Any, snapshot_id: str) -> tuple[SnapshotBlocks, int]:
    """The snapshot's blocks and its VolumeSize (GiB), else ResourceNotFoundException."""
    s = store()
    snap = ec2.snapshots.get(snapshot_id)
    if s is None or snap is None or not s.has_snapshot(snapshot_id):
        raise EbsError(404, "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND",
                       f"The snapshot '{snapshot_id}' does not exist.")
    return SnapshotBlocks(s.qemu_img, s.snapshot_chain(snapshot_id)), int(snap.volume.size)


def _page(indexes: list[int], query: dict[str, str]) -> tuple[list[int], str | None]:
    if query.get("pageToken"):
        start = _from_page_token(query["pageToken"])
    else:
        start = int(query.get("startingBlockIndex") or 0)
    limit = int(query.get("maxResults") or 10000)
    if limit > 10000:
        raise _invalid("INVALID_PARAMETER_VALUE", "MaxResults must be between 100 and 10000.")
    limit = max(limit, 100)
    rest = [i for i in indexes if i >= start]
    page = rest[:limit]
    return page, (_page_token(rest[limit]) if len(rest) > limit else None)


def _query(response: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(response.uri).query).items()}


def list_snapshot_blocks(ec2: Any, snapshot_id: str, query: dict[str, str]) -> dict[str, Any]:
    blocks, size_gib = _snapshot(ec2, snapshot_id)
    page, next_token = _page(blocks.data_blocks(), query)
    out: dict[str, Any] = {
        "Blocks": [{"BlockIndex": i, "BlockToken": _token(snapshot_id, i)} for i in page],
        "ExpiryTime": _expiry(), "VolumeSize": size_gib, "BlockSize": BLOCK_SIZE,
    }
    if next_token:
        out["NextToken"] = next_token
    return out


def list_changed_blocks(ec2: Any, second_id: str, query: dict[str, str]) -> dict[str, Any]:
    first_id = query.get("firstSnapshotId")
    if not first_id:
        raise _invalid("INVALID_PARAMETER_VALUE",
                       "The SecondSnapshotId parameter must be specified with a FirstSnapshotId parameter.")
    second, size_gib = _snapshot(ec2, second_id)
    second_data = set(second.data_blocks())
    first, _ = _snapshot(ec2, first_id)
    changed = second.changed_since(first)
    if changed is None:
        raise _invalid("UNRELATED_SNAPSHOTS",
                       f"The snapshots '{first_id}' and '{second_id}' are not of the same volume/snapshot lineage.")
    first_data = set(first.data_blocks())
    # A block written with zeroes in one layer and never holding data in either is not a change.
    changed = [i for i in changed if i in first_data or i in second_data]
    page, next_token = _page(changed, query)
    blocks = []
    for i in page:
        block: dict[str, Any] = {"BlockIndex": i}
        if i in first_data:
            block["FirstBlockToken"] = _token(first_id, i)
        if i in second_data:
            block["SecondBlockToken"] = _token(second_id, i)
        blocks.append(block)
    out: dict[str, Any] = {"ChangedBlocks": blocks, "ExpiryTime": _expiry(), "VolumeSize": size_gib,
                           "BlockSize": BLOCK_SIZE}
    if next_token:
        out["NextToken"] = next_token
    return out


def get_snapshot_block(ec2: Any, snapshot_id: str, index_s: str, token: str | None) -> tuple[bytes, dict[str, str]]:
    blocks, size_gib = _snapshot(ec2, snapshot_id)
    try:
        index = int(index_s)
    except ValueError:
        raise _invalid("INVALID_BLOCK", f"The block index '{index_s}' is not valid.") from None
    if index < 0 or index >= size_gib * GIB // BLOCK_SIZE:
        raise _invalid("INVALID_BLOCK", f"The block index {index} is beyond the volume size extent.")
    if token != _token(snapshot_id, index):
        raise _invalid("INVALID_BLOCK_TOKEN", "The block token is not valid for this snapshot and block index.")
    data = blocks.read(index)
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return data, {"x-amz-Data-Length": str(len(data)), "x-amz-Checksum": checksum,
                  "x-amz-Checksum-Algorithm": "SHA256", "Content-Type": "application/octet-stream"}


def patch_ebs_direct_reads() -> None:
    from moto.ebs.responses import EBSResponse

    name = "twin-ebs-direct-reads"
    for method in ("list_snapshot_blocks", "get_snapshot_block", "list_changed_blocks"):
        _need(callable(getattr(EBSResponse, method, None)), name, f"EBSResponse.{method} missing")
    _need(isinstance(getattr(EBSResponse, "ebs_backend", None), property), name, "EBSResponse.ebs_backend missing")
    originals = {m: getattr(EBSResponse, m) for m in ("list_snapshot_blocks", "get_snapshot_block", "list_changed_blocks")}

    def answer(method: str, fn: Any) -> Any:
        def handler(self: Any) -> Any:
            parts = urlparse(self.uri).path.rstrip("/").split("/")
            snapshot_id = parts[2] if len(parts) > 2 else ""
            if snapshot_id in self.ebs_backend.snapshots:  # made by StartSnapshot: moto's own blocks
                return originals[method](self)
            try:
                return fn(self, snapshot_id, parts)
            except EbsError as e:
                return e.response()

        return handler

    def list_blocks(self: Any, snapshot_id: str, parts: list[str]) -> Any:
        body = list_snapshot_blocks(self.ebs_backend.ec2_backend, snapshot_id, _query(self))
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def changed(self: Any, snapshot_id: str, parts: list[str]) -> Any:
        body = list_changed_blocks(self.ebs_backend.ec2_backend, snapshot_id, _query(self))
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def get_block(self: Any, snapshot_id: str, parts: list[str]) -> Any:
        data, headers = get_snapshot_block(self.ebs_backend.ec2_backend, snapshot_id, parts[-1],
                                           _query(self).get("blockToken"))
        return 200, headers, data

    EBSResponse.list_snapshot_blocks = answer("list_snapshot_blocks", list_blocks)  # type: ignore[method-assign]
    EBSResponse.list_changed_blocks = answer("list_changed_blocks", changed)  # type: ignore[method-assign]
    EBSResponse.get_snapshot_block = answer("get_snapshot_block", get_block)  # type: ignore[method-assign]
    APPLIED.append(name)
