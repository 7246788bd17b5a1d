#!/usr/bin/env python3
"""ami-factory's moto launcher: moto's server (all services, threaded werkzeug, like `moto_server`)
with the patches that close the moto gaps which matter to ami-factory, plus a small control API.

    python3 scripts/emulator/moto_server.py --port N [--host 127.0.0.1] [--exit-on-stdin-eof] [--verbose]

Prints exactly one line `ready http://HOST:PORT` on stdout once the socket accepts connections
(`--port 0` picks a free port and reports it there). Exits 0 on SIGTERM/SIGINT, and with
`--exit-on-stdin-eof` also when its stdin closes (the parent died: a watchdog for test harnesses).
MOTO_EC2_LOAD_DEFAULT_AMIS and MOTO_AMIS_PATH are read by moto itself, as moto_server does.

Every patch is a monkeypatch applied at import time (nothing in site-packages is edited). Each one
first checks the moto internals it relies on (`_need`); a moto whose internals changed makes the
launcher exit non-zero at start-up naming the patch, never serve silently wrong answers.

Control API (only under /_ami_factory/, JSON in and out):
  GET    /_ami_factory/health                      {"moto": version, "patches": [...]}
  GET    /_ami_factory/calls?action=A[&region=R]   recorded request parameters of action A (a list
                                                   of flat dicts for query protocol, the JSON body
                                                   for JSON protocol; A may be "SendCommand" or
                                                   "AmazonSSM.SendCommand")
  GET    /_ami_factory/calls                       every recorded call: [{action, service, region,
                                                   target, params}]
  DELETE /_ami_factory/calls                       forget recorded calls
  POST   /_ami_factory/calls/actions               {"actions": [..] | "*" | null}: what to record
                                                   (null: the default, every action whose name does
                                                   not start with Describe/Get/List)
  POST   /_ami_factory/ssm/fail                    add an SSM command outcome rule (see SsmRules)
  GET    /_ami_factory/ssm/fail                    the rules
  DELETE /_ami_factory/ssm/fail                    clear the rules
  POST   /_ami_factory/ec2/root-device-type        {"region", "id": "i-..|ami-..", "type"}
  POST   /_ami_factory/ec2/product-codes           {"region", "imageId", "productCodes": [...]}
  POST   /_ami_factory/ec2/image-state             {"region", "imageId", "state", "stateReason"?:
                                                   {"Code", "Message"}}: e.g. keep an image pending
  POST   /_ami_factory/ec2/instance-profile-not-ready {"runs": N}: the next N RunInstances naming
                                                   an instance profile fail with InvalidParameterValue
  POST   /_ami_factory/ssm/unregistered            {"sends": N, "instanceIds"?}: the next N
                                                   SendCommand calls fail with InvalidInstanceId
  DELETE /_ami_factory/ssm/unregistered            forget those
  POST   /_ami_factory/ec2/boot                    {"outcome": "boots"|"panics"|"impaired"|"never",
                                                   "afterPolls"?, "imageId"? | "imageName"?, "console"?,
                                                   "notVisibleFor"?}:
                                                   how instances of an image boot (see BootScripts)
  GET    /_ami_factory/ec2/boot                    the rules
  DELETE /_ami_factory/ec2/boot                    clear the rules
  POST   /_ami_factory/calls/fail                  {"action", "code", "region"?, "message"?, "times"?}:
                                                   the next calls of an EC2 action fail (see CallFailures)
  POST   /_ami_factory/reset                       clear recorder, record config, SSM rules, the
                                                   failure counts above, call failures, boot rules (not moto's state: that is
                                                   POST /moto-api/reset)
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import functools
import gzip
import inspect
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import urllib.parse
from typing import Any, Callable

CONTROL_PREFIX = "/_ami_factory/"
READ_PREFIXES = ("Describe", "Get", "List")

# GetCommandInvocation returns the first 24,000 characters of stdout/stderr; ListCommandInvocations
# (Details=true) the first 2,500 of a plugin's Output (AWS API reference).
SSM_STDOUT_LIMIT = 24000
SSM_PLUGIN_OUTPUT_LIMIT = 2500

APPLIED: list[str] = []


class PatchError(RuntimeError):
    pass


def _need(ok: bool, patch: str, what: str) -> None:
    """Guard: a moto internal a patch relies on is not what the patch was written against."""
    if not ok:
        import moto

        raise PatchError(
            f"moto {getattr(moto, '__version__', '?')}: cannot apply patch '{patch}': {what}. "
            "The launcher was written against the internals of moto 5.1.17 to 5.2.5; update scripts/emulator/moto_server.py."
        )


def _has_params(func: Callable[..., Any], *names: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return all(n in params for n in names)


def _uses_action_result(func: Callable[..., Any]) -> bool:
    try:
        return "ActionResult" in inspect.getsource(func)
    except (OSError, TypeError):
        return False


# --------------------------------------------------------------------------------------------------
# State shared by the middleware and the patches
# --------------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.actions: set[str] | str | None = None  # None: default (writes), "*": all, set: exactly

    def wants(self, action: str, target: str | None) -> bool:
        with self.lock:
            actions = self.actions
        if actions == "*":
            return True
        if actions is None:
            return not action.startswith(READ_PREFIXES)
        return action in actions or (target is not None and target in actions)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(entry)

    def query(self, action: str | None, region: str | None) -> list[dict[str, Any]]:
        with self.lock:
            calls = list(self.calls)
        out = []
        for c in calls:
            if region and c["region"] != region:
                continue
            if action is None:
                out.append(c)
            elif action in (c["action"], c["target"]):
                out.append(c["params"])
        return out

    def clear(self, config_too: bool = False) -> None:
        with self.lock:
            self.calls.clear()
            if config_too:
                self.actions = None


FACTS_DECLARATION = re.compile(r'^# @facts \{"script":"([A-Za-z0-9_-]+)"', re.MULTILINE)


# issue-9 ships guest scripts gzip+base64 in a here-document (providers/worker/command.ts):
#   base64 -d <<'AMI_FACTORY_GUEST_SCRIPT' | gunzip > /root/ami-factory-NAME.sh
# Rules and the script identity look at what the worker would run, so the payload is decoded first
# (a harness convenience: AWS never looks inside a command).
GUEST_SCRIPT_HEREDOC = re.compile(
    r"^base64 -d <<'(?P<tag>[A-Z_]+)' \| gunzip > \S+\n(?P<payload>.*?)^(?P=tag)$", re.MULTILINE | re.DOTALL
)


def expand_guest_scripts(commands_text: str) -> str:
    """The command text with each compressed guest-script here-document replaced by the script itself."""

    def decode(m: "re.Match[str]") -> str:
        try:
            script = gzip.decompress(base64.b64decode("".join(m.group("payload").split()))).decode("utf-8")
        except (ValueError, OSError, UnicodeDecodeError):
            return m.group(0)  # not a payload this harness made: matched as sent
        return m.group(0).split("\n", 1)[0] + "\n" + script + "\n" + m.group("tag")

    return GUEST_SCRIPT_HEREDOC.sub(decode, commands_text)


def script_identity(commands_text: str) -> str | None:
    """The guest script a command carries: the first `# @facts {"script":"NAME"` line, if any."""
    m = FACTS_DECLARATION.search(commands_text)
    return m.group(1) if m else None


class SsmRules:
    """Outcome rules for SSM SendCommand. A rule matches a command when `match` is a substring of its
    `commands` parameter (joined with newlines, compressed guest scripts decoded: expand_guest_scripts;
    all parameter values when it has no `commands`),
    when `script` (optional) is the identity of the guest script the command carries (the name in
    its `# @facts {"script":"NAME",…}` declaration: a substring would also match a script that
    merely mentions another one) and, if given, the invocation's instance id is in `instanceIds`.
    The most recently added matching rule wins; `times` (optional) limits how many commands a rule
    applies to.

    Rule fields: match (str), script (str), status (Success|Failed|TimedOut|Cancelled|InProgress|Pending|Delayed),
    output (stdout), stderr, responseCode (int), statusDetails, instanceIds, times."""

    STATUSES = {"Success", "Failed", "TimedOut", "Cancelled", "InProgress", "Pending", "Delayed"}

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []

    def add(self, rule: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(rule, dict):
            raise ValueError("a rule is a JSON object")
        rule = dict(rule)
        rule.setdefault("match", "")
        rule.setdefault("status", "Failed")
        if not isinstance(rule["match"], str):
            raise ValueError("'match' must be a string")
        if "script" in rule and not isinstance(rule["script"], str):
            raise ValueError("'script' must be a string")
        if rule["status"] not in self.STATUSES:
            raise ValueError(f"'status' must be one of {sorted(self.STATUSES)}")
        for key in ("output", "stderr", "statusDetails"):
            if key in rule and not isinstance(rule[key], str):
                raise ValueError(f"'{key}' must be a string")
        if "responseCode" in rule and not isinstance(rule["responseCode"], int):
            raise ValueError("'responseCode' must be an integer")
        if "instanceIds" in rule and not (
            isinstance(rule["instanceIds"], list) and all(isinstance(i, str) for i in rule["instanceIds"])
        ):
            raise ValueError("'instanceIds' must be a list of strings")
        if "times" in rule and not (isinstance(rule["times"], int) and rule["times"] > 0):
            raise ValueError("'times' must be a positive integer")
        with self.lock:
            self.rules.append(rule)
        return rule

    def list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.rules]

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def take(self, commands_text: str, instance_id: str, used: set[int]) -> dict[str, Any] | None:
        """The rule for one invocation. `used` collects rules already counted for this command."""
        with self.lock:
            identity = script_identity(commands_text)
            for rule in reversed(self.rules):
                if rule["match"] not in commands_text:
                    continue
                if "script" in rule and rule["script"] != identity:
                    continue
                if "instanceIds" in rule and instance_id not in rule["instanceIds"]:
                    continue
                if "times" in rule and id(rule) not in used:
                    if rule.get("_used", 0) >= rule["times"]:
                        continue
                    rule["_used"] = rule.get("_used", 0) + 1
                used.add(id(rule))
                return {k: v for k, v in rule.items() if not k.startswith("_")}
        return None


RECORDER = Recorder()
SSM_RULES = SsmRules()


# --------------------------------------------------------------------------------------------------
# Helpers over moto's EC2 models
# --------------------------------------------------------------------------------------------------


def _ec2_backend(region: str, account_id: str | None = None) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id or DEFAULT_ACCOUNT_ID][region]


def _tags_from_specs(specs: list[dict[str, Any]], allowed: set[str]) -> dict[str, dict[str, str]]:
    """{resource type: {key: value}} from TagSpecifications; an unknown type fails like EC2 does."""
    from moto.ec2.exceptions import InvalidTaggableResourceType

    out: dict[str, dict[str, str]] = {}
    for spec in specs or []:
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise InvalidTaggableResourceType(rtype)
        for tag in spec.get("Tags") or []:
            out.setdefault(rtype, {})[tag["Key"]] = tag.get("Value", "")
    return out


def _snapshot_from(backend: Any, size: int, description: str, owner_id: str, ami_id: str,
                   encrypted: bool = False, kms_key_id: str | None = None) -> Any:
    """A completed snapshot of `size` GiB that belongs to image `ami_id` (moto's own way: a
    throw-away volume, snapshot, delete the volume)."""
    zone = backend.region_name + "a"
    volume = backend.create_volume(size=size, zone_name=zone, encrypted=bool(encrypted),
                                   kms_key_id=kms_key_id if encrypted else None)
    snap = backend.create_snapshot(volume.id, description, owner_id, from_ami=ami_id)
    backend.delete_volume(volume.id)
    return snap


def _drop_auto_snapshot(ami: Any) -> None:
    """moto gives every new image a 15 GiB 'Auto-created snapshot'; drop it when the image gets
    real block device mappings."""
    snap = getattr(ami, "ebs_snapshot", None)
    if snap is not None:
        ami.ec2_backend.snapshots.pop(snap.id, None)


def _set_bdms(ami: Any, bdms: list[dict[str, Any]]) -> None:
    ami._amf_bdms = bdms
    root = next((m for m in bdms if m.get("DeviceName") == ami.root_device_name and "Ebs" in m), None)
    root = root or next((m for m in bdms if "Ebs" in m), None)
    if root is not None and root["Ebs"].get("SnapshotId"):
        snap = ami.ec2_backend.snapshots.get(root["Ebs"]["SnapshotId"])
        if snap is not None:
            ami.ebs_snapshot = snap


def _set_attr(ami: Any, **attrs: Any) -> None:
    """Set image attributes under the names moto's serializer picks (EnaSupport -> ena_support, ...)
    and the names moto's DescribeImageAttribute reads (sriov, imds, tmp [sic], uefi)."""
    aliases = {"sriov_net_support": "sriov", "imds_support": "imds", "tpm_support": "tmp", "uefi_data": "uefi"}
    for name, value in attrs.items():
        setattr(ami, name, value)
        if name in aliases:
            setattr(ami, aliases[name], value)


