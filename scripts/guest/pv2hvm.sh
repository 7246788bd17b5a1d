#!/usr/bin/env bash
# pv2hvm.sh — converts the root disk of a paravirtual (PV-GRUB) EC2 image into one that boots as
# HVM with a BIOS: runs as root on a temporary worker instance that has both volumes attached.
#
#   pv2hvm.sh --source DEV --target DEV [--sanitize] [--no-nitro]
#
# DEV is a block device path or an EBS volume id (vol-0123… or vol0123…; see lib/devices.sh for
# how it is found). The source is only read. The target is overwritten. Source layouts:
#   flat:          a filesystem on the whole device (classic PV; root (hd0))
#   partitioned:   a partition table; the partition holding /etc/fstab and /boot is the root
#   separate-boot: as partitioned, plus a partition that is /boot (menu paths relative to it)
# Steps:
#   1. an msdos label: one bootable partition from 1 MiB to the end, or for separate-boot
#      partition 1 /boot (the source's size, bootable) and partition 2 the root to the end;
#   2. the filesystems copied (ext*: only the used blocks, e2image; else dd), checked (e2fsck -fy),
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
# @facts {"script":"pv2hvm","schemaVersion":2,"fields":{"partitioned":"boolean","layout":"string","fsType":"string","kernels":"string[]","defaultKernel":"string","bootMenu":"string","enaDriver":"boolean","nvmeDriver":"boolean","enaInInitramfs":"boolean","nvmeInInitramfs":"boolean","ixgbevfDriver":"boolean","initramfsUpdatedWith":"string","nitroReady":"boolean","fstabRemoved":"string[]","fstabNofail":"string[]","copiedBytes":"number","seconds":"number","sanitized":"boolean","rootUuid":"string","rootLabel":"string","copyMethod":"string"}}
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
# shellcheck source=lib/bootdisk.sh
. "$PV2HVM_LIB/bootdisk.sh" # @bundle lib/bootdisk.sh
guest_facts_channel "$@"

usage() {
  cat >&2 <<'EOF'
usage: pv2hvm.sh --source DEV --target DEV [--sanitize] [--no-nitro]
  DEV: a block device path (/dev/nvme1n1, /dev/xvdf, /dev/loop3) or an EBS volume id (vol-0123…)
EOF
  exit 2
}

source_spec="" target_spec="" sanitize=0 nitro=1
while [ $# -gt 0 ]; do
  case $1 in
    --source) [ $# -ge 2 ] || usage_error "--source needs a value"; source_spec=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || usage_error "--target needs a value"; target_spec=$2; shift 2 ;;
    --source=*) source_spec=${1#*=}; shift ;;
    --target=*) target_spec=${1#*=}; shift ;;
    --sanitize) sanitize=1; shift ;;
    --no-nitro) nitro=0; shift ;;
    -h | --help) usage ;;
    *) usage_error "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$source_spec" ] || usage_error "--source DEV is required"
[ -n "$target_spec" ] || usage_error "--target DEV is required"
[ "$(id -u)" -eq 0 ] || die "must run as root"

install_cleanup_traps

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

# --- 2. the source filesystems -------------------------------------------------------------------
step 2 "inspecting the source"

# has_path DEV PATH: the filesystem on DEV has PATH (ext* read with debugfs, others mounted read-only).
has_path() {
  local dev=$1 path=$2 t m ok=1
  t=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
  case $t in
    ext2 | ext3 | ext4) debugfs -R "stat $path" "$dev" 2>/dev/null | grep -q '^Inode:' ;;
    "" | swap | vfat | LVM2_member | linux_raid_member) return 1 ;;
    *)
      m=$(mktemp -d /tmp/pv2hvm.probe.XXXXXX)
      if mount -o ro "$dev" "$m" 2>/dev/null; then
        [ -e "$m$path" ] && ok=0
        umount "$m"
      fi
      rmdir "$m"
      return "$ok" ;;
  esac
}

# fs_size DEV: "TYPE BYTES USED_BYTES" of the filesystem on DEV.
fs_size() {
  local t
  t=$(blkid -p -o value -s TYPE "$1" 2>/dev/null || true)
  [ -n "$t" ] || die "no filesystem found on $1"
  case $t in
    ext2 | ext3 | ext4) printf '%s %s %s\n' "$t" "$(ext_fs_bytes "$1")" "$(ext_used_bytes "$1")" ;;
    *) printf '%s %s %s\n' "$t" "$(blockdev --getsize64 "$1")" "$(blockdev --getsize64 "$1")" ;;
  esac
}

