#!/usr/bin/env bash
# pv2hvm.sh — converts the root disk of a paravirtual (PV-GRUB) EC2 image into one that boots as
# HVM with a BIOS: runs as root on a temporary worker instance that has the volumes attached.
#
#   pv2hvm.sh --source DEV --target DEV [--sanitize] [--no-nitro]     copy
#   pv2hvm.sh --in-place DEV [--sanitize] [--no-nitro]                 in place
#
# DEV is a block device path or an EBS volume id (vol-0123… or vol0123…; see lib/devices.sh for
# how it is found).
#
# In place (lib/inplace.sh): DEV, a volume made from the source snapshot, is changed only where
# booting needs it, so its snapshot stays incremental to the source's. Allowed layouts:
#   partitioned-gap:     an msdos label whose first partition leaves room after the MBR for GRUB's
#                        core image (grub-install embeds it there);
#   bare-ext-blocklist:  ext2/3/4 on the whole disk: GRUB's boot sector in sector 0 (ext never uses
#                        its first 1 KiB) loads the core image from boot/grub/i386-pc/core.img by
#                        its sector list; that file is made immutable (chattr +i) so it never moves;
#                        e2fsck -fn checks the filesystem afterwards.
# Anything else (XFS on the whole disk, a gap too small, another filesystem or label), and a
# filesystem to be written that is not clean (a journal to replay, errors `e2fsck -fn` or
# `xfs_repair -n` reports), is refused before anything is written: exit 3 and, as the last stdout
# line instead of facts,
#   {"script":"pv2hvm","schemaVersion":4,"refused":"in-place","reason":CODE,"detail":SENTENCE}
# with CODE xfs-at-sector-0, gap-too-small, unsupported-filesystem, unknown-layout or
# filesystem-unclean; the caller
# then copies. Steps 3 to 6 of the copy below (GRUB, menu, fstab, drivers, sanitize) are the same
# code for both methods (lib/hvmboot.sh), after the root is mounted where it is.
#
# Copy: the source is only read. The target is overwritten. Source layouts:
#   flat:          a filesystem on the whole device (classic PV; root (hd0))
#   partitioned:   a partition table; the partition holding /etc/fstab and /boot is the root
#   separate-boot: as partitioned, plus a partition that is /boot (menu paths relative to it)
# Steps:
#   1. an msdos label: one bootable partition from 1 MiB to the end, or for separate-boot
#      partition 1 /boot (the source's size, bootable) and partition 2 the root to the end;
#   2. the filesystems copied (ext*: only the used blocks, e2image; else, or when the source is not
#      clean (lib/copy.sh fs_unclean: its bitmap may be wrong), all of it with dd), checked (e2fsck -fy),
#      the root grown to fill its partition, UUIDs and LABELs kept;
#   3. GRUB 2 for BIOS from the WORKER's grub tools; the image keeps following its own GRUB legacy
#      menu (lib/grubcfg.sh pv_boot_config): menu.lst / grub.conf rewritten in place (original kept
#      as NAME.pv), grub.cfg only reads it at every boot, so the image's kernel updates (grubby,
#      update-grub-legacy-ec2) keep working. An image without a menu gets one made from its
#      kernels ("bootMenu":"synthesized"): its tools may not add later kernels to it;
#   4. /etc/fstab: root (and /boot) Xen device names -> UUID=; swap on Xen devices commented out,
#      other Xen devices (ephemeral disks) nofail (lib/image.sh fix_fstab);
#   5. Nitro: when the default kernel has nvme/ena as modules but its initramfs lacks them, they are
#      added with the image's own tool (update-initramfs, dracut, mkinitrd; lib/bootdisk.sh, shared
#      with surrogate.sh), unless --no-nitro; then the drivers are reported;
#   6. with --sanitize: host keys, shell histories, cloud-init instance state, machine-id and
#      OpsWorks agent remnants removed.
#
# Output: progress on stderr; the last line of stdout is one JSON object in the schema below, which
# the provider checks (providers/worker/facts.ts). Only this script writes it: what it runs cannot
# (lib/common.sh guest_facts_channel).
# @facts {"script":"pv2hvm","schemaVersion":4,"fields":{"partitioned":"boolean","layout":"string","fsType":"string","kernels":"string[]","defaultKernel":"string","bootMenu":"string","enaDriver":"boolean","nvmeDriver":"boolean","enaInInitramfs":"boolean","nvmeInInitramfs":"boolean","ixgbevfDriver":"boolean","initramfsUpdatedWith":"string","nitroReady":"boolean","fstabRemoved":"string[]","fstabNofail":"string[]","copiedBytes":"number","seconds":"number","sanitized":"boolean","rootUuid":"string","rootLabel":"string","copyMethod":"string","method":"string","bytesWritten":"number","inPlaceLayout":"string","grubInstallGuard":"string"}}
# method is "copy" or "in-place"; bytesWritten what the disk that becomes the image had written to it
# (its /sys/block/NAME/stat counter, before and after); inPlaceLayout one of the two above, "" for
# a copy; an in-place run has copiedBytes 0 and copyMethod "none"; grubInstallGuard how the image's
# own grub-install is kept off a bare-ext-blocklist disk (lib/hvmboot.sh guard_guest_grub):
# "dpkg-divert" (Debian/Ubuntu, plus debconf), "local-wrapper" (others), "" for other layouts.
# Exit status: 0 done, 1 failed, 2 bad arguments, 3 in place refused (nothing changed). Every exit
# path (signals too) unmounts what the script mounted and removes the partition mappings it added.
# Running it again on the same target (or in place on the same disk) is safe.
set -euo pipefail

