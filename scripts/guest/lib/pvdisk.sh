# shellcheck shell=bash
# Where the root filesystem of a PV disk is, found by reading only: the copy reads the source with
# it, the in-place conversion decides with it whether it may write. Sourced by pv2hvm.sh after
# common.sh, devices.sh and copy.sh; never run.
#
#   find_pv_root DISK   sets PV_LAYOUT (flat, partitioned, separate-boot), PV_PARTITIONED (true,
#                       false), PV_PTTYPE ("" or dos, gpt, …), PV_ROOT_DEV and PV_BOOT_DEV ("" when
#                       /boot is not a partition of its own); status 1 with PV_PROBLEM (a sentence)
#                       when DISK holds no root it can name.
#   has_path DEV PATH   the filesystem on DEV has PATH
#   fs_size DEV         "TYPE BYTES USED_BYTES" of the filesystem on DEV

# ro_mount DEV DIR: mounts DEV read-only through a read-only loop device, so that not even a journal
# replay reaches DEV (XFS: norecovery, it refuses a dirty log otherwise). The caller unmounts DIR
# with ro_umount.
ro_mount() {
  local dev=$1 dir=$2 t loop opts=ro
  t=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
  [ "$t" = xfs ] && opts=ro,norecovery
  loop=$(losetup -r -f --show "$dev" 2>/dev/null) || return 1
  mount -t "$t" -o "$opts" "$loop" "$dir" 2>/dev/null || { losetup -d "$loop"; return 1; }
}
ro_umount() {
  local dir=$1 loop
  loop=$(findmnt -rn -o SOURCE --target "$dir" 2>/dev/null || true)
  umount "$dir" && { [ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true; }
}

# has_path DEV PATH: the filesystem on DEV has PATH (ext* read with debugfs, others mounted read-only).
has_path() {
  local dev=$1 path=$2 t m ok=1
  t=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
  case $t in
    ext2 | ext3 | ext4) debugfs -R "stat $path" "$dev" 2>/dev/null | grep -q '^Inode:' ;;
    "" | swap | vfat | LVM2_member | linux_raid_member) return 1 ;;
    *)
      m=$(mktemp -d /tmp/pv2hvm.probe.XXXXXX)
      if ro_mount "$dev" "$m"; then
        [ -e "$m$path" ] && ok=0
        ro_umount "$m"
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

find_pv_root() {
  local disk=$1 p s best_size=0
  local -a parts=()
  PV_LAYOUT=flat PV_PARTITIONED=false PV_ROOT_DEV=$disk PV_BOOT_DEV="" PV_PROBLEM=""
  PV_PTTYPE=$(disk_pttype "$disk")
  [ -n "$PV_PTTYPE" ] || return 0
  make_partitions_visible "$disk"
  mapfile -t parts < <(disk_partitions "$disk")
  if [ ${#parts[@]} -eq 0 ]; then
    # An MBR signature without partitions over a filesystem on the whole disk: GRUB's boot sector on
    # a bare ext disk converted in place before.
    [ -z "$(blkid -p -o value -s TYPE "$disk" 2>/dev/null || true)" ] || { PV_PTTYPE=""; return 0; }
    PV_PROBLEM="$disk has a $PV_PTTYPE partition table but no partition could be mapped"
    return 1
  fi
  PV_PARTITIONED=true PV_LAYOUT=partitioned PV_ROOT_DEV=""
  # The root filesystem is the partition with an /etc/fstab and a /boot (largest one if several);
  # a separate /boot is the partition with a GRUB legacy menu or kernels at its top.
  for p in "${parts[@]}"; do
    if has_path "$p" /etc/fstab && has_path "$p" /boot; then
      s=$(blockdev --getsize64 "$p")
      if [ "$s" -gt "$best_size" ]; then PV_ROOT_DEV=$p; best_size=$s; fi
    elif has_path "$p" /grub/menu.lst || has_path "$p" /grub/grub.conf; then
      [ -z "$PV_BOOT_DEV" ] || { PV_PROBLEM="partitions $PV_BOOT_DEV and $p of $disk both look like /boot (a GRUB legacy menu at their top)"; return 1; }
      PV_BOOT_DEV=$p
    fi
  done
  [ -n "$PV_ROOT_DEV" ] || { PV_PROBLEM="no partition of $disk holds a root filesystem (one with /etc/fstab and /boot)"; return 1; }
  [ -z "$PV_BOOT_DEV" ] || PV_LAYOUT=separate-boot
  return 0
}

# fstab_has_boot ROOT_DIR: ROOT_DIR/etc/fstab mounts a separate /boot (which then must be a
# partition of this disk: a /boot on another volume is not converted).
fstab_has_boot() { [ -f "$1/etc/fstab" ] && awk '!/^[ \t]*#/ && $2 == "/boot" { f = 1 } END { exit !f }' "$1/etc/fstab"; }