IMAGE_ATTRS = ("ena_support", "sriov_net_support", "boot_mode", "imds_support", "tpm_support", "uefi_data")


# --------------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------------


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


def patch_snapshot_in_use() -> None:
    """moto lets DeleteSnapshot remove a snapshot that a registered/copied image's block device
    mappings still use (it only knows the image's own auto-created snapshot): InvalidSnapshot.InUse."""
    from moto.ec2.exceptions import InvalidSnapshotInUse
    from moto.ec2.models.elastic_block_store import EBSBackend

    name = "snapshot-in-use"
    _need(hasattr(EBSBackend, "delete_snapshot"), name, "EBSBackend.delete_snapshot missing")
    original = EBSBackend.delete_snapshot

    def delete_snapshot(self: Any, snapshot_id: str) -> Any:
        for ami in list(getattr(self, "amis", {}).values()):
            for m in getattr(ami, "_amf_bdms", None) or []:
                if (m.get("Ebs") or {}).get("SnapshotId") == snapshot_id:
                    raise InvalidSnapshotInUse(snapshot_id, ami.id)
        return original(self, snapshot_id)

    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_detach_volume() -> None:
    """moto's DetachVolume without InstanceId (optional in EC2) fails with HTTP 500: detach from the
    instance the volume is attached to; an unattached volume is IncorrectState, as in EC2."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_block_store import EBSBackend

    name = "detach-volume"
    _need(_has_params(EBSBackend.detach_volume, "volume_id", "instance_id", "device_path"), name,
          "EBSBackend.detach_volume signature changed")
    original = EBSBackend.detach_volume

    def detach_volume(self: Any, volume_id: str, instance_id: str | None, device_path: str | None) -> Any:
        if not instance_id:
            attachment = getattr(self.get_volume(volume_id), "attachment", None)
            if attachment is None:
                raise EC2ClientError("IncorrectState", f"Volume '{volume_id}' is in the 'available' state.")
            instance_id = attachment.instance.id
        return original(self, volume_id, instance_id, device_path)

    EBSBackend.detach_volume = detach_volume  # type: ignore[method-assign]
    APPLIED.append(name)


def _ebs_from_param(backend: Any, m: dict[str, Any], default_delete: bool = True) -> dict[str, Any]:
    ebs_in = m.get("Ebs") or {}
    snap = backend.get_snapshot(ebs_in["SnapshotId"]) if ebs_in.get("SnapshotId") else None
    ebs: dict[str, Any] = {
        "DeleteOnTermination": ebs_in.get("DeleteOnTermination", default_delete),
        "VolumeSize": ebs_in.get("VolumeSize") or (snap.volume.size if snap is not None else None),
        "VolumeType": ebs_in.get("VolumeType") or "gp2",
        "Encrypted": bool(ebs_in.get("Encrypted", snap.encrypted if snap is not None else False)),
    }
    if snap is not None:
        ebs["SnapshotId"] = snap.id
    for key in ("Iops", "Throughput", "KmsKeyId", "OutpostArn"):
        if ebs_in.get(key) is not None:
            ebs[key] = ebs_in[key]
    if ebs["VolumeType"] == "gp3":
        ebs.setdefault("Iops", 3000)
        ebs.setdefault("Throughput", 125)
    return {k: v for k, v in ebs.items() if v is not None}


def patch_register_image() -> None:
    """moto's RegisterImage keeps only Name and Description: keep Architecture, VirtualizationType,
    RootDeviceName, BlockDeviceMappings (the given snapshots, which must exist), EnaSupport,
    SriovNetSupport, BootMode, ImdsSupport, TpmSupport, UefiData, ImageLocation, KernelId,
    RamdiskId, and apply TagSpecifications (image) — with EC2's defaults for what is not given."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    name = "register-image"
    _need(_uses_action_result(AmisResponse.register_image), name, "AmisResponse.register_image does not use ActionResult")
    _need(_has_params(AmiBackend.register_image, "name", "description"), name, "AmiBackend.register_image signature changed")

    def register_image(self: Any) -> ActionResult:
        p = self._get_param
        bdms_in = p("BlockDeviceMappings") or []
        tags = _tags_from_specs(p("TagSpecifications") or [], {"image"})
        self.error_on_dryrun()
        backend = self.ec2_backend
        bdms = []
        for m in bdms_in:  # validates the snapshots first, like EC2
            ebs_in = m.get("Ebs") or {}
            # "You can't specify both a snapshot ID and an encryption value": a volume from a
            # snapshot has the snapshot's encryption (EbsBlockDevice, EC2 API reference).
            if ebs_in.get("SnapshotId") and ebs_in.get("Encrypted") is not None:
                from moto.ec2.exceptions import EC2ClientError

                raise EC2ClientError(
                    "InvalidParameterCombination",
                    f"The parameter Encrypted cannot be used with SnapshotId ({m.get('DeviceName')}): "
                    "a volume from a snapshot has the snapshot's encryption.",
                )
            out: dict[str, Any] = {"DeviceName": m.get("DeviceName")}
            if m.get("Ebs") is not None:
                out["Ebs"] = _ebs_from_param(backend, m)
            if m.get("VirtualName") is not None:
                out["VirtualName"] = m["VirtualName"]
            if m.get("NoDevice") is not None:
                out["NoDevice"] = m["NoDevice"]
            bdms.append(out)
        image = backend.register_image(p("Name"), p("Description", ""))
        root_name = p("RootDeviceName") or (bdms[0]["DeviceName"] if bdms else image.root_device_name)
        image.root_device_name = root_name
        root = next((m for m in bdms if m["DeviceName"] == root_name), None)
        if root is not None and "Ebs" in root:
            image.root_device_type = "ebs"
        elif p("ImageLocation"):
            image.root_device_type = "instance-store"
        # EC2 defaults (RegisterImage API reference): architecture i386, virtualization paravirtual.
        image.architecture = p("Architecture") or "i386"
        image.virtualization_type = p("VirtualizationType") or "paravirtual"
        image.image_location = p("ImageLocation") or image.image_location
        image.kernel_id = p("KernelId") or image.kernel_id
        image.ramdisk_id = p("RamdiskId")
        _set_attr(
            image,
            ena_support=p("EnaSupport"),
            sriov_net_support=p("SriovNetSupport"),
            boot_mode=p("BootMode"),
            imds_support=p("ImdsSupport"),
            tpm_support=p("TpmSupport"),
            uefi_data=p("UefiData"),
        )
        if bdms:
            _drop_auto_snapshot(image)
            _set_bdms(image, bdms)
        for key, value in tags.get("image", {}).items():
            image.add_tag(key, value)
        return ActionResult({"ImageId": image.id})

    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_copy_image() -> None:
    """moto's CopyImage ignores TagSpecifications and CopyImageTags, copies only virtualization,
    architecture, kernel and platform, and gives the copy one 15 GiB snapshot whatever the source
    had. Here: the copy keeps the source's root device, block device mappings (one new snapshot in the
    target region per source EBS snapshot, same size/type), ENA/SR-IOV/boot mode/IMDS/TPM
    attributes, reports SourceImageId/SourceImageRegion, gets `image` tags on the image and `snapshot`
    tags on its new snapshots, and the source's user tags with CopyImageTags."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    name = "copy-image"
    _need(_uses_action_result(AmisResponse.copy_image), name, "AmisResponse.copy_image does not use ActionResult")
    _need(_has_params(AmiBackend.copy_image, "source_image_id", "source_region", "name", "description"), name,
          "AmiBackend.copy_image signature changed")

    def copy_image(self: Any) -> ActionResult:
        p = self._get_param
        source_image_id = p("SourceImageId")
        source_region = p("SourceRegion")
        tags = _tags_from_specs(p("TagSpecifications") or [], {"image", "snapshot"})
        encrypted = bool(p("Encrypted"))
        kms_key_id = p("KmsKeyId")
        self.error_on_dryrun()
        backend = self.ec2_backend
        image = backend.copy_image(source_image_id, source_region, p("Name"), p("Description"))
        source = _ec2_backend(source_region, backend.account_id).describe_images(ami_ids=[source_image_id])[0]

        image.root_device_name = source.root_device_name
        image.root_device_type = source.root_device_type
        image.source_image_id = source.id
        image.source_image_region = source_region
        _set_attr(image, **{a: getattr(source, a, None) for a in IMAGE_ATTRS})

        _drop_auto_snapshot(image)
        created = time_str(dt.datetime.now(dt.timezone.utc))
        bdms = []
        new_snapshots = []
        for m in source.block_device_mappings:
            m = copy.deepcopy(m)
            ebs = m.get("Ebs")
            if ebs and ebs.get("SnapshotId"):
                src_snap = _ec2_backend(source_region, backend.account_id).snapshots.get(ebs["SnapshotId"])
                enc = encrypted or bool(ebs.get("Encrypted")) or bool(src_snap is not None and src_snap.encrypted)
                snap = _snapshot_from(
                    backend, int(ebs.get("VolumeSize") or 8),
                    f"Copied for DestinationAmi {image.id} from SourceAmi {source.id} for SourceSnapshot "
                    f"{ebs['SnapshotId']}. Task created on {created}.",
                    image.owner_id, image.id, encrypted=enc,
                    kms_key_id=kms_key_id or (src_snap.kms_key_id if src_snap is not None else None),
                )
                ebs["SnapshotId"] = snap.id
                ebs["Encrypted"] = enc
                if enc and (kms_key_id or snap.kms_key_id):
                    ebs["KmsKeyId"] = kms_key_id or snap.kms_key_id
                new_snapshots.append(snap)
            bdms.append(m)
        _set_bdms(image, bdms)

        if p("CopyImageTags"):
            for tag in source.get_tags():
                if not tag["key"].startswith("aws:"):
                    image.add_tag(tag["key"], tag["value"])
        for key, value in tags.get("image", {}).items():
            image.add_tag(key, value)
        for snap in new_snapshots:
            for key, value in tags.get("snapshot", {}).items():
                snap.add_tag(key, value)
        return ActionResult({"ImageId": image.id})

    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_unique_image_names() -> None:
    """EC2 refuses a second image of the same name in an account and region (RegisterImage,
    CopyImage, CreateImage: InvalidAMIName.Duplicate); moto registers both. Matters for a retried
    RegisterImage whose first answer was lost: EC2 says Duplicate, moto made a second image. Applied
    before patch_client_tokens, so a CopyImage retried with its ClientToken gets its image back first."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.amis import AmisResponse

    name = "unique-image-names"
    for action in ("register_image", "copy_image", "create_image"):
        _need(callable(getattr(AmisResponse, action, None)), name, f"AmisResponse.{action} missing")

    def unique(original: Callable[..., Any]) -> Callable[..., Any]:
        def handler(self: Any) -> Any:
            wanted = self._get_param("Name")
            backend = self.ec2_backend
            for ami in list(backend.amis.values()):
                if wanted and ami.name == wanted and ami.owner_id == backend.account_id and getattr(ami, "state", "") != "deregistered":
                    raise EC2ClientError("InvalidAMIName.Duplicate", f"AMI name {wanted} is already in use by AMI {ami.id}")
            return original(self)
        return handler

    AmisResponse.register_image = unique(AmisResponse.register_image)  # type: ignore[method-assign]
    AmisResponse.copy_image = unique(AmisResponse.copy_image)  # type: ignore[method-assign]
    AmisResponse.create_image = unique(AmisResponse.create_image)  # type: ignore[method-assign]
    APPLIED.append(name)