partitioned=false layout=flat
src_fs_dev=$source_dev src_boot_dev=""
pttype=$(disk_pttype "$source_dev")
if [ -n "$pttype" ]; then
  partitioned=true layout=partitioned
  make_partitions_visible "$source_dev"
  mapfile -t parts < <(disk_partitions "$source_dev")
  [ ${#parts[@]} -gt 0 ] || die "source $source_dev has a $pttype partition table but no partition could be mapped"
  # The root filesystem is the partition with an /etc/fstab and a /boot (largest one if several);
  # a separate /boot is the partition with a GRUB legacy menu or kernels at its top.
  src_fs_dev="" best_size=0
  for p in "${parts[@]}"; do
    if has_path "$p" /etc/fstab && has_path "$p" /boot; then
      s=$(blockdev --getsize64 "$p")
      if [ "$s" -gt "$best_size" ]; then src_fs_dev=$p; best_size=$s; fi
    elif has_path "$p" /grub/menu.lst || has_path "$p" /grub/grub.conf; then
      [ -z "$src_boot_dev" ] || die "partitions $src_boot_dev and $p of $source_dev both look like /boot (a GRUB legacy menu at their top)"
      src_boot_dev=$p
    fi
  done
  [ -n "$src_fs_dev" ] || die "no partition of $source_dev holds a root filesystem (one with /etc/fstab and /boot)"
  [ -z "$src_boot_dev" ] || layout=separate-boot
  log "source has a $pttype partition table; root filesystem on $src_fs_dev${src_boot_dev:+, /boot on $src_boot_dev}"
fi
read -r fs_type fs_bytes used_bytes < <(fs_size "$src_fs_dev")
boot_fs_type="" boot_bytes=0 boot_mib=0
if [ -n "$src_boot_dev" ]; then
  read -r boot_fs_type boot_bytes _ < <(fs_size "$src_boot_dev")
  case $boot_fs_type in ext2 | ext3 | ext4) ;; *) die "the /boot filesystem on $src_boot_dev is $boot_fs_type: only ext2/3/4 /boot partitions are converted" ;; esac
  boot_mib=$(((boot_bytes + 1048575) / 1048576))
fi
target_bytes=$(blockdev --getsize64 "$target_dev")
log "filesystem $fs_type, $(human_bytes "$fs_bytes") ($(human_bytes "$used_bytes") used)${src_boot_dev:+; /boot $boot_fs_type $(human_bytes "$boot_bytes")}; target $(human_bytes "$target_bytes")"
# The first partition starts at 1 MiB and the msdos label needs nothing at the end.
need_bytes=$((fs_bytes + (boot_mib + 1) * 1048576))
[ "$target_bytes" -ge "$need_bytes" ] ||
  die "target $target_dev ($(human_bytes "$target_bytes")) is smaller than the source filesystems + 1 MiB ($(human_bytes "$need_bytes"))"

# --- 3. the target label -------------------------------------------------------------------------
step 3 "writing an msdos label on $target_dev ($layout)"
for p in $(disk_partitions "$target_dev"); do wipefs -aq "$p" 2>/dev/null || true; done
wipefs -aq "$target_dev"
# partx -d drops stale mappings a loop device may still have from an earlier run.
case ${target_dev##*/} in loop*) partx -d "$target_dev" >/dev/null 2>&1 || true ;; esac
if [ -n "$src_boot_dev" ]; then
  parted -s -a optimal "$target_dev" -- mklabel msdos mkpart primary 1MiB "$((boot_mib + 1))MiB" set 1 boot on \
    mkpart primary "$((boot_mib + 1))MiB" 100%
else
  parted -s -a optimal "$target_dev" -- mklabel msdos mkpart primary 1MiB 100% set 1 boot on
fi
make_partitions_visible "$target_dev"
# Partitions that parted (BLKPG) made on a loop device go at exit too; a real disk keeps them.
case ${target_dev##*/} in loop*) on_exit "partx -d '$target_dev' >/dev/null 2>&1" ;; esac
root_index=1 target_boot=""
[ -z "$src_boot_dev" ] || root_index=2
target_part=$(partition_path "$target_dev" "$root_index") || die "partition $root_index of $target_dev did not appear"
[ -b "$target_part" ] || die "partition $root_index of $target_dev has no device node ($target_part)"
if [ -n "$src_boot_dev" ]; then
  target_boot=$(partition_path "$target_dev" 1) || die "partition 1 of $target_dev did not appear"
  [ -b "$target_boot" ] || die "partition 1 of $target_dev has no device node ($target_boot)"
  [ "$(blockdev --getsize64 "$target_boot")" -ge "$boot_bytes" ] || die "partition 1 of $target_dev is smaller than the source /boot"
fi
log "target root partition $target_part, $(human_bytes "$(blockdev --getsize64 "$target_part")")${target_boot:+; /boot $target_boot}"

# --- 4. copy, check, grow ------------------------------------------------------------------------
step 4 "copying the filesystems"
copy_t0=$SECONDS copied=0 copy_method=""
if [ -n "$src_boot_dev" ]; then
  copy_filesystem "$src_boot_dev" "$target_boot" "$boot_fs_type"
  copied=$((copied + COPY_BYTES)) copy_method=$COPY_METHOD
fi
copy_filesystem "$src_fs_dev" "$target_part" "$fs_type"
copied=$((copied + COPY_BYTES)); copy_method=${copy_method:-$COPY_METHOD}
sync
copy_s=$((SECONDS - copy_t0))
log "copied $copied bytes ($(human_bytes "$copied")) with $copy_method in ${copy_s}s"

step 5 "checking and growing the filesystems"
# ext_check DEV: e2fsck -fy; 0: clean, 1: errors fixed (e.g. directory indexes rebuilt). Else broken.
ext_check() { local rc=0; e2fsck -fy "$1" >&2 || rc=$?; [ "$rc" -le 1 ] || die "e2fsck -fy $1 exited $rc"; }
[ -z "$target_boot" ] || ext_check "$target_boot"
case $fs_type in
  ext2 | ext3 | ext4)
    ext_check "$target_part"
    resize2fs "$target_part" >&2 || die "resize2fs $target_part failed"
    fs_module=ext2 ;;
  xfs) fs_module=xfs ;;
  btrfs) fs_module=btrfs ;;
  *) fs_module=$fs_type; log "warning: $fs_type is neither checked nor grown" ;;
