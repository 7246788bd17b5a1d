#!/usr/bin/env bash
# shellcheck shell=bash
# Block devices on an EC2 worker: from an EBS volume id or a path to a device node, and the
# partitions of a disk. Sourced by pv2hvm.sh (and the surrogate build script); also a command:
#
#   devices.sh resolve SPEC      -> the device path for SPEC (a path or vol-xxxx / volxxxx)
#
# Where it looks (environment, so that tests can point it at a fake tree):
#   GUEST_BYID_DIR   default /dev/disk/by-id  udev's nvme-Amazon_Elastic_Block_Store_vol… links
#   GUEST_SYSFS_ROOT default /sys             /sys/block/nvme*n*/device/{serial,model}
#   GUEST_DEV_DIR    default /dev             where a device named in sysfs has its node
#   GUEST_DEVICE_WAIT_SECONDS default 60      how long to wait for a just-attached volume
#
# On Nitro instances an EBS volume is an NVMe namespace whose controller serial is the volume id
# without its dash (vol0123…). On Xen instances nothing on the device names its volume: the caller
# passes the device it attached the volume as (/dev/sdf or /dev/xvdf; /dev/sdX is found as
# /dev/xvdX when only that exists). Guessing from size or order is deliberately not done.

# normalize_volume_id SPEC: vol-0abc… / vol0abc… -> vol0abc…; fails for anything else.
normalize_volume_id() {
  local v=${1,,}
  [[ $v =~ ^vol-?([0-9a-f]{8}|[0-9a-f]{17})$ ]] || return 1
  printf 'vol%s\n' "${BASH_REMATCH[1]}"
}