# EC2 remembers a ClientToken per account, region and action: a retried call with the same token (an
# SDK retry after a lost response) returns the first call's resource instead of making a second one,
# and the same token with other parameters fails with IdempotentParameterMismatch. Here a token is
# remembered while its resource exists (after a moto reset or deletion it makes a new one).
CLIENT_TOKENS: dict[tuple[str, str, str, str], tuple[str, str]] = {}
CLIENT_TOKENS_LOCK = threading.Lock()


def _token_params(response: Any) -> str:
    """The request's parameters but ClientToken, to tell a retry from another request."""
    params = {k: v for k, v in (response.querystring or {}).items() if k not in ("ClientToken", "Action", "Version")}
    return json.dumps(params, sort_keys=True, default=str)


def patch_client_tokens() -> None:
    """moto ignores ClientToken on CopyImage and CreateVolume (RunInstances: see
    patch_run_instances_profile_and_token): a retried call after a lost response makes a second
    image or volume. Here both honour it as EC2 does."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    name = "client-tokens"
    _need(_uses_action_result(ElasticBlockStore.create_volume), name, "ElasticBlockStore.create_volume does not use ActionResult")
    _need(callable(getattr(AmisResponse, "copy_image", None)), name, "AmisResponse.copy_image missing")

    def idempotent(action: str, original: Callable[..., Any], exists: Callable[[Any, str], bool],
                   result: Callable[[Any, str], Any], resource_id: Callable[[Any], str]) -> Callable[..., Any]:
        def handler(self: Any) -> Any:
            token = self._get_param("ClientToken")
            if not token:
                return original(self)
            backend = self.ec2_backend
            key = (backend.account_id, backend.region_name, action, token)
            fingerprint = _token_params(self)
            with CLIENT_TOKENS_LOCK:
                known = CLIENT_TOKENS.get(key)
                if known and exists(backend, known[0]):
                    if known[1] != fingerprint:
                        raise EC2ClientError("IdempotentParameterMismatch",
                                             f"The client token {token} was used before with other parameters")
                    self.error_on_dryrun()
                    return result(backend, known[0])
                answer = original(self)
                CLIENT_TOKENS[key] = (resource_id(answer), fingerprint)
                return answer
        return handler

    def answer_id(answer: Any, field: str) -> str:
        data = answer._result
        return data[field] if isinstance(data, dict) else data.id

    _need(hasattr(ActionResult({}), "_result"), name, "ActionResult keeps its value elsewhere than ._result")

    AmisResponse.copy_image = idempotent(  # type: ignore[method-assign]
        "CopyImage", AmisResponse.copy_image,
        lambda backend, image_id: image_id in backend.amis,
        lambda backend, image_id: ActionResult({"ImageId": image_id}),
        lambda answer: answer_id(answer, "ImageId"))
    ElasticBlockStore.create_volume = idempotent(  # type: ignore[method-assign]
        "CreateVolume", ElasticBlockStore.create_volume,
        lambda backend, volume_id: volume_id in backend.volumes,
        lambda backend, volume_id: ActionResult(backend.volumes[volume_id]),
        lambda answer: answer_id(answer, "VolumeId"))
    APPLIED.append(name)


def patch_create_image() -> None:
    """moto's CreateImage fails (HTTP 500, NotImplementedError) on `snapshot` TagSpecifications and
    gives the image one 15 GiB snapshot and root /dev/sda1 whatever the instance has. Here: one
    snapshot per EBS volume of the instance (honouring BlockDeviceMappings NoDevice and size/type
    overrides), the instance's root device name and type, the source image's ENA/boot mode
    attributes, and `snapshot` tags on those snapshots."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    name = "create-image"
    _need(_uses_action_result(AmisResponse.create_image), name, "AmisResponse.create_image does not use ActionResult")
    _need(_has_params(AmiBackend.create_image, "instance_id", "name", "description", "tag_specifications"), name,
          "AmiBackend.create_image signature changed")

    def create_image(self: Any) -> ActionResult:
        p = self._get_param
        instance_id = p("InstanceId")
        specs = p("TagSpecifications") or []
        tags = _tags_from_specs(specs, {"image", "snapshot"})
        overrides = {m.get("DeviceName"): m for m in (p("BlockDeviceMappings") or [])}
        self.error_on_dryrun()
        backend = self.ec2_backend
        image_specs = [s for s in specs if s.get("ResourceType") == "image"]
        image = backend.create_image(instance_id, p("Name"), p("Description", ""), tag_specifications=image_specs)
        instance = backend.get_instance(instance_id)

        image.root_device_name = instance.root_device_name
        image.root_device_type = instance.root_device_type
        source = backend.amis.get(instance.image_id)
        if source is not None:
            _set_attr(image, **{a: getattr(source, a, None) for a in ("ena_support", "boot_mode", "tpm_support", "uefi_data")})
        _set_attr(image, sriov_net_support=getattr(instance, "sriov_net_support", None))

        _drop_auto_snapshot(image)
        bdms = []
        snapshots = []
        for device, bdt in sorted(instance.block_device_mapping.items()):
            override = overrides.pop(device, {})
            if override.get("NoDevice") is not None:
                continue
            volume = backend.get_volume(bdt.volume_id)
            snap = backend.create_snapshot(
                volume.id, f"Created by CreateImage({instance_id}) for {image.id} from {volume.id}",
                image.owner_id, from_ami=image.id,
            )
            o_ebs = override.get("Ebs") or {}
            ebs = {
                "DeleteOnTermination": o_ebs.get("DeleteOnTermination", bool(bdt.delete_on_termination)),
                "SnapshotId": snap.id,
                "VolumeSize": o_ebs.get("VolumeSize") or volume.size,
                "VolumeType": o_ebs.get("VolumeType") or volume.volume_type or "gp2",
                "Encrypted": bool(volume.encrypted),
            }
            if ebs["VolumeType"] in ("gp3", "io1", "io2"):
                iops = o_ebs.get("Iops") or getattr(volume, "iops", None)
                if iops:
                    ebs["Iops"] = iops
            bdms.append({"DeviceName": device, "Ebs": ebs})
            snapshots.append(snap)
        for device, m in overrides.items():  # extra mappings named only in the request
            if m.get("NoDevice") is not None:
                continue
            out: dict[str, Any] = {"DeviceName": device}
            if m.get("Ebs") is not None:
                out["Ebs"] = _ebs_from_param(backend, m)
            if m.get("VirtualName") is not None:
                out["VirtualName"] = m["VirtualName"]
            bdms.append(out)
        _set_bdms(image, bdms)
        for snap in snapshots:
            for key, value in tags.get("snapshot", {}).items():
                snap.add_tag(key, value)
        return ActionResult({"ImageId": image.id})

    AmisResponse.create_image = create_image  # type: ignore[method-assign]
    APPLIED.append(name)


