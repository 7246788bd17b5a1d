#!/usr/bin/env bash
# pv2hvm.sh — converts the root disk of a paravirtual (PV-GRUB) EC2 image into one that boots as
# HVM with a BIOS: runs as root on a temporary worker instance that has both volumes attached.
#
#   pv2hvm.sh --source DEV --target DEV [--sanitize]
#
# DEV is a block device path or an EBS volume id (vol-0123… or vol0123…; see lib/devices.sh for
# how it is found). The source is only read. The target is overwritten:
#   1. an msdos label with one bootable partition from 1 MiB to the end;
#   2. the root filesystem copied into it (ext*: only the used blocks, e2image; else dd), checked
#      (e2fsck -fy) and grown to fill the partition, UUID and LABEL kept;
#   3. GRUB 2 for BIOS from the WORKER's grub tools, and boot/grub/grub.cfg converted from the
#      image's PV-GRUB boot/grub/menu.lst (serial console, first partition, root by UUID);
#   4. /etc/fstab: the root's Xen device name -> UUID=;
#   5. a report of ENA / NVMe drivers in the default kernel and its initramfs;
#   6. with --sanitize: host keys, shell histories, cloud-init instance state, machine-id and
#      OpsWorks agent remnants removed.
# The source may be a filesystem on the whole device (classic PV) or a partitioned disk (the
# partition holding the root filesystem is used).
#
# Output: progress on stderr; the last line of stdout is one JSON object:
#   {"partitioned":bool,"fsType":"ext4","kernels":["6.1.0-18-amd64"],"enaDriver":bool,
#    "nvmeDriver":bool,"enaInInitramfs":bool,"nvmeInInitramfs":bool,"copiedBytes":N,"seconds":N,
#    "sanitized":bool,"rootUuid":"…","rootLabel":"…","defaultKernel":"…","copyMethod":"…"}
# Exit status: 0 done, 1 failed, 2 bad arguments. Every exit path (signals too) unmounts what the
# script mounted and removes the partition mappings it added. Running it again on the same target
# starts over from the label.
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
# shellcheck source=lib/grubcfg.sh
. "$PV2HVM_LIB/grubcfg.sh" # @bundle lib/grubcfg.sh
# shellcheck source=lib/image.sh
. "$PV2HVM_LIB/image.sh" # @bundle lib/image.sh

usage() {
  cat >&2 <<'EOF'
usage: pv2hvm.sh --source DEV --target DEV [--sanitize]
  DEV: a block device path (/dev/nvme1n1, /dev/xvdf, /dev/loop3) or an EBS volume id (vol-0123…)
EOF
  exit 2
}

source_spec="" target_spec="" sanitize=0
while [ $# -gt 0 ]; do
  case $1 in
    --source) [ $# -ge 2 ] || usage_error "--source needs a value"; source_spec=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || usage_error "--target needs a value"; target_spec=$2; shift 2 ;;
    --source=*) source_spec=${1#*=}; shift ;;
    --target=*) target_spec=${1#*=}; shift ;;
    --sanitize) sanitize=1; shift ;;
    -h | --help) usage ;;
    *) usage_error "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$source_spec" ] || usage_error "--source DEV is required"
[ -n "$target_spec" ] || usage_error "--target DEV is required"
[ "$(id -u)" -eq 0 ] || die "must run as root"

install_cleanup_traps
# From here on, anything a tool prints goes to stderr: stdout carries the facts line alone (fd 3).
exec 3>&1 1>&2

# The worker's tools; what is missing is installed with its package manager (lib/tools.sh: dnf on
# Amazon Linux 2023, apt-get on Debian/Ubuntu). GRUB for BIOS is the worker's: Debian/Ubuntu name
# it grub-install (grub2-common, modules grub-pc-bin), Amazon Linux/RHEL grub2-install
# (grub2-tools, modules grub2-pc-modules), both with the modules in /usr/lib/grub/i386-pc.
ensure_tools blkid lsblk findmnt partx parted wipefs blockdev debugfs e2fsck resize2fs e2image dumpe2fs \
  mount umount flock 'lsinitramfs|lsinitrd' 'grub-install|grub2-install' grub-modules:i386-pc