# ebs_nvme_device VOLID (normalized): the device path, or nothing.
ebs_nvme_device() {
  local vol=$1 byid=${GUEST_BYID_DIR:-/dev/disk/by-id} sysfs=${GUEST_SYSFS_ROOT:-/sys} \
    devdir=${GUEST_DEV_DIR:-/dev} link d serial model name
  # 1. udev's by-id link (a namespace suffix _1 may follow; -partN links are partitions).
  for link in "$byid/nvme-Amazon_Elastic_Block_Store_$vol" "$byid/nvme-Amazon_Elastic_Block_Store_${vol}"_[0-9]*; do
    [[ $link == *-part[0-9]* ]] && continue
    if [ -e "$link" ]; then readlink -f "$link"; return 0; fi
  done
  # 2. sysfs: the namespace's controller serial (works without udev rules).
  for d in "$sysfs"/block/nvme*n*; do
    [ -r "$d/device/serial" ] || continue
    name=${d##*/}
    [[ $name =~ ^nvme[0-9]+n[0-9]+$ ]] || continue
    serial=$(tr -d ' \t\n\0' <"$d/device/serial")
    model=$(tr -s ' \t\n\0' ' ' <"$d/device/model" 2>/dev/null || true)
    [[ $model == *"Elastic Block Store"* ]] || continue
    # Some kernels show the serial with the dash: compare both spellings.
    if [ "$serial" = "$vol" ] || [ "$serial" = "vol-${vol#vol}" ]; then
      printf '%s/%s\n' "$devdir" "$name"; return 0
    fi
  done
  return 1
}

# device_from_path PATH: PATH itself (symlinks resolved) if it exists; /dev/sdX[N] -> /dev/xvdX[N]
# when only the Xen name exists; nothing otherwise.
device_from_path() {
  local p=$1 alt
  if [ -e "$p" ]; then readlink -f "$p"; return 0; fi
  if [[ $p =~ ^(.*/)sd([a-z]+[0-9]*)$ ]]; then
    alt="${BASH_REMATCH[1]}xvd${BASH_REMATCH[2]}"
    if [ -e "$alt" ]; then readlink -f "$alt"; return 0; fi
  fi
  return 1
}

# resolve_device SPEC: the device path for SPEC, waiting up to GUEST_DEVICE_WAIT_SECONDS for it to
# appear (volumes attach asynchronously). Prints an explanation on stderr and fails otherwise.
resolve_device() {
  local spec=$1 vol="" deadline out
  deadline=$((SECONDS + ${GUEST_DEVICE_WAIT_SECONDS:-60}))
  if [[ $spec == /* ]]; then
    :
  elif vol=$(normalize_volume_id "$spec"); then
    :
  else
    printf 'resolve_device: "%s" is neither a device path nor an EBS volume id (vol-0123…)\n' "$spec" >&2
    return 2
  fi
  while :; do
    if [ -n "$vol" ]; then out=$(ebs_nvme_device "$vol") || out=""
    else out=$(device_from_path "$spec") || out=""; fi
    if [ -n "$out" ]; then printf '%s\n' "$out"; return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || break
    command -v udevadm >/dev/null && udevadm settle --timeout=5 2>/dev/null || true
    sleep 2
  done
  if [ -n "$vol" ]; then
    printf 'resolve_device: no NVMe device has serial %s (looked in %s and %s/block/nvme*/device/serial).\n' \
      "$vol" "${GUEST_BYID_DIR:-/dev/disk/by-id}" "${GUEST_SYSFS_ROOT:-/sys}" >&2
    printf 'resolve_device: on a Xen (non-Nitro) instance, pass the device path the volume was attached as (e.g. /dev/xvdf).\n' >&2
  else
    printf 'resolve_device: %s does not exist\n' "$spec" >&2
  fi
  return 1
}

# --- partitions ----------------------------------------------------------------------------------

# write_partition_table DISK LINE...: a new partition table on DISK, written by sfdisk from the
# script LINEs (sfdisk(8), "Input formats"), e.g. 'label: dos' 'start=1MiB, type=83, bootable'.
# sfdisk, not parted: the scripts hold DISK's BSD lock while they write it (claim_disk), as
# systemd asks of partitioning tools ("Locking Block Device Access",
# https://systemd.io/BLOCK_DEVICE_LOCKING/), and udev postpones the disk's events while it is held.
# Debian's parted runs `udevadm settle` after writing the label, which then waits for those events:
# up to 3 minutes per event (udev's own limit), twice per label on the twin's Debian worker. sfdisk
# waits for nobody: the kernel makes the partition nodes (devtmpfs; make_partitions_visible) and
# udev catches up once the lock is released. A failed re-read of the table (a loop device without
# partition scanning) is only a warning: make_partitions_visible adds the partitions then.
write_partition_table() {
  local disk=$1
  shift
  # LOCK_BLOCK_DEVICE=0: sfdisk (util-linux >= 2.38) takes the disk's BSD lock itself when that
  # variable is set (sfdisk(8), --lock); the caller holds it already, so it would wait forever.
  printf '%s\n' "$@" | LOCK_BLOCK_DEVICE=0 sfdisk --quiet --wipe always --wipe-partitions always "$disk"
}

# disk_partitions DISK: the partition device paths the kernel knows for DISK, in order.
disk_partitions() {
  lsblk -lnpo NAME,TYPE "$1" 2>/dev/null | awk '$2 == "part" { print $1 }'
}

# disk_pttype DISK: "dos", "gpt", … if DISK has a partition table, nothing otherwise.
disk_pttype() { blkid -p -o value -s PTTYPE "$1" 2>/dev/null || true; }

# partition_path DISK N: the device path of partition N of DISK, if the kernel knows it.
partition_path() {
  local disk=$1 n=$2 p
  while read -r p; do
    [ -n "$p" ] || continue
    [ "$(cat "/sys/class/block/${p##*/}/partition" 2>/dev/null)" = "$n" ] && { printf '%s\n' "$p"; return 0; }
  done < <(disk_partitions "$disk")
  return 1
}

# make_partitions_visible DISK: makes the kernel show DISK's partitions. Kernels that read no msdos
# table on loop devices need partx -a; then the partitions are removed again at exit (on_exit),
# and DISK is added to PARTX_REMOVAL_REGISTERED (callers then register no second partx -d, which
# would fail and print a cleanup warning).
# Devices whose partitions the kernel already reads are only re-read.
# No `udevadm settle` here: the caller holds DISK's lock (write_partition_table), so udev would not
# finish; the kernel makes the nodes in devtmpfs by itself, polled below.
PARTX_REMOVAL_REGISTERED=${PARTX_REMOVAL_REGISTERED:-}
make_partitions_visible() {
  local disk=$1 i
  if [ -n "$(disk_partitions "$disk")" ]; then
    partx -u "$disk" 2>/dev/null || true
  else
    partx -a "$disk" >/dev/null 2>&1 || true
    if [ -n "$(disk_partitions "$disk")" ]; then
      on_exit "partx -d '$disk' >/dev/null 2>&1"
      PARTX_REMOVAL_REGISTERED+=" $disk "
    fi
  fi
  for ((i = 0; i < 50; i++)); do
    local all=1 p
    while read -r p; do [ -z "$p" ] || [ -b "$p" ] || all=0; done < <(disk_partitions "$disk")
    [ "$all" = 1 ] && return 0
    sleep 0.2
  done
  return 0
}

# device_bytes_written DEV: bytes written to DEV (and its partitions) since it appeared: the sectors
# written of /sys/block/NAME/stat (field 7, in 512-byte units whatever the sector size) × 512.
device_bytes_written() {
  awk '{ printf "%.0f\n", $7 * 512 }' "${GUEST_SYSFS_ROOT:-/sys}/class/block/${1##*/}/stat"
}

# partition_starts DISK: the first sector (512 bytes) of each partition of DISK, one a line.
partition_starts() {
  local p
  while read -r p; do [ -z "$p" ] || cat "/sys/class/block/${p##*/}/start"; done < <(disk_partitions "$1")
}

# same_device A B: both paths name the same block device.
same_device() { [ "$(stat -L -c '%t:%T' "$1")" = "$(stat -L -c '%t:%T' "$2")" ]; }

# is_whole_disk DEV: DEV is a disk (or loop device), not a partition.
is_whole_disk() { [ ! -e "/sys/class/block/${1##*/}/partition" ]; }

# mounts_of DISK: "device mountpoint" for DISK and each of its partitions that is mounted.
mounts_of() {
  local d
  for d in "$1" $(disk_partitions "$1"); do
    findmnt -rn -S "$d" -o SOURCE,TARGET 2>/dev/null || true
  done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  case ${1:-} in
    resolve) resolve_device "${2-}" ;;
    *) printf 'usage: %s resolve SPEC\n' "$0" >&2; exit 2 ;;
  esac
fi
