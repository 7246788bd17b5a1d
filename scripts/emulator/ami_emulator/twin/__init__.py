"""The twin (AMI_FACTORY_EMULATOR=twin): the parts of EC2 ami-factory touches, with real bytes.

One module per concept:
  store        volumes and snapshots as qcow2 layer files (the API other twin modules use)
  mode         which mode runs (AMI_FACTORY_EMULATOR), the run directory's life
  ec2_volumes  moto's EBS backend patched to keep the store in step (CreateVolume, CreateSnapshot,
               CopySnapshot, DeleteVolume, DeleteSnapshot, moto's reset)
  imports      ImportSnapshot / DescribeImportSnapshotTasks from an object in the emulator's S3
  ebs_direct   the EBS direct APIs that read a snapshot's bytes (ListSnapshotBlocks,
               GetSnapshotBlock, ListChangedBlocks)
Nothing outside scripts/emulator knows which mode runs."""