grub_install=$(command -v grub-install || command -v grub2-install)
[ -f "$(grub_platform_dir i386-pc)/boot.img" ] || die "GRUB i386-pc modules on the worker have no boot.img ($(grub_platform_dir i386-pc))"
total_steps=8
step() { log "step $1/$total_steps: $2"; }

# --- 1. devices ----------------------------------------------------------------------------------
step 1 "resolving devices"
source_dev=$(resolve_device "$source_spec") || die "cannot find the source device '$source_spec'"
target_dev=$(resolve_device "$target_spec") || die "cannot find the target device '$target_spec'"
[ -b "$source_dev" ] || die "source $source_dev is not a block device"
[ -b "$target_dev" ] || die "target $target_dev is not a block device"
same_device "$source_dev" "$target_dev" && die "source and target are the same device ($source_dev)"
is_whole_disk "$target_dev" || die "target $target_dev is a partition: give the whole disk"
log "source $source_spec = $source_dev, target $target_spec = $target_dev"

# One run per target at a time.
exec {lock_fd}<"$target_dev"
flock -n "$lock_fd" || die "another process holds $target_dev (a pv2hvm run already going?)"

# A mounted target is refused, unless the mount is a leftover of an earlier run of this script.
while read -r mdev mpoint; do
  [ -n "$mdev" ] || continue
  if [[ $mpoint == /tmp/pv2hvm.* || $mpoint == /run/pv2hvm.* ]]; then
    log "unmounting $mdev from $mpoint (left by an earlier run)"
    umount "$mpoint" || die "cannot unmount $mpoint"
  else
    die "target $mdev is mounted at $mpoint: refusing to overwrite it"
  fi
done < <(mounts_of "$target_dev")
if [ -n "$(mounts_of "$source_dev")" ]; then
  die "source $source_dev (or a partition of it) is mounted: $(mounts_of "$source_dev" | tr '\n' ' ')"
fi

# --- 2. the source filesystem --------------------------------------------------------------------
step 2 "inspecting the source"
partitioned=false
src_fs_dev=$source_dev
pttype=$(disk_pttype "$source_dev")
if [ -n "$pttype" ]; then
  partitioned=true
  make_partitions_visible "$source_dev"
  mapfile -t parts < <(disk_partitions "$source_dev")
  [ ${#parts[@]} -gt 0 ] || die "source $source_dev has a $pttype partition table but no partition could be mapped"
  # The root filesystem is the partition with an /etc/fstab and a /boot (largest one if several).
  src_fs_dev="" best_size=0
  for p in "${parts[@]}"; do
    t=$(blkid -p -o value -s TYPE "$p" 2>/dev/null || true)
    case $t in
      ext2 | ext3 | ext4)
        debugfs -R 'stat /etc/fstab' "$p" 2>/dev/null | grep -q '^Inode:' || continue
        debugfs -R 'stat /boot' "$p" 2>/dev/null | grep -q '^Inode:' || continue ;;
      "" | swap | vfat | LVM2_member | linux_raid_member) continue ;;
      *)
        m=$(mktemp -d /tmp/pv2hvm.probe.XXXXXX)
        ok=0
        if mount -o ro "$p" "$m" 2>/dev/null; then
          [ -e "$m/etc/fstab" ] && [ -d "$m/boot" ] && ok=1
          umount "$m"
        fi
        rmdir "$m"
        [ "$ok" = 1 ] || continue ;;
    esac
    s=$(blockdev --getsize64 "$p")
    if [ "$s" -gt "$best_size" ]; then src_fs_dev=$p; best_size=$s; fi
  done
  [ -n "$src_fs_dev" ] || die "no partition of $source_dev holds a root filesystem (one with /etc/fstab and /boot)"
  log "source has a $pttype partition table; root filesystem on $src_fs_dev"
fi
fs_type=$(blkid -p -o value -s TYPE "$src_fs_dev" 2>/dev/null || true)
[ -n "$fs_type" ] || die "no filesystem found on $src_fs_dev"
case $fs_type in
  ext2 | ext3 | ext4)
    fs_bytes=$(ext_fs_bytes "$src_fs_dev")
    used_bytes=$(ext_used_bytes "$src_fs_dev") ;;
  *)
    fs_bytes=$(blockdev --getsize64 "$src_fs_dev"); used_bytes=$fs_bytes ;;
