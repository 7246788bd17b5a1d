"""The public Amazon Linux 2023 images that the SSM parameters
/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{x86_64,arm64} name, the workers'
default image. moto answers those parameters with AMI ids (moto/ssm/resources) whose images it loads
only with its default images (not with MOTO_AMIS_PATH, `npm start`, nor MOTO_EC2_LOAD_DEFAULT_AMIS=
false, the tests), and then with its fixed 15 GiB 'standard' mapping that is not deleted on
termination. On AWS the parameter's image always exists. Here each region's AL2023 parameters name images that exist,
with AL2023's root mapping: RootDeviceName /dev/xvda and one EBS volume there, 8 GiB gp3 from
Amazon's snapshot, deleted on termination (as DescribeImages shows the al2023-ami-* images; Amazon
Linux 2023 User Guide, "AL2023 on Amazon EC2" / "Launching AL2023 using the SSM parameter"), so that
a launch mapping that only sets Encrypted on /dev/xvda keeps the rest (EC2 User Guide, "Block device
mappings": update the AMI's block device mapping at launch)."""

from __future__ import annotations

from typing import Any

from .ec2_models import _drop_auto_snapshot, _set_bdms, _snapshot_from
from .patching import APPLIED, _need

AMAZON_OWNER = "137112412989"  # the owner of the al2023-ami-* images (DescribeImages --owners amazon)
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"
AL2023_ROOT_GIB = 8


def al2023_parameters(region: str) -> dict[str, str]:
    """{architecture: AMI id} of moto's AL2023 default-kernel parameters in `region`."""
    from moto.ssm import models as ssm_models
    from moto.utilities.utils import load_resource

    try:
        params = load_resource(ssm_models.__name__, f"resources/ami-amazon-linux-latest/{region}.json")
    except FileNotFoundError:
        return {}
    return {p["Name"][len(AL2023_PARAMETER):]: p["Value"] for p in params
            if p["Name"] in (AL2023_PARAMETER + "x86_64", AL2023_PARAMETER + "arm64")}


def patch_al2023_images() -> None:
    from moto.ec2.models.amis import Ami, AmiBackend

    name = "al2023-images"
    _need(hasattr(AmiBackend, "_load_amis"), name, "AmiBackend._load_amis missing")
    original_load = AmiBackend._load_amis

    def _load_amis(self: Any) -> None:
        original_load(self)
        for arch, ami_id in al2023_parameters(self.region_name).items():
            ami = self.amis.get(ami_id)
            if ami is None:
                ami = Ami(self, ami_id=ami_id, name=f"al2023-ami-kernel-default-{arch}", owner_id=AMAZON_OWNER,
                          owner_alias="amazon", public=True, virtualization_type="hvm", architecture=arch,
                          root_device_type="ebs", root_device_name="/dev/xvda", boot_mode="uefi-preferred",
                          description=f"Amazon Linux 2023 AMI {arch} HVM kernel-6.1")
                self.amis[ami_id] = ami
            _drop_auto_snapshot(ami)
            snap = _snapshot_from(self, AL2023_ROOT_GIB, f"al2023 root of {ami_id}", AMAZON_OWNER, ami_id)
            _set_bdms(ami, [{"DeviceName": "/dev/xvda", "Ebs": {
                "SnapshotId": snap.id, "VolumeSize": AL2023_ROOT_GIB, "VolumeType": "gp3",
                "DeleteOnTermination": True, "Encrypted": False}}])
            ami.root_device_name = "/dev/xvda"

    AmiBackend._load_amis = _load_amis  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_describe_snapshots_owners() -> None:
    """moto ignores DescribeSnapshots' OwnerIds: here `self` is this account's snapshots, `amazon`
    Amazon's (the AL2023 images' above), an id that account's (EC2 API reference,
    DescribeSnapshots: OwnerIds "self, amazon, or AWS account IDs")."""
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    name = "describe-snapshots-owners"
    _need(hasattr(ElasticBlockStore, "describe_snapshots"), name, "ElasticBlockStore.describe_snapshots missing")
    original = ElasticBlockStore.describe_snapshots

    def describe_snapshots(self: Any) -> Any:
        owners = self._get_param("OwnerIds", []) or []
        if not owners:
            return original(self)
        wanted = {self.current_account if o == "self" else AMAZON_OWNER if o == "amazon" else o for o in owners}
        result = original(self)
        _need(isinstance(getattr(result, "result", None), dict), name, "DescribeSnapshots' result is not an ActionResult dict")
        result.result["Snapshots"] = [s for s in result.result["Snapshots"] if s.owner_id in wanted]
        return result

    ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]
    APPLIED.append(name)