def time_str(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def patch_image_deprecation() -> None:
    """moto has no EnableImageDeprecation/DisableImageDeprecation (HTTP 500 'not implemented'):
    keep DeprecationTime on the image (rounded to the nearest minute, as EC2 does) and remove it."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidAMIIdError
    from moto.ec2.responses.amis import AmisResponse

    name = "image-deprecation"
    _need(not hasattr(AmisResponse, "enable_image_deprecation"), name,
          "moto now implements EnableImageDeprecation: check it and drop this patch")

    def _image(self: Any) -> Any:
        image_id = self._get_param("ImageId")
        image = self.ec2_backend.amis.get(image_id)
        if image is None:
            raise InvalidAMIIdError(image_id)
        return image

    def enable_image_deprecation(self: Any) -> ActionResult:
        at = self._get_param("DeprecateAt")
        self.error_on_dryrun()
        image = _image(self)
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.timezone.utc)
        at = (at + dt.timedelta(seconds=30)).replace(second=0, microsecond=0)
        image.deprecation_time = time_str(at)
        return ActionResult({"Return": True})

    def disable_image_deprecation(self: Any) -> ActionResult:
        self.error_on_dryrun()
        _image(self).deprecation_time = None
        return ActionResult({"Return": True})

    AmisResponse.enable_image_deprecation = enable_image_deprecation  # type: ignore[attr-defined]
    AmisResponse.disable_image_deprecation = disable_image_deprecation  # type: ignore[attr-defined]
    APPLIED.append(name)


def patch_instances() -> None:
    """moto launches every instance with an 8 GiB root at /dev/sda1, whatever the image's root device
    name and mappings, uses only the request's BlockDeviceMappings when there are some (EC2 merges
    them over the image's), and makes every instance EBS-backed. Here: an instance from a known image
    gets the image's EBS mappings (device names, snapshots, sizes, types) overlaid by the request's
    (NoDevice removes one), and RootDeviceType instance-store when the image is. StopInstances on an
    instance-store instance fails with UnsupportedOperation, as in EC2."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.instances import Instance, InstanceBackend

    name = "instances"
    _need(hasattr(Instance, "setup_defaults") and hasattr(Instance, "add_block_device"), name,
          "Instance.setup_defaults/add_block_device missing")
    _need(_has_params(Instance.__init__, "ec2_backend", "image_id"), name, "Instance.__init__ signature changed")
    _need(_has_params(InstanceBackend.run_instances, "image_id", "count", "kwargs"), name,
          "InstanceBackend.run_instances signature changed")
    _need(hasattr(InstanceBackend, "stop_instances"), name, "InstanceBackend.stop_instances missing")

    original_init = Instance.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        image = self.ec2_backend.amis.get(self.image_id)
        if image is not None and image.root_device_type == "instance-store":
            self.root_device_type = "instance-store"

    Instance.__init__ = __init__  # type: ignore[method-assign]

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        image = self.amis.get(image_id)
        image_bdms = getattr(image, "_amf_bdms", None) if image is not None else None
        if image_bdms:
            merged: dict[str, dict[str, Any]] = {}
            for m in image_bdms:
                if m.get("Ebs"):
                    e = m["Ebs"]
                    merged[m["DeviceName"]] = {
                        "DeviceName": m["DeviceName"], "VirtualName": None, "NoDevice": None,
                        "Ebs": {"SnapshotId": e.get("SnapshotId"), "VolumeSize": e.get("VolumeSize"),
                                "DeleteOnTermination": e.get("DeleteOnTermination", True),
                                "VolumeType": e.get("VolumeType"), "Iops": e.get("Iops"),
                                "Encrypted": bool(e.get("Encrypted")), "KmsKeyId": e.get("KmsKeyId")},
                    }
            for m in kwargs.get("block_device_mappings") or []:
                device = m.get("DeviceName")
                if m.get("NoDevice") is not None:
                    merged.pop(device, None)
                elif device in merged:
                    given = {k: v for k, v in (m.get("Ebs") or {}).items() if v is not None}
                    # moto's parser fills Encrypted=false when not given: an image's encrypted volume stays so.
                    given["Encrypted"] = bool(merged[device]["Ebs"].get("Encrypted")) or bool(given.get("Encrypted"))
                    merged[device]["Ebs"].update(given)
                else:
                    merged[device] = m
            kwargs["block_device_mappings"] = list(merged.values())
        # A request mapping that changes an image's EBS mapping may give only what it changes
        # (DeleteOnTermination, say); one for a new device needs a size or a snapshot (EC2 refuses it).
        for m in kwargs.get("block_device_mappings") or []:
            ebs = m.get("Ebs") or {}
            if m.get("NoDevice") is None and m.get("Ebs") is not None and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
                raise EC2ClientError("MissingParameter", "The request must contain the parameter size or snapshotId")
        return original_run(self, image_id, count, *args, **kwargs)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]

    # moto checks each request mapping for a size or a snapshot before it knows the image; EC2 lets a
    # mapping of the AMI's device change only DeleteOnTermination (EC2 User Guide, "Block device
    # mappings": update the AMI's block device mapping at launch). The check moves to run_instances.
    from moto.ec2.responses.instances import InstanceResponse

    _need(hasattr(InstanceResponse, "_validate_block_device_mapping"), name,
          "InstanceResponse._validate_block_device_mapping missing")
    original_validate = InstanceResponse._validate_block_device_mapping

    def validate_block_device_mapping(device_mapping: dict[str, Any]) -> None:
        ebs = device_mapping.get("Ebs")
        if isinstance(ebs, dict) and "NoDevice" not in device_mapping and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
            return
        original_validate(device_mapping)

    InstanceResponse._validate_block_device_mapping = staticmethod(validate_block_device_mapping)  # type: ignore[method-assign]

    original_stop = InstanceBackend.stop_instances

    def stop_instances(self: Any, instance_ids: list[str]) -> Any:
        for instance in self.get_multi_instances_by_id(instance_ids):
            if instance.root_device_type != "ebs":
                raise EC2ClientError(
                    "UnsupportedOperation",
                    f"The instance '{instance.id}' does not have an 'ebs' root device type and cannot be stopped.",
                )
        return original_stop(self, instance_ids)

    InstanceBackend.stop_instances = stop_instances  # type: ignore[method-assign]
    APPLIED.append(name)


class Countdown:
    """A number of upcoming calls that should fail (a control knob)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.left = 0

    def set(self, n: Any) -> None:
        if not isinstance(n, int) or n < 0:
            raise ValueError("the count must be a non-negative integer")
        with self.lock:
            self.left = n

    def take(self) -> bool:
        with self.lock:
            if self.left > 0:
                self.left -= 1
                return True
        return False


PROFILE_NOT_READY = Countdown()


def patch_run_instances_profile_and_token() -> None:
    """RunInstances gaps: (1) an unknown IamInstanceProfile surfaces as IAM's NoSuchEntity, where EC2
    answers InvalidParameterValue "... Invalid IAM Instance Profile name"; a new profile is also not
    usable by EC2 for some seconds, which `POST /_ami_factory/ec2/instance-profile-not-ready {"runs": N}`
    simulates for the next N launches naming a profile. (2) moto ignores ClientToken: a retried
    RunInstances with the same token must return the first launch's reservation, not a second instance."""
    import moto.ec2.responses.instances as instance_responses
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError

    name = "run-instances-profile-and-token"
    _need(callable(getattr(instance_responses, "filter_iam_instance_profiles", None)), name,
          "moto.ec2.responses.instances.filter_iam_instance_profiles missing")
    _need(_has_params(instance_responses.filter_iam_instance_profiles, "iam_instance_profile_arn", "iam_instance_profile_name"),
          name, "filter_iam_instance_profiles signature changed")
    original_filter = instance_responses.filter_iam_instance_profiles

    def invalid(value: str | None) -> EC2ClientError:
        return EC2ClientError("InvalidParameterValue",
                              f"Value ({value}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")

    def filter_iam_instance_profiles(*args: Any, **kwargs: Any) -> Any:
        value = kwargs.get("iam_instance_profile_name") or kwargs.get("iam_instance_profile_arn")
        if PROFILE_NOT_READY.take():
            raise invalid(value)
        try:
            profile = original_filter(*args, **kwargs)
        except EC2ClientError:
            raise
        except Exception as e:
            if "NoSuchEntity" in (getattr(e, "code", None), getattr(e, "error_type", None)):
                raise invalid(value) from e
            raise
        if profile is None:
            raise invalid(value)
        return profile

    instance_responses.filter_iam_instance_profiles = filter_iam_instance_profiles

    response_cls = instance_responses.InstanceResponse
    _need(_uses_action_result(response_cls.run_instances), name, "InstanceResponse.run_instances changed")
    original_run = response_cls.run_instances

    def run_instances(self: Any) -> Any:
        token = self._get_param("ClientToken")
        if token:
            _need(hasattr(self.ec2_backend, "reservations"), name, "InstanceBackend.reservations missing")
            for reservation in list(self.ec2_backend.reservations.values()):
                if any(getattr(i, "client_token", None) == token for i in reservation.instances):
                    self.error_on_dryrun()
                    return ActionResult(reservation)
        return original_run(self)

    response_cls.run_instances = run_instances  # type: ignore[method-assign]
    APPLIED.append(name)