esac
target_bytes=$(blockdev --getsize64 "$target_dev")
log "filesystem $fs_type, $(human_bytes "$fs_bytes") ($(human_bytes "$used_bytes") used); target $(human_bytes "$target_bytes")"
# The partition starts at 1 MiB and the msdos label needs nothing at the end.
[ "$target_bytes" -ge $((fs_bytes + 1048576)) ] ||
  die "target $target_dev ($(human_bytes "$target_bytes")) is smaller than the source filesystem + 1 MiB ($(human_bytes $((fs_bytes + 1048576))))"

# --- 3. the target label -------------------------------------------------------------------------
step 3 "writing an msdos label with one bootable partition on $target_dev"
for p in $(disk_partitions "$target_dev"); do wipefs -aq "$p" 2>/dev/null || true; done
wipefs -aq "$target_dev"
# partx -d drops stale mappings a loop device may still have from an earlier run.
case ${target_dev##*/} in loop*) partx -d "$target_dev" >/dev/null 2>&1 || true ;; esac
parted -s -a optimal "$target_dev" -- mklabel msdos mkpart primary 1MiB 100% set 1 boot on
make_partitions_visible "$target_dev"
# Partitions that parted (BLKPG) made on a loop device go at exit too; a real disk keeps them.
case ${target_dev##*/} in loop*) on_exit "partx -d '$target_dev' >/dev/null 2>&1" ;; esac
target_part=$(partition_path "$target_dev" 1) || die "partition 1 of $target_dev did not appear"
[ -b "$target_part" ] || die "partition 1 of $target_dev has no device node ($target_part)"
log "target partition $target_part, $(human_bytes "$(blockdev --getsize64 "$target_part")")"

# --- 4. copy, check, grow ------------------------------------------------------------------------
step 4 "copying the filesystem $src_fs_dev -> $target_part"
copy_t0=$SECONDS
copy_filesystem "$src_fs_dev" "$target_part" "$fs_type"
sync
copy_s=$((SECONDS - copy_t0))
log "copied $COPY_BYTES bytes ($(human_bytes "$COPY_BYTES")) with $COPY_METHOD in ${copy_s}s"

step 5 "checking and growing the filesystem"
case $fs_type in
  ext2 | ext3 | ext4)
    rc=0; e2fsck -fy "$target_part" >&2 || rc=$?
    # 0: clean, 1: errors fixed (e.g. directory indexes rebuilt). Anything else: broken.
    [ "$rc" -le 1 ] || die "e2fsck -fy $target_part exited $rc"
    resize2fs "$target_part" >&2 || die "resize2fs $target_part failed"
    fs_module=ext2 ;;
  xfs) fs_module=xfs ;;
  btrfs) fs_module=btrfs ;;
  *) fs_module=$fs_type; log "warning: $fs_type is neither checked nor grown" ;;
esac
root_uuid=$(blkid -p -o value -s UUID "$target_part" 2>/dev/null || true)
root_label=$(blkid -p -o value -s LABEL "$target_part" 2>/dev/null || true)
[ -n "$root_uuid" ] || die "the copied filesystem on $target_part has no UUID"

mnt=$(mktemp -d /tmp/pv2hvm.XXXXXX)
on_exit "rmdir '$mnt' 2>/dev/null"
mount_opts=""
[ "$fs_type" = xfs ] && mount_opts="-o nouuid"
# shellcheck disable=SC2086
mount $mount_opts "$target_part" "$mnt"
on_exit "! mountpoint -q '$mnt' || umount '$mnt'"
[ "$fs_type" = xfs ] && { ensure_tools xfs_growfs; xfs_growfs "$mnt" >&2 || die "xfs_growfs failed"; }

# --- 6. boot loader ------------------------------------------------------------------------------
step 6 "installing GRUB 2 (i386-pc) and converting the PV-GRUB menu"
menu=""
for m in boot/grub/menu.lst boot/grub/grub.conf; do
  if [ -f "$mnt/$m" ]; then menu=$mnt/$m; break; fi