PV2HVM_LIB=${PV2HVM_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib}
GUEST_LOG_PREFIX=pv2hvm
# shellcheck source=lib/common.sh
. "$PV2HVM_LIB/common.sh" # @bundle lib/common.sh
# shellcheck source=lib/tools.sh
. "$PV2HVM_LIB/tools.sh" # @bundle lib/tools.sh
# shellcheck source=lib/devices.sh
. "$PV2HVM_LIB/devices.sh" # @bundle lib/devices.sh
# shellcheck source=lib/copy.sh
. "$PV2HVM_LIB/copy.sh" # @bundle lib/copy.sh
# shellcheck source=lib/pvdisk.sh
. "$PV2HVM_LIB/pvdisk.sh" # @bundle lib/pvdisk.sh
# shellcheck source=lib/inplace.sh
. "$PV2HVM_LIB/inplace.sh" # @bundle lib/inplace.sh
# shellcheck source=lib/grubcfg.sh
. "$PV2HVM_LIB/grubcfg.sh" # @bundle lib/grubcfg.sh
# shellcheck source=lib/image.sh
. "$PV2HVM_LIB/image.sh" # @bundle lib/image.sh
# shellcheck source=lib/bootdisk.sh
. "$PV2HVM_LIB/bootdisk.sh" # @bundle lib/bootdisk.sh
# shellcheck source=lib/hvmboot.sh
. "$PV2HVM_LIB/hvmboot.sh" # @bundle lib/hvmboot.sh
guest_facts_channel "$@"

usage() {
  cat >&2 <<'USAGE'
usage: pv2hvm.sh --source DEV --target DEV [--sanitize] [--no-nitro]
       pv2hvm.sh --in-place DEV [--sanitize] [--no-nitro]    (exit 3: the layout does not allow it)
  DEV: a block device path (/dev/nvme1n1, /dev/xvdf, /dev/loop3) or an EBS volume id (vol-0123…)
USAGE
  exit 2
}

source_spec="" target_spec="" inplace_spec="" sanitize=0 nitro=1
while [ $# -gt 0 ]; do
  case $1 in
    --source) [ $# -ge 2 ] || usage_error "--source needs a value"; source_spec=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || usage_error "--target needs a value"; target_spec=$2; shift 2 ;;
    --in-place) [ $# -ge 2 ] || usage_error "--in-place needs a value"; inplace_spec=$2; shift 2 ;;
    --source=*) source_spec=${1#*=}; shift ;;
    --target=*) target_spec=${1#*=}; shift ;;
    --in-place=*) inplace_spec=${1#*=}; shift ;;
    --sanitize) sanitize=1; shift ;;
    --no-nitro) nitro=0; shift ;;
    -h | --help) usage ;;
    *) usage_error "unknown argument '$1' (see --help)" ;;
  esac
done
method=copy
if [ -n "$inplace_spec" ]; then
  [ -z "$source_spec$target_spec" ] || usage_error "--in-place DEV converts DEV itself: give either --in-place or --source and --target"
  method=in-place
else
  [ -n "$source_spec" ] || usage_error "--source DEV is required"
  [ -n "$target_spec" ] || usage_error "--target DEV is required"