# --------------------------------------------------------------------------------------------------
# Boot outcomes: what an instance of an image does after launch (status checks, serial console)
# --------------------------------------------------------------------------------------------------

# What a console shows when a rule gives no text of its own (short, but in the real shapes).
DEFAULT_CONSOLES = {
    "boots": "Booting `Debian GNU/Linux'\r\n\r\nLoading Linux 6.1.0-28-amd64 ...\r\nLoading initial ramdisk ...\r\n"
             "[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r\n"
             "[  OK  ] Reached target multi-user.target - Multi-User System.\r\n\r\n"
             "Debian GNU/Linux 12 debian ttyS0\r\n\r\ndebian login: ",
    "panics": "Loading Linux 6.1.0-28-amd64 ...\r\n[    2.104512] VFS: Cannot open root device \"UUID=3f0c2a57\" or unknown-block(0,0): error -6\r\n"
              "[    2.104699] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n"
              "[    2.104861] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---\r\n",
    "impaired": "Loading Linux 6.1.0-28-amd64 ...\r\n[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r\n",
    "never": "Booting `Debian GNU/Linux'\r\n\r\nLoading Linux 6.1.0-28-amd64 ...\r\n",
}
BOOT_OUTCOMES = set(DEFAULT_CONSOLES)


class BootScripts:
    """`POST /_ami_factory/ec2/boot`: how instances of an image boot. A rule matches an instance whose
    image id is `imageId`, or whose image name contains `imageName` (no selector: every image); the
    most recent matching rule wins, fixed for an instance when it is first looked at.

    Rule fields: outcome ("boots" | "panics" | "impaired" | "never"), afterPolls (int >= 0, default 1:
    DescribeInstanceStatus calls naming the instance before the outcome shows; until then both checks
    are "initializing" and the console is empty), console (the serial console text once the outcome
    shows; default DEFAULT_CONSOLES[outcome]), notVisibleFor (int >= 0, default 0: the first N
    DescribeInstanceStatus / GetConsoleOutput calls naming the instance fail with
    InvalidInstanceID.NotFound, as right after RunInstances: EC2 is eventually consistent).
    Outcomes: boots: system ok, instance ok. panics: system ok, instance impaired. impaired: system
    ok, instance impaired, and the console shows no panic. never: both stay initializing.
    Without a matching rule an instance behaves as moto makes it (both checks ok at once, moto's
    sample console, which shows no userspace)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []
        self.instances: dict[str, dict[str, Any]] = {}  # instance id -> {"rule", "polls"}

    def add(self, rule: Any) -> dict[str, Any]:
        if not isinstance(rule, dict):
            raise ValueError("a rule is a JSON object")
        rule = dict(rule)
        if rule.get("outcome") not in BOOT_OUTCOMES:
            raise ValueError(f"'outcome' must be one of {sorted(BOOT_OUTCOMES)}")
        polls = rule.setdefault("afterPolls", 1)
        if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
            raise ValueError("'afterPolls' must be a non-negative integer")
        hidden = rule.setdefault("notVisibleFor", 0)
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 0:
            raise ValueError("'notVisibleFor' must be a non-negative integer")
        for key in ("imageId", "imageName", "console"):
            if key in rule and not isinstance(rule[key], str):
                raise ValueError(f"'{key}' must be a string")
        unknown = set(rule) - {"outcome", "afterPolls", "imageId", "imageName", "console", "notVisibleFor"}
        if unknown:
            raise ValueError(f"unknown rule fields: {sorted(unknown)}")
        with self.lock:
            self.rules.append(rule)
        return rule

    def list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.rules]

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.instances.clear()

    def _state(self, instance: Any) -> dict[str, Any]:
        """Under the lock: the instance's rule (None: moto's behaviour) and poll count."""
        state = self.instances.get(instance.id)
        if state is None:
            image = instance.ec2_backend.amis.get(instance.image_id)
            name = getattr(image, "name", None) or ""
            rule = None
            for r in reversed(self.rules):
                if "imageId" in r and r["imageId"] != instance.image_id:
                    continue
                if "imageName" in r and r["imageName"] not in name:
                    continue
                rule = r
                break
            state = self.instances[instance.id] = {"rule": rule, "polls": 0, "hidden": rule["notVisibleFor"] if rule else 0}
        return state

    def hidden(self, instance: Any) -> bool:
        """True while the instance is still invisible to this call (counts the call)."""
        with self.lock:
            state = self._state(instance)
            if state["hidden"] > 0:
                state["hidden"] -= 1
                return True
            return False

    def polled(self, instance: Any) -> None:
        with self.lock:
            self._state(instance)["polls"] += 1

    def view(self, instance: Any) -> tuple[str | None, str | None]:
        """(outcome shown now or None while initializing / unscripted, console text or None)."""
        with self.lock:
            state = self._state(instance)
            rule = state["rule"]
            if rule is None:
                return "moto", None
            if state["polls"] < rule["afterPolls"]:
                return None, ""
            return rule["outcome"], rule.get("console", DEFAULT_CONSOLES[rule["outcome"]])


BOOT_SCRIPTS = BootScripts()


def _check(status: str) -> dict[str, Any]:
    if status == "ok":
        return {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}
    if status == "impaired":
        return {"Status": "impaired", "Details": [{"Name": "reachability", "Status": "failed"}]}
    return {"Status": "initializing", "Details": [{"Name": "reachability", "Status": "initializing"}]}


def _instance_type_info(instance_type: str) -> dict[str, Any]:
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    return INSTANCE_TYPES.get(instance_type) or {}


def patch_boot_outcomes() -> None:
    """DescribeInstanceStatus and GetConsoleOutput as an instance of a scripted image would answer
    (BootScripts); GetConsoleOutput's Output is base64 and absent while the console is empty, as on
    EC2. Two EC2 rules moto does not enforce:
    - GetConsoleOutput with Latest=true is "supported on instance types that use the Nitro
      hypervisor" (GetConsoleOutput API reference): on a Xen type it fails with UnsupportedOperation.
    - Nitro types need ENA: RunInstances of an image without EnaSupport on an instance type whose
      ENA support is "required" fails with InvalidParameterCombination "Enhanced networking with the
      Elastic Network Adapter (ENA) is required for the '<type>' instance type. Ensure that you are
      using an AMI that is enabled for ENA." (EC2 User Guide, Enhanced networking: all Nitro-based
      instances use ENA). Images whose ENA support moto does not know (its own) are let through."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.exceptions import EC2ClientError, InvalidInstanceIdError
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses.general import General
    from moto.ec2.utils import Base64EncodedString

    name = "boot-outcomes"
    _need(isinstance(getattr(Instance, "instance_status", None), property)
          and isinstance(getattr(Instance, "system_status", None), property), name,
          "Instance.instance_status/system_status are not properties")
    _need(hasattr(InstanceBackend, "describe_instance_status"), name, "InstanceBackend.describe_instance_status missing")
    _need(_uses_action_result(General.get_console_output), name, "General.get_console_output changed")
    _need(hasattr(Base64EncodedString, "from_raw_string"), name, "Base64EncodedString.from_raw_string missing")

    original_instance_status = Instance.instance_status.fget
    original_system_status = Instance.system_status.fget

    def status_of(which: str) -> Callable[[Any], dict[str, Any]]:
        original = original_instance_status if which == "instance" else original_system_status

        def getter(self: Any) -> dict[str, Any]:
            answer = original(self)
            if self.state_code != 16:
                return answer
            outcome, _ = BOOT_SCRIPTS.view(self)
            if outcome == "moto":
                return answer
            if outcome is None or outcome == "never":
                return _check("initializing")
            if outcome == "boots" or which == "system":
                return _check("ok")
            return _check("impaired")

        return getter

    Instance.instance_status = property(status_of("instance"))  # type: ignore[method-assign,assignment]
    Instance.system_status = property(status_of("system"))  # type: ignore[method-assign,assignment]

    original_describe = InstanceBackend.describe_instance_status

    def describe_instance_status(self: Any, instance_ids: list[str], include_all_instances: bool, filters: Any) -> Any:
        for instance_id in instance_ids or []:
            if BOOT_SCRIPTS.hidden(self.get_instance(instance_id)):
                raise InvalidInstanceIdError(instance_id)
        instances = original_describe(self, instance_ids, include_all_instances, filters)
        for instance in instances:  # one poll per call naming the instance
            if instance.is_running():
                BOOT_SCRIPTS.polled(instance)
        return instances

    InstanceBackend.describe_instance_status = describe_instance_status  # type: ignore[method-assign]

    original_console = General.get_console_output

    def get_console_output(self: Any) -> Any:
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        if BOOT_SCRIPTS.hidden(instance):
            raise InvalidInstanceIdError(instance.id)
        latest = str(self._get_param("Latest", False)).lower() == "true"
        if latest and _instance_type_info(instance.instance_type).get("Hypervisor") != "nitro":
            raise EC2ClientError("UnsupportedOperation",
                                 f"The instance type {instance.instance_type} does not support retrieving the latest console output.")
        outcome, console = BOOT_SCRIPTS.view(instance)
        if outcome == "moto":
            return original_console(self)
        result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
        if console:
            result["Output"] = Base64EncodedString.from_raw_string(console[-64 * 1024:])  # the latest 64 KB
        return ActionResult(result)

    General.get_console_output = get_console_output  # type: ignore[method-assign]

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        image = self.amis.get(image_id)
        instance_type = kwargs.get("instance_type") or "m1.small"
        # Only an image known to lack ENA (EnaSupport false, as RegisterImage was told): moto's own
        # images do not say, and the images they stand for (Amazon Linux, ...) have ENA.
        no_ena = image is not None and str(getattr(image, "ena_support", None)).lower() == "false"
        if no_ena and (_instance_type_info(instance_type).get("NetworkInfo") or {}).get("EnaSupport") == "required":
            raise EC2ClientError(
                "InvalidParameterCombination",
                f"Enhanced networking with the Elastic Network Adapter (ENA) is required for the '{instance_type}' "
                "instance type. Ensure that you are using an AMI that is enabled for ENA.",
            )
        return original_run(self, image_id, count, *args, **kwargs)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
    APPLIED.append(name)