done
menu_name=${menu#"$mnt"}
if [ -z "$menu" ]; then
  log "warning: no boot/grub/menu.lst or grub.conf: building entries from /boot/vmlinuz-*"
  menu=$(mktemp /tmp/pv2hvm.menu.XXXXXX); on_exit "rm -f '$menu'"
  grubcfg_synthesize "$mnt" >"$menu"
  menu_name="(synthesized from /boot/vmlinuz-*)"
fi
mapfile -t kernel_paths < <(grubcfg_kernels "$menu")
[ ${#kernel_paths[@]} -gt 0 ] || die "the PV-GRUB menu $menu_name has no kernel entry"
for k in "${kernel_paths[@]}"; do
  [ -e "$mnt$k" ] || log "warning: menu entry kernel $k does not exist in the image"
done
default_kernel=$(grubcfg_default_kernel "$menu")

mkdir -p "$mnt/boot/grub"
# grub2-install writes to boot/grub2; GRUB 2 built that way looks there too, so link it.
if [[ $grub_install == *grub2-install ]] && [ ! -e "$mnt/boot/grub2" ]; then ln -s grub "$mnt/boot/grub2"; fi
"$grub_install" --target=i386-pc --boot-directory="$mnt/boot" --modules="part_msdos $fs_module" \
  "$target_dev" >&2 || die "grub-install on $target_dev failed"
cfg_tmp=$(mktemp "$mnt/boot/grub/grub.cfg.XXXXXX")
grubcfg_convert "$menu" "$root_uuid" "$fs_module" "$menu_name" >"$cfg_tmp" || die "converting $menu_name failed"
chmod 0644 "$cfg_tmp"
mv -f "$cfg_tmp" "$mnt/boot/grub/grub.cfg"
log "boot/grub/grub.cfg: ${#kernel_paths[@]} entries, default $default_kernel"

# --- 7. fstab, drivers ---------------------------------------------------------------------------
step 7 "fixing /etc/fstab and checking drivers"
fix_fstab "$mnt" "$root_uuid"
# Also mounting a separate /boot is not supported: the menu paths would not resolve.
if [ -f "$mnt/etc/fstab" ] && awk '!/^[ \t]*#/ && $2 == "/boot" { f = 1 } END { exit !f }' "$mnt/etc/fstab"; then
  log "warning: /etc/fstab mounts a separate /boot: only the root filesystem was converted"
fi
kernels_json="" seen=" "
for k in "${kernel_paths[@]}"; do
  v=$(kernel_version_of "$k")
  [[ $seen == *" $v "* ]] && continue
  seen="$seen$v "
  kernels_json="$kernels_json${kernels_json:+,}$(json_str "$v")"
done
default_version=$(kernel_version_of "$default_kernel")
initrd_rel=$(grubcfg_initrd_for "$menu" "$default_kernel")
driver_report "$mnt" "$default_version" "${initrd_rel:+$mnt$initrd_rel}"
log "kernel $default_version: ENA driver $ENA_DRIVER (initramfs $ENA_IN_INITRAMFS), NVMe driver $NVME_DRIVER (initramfs $NVME_IN_INITRAMFS)"
[ "$ENA_DRIVER" = 1 ] || log "warning: no ENA driver: the image will have no network on instance types with ENA only (Nitro)"
[ "$NVME_IN_INITRAMFS" = 1 ] || log "warning: no NVMe driver at boot: the image cannot boot on Nitro instance types (only Xen HVM)"

# --- 8. sanitize ---------------------------------------------------------------------------------
if [ "$sanitize" = 1 ]; then
  step 8 "sanitizing"
  sanitize_root "$mnt"
else
  step 8 "not sanitizing (no --sanitize)"
fi

sync
umount "$mnt"
log "done in $(guest_elapsed)s"
printf '{"partitioned":%s,"fsType":%s,"kernels":[%s],"enaDriver":%s,"nvmeDriver":%s,"enaInInitramfs":%s,"nvmeInInitramfs":%s,"copiedBytes":%s,"seconds":%s,"sanitized":%s,"rootUuid":%s,"rootLabel":%s,"defaultKernel":%s,"copyMethod":%s}\n' \
  "$partitioned" "$(json_str "$fs_type")" "$kernels_json" "$(json_bool "$ENA_DRIVER")" "$(json_bool "$NVME_DRIVER")" \
  "$(json_bool "$ENA_IN_INITRAMFS")" "$(json_bool "$NVME_IN_INITRAMFS")" "$COPY_BYTES" "$(guest_elapsed)" \
  "$(json_bool "$sanitize")" "$(json_str "$root_uuid")" "$(json_str "$root_label")" \
  "$(json_str "$default_version")" "$(json_str "$COPY_METHOD")" >&3