fi
[ "$(id -u)" -eq 0 ] || die "must run as root"

install_cleanup_traps

# The worker's tools; what is missing is installed with its package manager (lib/tools.sh: dnf on
# Amazon Linux 2023, apt-get on Debian/Ubuntu). GRUB for BIOS is the worker's: Debian/Ubuntu name
# it grub-install (grub2-common, modules grub-pc-bin), Amazon Linux/RHEL grub2-install
# (grub2-tools, modules grub2-pc-modules), both with the modules in /usr/lib/grub/i386-pc.
ensure_tools blkid lsblk findmnt partx sfdisk wipefs blockdev losetup debugfs e2fsck resize2fs e2image dumpe2fs \
  chattr mount umount flock unshare capsh 'lsinitramfs|lsinitrd' 'grub-install|grub2-install' 'grub-mkimage|grub2-mkimage' grub-modules:i386-pc
[ -f "$(grub_platform_dir i386-pc)/boot.img" ] || die "GRUB i386-pc modules on the worker have no boot.img ($(grub_platform_dir i386-pc))"
total_steps=8 step_no=0
[ "$method" = copy ] || total_steps=6
step() { step_no=$((step_no + 1)); guest_step "$step_no/$total_steps: $1"; log "step $step_no/$total_steps: $1"; }

# claim_disk DEV WHAT: one run per disk at a time; a mount of DEV is refused unless it is a leftover
# of an earlier run of this script.
claim_disk() {
  local dev=$1 what=$2 mdev mpoint
  exec {lock_fd}<"$dev"
  flock -n "$lock_fd" || die "another process holds $dev (a pv2hvm run already going?)"
  while read -r mdev mpoint; do
    [ -n "$mdev" ] || continue
    if [[ $mpoint == /tmp/pv2hvm.* || $mpoint == /run/pv2hvm.* ]]; then
      log "unmounting $mdev from $mpoint (left by an earlier run)"
      umount "$mpoint" || die "cannot unmount $mpoint"
    else
      die "$what $mdev is mounted at $mpoint: refusing to change it"
    fi
  done < <(mounts_of "$dev")
}

# refuse_in_place CODE DETAIL: the refusal line, exit 3 (nothing on the disk was written).
refuse_in_place() {
  log "in place refused ($1): $2"
  guest_refuse "$(printf '{"script":"pv2hvm","schemaVersion":4,"refused":"in-place","reason":%s,"detail":%s}' "$(json_str "$1")" "$(json_str "$2")")"
}

# --- 1. devices ----------------------------------------------------------------------------------
step "resolving devices"
if [ "$method" = in-place ]; then
  disk=$(resolve_device "$inplace_spec") || die "cannot find the device '$inplace_spec'"
  [ -b "$disk" ] || die "$disk is not a block device"
  is_whole_disk "$disk" || die "$disk is a partition: give the whole disk"
  log "in place on $inplace_spec = $disk"
  claim_disk "$disk" disk
  source_dev=$disk
else
  source_dev=$(resolve_device "$source_spec") || die "cannot find the source device '$source_spec'"
  disk=$(resolve_device "$target_spec") || die "cannot find the target device '$target_spec'"
  [ -b "$source_dev" ] || die "source $source_dev is not a block device"
  [ -b "$disk" ] || die "target $disk is not a block device"
  same_device "$source_dev" "$disk" && die "source and target are the same device ($source_dev)"
  is_whole_disk "$disk" || die "target $disk is a partition: give the whole disk"
  log "source $source_spec = $source_dev, target $target_spec = $disk"
  claim_disk "$disk" target
  if [ -n "$(mounts_of "$source_dev")" ]; then
    die "source $source_dev (or a partition of it) is mounted: $(mounts_of "$source_dev" | tr '\n' ' ')"
  fi
fi
# The image's tools (lib/bootdisk.sh in_sandbox) may open this disk and its partitions, no other
# (not the source volume of a copy).
SANDBOX_DEVICES=$disk
written0=$(device_bytes_written "$disk")