def _clip(text: str, limit: int) -> str:
    return text[:limit]


UNFINISHED = ("InProgress", "Pending", "Delayed")


def _ssm_error(code: str, message: str) -> Exception:
    """An SSM error moto serializes as JSON: SSMException (5.2) or JsonRESTError (5.1, whose SSM
    RESTError comes out as a bare HTTP 400)."""
    try:
        from moto.ssm.exceptions import SSMException

        return SSMException(code, message)
    except ImportError:
        from moto.core.exceptions import JsonRESTError

        return JsonRESTError(code, message)


def _ssm_command(backend: Any, command_id: str) -> Any:
    try:
        return backend.get_command_by_id(command_id)
    except Exception as e:
        if "InvalidCommandId" in (getattr(e, "code", None), getattr(e, "error_type", None)):
            raise _ssm_error("InvalidCommandId", "Invalid command id.") from e
        raise


def _summarise(command: Any) -> None:
    """A command's Status/StatusDetails/ErrorCount/CompletedCount from its invocations."""
    statuses = [inv["Status"] for inv in command.invocations]
    command.error_count = sum(1 for s in statuses if s in ("Failed", "TimedOut"))
    command.completed_count = sum(1 for s in statuses if s not in UNFINISHED)
    for s in ("InProgress", "Pending", "Delayed", "Failed", "TimedOut", "Cancelled"):
        if s in statuses:
            command.status = command.status_details = s
            break
    else:
        command.status = command.status_details = "Success"


def patch_ssm_commands() -> None:
    """moto reports every SendCommand invocation as Success with empty output and has no
    ListCommandInvocations. Here: SsmRules decide an invocation's Status/StatusDetails/ResponseCode/
    StandardOutputContent/StandardErrorContent at send time (GetCommandInvocation, ListCommands and
    ListCommandInvocations report it, with AWS's output truncation), and ListCommandInvocations
    exists (CommandId, InstanceId, Details)."""
    from moto.core.responses import ActionResult
    from moto.ssm.models import Command
    from moto.ssm.responses import SimpleSystemManagerResponse

    name = "ssm-commands"
    _need(_has_params(Command.__init__, "parameters", "instance_ids"), name, "ssm Command.__init__ signature changed")
    _need(hasattr(Command, "invocation_response") and hasattr(Command, "response_object"), name,
          "ssm Command.invocation_response/response_object missing")
    _need(not hasattr(SimpleSystemManagerResponse, "list_command_invocations"), name,
          "moto now implements ListCommandInvocations: check it and drop that part of this patch")

    original_init = Command.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        params = self.parameters or {}
        if "commands" in params:
            text = "\n".join(str(c) for c in params["commands"])
        else:
            text = "\n".join(str(v) for vs in params.values() for v in (vs if isinstance(vs, list) else [vs]))
        text = expand_guest_scripts(text)
        used: set[int] = set()
        for inv in self.invocations:
            _need(isinstance(inv, dict) and "Status" in inv, name, "ssm invocations are no longer dicts")
            rule = SSM_RULES.take(text, inv["InstanceId"], used)
            status = rule["status"] if rule else "Success"
            stdout = rule.get("output", "") if rule else ""
            default_err = "failed to run commands: exit status 1" if status == "Failed" else ""
            stderr = rule.get("stderr", default_err) if rule else ""
            code = rule.get("responseCode") if rule else None
            if code is None:
                code = {"Success": 0, "Failed": 1}.get(status, -1)
            details = rule.get("statusDetails") if rule else None
            details = details or {"TimedOut": "ExecutionTimedOut"}.get(status, status)
            inv.update(Status=status, StatusDetails=details, ResponseCode=code,
                       StandardOutputContent=_clip(stdout, SSM_STDOUT_LIMIT),
                       StandardErrorContent=_clip(stderr, SSM_STDOUT_LIMIT))
            inv["_amf_output"] = stdout
            inv["_amf_stderr"] = stderr
            if status in UNFINISHED:
                inv["ExecutionEndDateTime"] = ""
        _summarise(self)

    Command.__init__ = __init__  # type: ignore[method-assign]

    original_get_invocation = Command.get_invocation

    def get_invocation(self: Any, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
        inv = original_get_invocation(self, instance_id, plugin_name)
        return {k: v for k, v in inv.items() if not k.startswith("_amf")}

    Command.get_invocation = get_invocation  # type: ignore[method-assign]

    def list_command_invocations(self: Any) -> ActionResult:
        command_id = self._get_param("CommandId")
        instance_id = self._get_param("InstanceId")
        details = bool(self._get_param("Details", False))
        backend = self.ssm_backend
        commands = [_ssm_command(backend, command_id)] if command_id else backend.list_commands(None, None)
        out = []
        for command in commands:
            for inv in command.invocations:
                if instance_id and inv["InstanceId"] != instance_id:
                    continue
                item: dict[str, Any] = {
                    "CommandId": command.command_id,
                    "InstanceId": inv["InstanceId"],
                    "InstanceName": "",
                    "Comment": command.comment,
                    "DocumentName": command.document_name,
                    "DocumentVersion": "$DEFAULT",
                    "RequestedDateTime": command.requested_date_time,
                    "Status": inv["Status"],
                    "StatusDetails": inv["StatusDetails"],
                    "StandardOutputUrl": "",
                    "StandardErrorUrl": "",
                    "CommandPlugins": [],
                    "ServiceRole": command.service_role_arn,
                    "NotificationConfig": command.notification_config,
                    "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
                }
                if details:
                    output = inv.get("_amf_output", inv.get("StandardOutputContent", ""))
                    stderr = inv.get("_amf_stderr", inv.get("StandardErrorContent", ""))
                    if stderr:
                        output = f"{output}\n----------ERROR-------\n{stderr}"
                    plugin: dict[str, Any] = {
                        "Name": inv.get("PluginName", "aws:runShellScript"),
                        "Status": inv["Status"],
                        "StatusDetails": inv["StatusDetails"],
                        "ResponseCode": inv["ResponseCode"],
                        "ResponseStartDateTime": command.requested_date_time,
                        "Output": _clip(output, SSM_PLUGIN_OUTPUT_LIMIT),
                        "StandardOutputUrl": "",
                        "StandardErrorUrl": "",
                        "OutputS3Region": command.output_s3_region or backend.region_name,
                        "OutputS3BucketName": command.output_s3_bucket_name,
                        "OutputS3KeyPrefix": command.output_s3_key_prefix,
                    }
                    if inv.get("ExecutionEndDateTime"):
                        plugin["ResponseFinishDateTime"] = command.requested_date_time + dt.timedelta(minutes=5)
                    item["CommandPlugins"] = [plugin]
                out.append(item)
        return ActionResult({"CommandInvocations": out})

    SimpleSystemManagerResponse.list_command_invocations = list_command_invocations  # type: ignore[attr-defined]

    # SendCommand's own answer: AWS reports the command Pending with zero counts (the outcome shows
    # in GetCommandInvocation/ListCommands afterwards); moto says Success.
    original_send = SimpleSystemManagerResponse.send_command

    def send_command(self: Any) -> Any:
        result = original_send(self)
        pending = {"Status": "Pending", "StatusDetails": "Pending", "CompletedCount": 0, "ErrorCount": 0}
        if isinstance(result, str):  # moto 5.1: a JSON string
            body = json.loads(result)
            _need(isinstance(body.get("Command"), dict), name, "SendCommand's result has no Command")
            body["Command"].update(pending)
            return json.dumps(body)
        command = result.result.get("Command") if isinstance(getattr(result, "result", None), dict) else None
        _need(isinstance(command, dict), name, "SendCommand's result has no Command dict")
        return ActionResult({**result.result, "Command": {**command, **pending}})

    SimpleSystemManagerResponse.send_command = send_command  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_ssm_cancel_command() -> None:
    """moto has no CancelCommand (HTTP 500): unfinished invocations (Pending/InProgress/Delayed) of
    the command, for the given instances or all, become Cancelled; finished ones stay as they are;
    an unknown command id is InvalidCommandId."""
    from moto.core.responses import ActionResult
    from moto.ssm.responses import SimpleSystemManagerResponse

    name = "ssm-cancel-command"
    _need(not hasattr(SimpleSystemManagerResponse, "cancel_command"), name,
          "moto now implements CancelCommand: check it and drop this patch")

    def cancel_command(self: Any) -> ActionResult:
        command = _ssm_command(self.ssm_backend, self._get_param("CommandId"))
        instance_ids = self._get_param("InstanceIds") or []
        for inv in command.invocations:
            if instance_ids and inv["InstanceId"] not in instance_ids:
                continue
            if inv["Status"] in UNFINISHED:
                inv.update(Status="Cancelled", StatusDetails="Cancelled", ResponseCode=-1)
        _summarise(command)
        return ActionResult({})

    SimpleSystemManagerResponse.cancel_command = cancel_command  # type: ignore[attr-defined]
    APPLIED.append(name)


def patch_ssm_describe_instance_information() -> None:
    """moto has no DescribeInstanceInformation (HTTP 500): every running EC2 instance of the region
    is a managed instance, Online, with a Linux agent. Filters: InstanceIds (both filter lists),
    PingStatus; no pagination."""
    from moto.core.responses import ActionResult
    from moto.ssm.responses import SimpleSystemManagerResponse

    name = "ssm-describe-instance-information"
    _need(not hasattr(SimpleSystemManagerResponse, "describe_instance_information"), name,
          "moto now implements DescribeInstanceInformation: check it and drop this patch")

    def describe_instance_information(self: Any) -> ActionResult:
        wanted: dict[str, set[str]] = {}
        for f in (self._get_param("InstanceInformationFilterList") or []):
            wanted.setdefault(f.get("key", ""), set()).update(f.get("valueSet") or [])
        for f in (self._get_param("Filters") or []):
            wanted.setdefault(f.get("Key", ""), set()).update(f.get("Values") or [])
        ec2 = _ec2_backend(self.ssm_backend.region_name, self.ssm_backend.account_id)
        now = dt.datetime.now(dt.timezone.utc)
        out = []
        for reservation in list(ec2.reservations.values()):
            for instance in reservation.instances:
                if not instance.is_running():
                    continue
                if "InstanceIds" in wanted and instance.id not in wanted["InstanceIds"]:
                    continue
                if "PingStatus" in wanted and "Online" not in wanted["PingStatus"]:
                    continue
                out.append({
                    "InstanceId": instance.id, "PingStatus": "Online", "LastPingDateTime": now,
                    "AgentVersion": "3.3.0.0", "IsLatestVersion": True, "PlatformType": "Linux",
                    "PlatformName": "Amazon Linux", "PlatformVersion": "2023", "ResourceType": "EC2Instance",
                    "IPAddress": getattr(instance, "private_ip", None) or "", "ComputerName": f"ip-{instance.id}",
                })
        return ActionResult({"InstanceInformationList": out})

    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]
    APPLIED.append(name)


