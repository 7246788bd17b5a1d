"""A snapshot's bytes in EBS's 512 KiB blocks: which blocks hold data, a block's bytes, and which
blocks differ between two snapshots of one lineage, read from the store's qcow2 layers.

`qemu-img map` says, per extent of the snapshot's top layer, at which depth of the backing chain its
data lives (and at which offset of that layer's file); a snapshot's layers never change, so a map is
read once. Bytes are read straight from the layer files at those offsets."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass

BLOCK_SIZE = 512 * 1024  # EBS direct APIs: "BlockSize": 524288 (ListSnapshotBlocks, EBS API reference)


@dataclass(frozen=True)
class Extent:
    start: int
    length: int
    depth: int
    present: bool  # allocated in some layer (data or explicit zeroes)
    data: bool
    offset: int | None  # where the data lives in the file at `depth` (None: compressed, or none)


@functools.lru_cache(maxsize=256)
def _extents(qemu_img: str, top: str) -> tuple[Extent, ...]:
    out = subprocess.run([qemu_img, "map", "-U", "--output=json", "-f", "qcow2", top],
                         capture_output=True, text=True, check=True).stdout
    return tuple(Extent(e["start"], e["length"], e["depth"], e.get("present", e["data"] or not e["zero"]),
                        e["data"], e.get("offset")) for e in json.loads(out))


def _blocks_of(e: Extent) -> range:
    return range(e.start // BLOCK_SIZE, (e.start + e.length - 1) // BLOCK_SIZE + 1)


class SnapshotBlocks:
    """One snapshot's blocks; `chain` is its layer files, top first (Store.snapshot_chain)."""

    def __init__(self, qemu_img: str, chain: list[str]):
        self.qemu_img = qemu_img
        self.chain = chain
        self.extents = _extents(qemu_img, chain[0])

    def data_blocks(self) -> list[int]:
        """Indexes of the blocks that hold written data, ascending."""
        found: set[int] = set()
        for e in self.extents:
            if e.data:
                found.update(_blocks_of(e))
        return sorted(found)

    def changed_since(self, first: "SnapshotBlocks") -> list[int] | None:
        """Blocks written in either snapshot's own layers since their common layers; None when
        they share no layer (unrelated snapshots)."""
        common = set(self.chain) & set(first.chain)
        if not common:
            return None
        found: set[int] = set()
        for snap in (self, first):
            for e in snap.extents:
                if e.present and e.depth < len(snap.chain) and snap.chain[e.depth] not in common:
                    found.update(_blocks_of(e))
        return sorted(found)

    def read(self, index: int) -> bytes:
        """The block's 524288 bytes (zeroes where nothing was written, and past the disk's end)."""
        lo, hi = index * BLOCK_SIZE, (index + 1) * BLOCK_SIZE
        out = bytearray(BLOCK_SIZE)
        for e in self.extents:
            a, b = max(lo, e.start), min(hi, e.start + e.length)
            if a >= b or not e.data:
                continue
            if e.offset is None:  # compressed cluster: let qemu read it
                return self._read_by_qemu(index)
            with open(self.chain[e.depth], "rb") as f:
                f.seek(e.offset + (a - e.start))
                chunk = f.read(b - a)
            out[a - lo:a - lo + len(chunk)] = chunk
        return bytes(out)

    def _read_by_qemu(self, index: int) -> bytes:
        with tempfile.TemporaryDirectory(dir=os.path.dirname(self.chain[0])) as tmp:
            dest = os.path.join(tmp, "block")
            subprocess.run([self.qemu_img, "dd", "-U", "-f", "qcow2", "-O", "raw", f"bs={BLOCK_SIZE}",
                            f"skip={index}", "count=1", f"if={self.chain[0]}", f"of={dest}"],
                           capture_output=True, check=True)
            with open(dest, "rb") as f:
                data = f.read()
        return data.ljust(BLOCK_SIZE, b"\0")
