"""The twin's store in-process: copy-on-write layers, what deleting frees, live freezes, run dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from ami_emulator.twin import store as store_mod
from ami_emulator.twin.blocks import BLOCK_SIZE, SnapshotBlocks

MIB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[store_mod.Store]:
    s = store_mod.open_store(str(tmp_path / "runs"))
    yield s
    store_mod.close_store()


def write(path: str, offset: int, length: int, pattern: int) -> None:
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset} {length}", path],
                   check=True, capture_output=True)


def blocks(s: store_mod.Store, snapshot_id: str) -> SnapshotBlocks:
    return SnapshotBlocks(s.qemu_img, s.snapshot_chain(snapshot_id))


def layer_files(s: store_mod.Store) -> list[str]:
    return sorted(os.listdir(os.path.join(s.run_dir(), "layers")))


def test_a_snapshot_keeps_the_bytes_of_its_moment(store: store_mod.Store) -> None:
    path = store.create_volume("vol-a", 8 * MIB)
    write(path, 0, BLOCK_SIZE, 0x11)
    store.create_snapshot("snap-a", "vol-a")
    assert store.volume_path("vol-a") != path  # the volume moved on to a new overlay
    write(store.volume_path("vol-a"), 0, 4096, 0x22)
    write(store.volume_path("vol-a"), 3 * BLOCK_SIZE, 4096, 0x33)

    snap = blocks(store, "snap-a")
    assert store.snapshot_size("snap-a") == 8 * MIB
    assert snap.data_blocks() == [0]
    assert snap.read(0) == bytes([0x11]) * BLOCK_SIZE
    store.create_snapshot("snap-b", "vol-a")
    later = blocks(store, "snap-b")
    assert later.data_blocks() == [0, 3]
    assert later.read(0)[:4096] == bytes([0x22]) * 4096 and later.read(0)[4096:8192] == bytes([0x11]) * 4096
    assert later.changed_since(snap) == [0, 3]


def test_a_volume_from_a_snapshot_outlives_it_and_files_go_with_the_last_user(store: store_mod.Store) -> None:
    write(store.create_volume("vol-a", 4 * MIB), BLOCK_SIZE, BLOCK_SIZE, 0x44)
    store.create_snapshot("snap-a", "vol-a")
    store.delete_volume("vol-a")
    store.create_volume("vol-b", 8 * MIB, "snap-a")
    store.delete_snapshot("snap-a")
    assert store.snapshot_path("snap-a") is None
    store.create_snapshot("snap-b", "vol-b")  # the bytes of the deleted snapshot are still the volume's
    assert blocks(store, "snap-b").read(1) == bytes([0x44]) * BLOCK_SIZE
    store.delete_snapshot("snap-b")
    assert layer_files(store)  # vol-b still stands on them
    store.delete_volume("vol-b")
    assert layer_files(store) == []


def test_disk_use_follows_bytes_written_not_volume_size(store: store_mod.Store) -> None:
    path = store.create_volume("vol-big", 64 << 30)  # a 64 GiB volume
    write(path, 10 << 30, 2 * MIB, 0x55)
    store.create_snapshot("snap-big", "vol-big")
    assert store.disk_usage() < 16 * MIB
    assert blocks(store, "snap-big").data_blocks() == [(10 << 30) // BLOCK_SIZE + i for i in range(4)]


def test_lazy_volumes_and_snapshots_make_no_file_until_asked(store: store_mod.Store) -> None:
    store.add_volume("vol-lazy", 15 << 30)
    store.create_snapshot("snap-lazy", "vol-lazy")
    store.delete_volume("vol-lazy")
    assert layer_files(store) == []
    assert blocks(store, "snap-lazy").data_blocks() == []  # made when read: an empty 15 GiB disk
    store.delete_snapshot("snap-lazy")
    assert layer_files(store) == []


def test_a_live_freezer_freezes_through_the_vm(store: store_mod.Store) -> None:
    path = store.create_volume("vol-live", 4 * MIB)
    write(path, 0, BLOCK_SIZE, 0x66)
    calls: list[str] = []

    def freeze(new_path: str) -> None:  # what QMP blockdev-snapshot-sync does to the VM's disk
        assert not os.path.exists(new_path)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", path, "-F", "qcow2", new_path], check=True)
        calls.append(new_path)

    store.register_live_freezer("vol-live", freeze)
    with pytest.raises(RuntimeError, match="running VM"):
        store.write_pattern("vol-live", 0, 512, 1)
    store.create_snapshot("snap-live", "vol-live")
    assert calls == [store.volume_path("vol-live")]
    assert store.snapshot_path("snap-live") == path
    write(store.volume_path("vol-live"), 0, BLOCK_SIZE, 0x77)
    assert blocks(store, "snap-live").read(0) == bytes([0x66]) * BLOCK_SIZE

    def broken(new_path: str) -> None:
        raise RuntimeError("QMP: device busy")

    store.register_live_freezer("vol-live", broken)
    with pytest.raises(RuntimeError, match="device busy"):
        store.create_snapshot("snap-failed", "vol-live")
    assert store.snapshot_path("snap-failed") is None
    store.unregister_live_freezer("vol-live")
    store.write_pattern("vol-live", 0, 512, 1)


def test_close_removes_the_run_dir_and_dead_runs_are_swept(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = root / "run-dead"
    stale.mkdir(parents=True)
    (stale / "pid").write_text(f"{dead.pid} 1\n")
    alive = root / "run-alive"
    alive.mkdir()
    (alive / "pid").write_text(f"{os.getpid()} {store_mod._start_time(os.getpid())}\n")
    s = store_mod.open_store(str(root))
    assert not stale.exists() and alive.exists()
    s.create_volume("vol-x", MIB)
    store_mod.close_store()
    assert not os.path.exists(s.run_dir())
    assert store_mod.store() is None


def test_has_bytes_follows_real_bytes_through_snapshots_copies_and_overlays(store: store_mod.Store, tmp_path: Path) -> None:
    # Nobody wrote it (moto's stand-in snapshots of its own images are such): no bytes, down the line too.
    store.add_volume("vol-empty", MIB)
    store.create_snapshot("snap-empty", "vol-empty")
    store.copy_snapshot("snap-empty-copy", "snap-empty")
    assert not store.has_bytes("snap-empty") and not store.has_bytes("snap-empty-copy")
    assert not store.has_bytes("snap-unknown")
    # Written through the test endpoint: the snapshot, its copy, a volume from it and that volume's snapshot.
    store.add_volume("vol-w", MIB)
    assert not store.volume_has_bytes("vol-w")
    store.write_pattern("vol-w", 0, 512, 7)
    assert store.volume_has_bytes("vol-w")
    store.create_snapshot("snap-w", "vol-w")
    store.copy_snapshot("snap-w-copy", "snap-w")
    store.add_volume("vol-from-w", MIB, "snap-w")
    store.create_snapshot("snap-w-2", "vol-from-w")
    assert all(store.has_bytes(s) for s in ("snap-w", "snap-w-copy", "snap-w-2"))
    # A volume a VM had open: whatever it wrote counts (the freezer marks it).
    store.add_volume("vol-vm", MIB, "snap-empty")
    store.register_live_freezer("vol-vm", lambda new_path: None)
    store.unregister_live_freezer("vol-vm")
    store.create_snapshot("snap-vm", "vol-vm")
    assert store.has_bytes("snap-vm") and not store.has_bytes("snap-empty")
    store.add_volume("vol-hotplugged", MIB)
    store.mark_written("vol-hotplugged")
    store.create_snapshot("snap-hotplugged", "vol-hotplugged")
    assert store.has_bytes("snap-hotplugged")
    # Imported from a file (the worker disk's way in too).
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * MIB)
    store.import_snapshot("snap-imported", str(raw), "raw")
    assert store.has_bytes("snap-imported")


def test_a_concurrent_start_never_takes_a_starting_run_for_a_dead_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another emulator's remove_dead_runs at the moment this one writes its pid file must not see
    an empty pid file (it would remove this live run's directory)."""
    root = tmp_path / "runs"
    real = store_mod._start_time

    def start_time_while_another_starts(pid: int) -> str | None:
        store_mod.remove_dead_runs(str(root))
        return real(pid)

    monkeypatch.setattr(store_mod, "_start_time", start_time_while_another_starts)
    s = store_mod.open_store(str(root))
    try:
        assert os.path.isdir(os.path.join(s.run_dir(), "layers"))
        assert open(os.path.join(s.run_dir(), "pid")).read().split()[0] == str(os.getpid())
    finally:
        store_mod.close_store()


