"""The twin (AMI_FACTORY_EMULATOR=twin): the parts of EC2 ami-factory touches, with real bytes.

One module per concept:
  store        volumes and snapshots as qcow2 layer files (the API other twin modules use)
  mode         which mode runs (AMI_FACTORY_EMULATOR), the run directory's life
  ec2_volumes  moto's EBS backend patched to keep the store in step (CreateVolume, CreateSnapshot,
               CopySnapshot, DeleteVolume, DeleteSnapshot, moto's reset)
  imports      ImportSnapshot / DescribeImportSnapshotTasks from an object in the emulator's S3
  blocks       a snapshot's bytes in EBS's 512 KiB blocks (read from the qcow2 layers)
  ebs_direct   the EBS direct APIs that read a snapshot's bytes (ListSnapshotBlocks,
               GetSnapshotBlock, ListChangedBlocks)
  vm           an instance as a qemu VM (command line, QMP, console, status checks)
  instances    launch = boot: RunInstances, DescribeInstanceStatus, GetConsoleOutput, Stop/Start/
               Reboot/TerminateInstances of an image with twin bytes act on its VM
  worker_disk  the worker machine: its cached disk, its qemu command line, NVMe hot-plug over QMP
  worker_resume a worker VM resumed from the post-boot state setup.sh --twin saved (seconds, not a boot)
  agent_channel the host's end of a worker's agent (SSM Run Command over virtio-serial)
  network      a worker's network: IMDS and S3 only (qemu restricted user networking, guestfwd
               through guestfwd_relay to the emulator's IMDS stand-in and a TLS-ending S3 relay)
  worker       the worker image behind the AL2023 public parameter, SSM through the agent,
               AttachVolume/DetachVolume as hot-plug into the worker VM
Nothing outside scripts/emulator knows which mode runs."""


def patch_twin() -> None:
    """The twin's patches, on top of the recorded mode's (launcher.apply_patches, before the
    dispatch cache). The store must be open (mode.start)."""
    from .ebs_direct import patch_ebs_direct_reads
    from .ec2_volumes import patch_reset, patch_volume_files
    from .imports import IMPORT_TASKS, patch_import_snapshot
    from .instances import patch_twin_instances
    from .worker import forget_images, patch_twin_attach, patch_twin_ssm

    patch_volume_files()
    patch_import_snapshot()
    patch_ebs_direct_reads()
    patch_reset(IMPORT_TASKS.clear, forget_images)
    patch_twin_instances()  # after patch_reset: its reset stops the VMs before the store's files go
    patch_twin_ssm()
    patch_twin_attach()