class SsmAgents:
    """`POST /_ami_factory/ssm/unregistered {"sends": N, "instanceIds"?: [...]}`: the next N SendCommand
    calls (to those instances, or any) fail with InvalidInstanceId, as while the SSM agent of a fresh
    instance has not registered yet."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[dict[str, Any]] = []

    def add(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("sends"), int) or body["sends"] < 1:
            raise ValueError("'sends' must be a positive integer")
        ids = body.get("instanceIds")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise ValueError("'instanceIds' must be a list of strings")
        with self.lock:
            self.pending.append({"sends": body["sends"], "instanceIds": ids})

    def take(self, instance_ids: list[str]) -> bool:
        with self.lock:
            for entry in self.pending:
                if entry["sends"] > 0 and (entry["instanceIds"] is None or set(instance_ids) & set(entry["instanceIds"])):
                    entry["sends"] -= 1
                    return True
        return False

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()


SSM_AGENTS = SsmAgents()


def patch_ssm_send_command_targets() -> None:
    """moto's SendCommand accepts any instance id. EC2/SSM answer InvalidInstanceId for an instance
    that does not exist in the region or is not running (no agent to talk to); the SsmAgents control
    makes fresh instances look unregistered for a number of sends."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ssm.models import SimpleSystemManagerBackend

    name = "ssm-send-command-targets"
    _need(_has_params(SimpleSystemManagerBackend.send_command, "instance_ids"), name,
          "SimpleSystemManagerBackend.send_command signature changed")
    original = SimpleSystemManagerBackend.send_command

    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        instance_ids = list(kwargs.get("instance_ids") or [])
        ec2 = _ec2_backend(self.region_name, self.account_id)
        bad = []
        for instance_id in instance_ids:
            try:
                if not ec2.get_instance(instance_id).is_running():
                    bad.append(instance_id)
            except InvalidInstanceIdError:
                bad.append(instance_id)
        if not bad and instance_ids and SSM_AGENTS.take(instance_ids):
            bad = instance_ids
        if bad:
            raise _ssm_error("InvalidInstanceId", f"Instances [[{', '.join(bad)}]] not in a valid state for account {self.account_id}")
        return original(self, *args, **kwargs)

    SimpleSystemManagerBackend.send_command = send_command  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_modify_image_attribute() -> None:
    """moto's ModifyImageAttribute handles launch permissions only and ignores Description (and
    ImdsSupport): apply them."""
    from moto.ec2.responses.amis import AmisResponse

    name = "modify-image-attribute"
    _need(_uses_action_result(AmisResponse.modify_image_attribute) or "EmptyResult" in inspect.getsource(AmisResponse.modify_image_attribute),
          name, "AmisResponse.modify_image_attribute changed")
    original = AmisResponse.modify_image_attribute

    def modify_image_attribute(self: Any) -> Any:
        result = original(self)  # validates the image and applies launch permissions
        image = self.ec2_backend.amis[self._get_param("ImageId")]
        attribute, value = self._get_param("Attribute"), self._get_param("Value")
        description = (self._get_param("Description") or {}).get("Value")
        if description is None and attribute == "description":
            description = value
        if description is not None:
            image.description = description
        imds = (self._get_param("ImdsSupport") or {}).get("Value")
        if imds is None and attribute == "imdsSupport":
            imds = value
        if imds is not None:
            _set_attr(image, imds_support=imds)
        return result

    AmisResponse.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]
    APPLIED.append(name)


