# shellcheck shell=bash
# Whether a PV disk can be made to boot as HVM without moving its root filesystem (pv2hvm.sh
# --in-place), decided by reading only. Sourced after common.sh, tools.sh, devices.sh, copy.sh and
# pvdisk.sh; never run.
#
#   inplace_plan DISK
#     sets INPLACE_LAYOUT and the PV_* variables of find_pv_root when DISK allows it:
#       partitioned-gap      an msdos label whose first partition starts late enough for GRUB's core
#                            image between the MBR and it (grub-install embeds it there);
#       bare-ext-blocklist   ext2/3/4 on the whole disk (classic PV root): ext never uses its first
#                            1 KiB, so GRUB's boot sector fits in sector 0 and loads the core image
#                            from a file inside the filesystem by its sector list;
#     else INPLACE_REFUSAL (xfs-at-sector-0, gap-too-small, unsupported-filesystem, unknown-layout)
#     and INPLACE_DETAIL (a sentence for people).
#   inplace_check_filesystems   after inplace_plan allowed it: the root (and /boot) filesystem must
#                               be clean (copy.sh fs_unclean, reading only), else INPLACE_REFUSAL
#                               filesystem-unclean
#   grub_core_sectors FS_MODULE   sectors the i386-pc core image of an msdos disk takes (one more
#                                 than grub-mkimage's for the prefix grub-install sets)

INPLACE_LAYOUT="" INPLACE_REFUSAL="" INPLACE_DETAIL=""

_inplace_refuse() { INPLACE_REFUSAL=$1 INPLACE_DETAIL=$2; }

grub_core_sectors() {
  local mkimage dir tmp bytes
  mkimage=$(command -v grub-mkimage || command -v grub2-mkimage) || die "no grub-mkimage on the worker"
  dir=$(grub_platform_dir i386-pc) || die "no GRUB i386-pc modules on the worker"
  tmp=$(mktemp /tmp/pv2hvm.core.XXXXXX)
  # The modules grub-install puts into the core image for a BIOS boot from an msdos disk.
  "$mkimage" -O i386-pc -d "$dir" -p /boot/grub -o "$tmp" biosdisk part_msdos "$1" >&2 || { rm -f "$tmp"; die "grub-mkimage failed"; }
  bytes=$(stat -c %s "$tmp"); rm -f "$tmp"
  printf '%d\n' $(((bytes + 511) / 512 + 1))
}

# _fs_module TYPE: GRUB's module for a filesystem type, or nothing for one it is not used for here.
_fs_module() { case $1 in ext2 | ext3 | ext4) printf ext2 ;; xfs) printf xfs ;; esac; }

inplace_plan() {
  local disk=$1 t boot_t first need core mod
  INPLACE_LAYOUT="" INPLACE_REFUSAL="" INPLACE_DETAIL=""
  if ! find_pv_root "$disk"; then _inplace_refuse unknown-layout "$PV_PROBLEM"; return 0; fi
  t=$(blkid -p -o value -s TYPE "$PV_ROOT_DEV" 2>/dev/null || true)
  if [ "$PV_PARTITIONED" = false ]; then
    case $t in
      ext2 | ext3 | ext4)
        if ! has_path "$disk" /etc/fstab || ! has_path "$disk" /boot; then
          _inplace_refuse unknown-layout "the $t filesystem on the whole of $disk has no /etc/fstab and /boot: not a root filesystem"
        else
          INPLACE_LAYOUT=bare-ext-blocklist
        fi ;;
      xfs) _inplace_refuse xfs-at-sector-0 "XFS on the whole of $disk has its superblock in sector 0, where BIOS boot code must go: the root has to be copied to a partitioned disk" ;;
      "") _inplace_refuse unknown-layout "$disk has neither a partition table nor a filesystem" ;;
      *) _inplace_refuse unsupported-filesystem "$t on the whole of $disk: only ext2/3/4 leave sector 0 free for boot code" ;;
    esac
    return 0
  fi
  if [ "$PV_PTTYPE" != dos ]; then
    _inplace_refuse unknown-layout "$disk has a $PV_PTTYPE partition table: in place, GRUB goes only into the MBR and the gap of an msdos label"
    return 0
  fi
  [ -n "$(_fs_module "$t")" ] || { _inplace_refuse unsupported-filesystem "the root filesystem on $PV_ROOT_DEV is ${t:-unknown}: in place, only ext2/3/4 and XFS"; return 0; }
  mod=$(_fs_module "$t")
  if [ -n "$PV_BOOT_DEV" ]; then
    boot_t=$(blkid -p -o value -s TYPE "$PV_BOOT_DEV" 2>/dev/null || true)
    case $boot_t in ext2 | ext3 | ext4) mod=ext2 ;; *) _inplace_refuse unsupported-filesystem "the /boot filesystem on $PV_BOOT_DEV is ${boot_t:-unknown}: only ext2/3/4 /boot partitions are converted"; return 0 ;; esac
  fi
  first=$(partition_starts "$disk" | sort -n | head -n 1)
  core=$(grub_core_sectors "$mod")
  need=$((core + 1))
  if [ "$first" -lt "$need" ]; then
    _inplace_refuse gap-too-small "the first partition of $disk starts at sector $first: $((first - 1)) sectors after the MBR, and GRUB's core image (part_msdos, $mod) needs $core"
    return 0
  fi
  INPLACE_LAYOUT=partitioned-gap
  log "first partition at sector $first: room for GRUB's core image ($core sectors) after the MBR"
}

inplace_check_filesystems() {
  local dev t
  for dev in "$PV_ROOT_DEV" ${PV_BOOT_DEV:+"$PV_BOOT_DEV"}; do
    t=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
    log "checking the $t filesystem on $dev before writing to it (read only)"
    # A worker that cannot install it refuses below (unchecked), never fails: nothing is written yet.
    [ "$t" != xfs ] || (ensure_tools xfs_repair) || true
    if fs_unclean "$dev" "$t"; then
      _inplace_refuse filesystem-unclean "$FS_UNCLEAN: in place would write to it; a copy reads all of it and repairs the copy"
      return 0
    fi
  done
}
