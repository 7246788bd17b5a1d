"""The twin's instances in moto: launch = boot. RunInstances of an HVM image whose root snapshot has
bytes in the twin's store starts a qemu VM (twin/vm.py) on the instance's own volumes (each a
copy-on-write overlay of its snapshot, made by the store when moto creates the volume);
DescribeInstanceStatus, GetConsoleOutput, Stop/Start/Reboot/TerminateInstances act on that VM.

An instance of the twin's worker image (twin/worker.py: what the AL2023 public parameter names in
twin mode) boots as a worker: the worker disk's kernel directly, the agent's channel, PCIe root
ports for hot-plugged volumes (worker_disk.qemu_argv through vm.qemu_argv), and a NIC that reaches
only this instance's metadata service and S3 (twin/network.py).

Instances of images with no twin bytes keep the recorded mode's behaviour (ec2_boot: scripted
BootRules, else moto's): moto's own and demo images, paravirtual images, which need Xen's PV boot
(PV-GRUB), not an HVM firmware, and arm64 images (the twin runs qemu-system-x86_64 only).

Approximations, as EC2 documents the real thing:
- GetConsoleOutput without Latest is EC2's buffered output, "posted shortly after an instance
  transition state" (GetConsoleOutput, EC2 API Reference); the twin posts continuously, so both
  forms return the console as it is now, the most recent 64 KB. Latest=true stays Nitro-only
  (ec2_boot.latest_console_check).
- A guest that powers itself off leaves its instance running with the instance check impaired;
  EC2 would stop or terminate it (InstanceInitiatedShutdownBehavior).
- The status checks are read off the serial console (vm.judge says how).
- Only the root volume is a disk of an image's VM: the instance's other EBS volumes exist (files in
  the store) but are not attached to it; AttachVolume hot-plugs into worker VMs only (worker.py)."""

from __future__ import annotations

import base64
import os
import shutil
import threading
from typing import Any

from ..ec2_boot import _check, _instance_type_info, latest_console_check
from ..patching import APPLIED, _need, _uses_action_result
from . import vm as vms
from .store import Store, store


def _root_snapshot(image: Any) -> str | None:
    root = getattr(image, "root_device_name", None)
    for m in getattr(image, "_amf_bdms", None) or []:
        if m.get("DeviceName") == root and m.get("Ebs"):
            return m["Ebs"].get("SnapshotId")
    return getattr(image, "ebs_snapshot", None) and getattr(image.ebs_snapshot, "id", None)


def boot_plan(s: Store, instance: Any) -> vms.VmSpec | None:
    """The VM an instance runs as, or None when its image has no twin bytes (recorded behaviour)."""
    image = instance.ec2_backend.amis.get(instance.image_id)
    if image is None or getattr(image, "virtualization_type", None) != "hvm":
        return None
    if getattr(image, "architecture", None) not in (None, "x86_64", "i386"):  # qemu-system-x86_64 runs both
        return None
    snapshot_id = _root_snapshot(image)
    if not snapshot_id or not s.has_bytes(snapshot_id):  # moto's stand-in snapshots hold none
        return None
    root = instance.block_device_mapping.get(image.root_device_name)
    if root is None:
        return None
    volume = instance.ec2_backend.get_volume(root.volume_id)
    disk = s.volume_path(volume.id) or s.create_volume(volume.id, int(volume.size) * 1024**3, volume.snapshot_id or snapshot_id)
    nitro = _instance_type_info(instance.instance_type).get("Hypervisor") == "nitro"
    worker = getattr(image, "_amf_twin_worker", None)
    resume = None
    if worker is not None:
        from .worker import boot_disk, resumable

        worker = boot_disk(worker)
        resume = resumable(s, volume.id, worker, _accel(), WORKER_MEMORY_MIB)
    return vms.VmSpec(
        instance_id=instance.id, volume_id=volume.id, disk=disk, resume=resume,
        boot_mode="uefi" if str(getattr(image, "boot_mode", "") or "").lower() == "uefi" else "legacy-bios",
        storage="nvme" if nitro else "xen",
        **({"worker": worker, "memory_mib": WORKER_MEMORY_MIB} if worker is not None else {}),
    )


# The worker's memory: the guest scripts run mkinitramfs, grub-install and rsync (1 GiB, as
# worker_disk.qemu_argv's default).
WORKER_MEMORY_MIB = 1024


_ACCEL: list[str] = []
_FINAL_CONSOLES: dict[str, bytes] = {}  # a terminated instance's last console (EC2 keeps it for a while)
_FINAL_LOCK = threading.Lock()


def _accel() -> str:
    return _ACCEL[0] if _ACCEL else vms.detect_accel()[0]


def boot(s: Store, instance: Any) -> vms.Vm | None:
    spec = boot_plan(s, instance)
    if spec is None:
        return None
    vm = vms.Vm(spec=spec, folder=os.path.join(s.run_dir(), "vms", instance.id), accel=_accel())
    if spec.worker is not None:
        from .worker import start_agent, start_network

        start_agent(vm)
        start_network(vm, instance)
    vms.add(vm)
    vm.start()
    s.register_live_freezer(spec.volume_id, vm.freeze)
    return vm


