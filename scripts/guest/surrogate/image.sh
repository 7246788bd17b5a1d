# shellcheck shell=bash
# surrogate.sh recipe "image": a ready disk image (it brings its own partitions and boot loader)
# written onto the target.
#
#   --url https://…|http://…|s3://bucket/key|file:///path|/path --sha256 HEX [--format raw|qcow2]
#
# 1. fetched into a temporary file (curl, `aws s3 cp`; a local path is read in place) under
#    ${SURROGATE_TMPDIR:-/var/tmp}, which must have room for it;
# 2. its sha256 checked BEFORE anything is written (a mismatch stops here, target untouched), and
#    its format checked against --format (a qcow2 header given as raw, or the reverse, stops too);
# 3. written with qemu-img convert (raw and qcow2; dd for raw when there is no qemu-img), after the
#    target's old signatures are wiped (a stale GPT backup header at the end would confuse tools);
# 4. the last partition grown to the end of the target (msdos or gpt, the GPT backup header moved to
#    the end) and its filesystem with it when it is ext2/3/4 or xfs;
# 5. then the root filesystem is mounted for the driver report, the /etc/fstab check (Xen device
#    names -> UUID), cloud-init and sanitize. No partitioning, no GRUB: the image's own are kept.

# img_fetch URL -> IMG_FILE (a local path to read; a temporary file is removed at exit).
img_fetch() {
  local url=$1 tmpdir=${SURROGATE_TMPDIR:-/var/tmp}
  case $url in
    file://*) IMG_FILE=${url#file://} ;;
    /*) IMG_FILE=$url ;;
    http://* | https://*)
      ensure_tools curl
      IMG_FILE=$(mktemp "$tmpdir/surrogate.image.XXXXXX"); on_exit "rm -f '$IMG_FILE'"
      log "downloading $url"
      curl -fsSL --retry 3 --retry-delay 2 -o "$IMG_FILE" "$url" || die "downloading $url failed" ;;
    s3://*)
      command -v aws >/dev/null || die "the aws CLI is not on the worker (needed for $url)"
      IMG_FILE=$(mktemp "$tmpdir/surrogate.image.XXXXXX"); on_exit "rm -f '$IMG_FILE'"
      log "copying $url"
      aws s3 cp --only-show-errors "$url" "$IMG_FILE" >&2 || die "aws s3 cp $url failed" ;;
    *) usage_error "--url must be https://, http://, s3://, file:// or an absolute path (got '$url')" ;;
  esac
  [ -f "$IMG_FILE" ] && [ -r "$IMG_FILE" ] || die "the image $url is not a readable file"
}

# img_virtual_size FILE FORMAT: bytes the image occupies once written.
img_virtual_size() {
  if [ "$2" = qcow2 ]; then
    qemu-img info --output=json -f qcow2 "$1" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p' | head -1
  else
    stat -c %s "$1"
  fi
}

# img_grow_last DISK: grows the last partition to the end of DISK; sets IMG_LAST_PART ("" if none).
img_grow_last() {
  local disk=$1 pt n
  IMG_LAST_PART=""
  pt=$IMG_PTTYPE
  [ -n "$pt" ] || return 0
  if [ "$pt" = gpt ]; then
    sfdisk --relocate gpt-bak-std "$disk" >&2 2>/dev/null || log "warning: could not move the GPT backup header to the end"
  fi
  n=$(sfdisk -J "$disk" 2>/dev/null | sed -n 's/.*"node": *"[^"]*[^0-9]\([0-9][0-9]*\)".*/\1/p' | sort -n | tail -1)
  [ -n "$n" ] || { log "warning: no partition found on $disk to grow"; return 0; }
  case $pt in dos) ;; gpt) ;; *) log "warning: $pt partition table: not grown"; return 0 ;; esac
  # An extended/logical layout is left alone: only a primary last partition is moved.
  if [ "$pt" = dos ] && [ "$n" -gt 4 ]; then log "warning: last partition is logical: not grown"; return 0; fi
  echo ', +' | sfdisk --no-reread --no-tell-kernel -q -N "$n" "$disk" >&2 || die "growing partition $n of $disk failed"
  IMG_LAST_NUM=$n
}

# img_find_root DISK: the partition (or DISK itself, when IMG_PTTYPE is empty) holding the root
# filesystem, in IMG_ROOT.
img_find_root() {
  local disk=$1 p t best="" size best_size=0 m
  if [ -z "$IMG_PTTYPE" ]; then IMG_ROOT=$disk; return 0; fi
  for p in $(disk_partitions "$disk"); do
    t=$(blkid -p -o value -s TYPE "$p" 2>/dev/null || true)
    case $t in
      ext2 | ext3 | ext4) debugfs -R 'stat /etc/fstab' "$p" 2>/dev/null | grep -q '^Inode:' || continue ;;
      xfs | btrfs)
        m=$(mktemp -d /tmp/surrogate.probe.XXXXXX)
        local ok=0
        if mount -o ro${t/xfs/,nouuid} "$p" "$m" 2>/dev/null; then [ -e "$m/etc/fstab" ] && ok=1; umount "$m"; fi
        rmdir "$m"; [ "$ok" = 1 ] || continue ;;
      *) continue ;;
    esac
    size=$(blockdev --getsize64 "$p")
    if [ "$size" -gt "$best_size" ]; then best=$p; best_size=$size; fi
  done
  [ -n "$best" ] || die "no partition of the written image holds a root filesystem (one with /etc/fstab)"
  IMG_ROOT=$best
}