def test_a_missing_qemu_img_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(store_mod.MissingTool, match="qemu-utils"):
        store_mod.open_store(str(tmp_path / "runs"))


def test_a_client_token_starts_one_task_even_when_retries_race() -> None:
    import threading

    from ami_emulator.twin.imports import ImportTasks

    tasks = ImportTasks()
    added: list[bool] = []
    barrier = threading.Barrier(8)

    def retry(n: int) -> None:
        barrier.wait()
        task = {"ImportTaskId": f"import-snap-{n}", "SnapshotTaskDetail": {}}
        added.append(tasks.get_or_add("123456789012", "us-east-1", task, "build-1")[1])

    threads = [threading.Thread(target=retry, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert added.count(True) == 1 and len(tasks.list("123456789012", "us-east-1")) == 1


def test_a_failure_making_the_imported_snapshot_leaves_nothing_behind(store: store_mod.Store, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from ami_emulator.twin import imports

    class Backend:  # moto's EBS backend as finish_converted uses it, failing at CreateSnapshot
        account_id, region_name = "123456789012", "us-east-1"

        def __init__(self) -> None:
            self.volumes: dict[str, object] = {}
            self.snapshots: dict[str, object] = {}

        def create_volume(self, size: int, zone_name: str) -> SimpleNamespace:
            v = SimpleNamespace(id="vol-0abc", size=size)
            self.volumes[v.id] = v
            store.add_volume(v.id, size << 30)
            return v

        def create_snapshot(self, volume_id: str, description: str) -> None:
            raise RuntimeError("moto failed")

    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\1" * MIB)
    task = {"ImportTaskId": "import-snap-1", "SnapshotTaskDetail": {"Status": "active"}}
    backend = Backend()
    imports.IMPORT_TASKS.clear()
    imports.IMPORT_TASKS.add(backend.account_id, backend.region_name, task, None)
    virtual = store.import_snapshot(imports._staging_id(task), str(raw), "raw")
    assert imports.IMPORT_TASKS.mark_converted(backend.account_id, backend.region_name, backend, task,
                                               imports._staging_id(task), virtual, MIB)
    imports.finish_converted(backend.account_id, backend.region_name)
    detail = imports.IMPORT_TASKS.list(backend.account_id, backend.region_name)[0]["SnapshotTaskDetail"]
    assert detail["Status"] == "deleted" and "moto failed" in detail["StatusMessage"]
    assert backend.volumes == {} and backend.snapshots == {}
    assert not store.has_snapshot(imports._staging_id(task)) and store.volume_path("vol-0abc") is None
    assert layer_files(store) == []
    imports.IMPORT_TASKS.clear()


def test_a_fresh_volume_reads_as_an_interposed_file_which_the_store_never_removes(store: store_mod.Store, tmp_path: Path) -> None:
    # The worker disk (adopted, outside the store) and a saved worker state's disk: an overlay on it.
    base, saved = str(tmp_path / "base.qcow2"), str(tmp_path / "saved.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, str(4 * MIB)], check=True)
    write(base, 0, 4096, 0x11)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, saved], check=True)
    write(saved, 4096, 4096, 0x22)
    store.adopt_snapshot("snap-w", base)
    path = store.create_volume("vol-w", 8 * MIB, "snap-w")
    assert not store.interpose("vol-w", saved, str(tmp_path / "other.qcow2")), "only on the file it was saved over"
    assert store.interpose("vol-w", saved, base)
    assert store.volume_path("vol-w") == path
    store.create_snapshot("snap-v", "vol-w")
    snap = blocks(store, "snap-v")
    assert snap.read(0)[:8192] == bytes([0x11]) * 4096 + bytes([0x22]) * 4096, "the boot's writes are the volume's"
    assert store.snapshot_size("snap-v") == 8 * MIB
    # Written (or booted once) already: never again.
    store.create_volume("vol-x", 8 * MIB, "snap-w")
    store.mark_written("vol-x")
    assert not store.interpose("vol-x", saved, base)
    store.delete_volume("vol-x")
    store.delete_volume("vol-w")
    store.delete_snapshot("snap-v")
    store.delete_snapshot("snap-w")
    assert layer_files(store) == [] and os.path.exists(saved) and os.path.exists(base)