def shut(instance_id: str, keep_console: bool) -> None:
    vm = vms.remove(instance_id)
    if vm is None:
        return
    s = store()
    if s is not None:
        s.unregister_live_freezer(vm.spec.volume_id)
        for volume_id in list(vm.attachments):
            s.unregister_live_freezer(volume_id)
    vm.stop()
    if keep_console:
        with _FINAL_LOCK:
            _FINAL_CONSOLES[instance_id] = vms.console_output(vm)
    # The VM's own files (console, sockets, logs) go with it; its volumes are the store's.
    shutil.rmtree(vm.folder, ignore_errors=True)


def patch_twin_instances() -> None:
    """Launch = boot (module docstring). Applied in twin mode after ec2_boot's patches, which stay
    for instances without a VM. Checks at start that qemu and the firmware are installed
    (vm.require_host_tools: the error names the Debian packages)."""
    from moto.core.types import Base64EncodedString
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses.general import General
    from moto.moto_api._internal.models import MotoAPIBackend

    name = "twin-instances"
    _need(isinstance(getattr(Instance, "instance_status", None), property), name, "Instance.instance_status is not a property")
    _need(all(hasattr(Instance, m) for m in ("terminate", "stop", "start", "reboot")), name, "Instance.terminate/stop/start/reboot missing")
    _need(hasattr(InstanceBackend, "run_instances"), name, "InstanceBackend.run_instances missing")
    _need(_uses_action_result(General.get_console_output), name, "General.get_console_output changed")
    _need(hasattr(MotoAPIBackend, "reset"), name, "MotoAPIBackend.reset missing")
    vms.require_host_tools()
    _ACCEL[:] = [vms.detect_accel()[0]]

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        reservation = original_run(self, image_id, count, *args, **kwargs)
        s = store()
        if s is not None:
            for instance in reservation.instances:
                boot(s, instance)
        return reservation

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]

    def status_of(prop: property, which: str) -> property:
        def getter(self: Any) -> dict[str, Any]:
            vm = vms.get(self.id) if self.state_code == 16 else None
            if vm is None:
                return prop.fget(self)  # type: ignore[misc]
            health = vm.health()
            return _check(health.system if which == "system" else health.instance)

        return property(getter)

    Instance.instance_status = status_of(Instance.instance_status, "instance")  # type: ignore[method-assign,assignment]
    Instance.system_status = status_of(Instance.system_status, "system")  # type: ignore[method-assign,assignment]

    original_console = General.get_console_output

    def get_console_output(self: Any) -> Any:
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        vm = vms.get(instance.id)
        with _FINAL_LOCK:
            final = _FINAL_CONSOLES.get(instance.id)
        if vm is None and final is None:
            return original_console(self)
        latest_console_check(instance, str(self._get_param("Latest", False)).lower() == "true")
        if vm is not None:
            vm.exit_code()  # notes qemu's own message on the console once it ended
            text = vms.console_output(vm)
        else:
            text = final or b""
        result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
        if text:
            result["Output"] = Base64EncodedString(base64.b64encode(text).decode("ascii"))
        return ActionResult(result)

    General.get_console_output = get_console_output  # type: ignore[method-assign]

    # TerminateInstances and StopInstances end the VM before moto deletes the volumes its qemu has
    # open (the store removes a DeleteOnTermination volume's file through moto's delete_volume).
    original_terminate = Instance.terminate

    def terminate(self: Any) -> Any:
        shut(self.id, keep_console=True)
        return original_terminate(self)

    Instance.terminate = terminate  # type: ignore[method-assign]

    original_stop = Instance.stop

    def stop(self: Any) -> Any:
        shut(self.id, keep_console=True)
        return original_stop(self)

    Instance.stop = stop  # type: ignore[method-assign]

    original_start = Instance.start

    def start(self: Any) -> Any:
        answer = original_start(self)
        s = store()
        if s is not None and vms.get(self.id) is None:
            with _FINAL_LOCK:
                _FINAL_CONSOLES.pop(self.id, None)
            boot(s, self)
        return answer

    Instance.start = start  # type: ignore[method-assign]

    original_reboot = Instance.reboot

    def reboot(self: Any) -> Any:
        vm = vms.get(self.id)
        if vm is not None:
            try:
                vm.control("system_reset")
            except (OSError, vms.QmpError, ValueError):
                pass
        return original_reboot(self)

    Instance.reboot = reboot  # type: ignore[method-assign]

    original_reset = MotoAPIBackend.reset

    def reset(self: Any) -> None:
        vms.stop_all()
        with _FINAL_LOCK:
            _FINAL_CONSOLES.clear()
        original_reset(self)

    MotoAPIBackend.reset = reset  # type: ignore[method-assign]
    APPLIED.append(name)
