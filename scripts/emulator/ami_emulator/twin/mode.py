"""Which mode the emulator runs (AMI_FACTORY_EMULATOR) and the life of the twin's run directory.

  recorded (default)  moto with ami-factory's patches: SSM answers and consoles are scripted
  twin                the same, and volumes/snapshots hold real bytes (files in a run directory)

In twin mode start() opens the store (twin/store.py) after checking qemu-img, and the run directory
goes when the emulator stops: stop() on SIGTERM/SIGINT/stdin EOF (launcher), and atexit for any
other normal exit. A run directory left by an emulator killed outright is removed at the next start."""

from __future__ import annotations

import atexit
import os

from . import store as store_mod

MODES = ("recorded", "twin")

DESCRIPTIONS = {
    "recorded": "SSM answers and consoles are scripted (the recorded mode; AMI_FACTORY_EMULATOR=twin "
                "for volumes and snapshots with real bytes)",
    "twin": "volumes and snapshots are qcow2 files in {run_dir}; an HVM image with twin bytes boots in qemu "
            "when launched (its console is real); the AL2023 worker image boots the twin worker, whose agent runs SSM commands "
            "and into which AttachVolume hot-plugs volumes",
}


class ModeError(RuntimeError):
    pass


def mode() -> str:
    value = (os.environ.get("AMI_FACTORY_EMULATOR") or "recorded").strip()
    if value not in MODES:
        raise ModeError(f"AMI_FACTORY_EMULATOR={value!r} is not a mode: use 'recorded' (default) or 'twin'")
    return value


def start(which: str) -> str:
    """Prepare the mode; returns the line the launcher prints on stderr. Raises store.MissingTool."""
    if which == "twin":
        s = store_mod.open_store()
        atexit.register(store_mod.close_store)
        return f"mode twin: {DESCRIPTIONS['twin'].format(run_dir=s.run_dir())}"
    return f"mode recorded: {DESCRIPTIONS['recorded']}"


def stop() -> None:
    from .vm import stop_all

    stop_all()  # the VMs first: they have the store's files open
    store_mod.close_store()
