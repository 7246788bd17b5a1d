"""EC2 images (moto's Ami model): an image carries its own block device mappings, RootDeviceType
ebs (moto says 'standard', not a real value), Hypervisor xen, PlatformDetails/UsageOperation and
typed ProductCodes as EC2 reports them, and the attributes DescribeImageAttribute reads (moto
answers HTTP 500). The image patches (ec2_images, ec2_image_attributes) build on it."""

from __future__ import annotations

import copy
import inspect
from typing import Any

from .patching import APPLIED, _has_params, _need


def patch_ami_model() -> None:
    """Shared model support for the image patches below.
    - moto's Ami.block_device_mappings is a fixed 15 GiB 'standard' volume: let an image carry its
      own mappings (`_amf_bdms`), else keep moto's.
    - moto gives RootDeviceType 'standard' (not a real value) to every image it makes: 'ebs'.
    - DescribeImageAttribute(imdsSupport/tpmSupport/uefiData) read attributes moto never sets
      (HTTP 500): default them to None.
    - ProductCodes are ids only in moto (always 'marketplace' and serialized empty): serialize them
      with their types.
    - Hypervisor (xen), PlatformDetails and UsageOperation, which EC2 reports for every image."""
    from moto.ec2.models.amis import Ami

    name = "ami-model"
    from moto.ec2.responses.amis import AmisResponse

    # The patches read request parameters by their API model names (TagSpecifications,
    # BlockDeviceMappings), which moto's EC2 responses do since 5.1.17; older ones read query names.
    try:
        model_names = '"TagSpecifications"' in inspect.getsource(AmisResponse.create_image)
    except (OSError, TypeError):
        model_names = False
    _need(model_names, name, "moto's EC2 responses do not read parameters by model name (moto older than 5.1.17?)")
    _need(isinstance(Ami.__dict__.get("block_device_mappings"), property), name, "Ami.block_device_mappings is not a property")
    _need(_has_params(Ami.__init__, "root_device_type", "root_device_name", "product_codes"), name, "Ami.__init__ signature changed")
    _need(not hasattr(Ami, "Meta") or hasattr(Ami.Meta, "__dict__"), name, "Ami.Meta is not a class")

    original_bdms = Ami.__dict__["block_device_mappings"].fget

    def block_device_mappings(self: Any) -> list[dict[str, Any]]:
        bdms = getattr(self, "_amf_bdms", None)
        return copy.deepcopy(bdms) if bdms is not None else original_bdms(self)

    Ami.block_device_mappings = property(block_device_mappings)

    original_init = Ami.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.root_device_type == "standard":
            self.root_device_type = "ebs"
        if self.hypervisor is None:  # EC2 reports xen for every image (nitro instances included)
            self.hypervisor = "xen"

    Ami.__init__ = __init__  # type: ignore[method-assign]

    for attr in ("imds", "tmp", "uefi", "lld", "ramdisk", "ramdisk_id", "deprecation_time",
                 "ena_support", "sriov_net_support", "imds_support", "tpm_support", "uefi_data",
                 "source_image_id", "source_image_region", "state_reason"):
        if not hasattr(Ami, attr):
            setattr(Ami, attr, None)

    # PlatformDetails/UsageOperation (billing), which moto leaves out.
    if not hasattr(Ami, "platform_details"):
        Ami.platform_details = property(lambda self: "Windows" if self.platform == "windows" else "Linux/UNIX")
    if not hasattr(Ami, "usage_operation"):
        Ami.usage_operation = property(lambda self: "RunInstances:0002" if self.platform == "windows" else "RunInstances")

    def _amf_product_codes(self: Any) -> list[dict[str, str]]:
        types = getattr(self, "_amf_product_code_types", {})
        return [{"ProductCodeId": c, "ProductCodeType": types.get(c, "marketplace")} for c in sorted(self.product_codes)]

    Ami._amf_product_codes = property(_amf_product_codes)
    meta = Ami.__dict__.get("Meta")
    if meta is None:
        meta = type("Meta", (), {})
        Ami.Meta = meta
    aliases = dict(getattr(meta, "serialization_aliases", {}) or {})
    _need("ProductCodes" not in aliases, name, "Ami.Meta already aliases ProductCodes")
    aliases["ProductCodes"] = "_amf_product_codes"
    meta.serialization_aliases = aliases
    APPLIED.append(name)
