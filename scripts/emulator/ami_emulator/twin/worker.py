"""The twin's worker: the AL2023 public parameter names a twin image of the worker disk, its instances
are worker VMs, SSM Run Command goes through their agent, and EBS volumes hot-plug into them.

- **The worker image.** ami-factory finds its worker through the public SSM parameter
  `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64` (providers/worker/
  instance.ts; "Query for the latest Amazon Linux AMI IDs using AWS Systems Manager Parameter
  Store", https://docs.aws.amazon.com/linux/al2023/ug/ec2.html). moto answers it from its recorded
  list of Amazon's image ids; in twin mode GetParameter(s) of an AL2023 x86_64 parameter answers
  the id of a twin image made on first use per region: an HVM x86_64 image whose root snapshot is
  the cached worker disk (`setup.sh --twin`, twin_worker/), adopted into the store without a copy.
  The image carries `_amf_twin_worker` (the WorkerDisk), so its instances boot as workers
  (twin/vm.py: the disk's kernel booted directly, the agent's port, free PCIe root ports). arm64
  parameters keep moto's answer (the twin runs qemu-system-x86_64 only). The twin worker is
  Debian, not Amazon Linux: what the guest scripts need (their tools) is what counts.
- **SSM.** A worker VM's agent stands in for the SSM agent (twin/agent_channel.py):
  DescribeInstanceInformation lists the instance (Online) only once its agent said ready, as an
  instance shows there once its agent registered ("DescribeInstanceInformation", SSM API
  Reference); SendCommand to it before that fails with InvalidInstanceId, as for an unregistered
  instance ("SendCommand": InvalidInstanceId, "The SSM Agent isn't running" / not registered);
  an instance with a VM but no agent (a launched image) never registers. SendCommand runs
  AWS-RunShellScript's `commands` on the worker with its `workingDirectory` and `executionTimeout`;
  GetCommandInvocation / ListCommandInvocations / ListCommands report Pending until the agent
  started it, InProgress while it runs (both outputs empty: they are posted when the plugin ends),
  then Success / Failed (the exit status as ResponseCode) / TimedOut (StatusDetails
  ExecutionTimedOut) / Cancelled (CancelCommand) with StandardOutputContent the first 24,000 and
  StandardErrorContent the first 8,000 characters ("GetCommandInvocation", SSM API Reference,
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html).
  A worker whose agent or VM went away fails its running commands (Failed, ResponseCode -1, the
  reason on stderr). The recorded mode's SsmRules are not consulted for worker VMs.
- **Network.** A worker VM reaches its instance metadata (IMDSv2 as its MetadataOptions say, its
  instance profile's role credentials) and S3, nothing else (twin/network.py).
- **Attach = hot-plug.** AttachVolume of a volume to a running worker VM hot-plugs its current
  qcow2 (store.volume_path) as an NVMe controller whose serial is the volume id without its dash
  ("Amazon EBS and NVMe", EBS User Guide); DetachVolume unplugs it and returns once the guest let
  it go. While attached, CreateSnapshot of the volume freezes through the VM
  (store.register_live_freezer -> Vm.freeze_volume). Only Nitro worker types: a worker launched
  with a Xen instance type (t2, m4, c4, ...) is refused at RunInstances with
  InvalidParameterCombination (the twin has no Xen block device to attach as /dev/sdX).
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import sys
import threading
from typing import Any

from ..ec2_boot import _instance_type_info
from ..ec2_models import _ec2_backend
from ..patching import APPLIED, _need
from . import vm as vms
from .agent_channel import AgentNotReady
from .store import store
from .worker_disk import WorkerDisk, WorkerDiskMissing, worker_disk
from .worker_resume import SavedState, resume_when_loaded, saved_state

WORKER_PARAMETER = re.compile(r"^/aws/service/ami-amazon-linux-latest/al2023-ami-[\w.-]*-x86_64$")
WORKER_IMAGE_NAME = "ami-factory-twin-worker"
# How long a worker's agent has to say ready after qemu started (a TCG boot takes 30-60 s alone;
# on two loaded cores several minutes). The provider's own wait for the agent is longer.
READY_TIMEOUT = 900.0

_IMAGES: dict[tuple[str, str], str] = {}  # (account, region) -> the worker image's id
_LOCK = threading.Lock()


def is_worker_parameter(name: str) -> bool:
    return bool(WORKER_PARAMETER.match(name.split(":")[0]))


def worker_image(ec2: Any, disk: WorkerDisk | None = None) -> str:
    """The region's twin worker image (made on first use): HVM, x86_64, legacy BIOS, root /dev/xvda
    on a snapshot whose layer is the cached worker disk."""
    key = (ec2.account_id, ec2.region_name)
    with _LOCK:
        image_id = _IMAGES.get(key)
        if image_id is not None and image_id in ec2.amis:
            return image_id
        s = store()
        if s is None:
            raise RuntimeError("the twin's store is not open")
        disk = disk or worker_disk()
        image = ec2.register_image(WORKER_IMAGE_NAME, "The twin's worker: Debian with the guest scripts' tools and an agent "
                                                      "standing in for the SSM agent (scripts/emulator/twin_worker)")
        snapshot_id = image.ebs_snapshot.id
        size = s.adopt_snapshot(snapshot_id, disk.disk)
        image.ebs_snapshot.volume.size = -(-size // 1024**3)  # the snapshot's VolumeSize: the disk's
        gib = max(8, image.ebs_snapshot.volume.size)
        image.architecture = "x86_64"
        image.virtualization_type = "hvm"
        image.root_device_name = "/dev/xvda"
        image.root_device_type = "ebs"
        image.ena_support = True
        image.boot_mode = "legacy-bios"
        image._amf_bdms = [{"DeviceName": "/dev/xvda", "Ebs": {
            "SnapshotId": snapshot_id, "VolumeSize": gib, "DeleteOnTermination": True, "VolumeType": "gp3", "Encrypted": False}}]
        image._amf_twin_worker = disk
        _IMAGES[key] = image.id
        return image.id


def forget_images() -> None:
    with _LOCK:
        _IMAGES.clear()
    AGENT_OFF.clear()
    STATE_DAMAGED.clear()


class NextWorkers:
    """A count of the next worker VMs a fault applies to (control.py's twin/worker-* requests)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.left = 0

    def add(self, n: int) -> None:
        with self.lock:
            self.left += n

    def take(self) -> bool:
        with self.lock:
            if self.left > 0:
                self.left -= 1
                return True
            return False

    def clear(self) -> None:
        with self.lock:
            self.left = 0


# POST /_ami_factory/twin/worker-agent-off {"workers": N}: the next N worker VMs boot with the
# agent's systemd unit masked (kernel command line systemd.mask=), so their SSM agent never
# registers, as a worker whose agent cannot start or reach SSM.
AGENT_OFF = NextWorkers()
# POST /_ami_factory/twin/worker-state-damaged {"workers": N}: the next N workers that would resume
# do so from a truncated copy of the saved state: qemu cannot load it, and the worker cold-boots
# (cold_boot_instead), as one does when a state file went missing or bad under it.
STATE_DAMAGED = NextWorkers()
AGENT_UNIT = "ami-factory-agent.service"


def boot_disk(disk: WorkerDisk) -> WorkerDisk:
    """The worker disk a new worker VM boots (its agent masked when AGENT_OFF says so)."""
    if AGENT_OFF.take():
        return dataclasses.replace(disk, cmdline=f"{disk.cmdline} systemd.mask={AGENT_UNIT}")
    return disk


def _damaged_copy(s: Any, state: SavedState, volume_id: str) -> SavedState:
    path = os.path.join(s.run_dir(), f"damaged-state-{volume_id}")
    with open(state.state, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(1 << 16))  # the header and the start of RAM: the stream ends early
    return dataclasses.replace(state, state=path)


def resumable(s: Any, volume_id: str, disk: WorkerDisk, accel: str, memory_mib: int) -> SavedState | None:
    """The saved post-boot state a new worker resumes from (twin/worker_resume.py), its root volume
    then reading as the state's disk; None: it cold-boots (no current state, a worker with its
    own kernel command line such as worker-agent-off's, a root volume already written, or
    AMI_FACTORY_TWIN_COLD_BOOT). Which one it was never shows in the EC2 or SSM API; the guest
    sees a machine that booted once from its image, as an EC2 instance does."""
    state = saved_state(disk, accel, memory_mib)
    if state is None or not s.interpose(volume_id, state.disk, disk.disk):
        return None
    return _damaged_copy(s, state, volume_id) if STATE_DAMAGED.take() else state


def start_agent(vm: vms.Vm) -> None:
    """Give a worker VM its agent channel; a thread resumes a saved state's VM once it is loaded,
    then waits for the agent's ready (SSM registration)."""
    from .agent_channel import AgentChannel

    vm.agent = AgentChannel(os.path.join(vm.folder, "agent.sock"))
    vm.agent.resumed = vm.spec.resume is not None

    def wait() -> None:
        try:
            if vm.spec.resume is not None:
                try:
                    vm.resumed_in = resume_when_loaded(vm.qmp_path)
                except (OSError, vms.QmpError, TimeoutError, ValueError) as e:
                    if vm.stopped or not cold_boot_instead(vm, str(e)):
                        return
            vm.agent.wait_ready(timeout=READY_TIMEOUT)  # type: ignore[union-attr]
        except (AgentNotReady, OSError):
            pass

    threading.Thread(target=wait, daemon=True, name=f"worker-ready {vm.spec.instance_id}").start()


def start_network(vm: vms.Vm, instance: Any) -> None:
    """The worker's IMDS and S3 (twin/network.py), listening before its qemu starts."""
    from . import network

    disk = vm.spec.worker
    assert disk is not None
    vm.network = network.start(vm.folder, network.moto_metadata(instance), disk.ca_dir, disk.s3_names(),
                               int(os.environ.get("MOTO_PORT") or 0))


def cold_boot_instead(vm: vms.Vm, why: str) -> bool:
    """A worker whose saved state did not load (a state file gone or damaged, qemu exited): start
    it again as a cold boot, its root volume reading as the plain worker disk again (the failed
    resume wrote nothing a user did). The emulator's log says why, once per VM. False when the VM
    cannot boot instead (terminated meanwhile, its volume no longer on the state's disk)."""
    from .agent_channel import AgentChannel

    resume = vm.spec.resume
    print(f"twin: {vm.spec.instance_id} did not resume from the saved worker state ({why}): it cold-boots",
          file=sys.stderr, flush=True)
    with vm._lock:
        if vm.stopped or resume is None:
            return False
        if vm.proc is not None and vm.proc.poll() is None:
            try:
                os.killpg(vm.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            vm.proc.wait(timeout=30)
        s = store()
        if s is None or not s.uninterpose(vm.spec.volume_id, resume.disk):
            return False
        if vm.agent is not None:
            vm.agent.close()
        vm.agent = AgentChannel(os.path.join(vm.folder, "agent.sock"))
        vm.spec = dataclasses.replace(vm.spec, resume=None)
        vm.start()
    if vm.stopped:  # terminated while it started again: its stop saw the old process
        vm.stop()
    return vm.start_error is None


def registered(instance_id: str) -> bool | None:
    """True: a worker VM whose agent said ready; False: a VM without a ready agent; None: no VM (the
    recorded mode's behaviour applies)."""
    vm = vms.get(instance_id)
    if vm is None:
        return None
    return bool(vm.agent is not None and vm.agent.ready is not None and not vm.agent.lost)


# -- SSM ----------------------------------------------------------------------------------------------

def _refresh(command: Any) -> None:
    """Bring a command's worker invocations up to date from their agents."""
    from moto.core.utils import utcnow

    from ..ssm_commands import _summarise

    changed = False
    for inv in command.invocations:
        agent = inv.get("_amf_agent")
        if agent is None or inv["Status"] not in ("Pending", "InProgress"):
            continue
        result = agent.poll(command.command_id)
        if result is None:
            if inv["Status"] == "Pending" and agent.started(command.command_id):
                inv.update(Status="InProgress", StatusDetails="InProgress")
                changed = True
            continue
        stdout, stderr = result.ssm_output()
        details = {"TimedOut": "ExecutionTimedOut"}.get(result.status, result.status)
        inv.update(Status=result.status, StatusDetails=details, ResponseCode=result.exit_code,
                   StandardOutputContent=stdout, StandardErrorContent=stderr,
                   ExecutionEndDateTime=utcnow().isoformat())
        inv["_amf_output"] = result.stdout.decode("utf-8", "replace")
        inv["_amf_stderr"] = result.stderr.decode("utf-8", "replace")
        changed = True
    if changed:
        _summarise(command)


def run_on_worker(command: Any, inv: dict[str, Any]) -> bool:
    """ssm_commands' hook: send an invocation to its worker's agent (True), or leave it to the
    recorded rules (False: the instance has no worker VM)."""
    vm = vms.get(inv["InstanceId"])
    if vm is None or vm.agent is None:
        return False
    params = command.parameters or {}

    def first(key: str, default: str) -> str:
        value = params.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        return str(value) if value not in (None, "") else default

    lines = [str(c) for c in params.get("commands") or []]
    try:
        timeout = float(first("executionTimeout", "3600"))
    except ValueError:
        timeout = 3600.0
    vm.agent.send(command.command_id, lines, working_directory=first("workingDirectory", ""), execution_timeout=timeout)
    inv.update(Status="Pending", StatusDetails="Pending", ResponseCode=-1, StandardOutputContent="",
               StandardErrorContent="", ExecutionEndDateTime="")
    inv["_amf_agent"] = vm.agent
    inv["_amf_output"] = inv["_amf_stderr"] = ""
    return True


def patch_twin_ssm() -> None:
    """The SSM side of the worker (module docstring). Applied after the recorded SSM patches."""
    from moto.core.responses import ActionResult
    from moto.ssm.models import SimpleSystemManagerBackend
    from moto.ssm.responses import SimpleSystemManagerResponse

    from ..ssm_commands import INVOCATION_RUNNERS, _ssm_error

    name = "twin-ssm"
    for attr in ("get_parameter", "get_parameters", "get_command_by_id", "list_commands", "send_command"):
        _need(hasattr(SimpleSystemManagerBackend, attr), name, f"SimpleSystemManagerBackend.{attr} missing")
    _need(hasattr(SimpleSystemManagerResponse, "describe_instance_information"), name, "the recorded DescribeInstanceInformation patch is missing")
    _need(hasattr(SimpleSystemManagerResponse, "cancel_command"), name, "the recorded CancelCommand patch is missing")

    def point_at_worker(self: Any, names: list[str]) -> None:
        for n in names:
            base = n.split(":")[0]
            if not is_worker_parameter(base):
                continue
            self._parameters._check_loading_status(base)
            versions = self._parameters.get(base) if base in self._parameters else None
            if versions:
                try:
                    image_id = worker_image(_ec2_backend(self.region_name, self.account_id))
                except WorkerDiskMissing as e:
                    # An SSM-shaped error carrying the fix (setup --twin), not moto's HTML 500 page,
                    # so the provider shows it; AWS's own error for a failure on its side.
                    from ..ssm_commands import _ssm_error

                    raise _ssm_error("InternalServerError", f"the twin cannot make its worker image: {e}") from e
                for p in versions:
                    p.value = image_id

    original_get_parameter = SimpleSystemManagerBackend.get_parameter

    def get_parameter(self: Any, name: str) -> Any:
        point_at_worker(self, [name])
        return original_get_parameter(self, name)

    SimpleSystemManagerBackend.get_parameter = get_parameter  # type: ignore[method-assign]

    original_get_parameters = SimpleSystemManagerBackend.get_parameters

    def get_parameters(self: Any, names: list[str]) -> Any:
        point_at_worker(self, list(names or [])[:10])
        return original_get_parameters(self, names)

    SimpleSystemManagerBackend.get_parameters = get_parameters  # type: ignore[method-assign]

    INVOCATION_RUNNERS.append(run_on_worker)

    original_by_id = SimpleSystemManagerBackend.get_command_by_id

    def get_command_by_id(self: Any, command_id: str) -> Any:
        command = original_by_id(self, command_id)
        _refresh(command)
        return command

    SimpleSystemManagerBackend.get_command_by_id = get_command_by_id  # type: ignore[method-assign]

    original_list = SimpleSystemManagerBackend.list_commands

    def list_commands(self: Any, *args: Any, **kwargs: Any) -> Any:
        commands = original_list(self, *args, **kwargs)
        for c in commands:
            _refresh(c)
        return commands

    SimpleSystemManagerBackend.list_commands = list_commands  # type: ignore[method-assign]

    original_send = SimpleSystemManagerBackend.send_command

    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        ids = list(kwargs.get("instance_ids") or [])
        unregistered = [i for i in ids if registered(i) is False]
        if unregistered:
            raise _ssm_error("InvalidInstanceId", f"Instances [[{', '.join(unregistered)}]] not in a valid state for account {self.account_id}")
        return original_send(self, *args, **kwargs)

    SimpleSystemManagerBackend.send_command = send_command  # type: ignore[method-assign]

    original_describe = SimpleSystemManagerResponse.describe_instance_information

    def describe_instance_information(self: Any) -> Any:
        result = original_describe(self)
        items = result.result["InstanceInformationList"]
        result.result["InstanceInformationList"] = [i for i in items if registered(i["InstanceId"]) is not False]
        for i in result.result["InstanceInformationList"]:
            if registered(i["InstanceId"]):
                i.update(PlatformName="Debian GNU/Linux", PlatformVersion="12", ComputerName="ami-factory-worker")
        return result

    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]

    original_cancel = SimpleSystemManagerResponse.cancel_command

    def cancel_command(self: Any) -> ActionResult:
        command = self.ssm_backend.get_command_by_id(self._get_param("CommandId"))  # refreshed
        wanted = self._get_param("InstanceIds") or []
        for inv in command.invocations:
            agent = inv.get("_amf_agent")
            if agent is not None and inv["Status"] in ("Pending", "InProgress") and (not wanted or inv["InstanceId"] in wanted):
                agent.cancel(command.command_id)
        return original_cancel(self)

    SimpleSystemManagerResponse.cancel_command = cancel_command  # type: ignore[attr-defined]
    APPLIED.append(name)


# -- EC2: Xen types refused, attach = hot-plug ------------------------------------------------------

def patch_twin_attach() -> None:
    """AttachVolume / DetachVolume on a worker VM hot-plug (module docstring); RunInstances of the
    worker image with a Xen instance type is refused."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.models.instances import InstanceBackend

    name = "twin-attach"
    _need(hasattr(EBSBackend, "attach_volume") and hasattr(EBSBackend, "detach_volume"), name, "EBSBackend.attach/detach_volume missing")

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        image = self.amis.get(image_id)
        if getattr(image, "_amf_twin_worker", None) is not None:
            itype = kwargs.get("instance_type") or "m1.small"
            if _instance_type_info(itype).get("Hypervisor") != "nitro":
                raise EC2ClientError(
                    "InvalidParameterCombination",
                    f"The twin's worker runs on Nitro instance types only (EBS volumes as NVMe); {itype} is a Xen type: "
                    "set worker.instanceType to a Nitro type such as m6i.large")
        return original_run(self, image_id, count, *args, **kwargs)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]

    original_attach = EBSBackend.attach_volume

    def attach_volume(self: Any, volume_id: str, instance_id: str, device_path: str, *args: Any, **kwargs: Any) -> Any:
        vm = vms.get(instance_id)
        s = store()
        if vm is None or vm.agent is None or s is None:
            return original_attach(self, volume_id, instance_id, device_path, *args, **kwargs)
        volume = self.get_volume(volume_id)
        path = s.volume_path(volume_id) or s.create_volume(volume_id, int(volume.size) * 1024**3, volume.snapshot_id)
        try:
            vm.attach_volume(volume_id, path, int(volume.size) * 1024**3)
        except vms.AttachmentLimit as e:
            raise EC2ClientError("AttachmentLimitExceeded", str(e))
        except (OSError, vms.QmpError) as e:
            raise EC2ClientError("IncorrectState", f"the twin could not hot-plug {volume_id} into {instance_id}: {e}")
        s.register_live_freezer(volume_id, lambda new_path: vm.freeze_volume(volume_id, new_path))
        return original_attach(self, volume_id, instance_id, device_path, *args, **kwargs)

    EBSBackend.attach_volume = attach_volume  # type: ignore[method-assign]

    original_detach = EBSBackend.detach_volume

    def detach_volume(self: Any, volume_id: str, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        answer = original_detach(self, volume_id, instance_id, *args, **kwargs)  # EC2's checks first
        release(volume_id, instance_id or answer.instance.id)
        return answer

    EBSBackend.detach_volume = detach_volume  # type: ignore[method-assign]
    APPLIED.append(name)


def release(volume_id: str, instance_id: str) -> None:
    """Unplug a volume from its worker VM (DetachVolume; a force detach too) and stop freezing
    through the VM. A VM already gone has nothing to unplug."""
    vm = vms.get(instance_id)
    if vm is None or volume_id not in vm.attachments:
        return
    s = store()
    if s is not None:
        s.unregister_live_freezer(volume_id)
    try:
        vm.detach_volume(volume_id)
    except (OSError, vms.QmpError, TimeoutError):
        # The guest did not let go (or qemu is gone): drop it from the VM's books; the file stays
        # the store's (a later attach of the volume hot-plugs it again).
        vm.attachments.pop(volume_id, None)