# --- 2. the source filesystems -------------------------------------------------------------------
if [ "$method" = in-place ]; then
  step "inspecting $disk (read only: nothing is written before the layout is known to allow it)"
  inplace_plan "$disk"
  [ -z "$INPLACE_REFUSAL" ] || refuse_in_place "$INPLACE_REFUSAL" "$INPLACE_DETAIL"
  # Before any write: a filesystem written in place must be clean (a PV root snapshotted while it
  # ran has a journal to replay, and a wrong bitmap would let new files land on live data). The copy
  # reads all of an unclean one and repairs its own copy.
  inplace_check_filesystems
  [ -z "$INPLACE_REFUSAL" ] || refuse_in_place "$INPLACE_REFUSAL" "$INPLACE_DETAIL"
  log "in place: $INPLACE_LAYOUT ($PV_LAYOUT; root filesystem on $PV_ROOT_DEV${PV_BOOT_DEV:+, /boot on $PV_BOOT_DEV})"
else
  step "inspecting the source"
  find_pv_root "$source_dev" || die "source: $PV_PROBLEM"
  [ "$PV_PARTITIONED" = false ] || log "source has a $PV_PTTYPE partition table; root filesystem on $PV_ROOT_DEV${PV_BOOT_DEV:+, /boot on $PV_BOOT_DEV}"
fi
partitioned=$PV_PARTITIONED layout=$PV_LAYOUT src_fs_dev=$PV_ROOT_DEV src_boot_dev=$PV_BOOT_DEV
read -r fs_type fs_bytes used_bytes < <(fs_size "$src_fs_dev")
boot_fs_type="" boot_bytes=0 boot_mib=0
if [ -n "$src_boot_dev" ]; then
  read -r boot_fs_type boot_bytes _ < <(fs_size "$src_boot_dev")
  case $boot_fs_type in ext2 | ext3 | ext4) ;; *) die "the /boot filesystem on $src_boot_dev is $boot_fs_type: only ext2/3/4 /boot partitions are converted" ;; esac
  boot_mib=$(((boot_bytes + 1048575) / 1048576))
fi
log "filesystem $fs_type, $(human_bytes "$fs_bytes") ($(human_bytes "$used_bytes") used)${src_boot_dev:+; /boot $boot_fs_type $(human_bytes "$boot_bytes")}"

copied=0 copy_method=none inplace_layout=""
if [ "$method" = in-place ]; then
  root_part=$src_fs_dev boot_part=$src_boot_dev inplace_layout=$INPLACE_LAYOUT
else
  target_bytes=$(blockdev --getsize64 "$disk")
  # The first partition starts at 1 MiB and the msdos label needs nothing at the end.
  need_bytes=$((fs_bytes + (boot_mib + 1) * 1048576))
  [ "$target_bytes" -ge "$need_bytes" ] ||
    die "target $disk ($(human_bytes "$target_bytes")) is smaller than the source filesystems + 1 MiB ($(human_bytes "$need_bytes"))"

  # --- 3. the target label -----------------------------------------------------------------------
  step "writing an msdos label on $disk ($layout)"
  for p in $(disk_partitions "$disk"); do wipefs -aq "$p" 2>/dev/null || true; done
  wipefs -aq "$disk"
  # partx -d drops stale mappings a loop device may still have from an earlier run.
  case ${disk##*/} in loop*) partx -d "$disk" >/dev/null 2>&1 || true ;; esac
  if [ -n "$src_boot_dev" ]; then
    write_partition_table "$disk" 'label: dos' "start=1MiB, size=${boot_mib}MiB, type=83, bootable" \
      "start=$((boot_mib + 1))MiB, type=83" >&2
  else
    write_partition_table "$disk" 'label: dos' 'start=1MiB, type=83, bootable' >&2
  fi
  make_partitions_visible "$disk"
  # Partitions that partx (BLKPG) added on a loop device go at exit too; a real disk keeps them.
  case ${disk##*/} in loop*) [[ $PARTX_REMOVAL_REGISTERED == *" $disk "* ]] || on_exit "partx -d '$disk' >/dev/null 2>&1" ;; esac
  root_index=1 boot_part=""
  [ -z "$src_boot_dev" ] || root_index=2
  root_part=$(partition_path "$disk" "$root_index") || die "partition $root_index of $disk did not appear"
  [ -b "$root_part" ] || die "partition $root_index of $disk has no device node ($root_part)"
  if [ -n "$src_boot_dev" ]; then
    boot_part=$(partition_path "$disk" 1) || die "partition 1 of $disk did not appear"
    [ -b "$boot_part" ] || die "partition 1 of $disk has no device node ($boot_part)"
    [ "$(blockdev --getsize64 "$boot_part")" -ge "$boot_bytes" ] || die "partition 1 of $disk is smaller than the source /boot"
  fi
  log "target root partition $root_part, $(human_bytes "$(blockdev --getsize64 "$root_part")")${boot_part:+; /boot $boot_part}"

  # --- 4. copy, check, grow ----------------------------------------------------------------------
  step "copying the filesystems"
  copy_t0=$SECONDS copy_method=""
  # whole_if_unclean DEV TYPE: "whole" when the filesystem's bitmaps cannot be trusted to say
  # which blocks hold data (fs_unclean): all of it is copied, then the copy is repaired (step 5).
  whole_if_unclean() { case $2 in ext2 | ext3 | ext4) ;; *) return 0 ;; esac; if fs_unclean "$1" "$2"; then log "copying all of $1, not only the blocks its bitmap marks used: $FS_UNCLEAN"; printf whole; fi; }
  if [ -n "$src_boot_dev" ]; then
    copy_filesystem "$src_boot_dev" "$boot_part" "$boot_fs_type" "$(whole_if_unclean "$src_boot_dev" "$boot_fs_type")"
    copied=$((copied + COPY_BYTES)) copy_method=$COPY_METHOD
  fi
  copy_filesystem "$src_fs_dev" "$root_part" "$fs_type" "$(whole_if_unclean "$src_fs_dev" "$fs_type")"
  copied=$((copied + COPY_BYTES)); copy_method=${copy_method:-$COPY_METHOD}
  sync
  log "copied $copied bytes ($(human_bytes "$copied")) with $copy_method in $((SECONDS - copy_t0))s"

  step "checking and growing the filesystems"
