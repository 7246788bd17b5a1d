"""The twin's EBS store: volumes and snapshots as qcow2 files (one layer chain per lineage).

A snapshot is a frozen read-only qcow2 layer; a volume is a writable qcow2 overlay whose backing
chain ends in the layers of the snapshots it came from. Nothing is copied: CreateVolume from a
snapshot makes an empty overlay on the snapshot's layer, CreateSnapshot freezes the volume's current
layer (it becomes the snapshot's) and gives the volume a new empty overlay on it. Disk use is
proportional to the bytes written (qcow2 allocates clusters on write). Files are made lazily: a layer gets its file
when someone asks for a path (moto makes a volume and a snapshot for every image it registers; most
are never read). A layer file is removed when
nothing uses it any more: no volume, no snapshot, no overlay backed by it (in EC2 a volume made from
a snapshot outlives the snapshot's deletion: here its backing layer stays until the volume goes).

API (the contract with the rest of the twin; ids are EC2 ids, unique across regions):

    store() -> Store | None          the process-wide store; None in the recorded mode
    s.run_dir() -> str               the run directory (removed whole by close())
    s.create_volume(volume_id, size_bytes, snapshot_id=None) -> str
                                     path of the volume's qcow2 file (format qcow2), empty or a
                                     copy-on-write overlay of the snapshot. In twin mode moto's own
                                     EBSBackend.create_volume is patched (twin/ec2_volumes.py), so
                                     every moto volume (RunInstances' root volumes too) has a file
                                     already: a second call for an id returns the existing path.
    s.volume_path(volume_id) -> str | None
                                     the volume's current (writable) file. It CHANGES after each
                                     create_snapshot of the volume (the old file becomes the
                                     snapshot's frozen layer): open it when a VM starts.
    s.delete_volume(volume_id)       drop the volume (files go when unreferenced); unknown: no-op
    s.create_snapshot(snapshot_id, volume_id)
                                     freeze the volume's bytes now. With a live freezer registered
                                     for the volume, calls it instead of touching files (below).
    s.snapshot_path(snapshot_id) -> str | None
                                     the snapshot's frozen qcow2 layer (top of its backing chain);
                                     open it read-only (or as the backing of an overlay).
    s.delete_snapshot(snapshot_id)   drop the snapshot (files go when unreferenced); unknown: no-op
    s.copy_snapshot(new_snapshot_id, source_snapshot_id)
                                     a second snapshot on the same frozen layer (CopySnapshot)
    s.import_snapshot(snapshot_id, source_path, fmt) -> int
                                     convert a disk image (fmt: "raw", "vmdk", "vpc" as qemu-img
                                     names them) into the snapshot's layer (replacing any layer the
                                     id had); returns its virtual size in bytes. Raises
                                     ImageError(qemu-img's message) for a corrupt/truncated image.
    s.adopt_snapshot(snapshot_id, path) -> int
                                     an existing qcow2 file outside the store (the worker disk's
                                     cache) becomes the snapshot's layer, read-only, never removed
    s.snapshot_chain(snapshot_id) -> list[str]
                                     the snapshot's layer files, top first (for reading blocks)
    s.snapshot_size(snapshot_id) -> int   virtual size in bytes
    s.has_snapshot(snapshot_id) -> bool / s.add_volume(...)  (create_volume without making the file)
    s.has_bytes(snapshot_id) -> bool
                                     whether the snapshot's layer chain holds real bytes: some layer
                                     of it was imported from a file (import_snapshot), written by
                                     write_pattern, or was a volume's while a VM had it open
                                     (register_live_freezer). Inherited through CreateSnapshot,
                                     CopySnapshot and volumes made from the snapshot (the layers are
                                     shared). False for the stand-in snapshots moto makes for its own
                                     images and for volumes nobody wrote: such images are not booted.
    s.mark_written(volume_id)        the volume is (or was) a VM's disk: count its bytes as real.
                                     register_live_freezer does it; call it for any volume a VM
                                     opens without a freezer (e.g. one hot-plugged into the worker).
    s.register_live_freezer(volume_id, fn) / s.unregister_live_freezer(volume_id)
                                     while a VM has the volume's file open, a snapshot must freeze
                                     through the VM, not by moving files under it. fn(new_path) is
                                     called under the store's lock with a path that does not exist
                                     yet: it must make the VM continue writing into a NEW qcow2
                                     overlay created at new_path on top of the file it has open
                                     (QMP `blockdev-snapshot-sync` with snapshot-file=new_path,
                                     format=qcow2, mode=absolute-paths), and return once done (raise
                                     on failure: the snapshot is then not made). The file the VM had
                                     open becomes the snapshot's frozen layer and new_path the
                                     volume's file (volume_path), exactly as in the offline case.
    s.write_pattern(volume_id, offset, length, pattern)
                                     write bytes into a volume (tests; refused while a freezer is set)
    s.reset()                        forget every volume and snapshot and remove their files
                                     (moto's /moto-api/reset)
    s.close()                        remove the run directory and everything in it

The run directory is a mkdtemp under `$AMI_FACTORY_TWIN_DIR`, else
`${AMI_FACTORY_CACHE:-~/.cache/ami-factory}/twin-runs/`, holding a `pid` file (pid and the
process's start time); open_store() first removes run directories whose process is gone (an
emulator killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Callable

QEMU_IMG_PACKAGE = "qemu-utils"

_STORE: "Store | None" = None


def store() -> "Store | None":
    """The process-wide store, or None when the twin is off (the recorded mode)."""
    return _STORE


class ImageError(RuntimeError):
    """A disk image qemu-img cannot read (corrupt, truncated, not of the format named)."""


class MissingTool(RuntimeError):
    pass


def runs_root() -> str:
    explicit = os.environ.get("AMI_FACTORY_TWIN_DIR")
    if explicit:
        return os.path.abspath(explicit)
    cache = os.environ.get("AMI_FACTORY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ami-factory")
    return os.path.join(cache, "twin-runs")


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if not path:
        raise MissingTool(f"the twin (AMI_FACTORY_EMULATOR=twin) needs qemu-img: install the Debian package "
                          f"{QEMU_IMG_PACKAGE} (sudo apt-get install {QEMU_IMG_PACKAGE})")
    return path


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid_file: str) -> bool:
    try:
        with open(pid_file) as f:
            pid_s, started = f.read().split()
        return _start_time(int(pid_s)) == started
    except (OSError, ValueError):
        return False


def remove_dead_runs(root: str) -> list[str]:
    """Remove run directories under root whose pid file names a process that is gone."""
    removed = []
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return removed
    for name in names:
        run = os.path.join(root, name)
        pid_file = os.path.join(run, "pid")
        if os.path.isdir(run) and os.path.exists(pid_file) and not _alive(pid_file):
            shutil.rmtree(run, ignore_errors=True)
            removed.append(run)
    return removed


@dataclass
class _Layer:
    path: str
    backing: "str | None"  # the backing layer's name
    size: int  # virtual size in bytes
    made: bool = True  # the file exists (an empty layer is made when a path is asked for)
    refs: int = 0  # volumes, snapshots and overlays that use it
    external: bool = False  # a file outside the run directory (the worker disk's cache): never removed
    # real bytes were put in this layer (import, write_pattern, a VM's writes); keyword-only, so
    # positional _Layer(...) calls elsewhere keep their meaning
    data: bool = field(default=False, kw_only=True)


@dataclass
class Store:
    root: str
    qemu_img: str
    _layers: dict[str, _Layer] = field(default_factory=dict)
    _volumes: dict[str, str] = field(default_factory=dict)  # volume id -> layer name
    _snapshots: dict[str, str] = field(default_factory=dict)  # snapshot id -> layer name
    _freezers: dict[str, Callable[[str], None]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _counter: int = 0

    # -- layers ---------------------------------------------------------------------------------

    def _new_layer_path(self) -> tuple[str, str]:
        self._counter += 1
        name = f"L{self._counter:06d}"
        return name, os.path.join(self.root, "layers", name + ".qcow2")

    def _add_layer(self, name: str, path: str, backing: str | None, size: int, made: bool = True) -> None:
        if backing is not None:
            self._layers[backing].refs += 1
        self._layers[name] = _Layer(path, backing, size, made)

    def _ref(self, name: str) -> str:
        self._layers[name].refs += 1
        return name

    def _unref(self, name: str | None) -> None:
        while name is not None:
            layer = self._layers[name]
            layer.refs -= 1
            if layer.refs > 0:
                return
            del self._layers[name]
            if layer.made and not layer.external:
                remove_file(layer.path)
            name = layer.backing

    def _run(self, *args: str) -> str:
        r = subprocess.run([self.qemu_img, *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise ImageError((r.stderr or r.stdout).strip() or f"qemu-img {args[0]} exited {r.returncode}")
        return r.stdout

    def _overlay(self, backing: str | None, size_bytes: int | None) -> str:
        """A new empty qcow2 layer (on `backing`, of the backing's size unless size_bytes), made lazily."""
        name, path = self._new_layer_path()
        if size_bytes is None:
            assert backing is not None
            size_bytes = self._layers[backing].size
        self._add_layer(name, path, backing, size_bytes, made=False)
        return name

    def _made(self, name: str) -> str:
        """The layer's file path, making it (and its backing chain) first if it is still lazy."""
        layer = self._layers[name]
        if not layer.made:
            args = ["create", "-q", "-f", "qcow2"]
            if layer.backing is not None:
                # -u: the backing is not opened (a running VM may hold it), its size is known
                args += ["-u", "-b", self._made(layer.backing), "-F", "qcow2"]
            self._run(*args, layer.path, str(layer.size))
            layer.made = True
        return layer.path

    # -- volumes --------------------------------------------------------------------------------

    def run_dir(self) -> str:
        return self.root

    def create_volume(self, volume_id: str, size_bytes: int, snapshot_id: str | None = None) -> str:
        with self._lock:
            self.add_volume(volume_id, size_bytes, snapshot_id)
            return self._made(self._volumes[volume_id])

    def add_volume(self, volume_id: str, size_bytes: int, snapshot_id: str | None = None) -> None:
        """create_volume without making the file yet (it is made when a path is asked for)."""
        with self._lock:
            if volume_id in self._volumes:
                return
            backing = self._snapshots.get(snapshot_id) if snapshot_id else None
            if snapshot_id and backing is None:
                raise KeyError(f"snapshot {snapshot_id} is not in the twin's store")
            self._volumes[volume_id] = self._ref(self._overlay(backing, size_bytes))

    def interpose(self, volume_id: str, path: str, below: str) -> bool:
        """Put the external qcow2 file `path` (the saved worker state's disk: an overlay on the file
        `below`, never written or removed here) under the volume's own layer, so the volume reads as
        `path`: a resumed worker's root volume holds what its boot wrote, as a booted instance's
        does. Only for a volume nothing wrote yet whose snapshot's layer is the file `below`
        (False otherwise: the worker cold-boots)."""
        with self._lock:
            name = self._volumes.get(volume_id)
            if name is None:
                return False
            layer = self._layers[name]
            if layer.data or layer.backing is None or self._layers[layer.backing].path != below:
                return False
            size = int(json.loads(self._run("info", "-U", "--output=json", "-f", "qcow2", path))["virtual-size"])
            ext, _ = self._new_layer_path()
            # The new layer takes over the volume layer's reference to the snapshot's.
            self._layers[ext] = _Layer(path, layer.backing, size, True, 1, True, data=True)
            layer.backing = ext
            if layer.made:
                self._run("rebase", "-u", "-b", path, "-F", "qcow2", layer.path)
            return True

    def uninterpose(self, volume_id: str, path: str) -> bool:
        """Undo interpose(volume_id, path): the volume reads as its snapshot again, through a fresh
        empty layer file (what a failed resume left in it is dropped: nothing the user wrote, a
        resumed worker's volume is its root, written only once it runs). False when the volume's
        layer no longer sits on `path`."""
        with self._lock:
            name = self._volumes.get(volume_id)
            if name is None:
                return False
            layer = self._layers[name]
            ext = self._layers.get(layer.backing) if layer.backing is not None else None
            if ext is None or not ext.external or ext.path != path:
                return False
            del self._layers[layer.backing]  # type: ignore[arg-type]
            layer.backing = ext.backing  # the reference to the snapshot's layer goes back to the volume's
            if layer.made:
                remove_file(layer.path)
                layer.made = False
                self._made(name)
            return True

    def volume_path(self, volume_id: str) -> str | None:
        with self._lock:
            name = self._volumes.get(volume_id)
            return self._made(name) if name else None

    def delete_volume(self, volume_id: str) -> None:
        with self._lock:
            self._freezers.pop(volume_id, None)
            self._unref(self._volumes.pop(volume_id, None))

    def write_pattern(self, volume_id: str, offset: int, length: int, pattern: int) -> None:
        """Write `length` bytes of `pattern` at `offset` into the volume (tests, via the control API)."""
        if not (0 <= pattern <= 255 and offset >= 0 and length > 0):
            raise ValueError("pattern must be 0-255, offset >= 0, length > 0")
        qemu_io = shutil.which("qemu-io")
        if not qemu_io:
            raise MissingTool(f"qemu-io is missing: install the Debian package {QEMU_IMG_PACKAGE}")
        with self._lock:
            if volume_id not in self._volumes:
                raise LookupError(f"volume {volume_id} is not in the twin's store")
            if volume_id in self._freezers:
                raise RuntimeError(f"volume {volume_id} is open in a running VM: write through the VM")
            path = self._made(self._volumes[volume_id])
            self._layers[self._volumes[volume_id]].data = True
            r = subprocess.run([qemu_io, "-f", "qcow2", "-c", f"write -P {pattern} {offset} {length}", path],
                               capture_output=True, text=True)
            if r.returncode != 0 or "failed" in r.stdout + r.stderr:
                raise ValueError(f"qemu-io: {(r.stderr or r.stdout).strip()}")

    # -- snapshots ------------------------------------------------------------------------------

    def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        with self._lock:
            current = self._volumes.get(volume_id)
            if current is None:
                raise KeyError(f"volume {volume_id} is not in the twin's store")
            freezer = self._freezers.get(volume_id)
            if freezer is None:
                top = self._overlay(current, None)
            else:
                self._made(current)
                name, path = self._new_layer_path()
                freezer(path)
                self._add_layer(name, path, current, self._layers[current].size)
                top = name
            # The volume moves to the new overlay; its old layer is the snapshot's, frozen.
            self._volumes[volume_id] = self._ref(top)
            self._drop_snapshot(snapshot_id)
            self._snapshots[snapshot_id] = current  # the volume's reference passes to the snapshot

    def copy_snapshot(self, new_snapshot_id: str, source_snapshot_id: str) -> None:
        with self._lock:
            layer = self._snapshots.get(source_snapshot_id)
            if layer is None:
                raise KeyError(f"snapshot {source_snapshot_id} is not in the twin's store")
            self._drop_snapshot(new_snapshot_id)
            self._snapshots[new_snapshot_id] = self._ref(layer)

    def import_snapshot(self, snapshot_id: str, source_path: str, fmt: str) -> int:
        with self._lock:
            name, path = self._new_layer_path()
        # Outside the lock: a conversion can take a while. `check` is qcow2/vmdk/vpc's own
        # consistency check; convert reads every byte, so a truncated image fails there.
        try:
            self._run("convert", "-q", "-f", fmt, "-O", "qcow2", source_path, path)
            size = int(json.loads(self._run("info", "-U", "--output=json", "-f", "qcow2", path))["virtual-size"])
        except BaseException:
            remove_file(path)
            raise
        with self._lock:
            self._add_layer(name, path, None, size)
            self._layers[name].data = True
            self._drop_snapshot(snapshot_id)
            self._snapshots[snapshot_id] = self._ref(name)
        return size

    def adopt_snapshot(self, snapshot_id: str, path: str) -> int:
        """Make an existing qcow2 file outside the store (the twin worker's cached disk) the
        snapshot's frozen layer, without copying it; the store never writes or removes it (volumes
        from the snapshot are overlays on it). Returns its virtual size in bytes."""
        size = int(json.loads(self._run("info", "-U", "--output=json", "-f", "qcow2", path))["virtual-size"])
        with self._lock:
            name, _ = self._new_layer_path()
            self._layers[name] = _Layer(path, None, size, True, 0, True, data=True)  # the worker disk holds bytes: it boots
            self._drop_snapshot(snapshot_id)
            self._snapshots[snapshot_id] = self._ref(name)
        return size

    def _drop_snapshot(self, snapshot_id: str) -> None:
        self._unref(self._snapshots.pop(snapshot_id, None))

    def snapshot_path(self, snapshot_id: str) -> str | None:
        with self._lock:
            name = self._snapshots.get(snapshot_id)
            return self._made(name) if name else None

    def has_snapshot(self, snapshot_id: str) -> bool:
        with self._lock:
            return snapshot_id in self._snapshots

    def _chain_has_bytes(self, name: str | None) -> bool:
        while name is not None:
            layer = self._layers[name]
            if layer.data:
                return True
            name = layer.backing
        return False

    def has_bytes(self, snapshot_id: str) -> bool:
        """The snapshot's chain holds real bytes (the API docstring says which); False if unknown."""
        with self._lock:
            return self._chain_has_bytes(self._snapshots.get(snapshot_id))

    def volume_has_bytes(self, volume_id: str) -> bool:
        with self._lock:
            return self._chain_has_bytes(self._volumes.get(volume_id))

    def snapshot_chain(self, snapshot_id: str) -> list[str]:
        with self._lock:
            name = self._snapshots.get(snapshot_id)
            if name is None:
                raise KeyError(f"snapshot {snapshot_id} is not in the twin's store")
            self._made(name)
            chain = []
            while name is not None:
                chain.append(self._layers[name].path)
                name = self._layers[name].backing
            return chain

    def snapshot_size(self, snapshot_id: str) -> int:
        with self._lock:
            name = self._snapshots.get(snapshot_id)
            if name is None:
                raise KeyError(f"snapshot {snapshot_id} is not in the twin's store")
            return self._layers[name].size

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self._lock:
            self._drop_snapshot(snapshot_id)

    # -- live VMs -------------------------------------------------------------------------------

    def register_live_freezer(self, volume_id: str, fn: Callable[[str], None]) -> None:
        with self._lock:
            self._freezers[volume_id] = fn
            self.mark_written(volume_id)

    def mark_written(self, volume_id: str) -> None:
        """A VM has the volume open: whatever it writes is real bytes. The layer it writes into is the
        volume's current one (a live snapshot freezes it and puts an overlay on it)."""
        with self._lock:
            name = self._volumes.get(volume_id)
            if name is not None:
                self._layers[name].data = True

    def unregister_live_freezer(self, volume_id: str) -> None:
        with self._lock:
            self._freezers.pop(volume_id, None)

    # -- the whole store ------------------------------------------------------------------------

    def disk_usage(self) -> int:
        """Bytes the store's files take on disk (allocated blocks, not sizes)."""
        total = 0
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                try:
                    total += os.stat(os.path.join(dirpath, f)).st_blocks * 512
                except FileNotFoundError:
                    pass
        return total

    def reset(self) -> None:
        with self._lock:
            self._volumes.clear()
            self._snapshots.clear()
            self._freezers.clear()
            for layer in self._layers.values():
                if layer.made and not layer.external:
                    remove_file(layer.path)
            self._layers.clear()

    def close(self) -> None:
        with self._lock:
            self._layers.clear()
            self._volumes.clear()
            self._snapshots.clear()
            self._freezers.clear()
            shutil.rmtree(self.root, ignore_errors=True)


def open_store(parent: str | None = None) -> Store:
    """Make the process-wide store in a new run directory (removing dead emulators' run dirs)."""
    global _STORE
    tool = qemu_img()
    parent = parent or runs_root()
    os.makedirs(parent, exist_ok=True)
    remove_dead_runs(parent)
    root = tempfile.mkdtemp(prefix="run-", dir=parent)
    os.makedirs(os.path.join(root, "layers"))
    # Written whole then renamed: a concurrent start's remove_dead_runs must never see an empty or
    # half-written pid file (it would take this live run for a dead one and remove it).
    with open(os.path.join(root, "pid.tmp"), "w") as f:
        f.write(f"{os.getpid()} {_start_time(os.getpid())}\n")
    os.replace(os.path.join(root, "pid.tmp"), os.path.join(root, "pid"))
    _STORE = Store(root=root, qemu_img=tool)
    return _STORE


def close_store() -> None:
    """Remove the run directory (safe to call twice, and when the twin is off)."""
    global _STORE
    s, _STORE = _STORE, None
    if s is not None:
        s.close()