# image_write DISK URL SHA256 FORMAT: steps 1-4. Sets IMG_ROOT, IMG_FS, IMG_PTTYPE.
image_write() {
  local disk=$1 url=$2 want=${3,,} format=$4 got vsize dsize magic
  img_fetch "$url"
  log "checking the sha256 of $(human_bytes "$(stat -c %s "$IMG_FILE")")"
  got=$(sha256sum "$IMG_FILE" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "sha256 mismatch for $url: expected $want, got $got; nothing was written to $disk"
  magic=$(head -c4 "$IMG_FILE" | od -An -tx1 | tr -d ' \n')
  if [ "$format" = qcow2 ] && [ "$magic" != 514649fb ]; then die "$url is not a qcow2 image (no QFI header); nothing was written"; fi
  if [ "$format" = raw ] && [ "$magic" = 514649fb ]; then die "$url is a qcow2 image: pass --format qcow2; nothing was written"; fi
  vsize=$(img_virtual_size "$IMG_FILE" "$format")
  dsize=$(blockdev --getsize64 "$disk")
  [ -n "$vsize" ] && [ "$vsize" -le "$dsize" ] ||
    die "the image ($(human_bytes "${vsize:-0}")) does not fit on $disk ($(human_bytes "$dsize")); nothing was written"
  log "sha256 ok; writing the $format image ($(human_bytes "$vsize")) to $disk"
  for p in $(disk_partitions "$disk"); do wipefs -aq "$p" 2>/dev/null || true; done
  wipefs -aq "$disk"
  case ${disk##*/} in loop*) partx -d "$disk" >/dev/null 2>&1 || true ;; esac
  if command -v qemu-img >/dev/null; then
    qemu-img convert -n -f "$format" -O raw "$IMG_FILE" "$disk" >&2 || die "qemu-img convert to $disk failed"
  elif [ "$format" = raw ]; then
    # Without qemu-img (not installed by default on Amazon Linux 2023) a raw image is copied by dd.
    dd if="$IMG_FILE" of="$disk" bs=4M conv=fsync status=none || die "dd to $disk failed"
  else
    die "qemu-img not found on the worker (needed for qcow2)"
  fi
  sync
  blockdev --flushbufs "$disk" 2>/dev/null || true
  IMG_PTTYPE=$(disk_pttype "$disk")
  # A filesystem on the whole disk behind a boot sector (GRUB's MBR with an empty partition table,
  # as pv2hvm.sh --in-place leaves a flat disk) is unpartitioned: the filesystem is the disk's.
  if [ -n "$IMG_PTTYPE" ] && ! sfdisk -J "$disk" 2>/dev/null | grep -q '"node"'; then
    log "the image has a $IMG_PTTYPE boot sector but no partitions: a whole-disk filesystem"
    IMG_PTTYPE=""
  fi
  IMG_LAST_NUM=""
  img_grow_last "$disk"
  if [ -n "$IMG_PTTYPE" ]; then
    blockdev --rereadpt "$disk" 2>/dev/null || true
    make_partitions_visible "$disk"
    partx -u "$disk" 2>/dev/null || true
    case ${disk##*/} in loop*) [[ $PARTX_REMOVAL_REGISTERED == *" $disk "* ]] || on_exit "partx -d '$disk' >/dev/null 2>&1" ;; esac
  fi
  img_find_root "$disk"
  IMG_FS=$(blkid -p -o value -s TYPE "$IMG_ROOT" 2>/dev/null || true)
  local grow=$disk gt rc=0 m
  if [ -n "$IMG_PTTYPE" ]; then
    grow=""
    [ -n "$IMG_LAST_NUM" ] && grow=$(partition_path "$disk" "$IMG_LAST_NUM" || true)
  fi
  [ -n "$grow" ] || return 0
  gt=$(blkid -p -o value -s TYPE "$grow" 2>/dev/null || true)
  case $gt in
    ext2 | ext3 | ext4)
      e2fsck -fy "$grow" >&2 || rc=$?
      [ "$rc" -le 1 ] || die "e2fsck -fy $grow exited $rc"
      resize2fs "$grow" >&2 || die "resize2fs $grow failed"
      log "grew $gt on $grow to $(human_bytes "$(blockdev --getsize64 "$grow")")" ;;
    xfs)
      ensure_tools xfs_growfs
      m=$(mktemp -d /tmp/surrogate.grow.XXXXXX)
      mount -o nouuid "$grow" "$m" || die "cannot mount $grow to grow it"
      xfs_growfs "$m" >&2 || { umount "$m"; die "xfs_growfs $grow failed"; }
      umount "$m"; rmdir "$m"
      log "grew xfs on $grow" ;;
    *) log "the last partition $grow holds ${gt:-no filesystem}: only the partition was grown" ;;
  esac
}