fi

# ext_check DEV: e2fsck -fy; 0: clean, 1: errors fixed (e.g. directory indexes rebuilt). Else broken.
ext_check() { local rc=0; e2fsck -fy "$1" >&2 || rc=$?; [ "$rc" -le 1 ] || die "e2fsck -fy $1 exited $rc"; }
case $fs_type in
  ext2 | ext3 | ext4) fs_module=ext2 ;;
  *) fs_module=$fs_type ;;
esac
if [ "$method" = copy ]; then
  [ -z "$boot_part" ] || ext_check "$boot_part"
  case $fs_type in
    ext2 | ext3 | ext4)
      ext_check "$root_part"
      resize2fs "$root_part" >&2 || die "resize2fs $root_part failed" ;;
    xfs | btrfs) ;;
    *) log "warning: $fs_type is neither checked nor grown" ;;
  esac
else
  step "mounting the root filesystem in place"
fi
root_uuid=$(blkid -p -o value -s UUID "$root_part" 2>/dev/null || true)
root_label=$(blkid -p -o value -s LABEL "$root_part" 2>/dev/null || true)
[ -n "$root_uuid" ] || die "the root filesystem on $root_part has no UUID"
boot_uuid=""
[ -z "$boot_part" ] || boot_uuid=$(blkid -p -o value -s UUID "$boot_part" 2>/dev/null || true)

mnt=$(mktemp -d /tmp/pv2hvm.XXXXXX)
on_exit "rmdir '$mnt' 2>/dev/null"
mount_opts=""
# A copy of an XFS filesystem carries the source's UUID, which the worker may have mounted.
[ "$fs_type" = xfs ] && [ "$method" = copy ] && mount_opts="-o nouuid"
# In place, ext4 must not zero the inode tables mke2fs left for later (lazy_itable_init): blocks
# the new snapshot would store for nothing.
[ "$method" = in-place ] && [ "$fs_type" = ext4 ] && mount_opts="-o noinit_itable"
# shellcheck disable=SC2086
mount $mount_opts "$root_part" "$mnt"
on_exit "! mountpoint -q '$mnt' || umount -R '$mnt'"
[ "$fs_type" = xfs ] && [ "$method" = copy ] && { ensure_tools xfs_growfs; xfs_growfs "$mnt" >&2 || die "xfs_growfs failed"; }
# Where the menu's paths start: the root filesystem, or /boot when it is a filesystem of its own.
kernel_prefix=/boot grub_module=$fs_module boot_root=$mnt
# The filesystem holding the menu, as GRUB legacy counts partitions (0-based; "" the whole disk).
menu_part=0
if [ -n "$boot_part" ]; then
  mkdir -p "$mnt/boot"
  mount "$boot_part" "$mnt/boot"
  on_exit "! mountpoint -q '$mnt/boot' || umount '$mnt/boot'"
  kernel_prefix="" grub_module=ext2 boot_root=$mnt/boot