esac
root_uuid=$(blkid -p -o value -s UUID "$target_part" 2>/dev/null || true)
root_label=$(blkid -p -o value -s LABEL "$target_part" 2>/dev/null || true)
[ -n "$root_uuid" ] || die "the copied filesystem on $target_part has no UUID"
boot_uuid=""
[ -z "$target_boot" ] || boot_uuid=$(blkid -p -o value -s UUID "$target_boot" 2>/dev/null || true)

mnt=$(mktemp -d /tmp/pv2hvm.XXXXXX)
on_exit "rmdir '$mnt' 2>/dev/null"
mount_opts=""
[ "$fs_type" = xfs ] && mount_opts="-o nouuid"
# shellcheck disable=SC2086
mount $mount_opts "$target_part" "$mnt"
on_exit "! mountpoint -q '$mnt' || umount -R '$mnt'"
[ "$fs_type" = xfs ] && { ensure_tools xfs_growfs; xfs_growfs "$mnt" >&2 || die "xfs_growfs failed"; }
kernel_prefix=/boot grub_module=$fs_module
if [ -n "$target_boot" ]; then
  mkdir -p "$mnt/boot"
  mount "$target_boot" "$mnt/boot"
  on_exit "! mountpoint -q '$mnt/boot' || umount '$mnt/boot'"
  kernel_prefix="" grub_module=ext2
elif [ -f "$mnt/etc/fstab" ] && awk '!/^[ \t]*#/ && $2 == "/boot" { f = 1 } END { exit !f }' "$mnt/etc/fstab"; then
  die "/etc/fstab mounts a separate /boot, but no partition of the source holds it (another volume?): attach-and-merge is not supported; copy /boot into the root filesystem first"
fi

# --- 6. boot loader ------------------------------------------------------------------------------
step 6 "installing GRUB 2 (i386-pc); the image keeps its own GRUB legacy menu"
mkdir -p "$mnt/boot/grub"
# grub2-install writes to boot/grub2; GRUB 2 built that way looks there too, so link it.
if [[ $grub_install == *grub2-install ]] && [ ! -e "$mnt/boot/grub2" ]; then ln -s grub "$mnt/boot/grub2"; fi
"$grub_install" --target=i386-pc --boot-directory="$mnt/boot" --modules="part_msdos $grub_module" \
  "$target_dev" >&2 || die "grub-install on $target_dev failed"
# The filesystem holding the menu is partition 1 of the new disk: (hd0,0) in GRUB legacy terms.
pv_boot_config "$mnt/boot/grub" "$root_uuid" 0 "$grub_module" "$kernel_prefix" || die "rewriting the boot menu failed"
[ "$BOOT_MENU_SOURCE" != synthesized ] ||
  log "warning: no boot/grub/menu.lst or grub.conf: one was made from /boot/vmlinuz-*; kernels installed later are booted only if the image's tools add them to it"
