# shellcheck shell=bash
# Copies one filesystem from a block device to another (same or larger). Sourced by pv2hvm.sh and
# bench/copy.sh, never run.
#
#   copy_filesystem SRC DST FSTYPE
#     ext2/3/4: e2image -ra: only the blocks the filesystem uses (metadata and data) are read and
#               written; the rest of DST is left as it is (the filesystem never reads it).
#     others:   dd with 64 MiB blocks over the whole of SRC.
#   Sets COPY_METHOD and COPY_BYTES (bytes the copy had to move). Progress lines go to stderr,
#   at most one every COPY_PROGRESS_SECONDS (default 15).

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

copy_filesystem() {
  local src=$1 dst=$2 fstype=$3
  case $fstype in
    ext2 | ext3 | ext4)
      COPY_METHOD="e2image -ra"
      COPY_BYTES=$(ext_used_bytes "$src") || { printf 'copy: cannot read the ext superblock of %s\n' "$src" >&2; return 1; }
      # -p: progress (\r-updated); stdout/stderr of e2image both go through the throttle.
      { e2image -ra -p "$src" "$dst" 2>&1 >&3 3>&- | _copy_throttle; } 3>&2
      ;;
    *)
      COPY_METHOD="dd bs=64M"
      COPY_BYTES=$(blockdev --getsize64 "$src")
      { dd if="$src" of="$dst" bs=64M iflag=fullblock conv=fsync status=progress 2>&1 >&3 3>&- | _copy_throttle; } 3>&2
      ;;
  esac
}