elif fstab_has_boot "$mnt"; then
  die "/etc/fstab mounts a separate /boot, but no partition of the source holds it (another volume?): attach-and-merge is not supported; copy /boot into the root filesystem first"
fi
if [ "$method" = in-place ]; then
  case $inplace_layout in
    bare-ext-blocklist) menu_part="" ;;
    *) menu_part=$(($(cat "/sys/class/block/$(basename "${boot_part:-$root_part}")/partition") - 1)) ;;
  esac
fi

# --- boot loader, menu, fstab, drivers, sanitize: the same for both methods (lib/hvmboot.sh) ------
step "installing GRUB 2 (i386-pc); the image keeps its own GRUB legacy menu"
grub_mode=embed
[ "$inplace_layout" != bare-ext-blocklist ] || grub_mode=blocklist
install_bios_grub "$disk" "$mnt/boot" "$grub_module" "$grub_mode"
hvm_boot_menu "$mnt" "$boot_root" "$root_uuid" "$menu_part" "$grub_module" "$kernel_prefix"
[ "$grub_mode" != blocklist ] || guard_guest_grub "$mnt" "${BOOT_MENU##*/}" "$grub_module"

step "fixing /etc/fstab and the drivers"
hvm_fstab_drivers "$mnt" "$boot_root" "$root_uuid" "$boot_uuid" "$nitro"

if [ "$sanitize" = 1 ]; then
  step "sanitizing"
  sanitize_root "$mnt"
else
  step "not sanitizing (no --sanitize)"
fi

sync
umount -R "$mnt"
if [ "$inplace_layout" = bare-ext-blocklist ]; then
  # GRUB wrote sector 0 of the disk the filesystem starts on: prove the filesystem did not notice.
  e2fsck -fn "$disk" >&2 || die "e2fsck -fn $disk found problems after GRUB's boot sector was written"
fi
blockdev --flushbufs "$disk"
bytes_written=$(($(device_bytes_written "$disk") - written0))
log "done in $(guest_elapsed)s ($method${inplace_layout:+, $inplace_layout}): $(human_bytes "$bytes_written") written to $disk"
json_list() { local out="" x; for x in "$@"; do out+="${out:+,}$(json_str "$x")"; done; printf '[%s]' "$out"; }
guest_emit_facts "$(printf '{"script":"pv2hvm","schemaVersion":4,"partitioned":%s,"layout":%s,"fsType":%s,"kernels":[%s],"defaultKernel":%s,"bootMenu":%s,"enaDriver":%s,"nvmeDriver":%s,"enaInInitramfs":%s,"nvmeInInitramfs":%s,"ixgbevfDriver":%s,"initramfsUpdatedWith":%s,"nitroReady":%s,"fstabRemoved":%s,"fstabNofail":%s,"copiedBytes":%s,"seconds":%s,"sanitized":%s,"rootUuid":%s,"rootLabel":%s,"copyMethod":%s,"method":%s,"bytesWritten":%s,"inPlaceLayout":%s,"grubInstallGuard":%s}' \
  "$partitioned" "$(json_str "$layout")" "$(json_str "$fs_type")" "$KERNELS_JSON" "$(json_str "$DEFAULT_VERSION")" "$(json_str "$BOOT_MENU_SOURCE")" \
  "$(json_bool "$ENA_DRIVER")" "$(json_bool "$NVME_DRIVER")" "$(json_bool "$ENA_IN_INITRAMFS")" "$(json_bool "$NVME_IN_INITRAMFS")" \
  "$(json_bool "$IXGBEVF_DRIVER")" "$(json_str "$INITRAMFS_UPDATED")" "$(json_bool "$NITRO_READY")" \
  "$(json_list ${FSTAB_REMOVED[@]+"${FSTAB_REMOVED[@]}"})" "$(json_list ${FSTAB_NOFAIL[@]+"${FSTAB_NOFAIL[@]}"})" \
  "$copied" "$(guest_elapsed)" "$(json_bool "$sanitize")" "$(json_str "$root_uuid")" "$(json_str "$root_label")" "$(json_str "$copy_method")" \
  "$(json_str "$method")" "$bytes_written" "$(json_str "$inplace_layout")" "$(json_str "$GRUB_INSTALL_GUARD")")"