# Where the menu's paths start: the root filesystem, or /boot when it is a filesystem of its own.
boot_root=$mnt
[ -z "$target_boot" ] || boot_root=$mnt/boot
mapfile -t kernel_paths < <(grubcfg_kernels "$BOOT_MENU")
for k in "${kernel_paths[@]}"; do
  k=${k#(*)}
  [ -e "$boot_root$k" ] || log "warning: menu entry kernel $k does not exist in the image"
done
default_kernel=$(grubcfg_default_kernel "$BOOT_MENU"); default_kernel=${default_kernel#(*)}
log "boot/grub/${BOOT_MENU##*/} ($BOOT_MENU_SOURCE): ${#kernel_paths[@]} entries, default $default_kernel"

# --- 7. fstab, drivers ---------------------------------------------------------------------------
step 7 "fixing /etc/fstab and the drivers"
fix_fstab "$mnt" "$root_uuid" "$boot_uuid"
kernels_json="" seen=" "
for k in "${kernel_paths[@]}"; do
  v=$(kernel_version_of "$k")
  [[ $seen == *" $v "* ]] && continue
  seen="$seen$v "
  kernels_json="$kernels_json${kernels_json:+,}$(json_str "$v")"
done
default_version=$(kernel_version_of "$default_kernel")
initrd_rel=$(grubcfg_initrd_for "$BOOT_MENU" "$default_kernel"); initrd_rel=${initrd_rel#(*)}
driver_report "$mnt" "$default_version" "${initrd_rel:+$boot_root$initrd_rel}"
initramfs_updated=""
if [ "$nitro" = 1 ] && { { [ "$NVME_DRIVER" = 1 ] && [ "$NVME_IN_INITRAMFS" = 0 ]; } || { [ "$ENA_DRIVER" = 1 ] && [ "$ENA_IN_INITRAMFS" = 0 ]; }; }; then
  log "kernel $default_version has nvme/ena modules its initramfs lacks: adding them with the image's own tool"
  chroot_mounts "$mnt"
  initramfs_drivers "$mnt" "$default_version"
  chroot_umounts "$mnt"
  [ "$INITRAMFS_TOOL" = none ] || initramfs_updated=$INITRAMFS_TOOL
  driver_report "$mnt" "$default_version" "${initrd_rel:+$boot_root$initrd_rel}"
elif [ "$nitro" = 0 ]; then
  log "not touching the initramfs (--no-nitro)"
fi
nitro_ready=0
[ "$NVME_IN_INITRAMFS" = 1 ] && [ "$ENA_DRIVER" = 1 ] && nitro_ready=1
log "kernel $default_version: ENA driver $ENA_DRIVER (initramfs $ENA_IN_INITRAMFS), NVMe driver $NVME_DRIVER (initramfs $NVME_IN_INITRAMFS), ixgbevf $IXGBEVF_DRIVER"
[ "$nitro_ready" = 1 ] || log "warning: not Nitro-ready (the root needs NVMe at boot and the network ENA): the image runs only on Xen HVM instance types (t2, m4, c4, r4, …)"

# --- 8. sanitize ---------------------------------------------------------------------------------
if [ "$sanitize" = 1 ]; then
  step 8 "sanitizing"
  sanitize_root "$mnt"
else
  step 8 "not sanitizing (no --sanitize)"
fi

sync
umount -R "$mnt"
log "done in $(guest_elapsed)s"
json_list() { local out="" x; for x in "$@"; do out+="${out:+,}$(json_str "$x")"; done; printf '[%s]' "$out"; }
guest_emit_facts "$(printf '{"script":"pv2hvm","schemaVersion":2,"partitioned":%s,"layout":%s,"fsType":%s,"kernels":[%s],"defaultKernel":%s,"bootMenu":%s,"enaDriver":%s,"nvmeDriver":%s,"enaInInitramfs":%s,"nvmeInInitramfs":%s,"ixgbevfDriver":%s,"initramfsUpdatedWith":%s,"nitroReady":%s,"fstabRemoved":%s,"fstabNofail":%s,"copiedBytes":%s,"seconds":%s,"sanitized":%s,"rootUuid":%s,"rootLabel":%s,"copyMethod":%s}' \
  "$partitioned" "$(json_str "$layout")" "$(json_str "$fs_type")" "$kernels_json" "$(json_str "$default_version")" "$(json_str "$BOOT_MENU_SOURCE")" \
  "$(json_bool "$ENA_DRIVER")" "$(json_bool "$NVME_DRIVER")" "$(json_bool "$ENA_IN_INITRAMFS")" "$(json_bool "$NVME_IN_INITRAMFS")" \
  "$(json_bool "$IXGBEVF_DRIVER")" "$(json_str "$initramfs_updated")" "$(json_bool "$nitro_ready")" \
  "$(json_list ${FSTAB_REMOVED[@]+"${FSTAB_REMOVED[@]}"})" "$(json_list ${FSTAB_NOFAIL[@]+"${FSTAB_NOFAIL[@]}"})" \
  "$copied" "$(guest_elapsed)" "$(json_bool "$sanitize")" "$(json_str "$root_uuid")" "$(json_str "$root_label")" "$(json_str "$copy_method")")"
