# shellcheck shell=bash
# What the disk benchmarks (bench/copy.sh, bench/inplace.sh) share: the guest libraries they measure
# (common.sh: log, die, on_exit; copy.sh: copy_filesystem, ext_used_bytes), loop devices, dropped
# caches, and an ext4 source filled to a given share with real file data. Sourced; never run.

GUEST_LOG_PREFIX=bench
bench_guest_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts/guest/lib" && pwd)
# shellcheck source=../../scripts/guest/lib/common.sh
. "$bench_guest_lib/common.sh"
# shellcheck source=../../scripts/guest/lib/copy.sh
. "$bench_guest_lib/copy.sh"

BENCH_LOOPS=() BENCH_MNTS=()
bench_cleanup() {
  local m l
  for m in "${BENCH_MNTS[@]}"; do
    if mountpoint -q "$m"; then umount "$m" 2>/dev/null || { sleep 1; umount -l "$m"; }; fi
    rmdir "$m" 2>/dev/null || true
  done
  for l in "${BENCH_LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
}

# attach FILE: sets $dev. Loop devices use direct I/O on their backing file, so that no method is
# measured through a second page cache (a real EBS or NVMe disk has none behind it);
# BENCH_LOOP_DIRECT_IO=off measures through it.
loop_dio=${BENCH_LOOP_DIRECT_IO:-on}
attach() { dev=$(losetup -f --show --direct-io="$loop_dio" "$1"); BENCH_LOOPS+=("$dev"); }
detach() {
  local l keep=()
  losetup -d "$1"
  for l in "${BENCH_LOOPS[@]}"; do [ "$l" = "$1" ] || keep+=("$l"); done
  BENCH_LOOPS=(${keep[@]+"${keep[@]}"})
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# make_source FILE SIZE_MIB FILL_PERCENT [PREPARE_FN]: a sparse FILE with ext4 on the whole of it,
# filled with files of random data until it is FILL_PERCENT full as df counts it (the empty
# filesystem's own use is part of it). PREPARE_FN MOUNTPOINT runs first (e.g. to make it a PV root).
# Leaves FILE's loop device attached as $src, unmounted; sets SOURCE_CHECK_FILES (paths) and
# SOURCE_SUMS (their sha256sum lines).
make_source() {
  local file=$1 size_mib=$2 fill_pct=$3 prepare=${4:-} m base_mib fill_mib written=0 i=0 j sz pool
  rm -f "$file"
  truncate -s "${size_mib}M" "$file"
  mke2fs -q -F -t ext4 -L bench-root "$file"
  attach "$file"; src=$dev
  m=$(mktemp -d /tmp/bench-src.XXXXXX); BENCH_MNTS+=("$m")
  mount "$src" "$m"
  [ -z "$prepare" ] || "$prepare" "$m"
  base_mib=$(($(ext_used_bytes "$src") / 1048576))
  fill_mib=$((size_mib * fill_pct / 100 - base_mib))
  # A 64 MiB random pool; files are slices of it, each salted with its own random header, in sizes
  # from 700 KiB to 32 MiB, plus a tree of small files.
  pool=$(dirname "$file")/pool
  head -c 64M /dev/urandom >"$pool"
  mkdir -p "$m/data" "$m/small"
  while [ $((written / 1048576)) -lt $((fill_mib - 24)) ]; do
    case $((i % 4)) in 0) sz=$((32 * 1048576)) ;; 1) sz=$((5 * 1048576)) ;; 2) sz=$((700 * 1024)) ;; 3) sz=$((12 * 1048576)) ;; esac
    { head -c 4096 /dev/urandom
      dd if="$pool" bs=1M iflag=skip_bytes,count_bytes skip=$(((i * 7919 % 32) * 1048576)) count="$sz" status=none
    } >"$m/data/f$i.bin"
    written=$((written + sz + 4096)); i=$((i + 1))
  done
  for j in $(seq 1 3000); do head -c $((j % 17 * 512 + 100)) /dev/urandom >"$m/small/s$j"; done
  rm -f "$pool"
  SOURCE_CHECK_FILES=("data/f0.bin" "data/f1.bin" "data/f$((i / 2)).bin" "data/f$((i - 1)).bin" "small/s1234")
  SOURCE_SUMS=$(cd "$m" && sha256sum "${SOURCE_CHECK_FILES[@]}")
  umount "$m"
  log "source: $i data files + 3000 small files, $(human_bytes "$(ext_used_bytes "$src")") used of $(human_bytes $((size_mib * 1048576))) ($(awk -v u="$(ext_used_bytes "$src")" -v t="$size_mib" 'BEGIN { printf "%.1f", 100 * u / (t * 1048576) }')%)"
}

# verify_copy DEV NAME: e2fsck -fn clean and the checked files' checksums as in the source.
verify_copy() {
  local dev=$1 name=$2 mm
  e2fsck -fn "$dev" >/dev/null 2>&1 || die "$name: e2fsck -fn found errors on $dev"
  mm=$(mktemp -d /tmp/bench-dst.XXXXXX); BENCH_MNTS+=("$mm")
  mount -o ro "$dev" "$mm"
  (cd "$mm" && sha256sum -c --quiet <<<"$SOURCE_SUMS") || die "$name: file checksums differ"
  umount "$mm"
}
