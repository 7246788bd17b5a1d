# shellcheck shell=bash
# Copies one filesystem from a block device to another (same or larger). Sourced by pv2hvm.sh and
# bench/copy.sh, never run.
#
#   copy_filesystem SRC DST FSTYPE [whole]
#     ext2/3/4: e2image -ra: only the blocks the filesystem uses (metadata and data) are read and
#               written; the rest of DST is left as it is (the filesystem never reads it). Only
#               for a clean source: its block bitmap says which blocks are used;
#     others, or `whole` (a source fs_unclean found wanting: its bitmap may call used blocks
#               free): dd with 64 MiB blocks over the whole of SRC (of an ext filesystem: its
#               size, which a partition may exceed).
#   Sets COPY_METHOD and COPY_BYTES (bytes the copy had to move). Progress lines go to stderr,
#   at most one every COPY_PROGRESS_SECONDS (default 15).
#
#   fs_unclean DEV FSTYPE
#     reading only: succeeds (and sets FS_UNCLEAN to why) when the filesystem on DEV was not cleanly
#     unmounted or has errors: ext2/3/4 a journal to replay, a state other than clean, or any
#     problem `e2fsck -fn` reports; XFS what `xfs_repair -n` reports, or no xfs_repair to check it.
#     Fails (FS_UNCLEAN empty) when the filesystem is clean, or of a type it cannot check.

COPY_METHOD=""
COPY_BYTES=0

# ext_used_bytes DEV: bytes in use (block count - free blocks) * block size, from the superblock.
ext_used_bytes() {
  dumpe2fs -h "$1" 2>/dev/null | awk -F: '
    /^Block count/ { c = $2 + 0 } /^Free blocks/ { f = $2 + 0 } /^Block size/ { b = $2 + 0 }
    END { if (b == 0) exit 1; printf "%.0f\n", (c - f) * b }'
}

# ext_fs_bytes DEV: the size of the filesystem (block count * block size).
ext_fs_bytes() {
  dumpe2fs -h "$1" 2>/dev/null | awk -F: '
    /^Block count/ { c = $2 + 0 } /^Block size/ { b = $2 + 0 }
    END { if (b == 0) exit 1; printf "%.0f\n", c * b }'
}

# Turns \r-updated progress output into at most one line every COPY_PROGRESS_SECONDS.
_copy_throttle() {
  local every=${COPY_PROGRESS_SECONDS:-15} last=0 line
  tr '\r' '\n' | while IFS= read -r line; do
    line=${line#"${line%%[![:space:]]*}"}
    [ -n "$line" ] || continue
    if ((SECONDS - last >= every)); then
      printf '%s: [%4ss]   %s\n' "${GUEST_LOG_PREFIX:-copy}" "$((SECONDS - ${GUEST_T0:-0}))" "$line" >&2
      last=$SECONDS
    fi
  done
}

FS_UNCLEAN=""

fs_unclean() {
  local dev=$1 fstype=$2 header state rc=0 out
  FS_UNCLEAN=""
  case $fstype in
    ext2 | ext3 | ext4)
      header=$(dumpe2fs -h "$dev" 2>/dev/null) || { FS_UNCLEAN="dumpe2fs cannot read the superblock of $dev"; return 0; }
      state=$(printf '%s\n' "$header" | sed -n 's/^Filesystem state: *//p')
      if printf '%s\n' "$header" | grep -q '^Filesystem features:.*\bneeds_recovery\b'; then
        FS_UNCLEAN="the $fstype filesystem on $dev has a journal to replay (it was in use when snapshotted)"
        return 0
      fi
      [ "$state" = clean ] || { FS_UNCLEAN="the $fstype filesystem on $dev is in state '$state', not clean"; return 0; }
      # -n: read only, answers no to every question; exit 0 only when it found nothing.
      out=$(e2fsck -fn "$dev" 2>&1) || rc=$?
      printf '%s\n' "$out" | sed 's/^/  e2fsck: /' >&2
      [ "$rc" -eq 0 ] || FS_UNCLEAN="e2fsck -fn $dev exited $rc: $(printf '%s\n' "$out" | grep -v '^ *$' | grep -vE '^(Pass [0-9]|e2fsck [0-9])' | head -n 2 | tr '\n' ' ' | sed 's/ *$//')"
      ;;
    xfs)
      # Not checked is not clean (the caller ensures xfs_repair where it can: xfsprogs).
      command -v xfs_repair >/dev/null || { FS_UNCLEAN="no xfs_repair on the worker: the XFS filesystem on $dev cannot be checked"; return 0; }
      # -n: no modify; exit 1 when it found corruption (xfs_repair(8)).
      out=$(xfs_repair -n "$dev" 2>&1) || rc=$?
      printf '%s\n' "$out" | sed 's/^/  xfs_repair: /' >&2
      [ "$rc" -eq 0 ] || FS_UNCLEAN="xfs_repair -n $dev exited $rc: $(printf '%s\n' "$out" | grep -v '^ *$' | tail -n 2 | tr '\n' ' ' | sed 's/ *$//')"
      ;;
  esac
  [ -n "$FS_UNCLEAN" ]
}

copy_filesystem() {
  local src=$1 dst=$2 fstype=$3 whole=${4:-}
  [ -z "$whole" ] || fstype=whole
  case $fstype in
    ext2 | ext3 | ext4)
      COPY_METHOD="e2image -ra"
      COPY_BYTES=$(ext_used_bytes "$src") || { printf 'copy: cannot read the ext superblock of %s\n' "$src" >&2; return 1; }
      # -p: progress (\r-updated); stdout/stderr of e2image both go through the throttle.
      { e2image -ra -p "$src" "$dst" 2>&1 >&3 3>&- | _copy_throttle; } 3>&2
      ;;
    *)
      COPY_METHOD="dd bs=64M"
      # An ext source: its filesystem's size, not its device's (the target is sized by the filesystem).
      case $3 in ext2 | ext3 | ext4) COPY_BYTES=$(ext_fs_bytes "$src") || COPY_BYTES="" ;; *) COPY_BYTES="" ;; esac
      [ -n "$COPY_BYTES" ] || COPY_BYTES=$(blockdev --getsize64 "$src")
      { dd if="$src" of="$dst" bs=64M iflag=fullblock,count_bytes count="$COPY_BYTES" conv=fsync status=progress 2>&1 >&3 3>&- | _copy_throttle; } 3>&2
      ;;
  esac
}