def patch_iam_remove_role_from_instance_profile() -> None:
    """moto's RemoveRoleFromInstanceProfile of a role that is not in the profile crashes (list.remove:
    HTTP 500 with an HTML page, which the SDK retries and cannot parse); IAM answers NoSuchEntity
    (404). Matters for a retried remove whose first answer was lost."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import IAMBackend

    name = "iam-remove-role-from-instance-profile"
    _need(_has_params(IAMBackend.remove_role_from_instance_profile, "profile_name", "role_name"), name,
          "IAMBackend.remove_role_from_instance_profile signature changed")
    original = IAMBackend.remove_role_from_instance_profile

    def remove_role_from_instance_profile(self: Any, profile_name: str, role_name: str) -> None:
        profile = self.get_instance_profile(profile_name)
        if not any(getattr(r, "name", None) == role_name for r in profile.roles):
            raise NotFoundException(f"The role {role_name} is not in the instance profile {profile_name}.")
        original(self, profile_name, role_name)

    IAMBackend.remove_role_from_instance_profile = remove_role_from_instance_profile  # type: ignore[method-assign]
    APPLIED.append(name)


# ---- issue 9: SendCommand size (one self-contained block) ---------------------------------------
# AWS caps what a command carries: its parameters are rendered into the command document, and an SSM
# document holds at most 64 KB (MaxDocumentSizeExceeded, SSM API reference). moto takes any size, so a
# guest script that grew past it would pass every test here and fail on AWS.
SEND_COMMAND_PARAMETERS_MAX_BYTES = 64 * 1024


def patch_ssm_send_command_size() -> None:
    """SendCommand whose Parameters (as JSON) exceed 64 KB fails with InvalidParameters."""
    from moto.ssm.models import SimpleSystemManagerBackend

    name = "ssm-send-command-size"
    _need(_has_params(SimpleSystemManagerBackend.send_command, "parameters"), name,
          "SimpleSystemManagerBackend.send_command signature changed")
    original = SimpleSystemManagerBackend.send_command

    @functools.wraps(original)  # keeps the signature other patches check
    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        size = len(json.dumps(kwargs.get("parameters") or {}, separators=(",", ":")).encode("utf-8"))
        if size > SEND_COMMAND_PARAMETERS_MAX_BYTES:
            raise _ssm_error("InvalidParameters", f"the command's parameters are {size} bytes; at most "
                             f"{SEND_COMMAND_PARAMETERS_MAX_BYTES} are allowed")
        return original(self, *args, **kwargs)

    SimpleSystemManagerBackend.send_command = send_command  # type: ignore[method-assign]
    APPLIED.append(name)
# ---- end issue 9 block ----------------------------------------------------------------------------


def apply_patches() -> None:
    patch_ami_model()
    patch_snapshot_in_use()
    patch_detach_volume()
    patch_register_image()
    patch_copy_image()
    patch_create_image()
    patch_unique_image_names()
    patch_client_tokens()
    patch_image_deprecation()
    patch_instances()
    patch_run_instances_profile_and_token()
    patch_boot_outcomes()
    patch_ssm_commands()
    patch_ssm_cancel_command()
    patch_ssm_send_command_size()  # issue 9: before ssm-send-command-targets, which checks the signature
    patch_ssm_send_command_targets()
    patch_ssm_describe_instance_information()
    patch_modify_image_attribute()
    patch_iam_remove_role_from_instance_profile()


# --------------------------------------------------------------------------------------------------
# Control API
# --------------------------------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _control(method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    import moto

    if path == "health" and method == "GET":
        return 200, {"moto": moto.__version__, "patches": APPLIED}
    if path == "calls":
        if method == "GET":
            return 200, RECORDER.query(query.get("action"), query.get("region"))
        if method == "DELETE":
            RECORDER.clear()
            return 200, {"ok": True}
    if path == "calls/actions" and method == "POST":
        actions = (body or {}).get("actions")
        if actions is None or actions == "*":
            value: Any = actions
        elif isinstance(actions, list) and all(isinstance(a, str) for a in actions):
            value = set(actions)
        else:
            raise HttpError(400, "'actions' must be a list of action names, \"*\" or null")
        with RECORDER.lock:
            RECORDER.actions = value
        return 200, {"ok": True}
    if path == "ssm/fail":
        if method == "POST":
            try:
                return 200, {"ok": True, "rule": SSM_RULES.add(body)}
            except ValueError as e:
                raise HttpError(400, str(e)) from e
        if method == "GET":
            return 200, SSM_RULES.list()
        if method == "DELETE":
            SSM_RULES.clear()
            return 200, {"ok": True}
    if path == "ssm/unregistered":
        if method == "POST":
            try:
                SSM_AGENTS.add(body)
            except ValueError as e:
                raise HttpError(400, str(e)) from e
            return 200, {"ok": True}
        if method == "DELETE":
            SSM_AGENTS.clear()
            return 200, {"ok": True}
    if path == "ec2/boot":
        if method == "POST":
            try:
                return 200, {"ok": True, "rule": BOOT_SCRIPTS.add(body)}
            except ValueError as e:
                raise HttpError(400, str(e)) from e
        if method == "GET":
            return 200, BOOT_SCRIPTS.list()
        if method == "DELETE":
            BOOT_SCRIPTS.clear()
            return 200, {"ok": True}
    if path == "ec2/instance-profile-not-ready" and method == "POST":
        try:
            PROFILE_NOT_READY.set((body or {}).get("runs"))
        except ValueError as e:
            raise HttpError(400, str(e)) from e
        return 200, {"ok": True}
    if path == "calls/fail" and method == "POST":
        try:
            return 200, {"ok": True, "rule": CALL_FAILURES.add(body)}
        except ValueError as e:
            raise HttpError(400, str(e)) from e
    if path == "reset" and method == "POST":
        RECORDER.clear(config_too=True)
        CALL_FAILURES.clear()
        SSM_RULES.clear()
        SSM_AGENTS.clear()
        PROFILE_NOT_READY.set(0)
        BOOT_SCRIPTS.clear()
        return 200, {"ok": True}
    if path == "ec2/image-state" and method == "POST":
        body = body or {}
        backend = _ec2_backend(body.get("region") or "us-east-1", body.get("accountId"))
        image = backend.amis.get(body.get("imageId"))
        if image is None:
            raise HttpError(404, f"{body.get('imageId')} not found in {backend.region_name}")
        if body.get("state") not in ("pending", "available", "invalid", "deregistered", "transient", "failed", "error", "disabled"):
            raise HttpError(400, "'state' must be an EC2 image state (pending, available, failed, ...)")
        reason = body.get("stateReason")
        if reason is not None and not (isinstance(reason, dict) and {"Code", "Message"} >= set(reason)):
            raise HttpError(400, "'stateReason' must be {Code, Message}")
        image.state = body["state"]
        image.state_reason = reason
        return 200, {"ok": True}
    if path == "ec2/root-device-type" and method == "POST":
        body = body or {}
        rtype, rid = body.get("type"), body.get("id", "")
        if rtype not in ("ebs", "instance-store"):
            raise HttpError(400, "'type' must be 'ebs' or 'instance-store'")
        backend = _ec2_backend(body.get("region") or "us-east-1", body.get("accountId"))
        if rid.startswith("i-"):
            target = backend.get_instance(rid)
        elif rid.startswith("ami-"):
            target = backend.amis.get(rid)
        else:
            raise HttpError(400, "'id' must be an instance id (i-...) or image id (ami-...)")
        if target is None:
            raise HttpError(404, f"{rid} not found in {backend.region_name}")
        target.root_device_type = rtype
        return 200, {"ok": True}
    if path == "ec2/product-codes" and method == "POST":
        body = body or {}
        backend = _ec2_backend(body.get("region") or "us-east-1", body.get("accountId"))
        image = backend.amis.get(body.get("imageId"))
        if image is None:
            raise HttpError(404, f"{body.get('imageId')} not found in {backend.region_name}")
        codes = body.get("productCodes") or []
        if not all(isinstance(c, dict) and isinstance(c.get("ProductCodeId"), str) for c in codes):
            raise HttpError(400, "'productCodes' must be a list of {ProductCodeId, ProductCodeType}")
        image.product_codes = {c["ProductCodeId"] for c in codes}
        image._amf_product_code_types = {c["ProductCodeId"]: c.get("ProductCodeType", "marketplace") for c in codes}
        return 200, {"ok": True}
    raise HttpError(404, f"no control endpoint {method} {CONTROL_PREFIX}{path}")


class CallFailures:
    """`POST /_ami_factory/calls/fail`: the next `times` (default 1) calls of a query-protocol (EC2)
    action, in `region` if given, answer HTTP 400 with the error `code` without reaching moto: a call
    failing halfway through an operation (e.g. CopyImage's ResourceLimitExceeded while too many
    copies are in flight), which the provider must compensate. A code the SDK does not retry fails
    the operation at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []

    def add(self, rule: Any) -> dict[str, Any]:
        if not isinstance(rule, dict) or not isinstance(rule.get("action"), str) or not isinstance(rule.get("code"), str):
            raise ValueError("a call failure needs 'action' and 'code' (strings)")
        times = rule.get("times", 1)
        if not isinstance(times, int) or times < 1:
            raise ValueError("'times' must be a positive integer")
        rule = {"region": None, "message": f"{rule['action']} failed (injected by the emulator)", **rule, "times": times}
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def take(self, action: str, region: str | None) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule["action"] == action and rule["region"] in (None, region) and rule["times"] > 0:
                    rule["times"] -= 1
                    return rule
        return None


CALL_FAILURES = CallFailures()


def _injected_failure(environ: dict[str, Any], body: bytes) -> tuple[str, bytes] | None:
    """The HTTP status and EC2 error document for a call a CallFailures rule fails, else None."""
    if not CALL_FAILURES.rules or "x-www-form-urlencoded" not in (environ.get("CONTENT_TYPE") or ""):
        return None
    action = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))).get("Action")
    rule = CALL_FAILURES.take(action, _region_from_auth(environ)) if action else None
    if rule is None:
        return None
    doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{rule["code"]}</Code>'
           f'<Message>{rule["message"]}</Message></Error></Errors><RequestID>injected</RequestID></Response>')
    return "400 Bad Request", doc.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# WSGI middleware: control API + call recorder
# --------------------------------------------------------------------------------------------------


def _region_from_auth(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
        return scope.split("/")[2]
    except IndexError:
        return None


def _service_from_auth(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
        return scope.split("/")[3]
    except IndexError:
        return None


class AmiFactoryMiddleware:
    """Any failure of the recorder is logged and never changes what moto answers."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        body = self._read_body(environ)
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):], body)
        try:
            self._record(environ, body)
        except Exception as e:  # pragma: no cover - the recorder must never break a call
            logging.getLogger("ami_factory").warning("recorder: %r", e)
        failure = _injected_failure(environ, body)
        if failure:
            start_response(failure[0], [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(failure[1])))])
            return [failure[1]]
        return self.app(environ, start_response)

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _record(self, environ: dict[str, Any], body: bytes) -> None:
        if (environ.get("HTTP_CONTENT_ENCODING") or "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        target = environ.get("HTTP_X_AMZ_TARGET")
        params: Any
        if target:
            action = target.rsplit(".", 1)[-1]
            try:
                params = json.loads(body.decode("utf-8") or "{}")
            except ValueError:
                params = {"_raw": body.decode("utf-8", "replace")}
        else:
            ctype = environ.get("CONTENT_TYPE") or ""
            text = body.decode("utf-8", "replace") if "x-www-form-urlencoded" in ctype else ""
            if not text and environ.get("REQUEST_METHOD") == "GET":
                text = environ.get("QUERY_STRING") or ""
            params = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
            action = params.get("Action")
            if not action:
                return
        if not RECORDER.wants(action, target):
            return
        RECORDER.add({
            "action": action,
            "target": target,
            "service": _service_from_auth(environ),
            "region": _region_from_auth(environ),
            "params": params,
        })

    @staticmethod
    def _control(environ: dict[str, Any], start_response: Callable[..., Any], path: str, body: bytes) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING") or ""))
        try:
            try:
                payload = json.loads(body.decode("utf-8")) if body.strip() else None
            except ValueError as e:
                raise HttpError(400, f"body is not JSON: {e}") from e
            status, result = _control(method, path.strip("/"), query, payload)
        except HttpError as e:
            status, result = e.status, {"error": str(e)}
        except Exception as e:  # moto's own errors (unknown instance, ...) and bugs
            code = getattr(e, "code", None)
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            result = {"error": f"{type(e).__name__}: {getattr(e, 'description', None) or e}"}
        data = json.dumps(result, default=str).encode("utf-8")
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def build_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    apply_patches()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto_server does
    return AmiFactoryMiddleware(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (a watchdog for a parent process)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    from werkzeug.serving import make_server

    try:
        app = build_app()
    except PatchError as e:
        print(f"moto_server.py: {e}", file=sys.stderr)
        return 3
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))

    stopping = threading.Event()

    def stop(reason: str) -> None:
        if stopping.is_set():
            return
        stopping.set()
        if args.verbose:
            print(f"moto_server.py: stopping ({reason})", file=sys.stderr)
        threading.Thread(target=server.shutdown, daemon=True).start()
        # A request stuck in moto must not keep the process alive.
        threading.Timer(10, lambda: os._exit(0)).start()

    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop("SIGINT"))
    if args.exit_on_stdin_eof:
        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            stop("stdin closed")

        threading.Thread(target=watch_stdin, daemon=True).start()

    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(args.host, args.host)  # a connectable address
    host = host if ":" not in host else f"[{host}]"
    print(f"ready http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    os._exit(0)  # daemon request threads and the kill timer must not delay the exit


if __name__ == "__main__":
    sys.exit(main())
