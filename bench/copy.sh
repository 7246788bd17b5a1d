#!/usr/bin/env bash
# Filesystem copy benchmark for pv2hvm.sh: our copy (copy_filesystem from scripts/guest/lib/copy.sh,
# e2image -ra for ext4: used blocks only) against what the old pv2hvm did (dd bs=256M) and against
# plain dd (bs=512, the default). Run as root:
#
#   bash bench/copy.sh            # 4 GiB source, about 25% full
#
# Environment: BENCH_DIR (default /var/tmp/ami-factory-bench; needs ~10 GiB free),
# BENCH_SIZE_MIB (default 4096), BENCH_FILL_PERCENT (default 25),
# BENCH_PLAIN_DD_SAMPLE_MIB (default 0 = copy the whole device with plain dd; N = time only the
# first N MiB with bs=512 and extrapolate linearly to the device size, labelled as such).
#
# Each method copies the same source loop device onto a fresh, empty (sparse) target loop device;
# the page cache is dropped before every run (echo 3 > /proc/sys/vm/drop_caches) and the time
# includes flushing the target. Every copy is verified: e2fsck -fn, and the SHA-256 of a few files.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GUEST_LOG_PREFIX=bench
# shellcheck source=../scripts/guest/lib/common.sh
. "$repo/scripts/guest/lib/common.sh"
# shellcheck source=../scripts/guest/lib/copy.sh
. "$repo/scripts/guest/lib/copy.sh"

dir=${BENCH_DIR:-/var/tmp/ami-factory-bench}
size_mib=${BENCH_SIZE_MIB:-4096}
fill_pct=${BENCH_FILL_PERCENT:-25}
sample_mib=${BENCH_PLAIN_DD_SAMPLE_MIB:-0}
COPY_PROGRESS_SECONDS=3600 # quiet

[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, mount, drop_caches)"
for t in losetup mke2fs e2fsck e2image dumpe2fs mount sha256sum dd; do
  command -v "$t" >/dev/null || die "$t missing: run scripts/install-guest-deps.sh"
done

mkdir -p "$dir"
avail_mib=$(df -Pm "$dir" | awk 'NR == 2 { print $4 }')
[ "$avail_mib" -gt $((size_mib * 5 / 2)) ] || die "$dir has ${avail_mib} MiB free; needs $((size_mib * 5 / 2)) MiB"

loops=() mnts=()
cleanup() {
  local m l
  for m in "${mnts[@]}"; do
    if mountpoint -q "$m"; then umount "$m" 2>/dev/null || { sleep 1; umount -l "$m"; }; fi
    rmdir "$m" 2>/dev/null || true
  done
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -f "$dir"/source.img "$dir"/target-*.img
}
on_exit cleanup
install_cleanup_traps

# attach FILE: sets $dev. Loop devices use direct I/O on their backing file, so that neither copy is
# measured through a second page cache (a real EBS or NVMe disk has none behind it);
# BENCH_LOOP_DIRECT_IO=off measures through it.
loop_dio=${BENCH_LOOP_DIRECT_IO:-on}
attach() { dev=$(losetup -f --show --direct-io="$loop_dio" "$1"); loops+=("$dev"); }
detach() {
  local l keep=()
  losetup -d "$1"
  for l in "${loops[@]}"; do [ "$l" = "$1" ] || keep+=("$l"); done
  loops=("${keep[@]}")
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }

# --- the source ----------------------------------------------------------------------------------
log "making a ${size_mib} MiB ext4 source, ~${fill_pct}% full, in $dir"
rm -f "$dir/source.img"
truncate -s "${size_mib}M" "$dir/source.img"
mke2fs -q -F -t ext4 -L bench-root "$dir/source.img"
attach "$dir/source.img"; src=$dev
m=$(mktemp -d /tmp/bench-src.XXXXXX); mnts+=("$m")
mount "$src" "$m"
# "N% full" as df counts it: the empty filesystem's own use (journal, tables) is part of the N%.
base_mib=$(($(ext_used_bytes "$src") / 1048576))
fill_mib=$((size_mib * fill_pct / 100 - base_mib))
# A 64 MiB random pool; files are slices of it, each salted with its own random header, in sizes
# from 4 KiB to 32 MiB, plus a tree of small files.
head -c 64M /dev/urandom >"$dir/pool"
mkdir -p "$m/data" "$m/small"
written=0 i=0
while [ $((written / 1048576)) -lt $((fill_mib - 24)) ]; do
  case $((i % 4)) in 0) sz=$((32 * 1048576)) ;; 1) sz=$((5 * 1048576)) ;; 2) sz=$((700 * 1024)) ;; 3) sz=$((12 * 1048576)) ;; esac
  { head -c 4096 /dev/urandom
    dd if="$dir/pool" bs=1M iflag=skip_bytes,count_bytes skip=$(((i * 7919 % 32) * 1048576)) count="$sz" status=none
  } >"$m/data/f$i.bin"
  written=$((written + sz + 4096)); i=$((i + 1))
done
for j in $(seq 1 3000); do head -c $((j % 17 * 512 + 100)) /dev/urandom >"$m/small/s$j"; done
rm -f "$dir/pool"
check_files=("data/f0.bin" "data/f1.bin" "data/f$((i / 2)).bin" "data/f$((i - 1)).bin" "small/s1234")
sums=$(cd "$m" && sha256sum "${check_files[@]}")
umount "$m"
used=$(ext_used_bytes "$src")
log "source: $i data files + 3000 small files, $(human_bytes "$used") used of $(human_bytes $((size_mib * 1048576))) ($(awk -v u="$used" -v t="$size_mib" 'BEGIN { printf "%.1f", 100 * u / (t * 1048576) }')%)"

# --- the runs ------------------------------------------------------------------------------------
declare -A secs label
verify() { # DEV NAME
  local dev=$1 name=$2 mm
  e2fsck -fn "$dev" >/dev/null 2>&1 || die "$name: e2fsck -fn found errors on the copy"
  mm=$(mktemp -d /tmp/bench-dst.XXXXXX); mnts+=("$mm")
  mount -o ro "$dev" "$mm"
  (cd "$mm" && sha256sum -c --quiet <<<"$sums") || die "$name: file checksums differ"
  umount "$mm"
}

run_method() { # NAME
  local name=$1 tgt t0 t1
  tgt="$dir/target-$name.img"
  rm -f "$tgt"; truncate -s "${size_mib}M" "$tgt"
  attach "$tgt"
  drop_caches
  t0=$(now)
  case $name in
    ours) copy_filesystem "$src" "$dev" ext4 ;;
    dd256M) dd if="$src" of="$dev" bs=256M status=none ;;
    dd512)
      if [ "$sample_mib" -gt 0 ]; then
        dd if="$src" of="$dev" count=$((sample_mib * 2048)) status=none
      else
        dd if="$src" of="$dev" status=none
      fi ;;
  esac
  sync; blockdev --flushbufs "$dev"
  t1=$(now)
  secs[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  if [ "$name" = dd512 ] && [ "$sample_mib" -gt 0 ]; then
    secs[$name]=$(awk -v s="${secs[$name]}" -v n="$sample_mib" -v t="$size_mib" 'BEGIN { printf "%.2f", s * t / n }')
    label[$name]="dd (bs=512 default), extrapolated from the first $sample_mib MiB"
    log "$name: ${secs[$name]} s (extrapolated); not verified (partial copy)"
  else
    verify "$dev" "$name"
    log "$name: ${secs[$name]} s, copy verified (e2fsck -fn, ${#check_files[@]} checksums)"
  fi
  detach "$dev"
  rm -f "$tgt"
}

label[ours]="ours: copy_filesystem ($COPY_METHOD) = e2image -ra, used blocks only"
label[dd256M]="dd bs=256M (the old pv2hvm)"
label[dd512]="dd (bs=512 default), whole device"
log "page cache dropped before each run (echo 3 > /proc/sys/vm/drop_caches); times include flushing the target; loop direct-io=$loop_dio"
for name in ours dd256M dd512; do
  log "running $name"
  run_method "$name"
done
label[ours]="ours: copy_filesystem ($COPY_METHOD, used blocks only)"

printf '\nCopy of a %s MiB ext4 filesystem with %s used, loop device to loop device (direct-io=%s),\npage cache dropped before each run (echo 3 > /proc/sys/vm/drop_caches), times include the flush:\n' \
  "$size_mib" "$(human_bytes "$used")" "$loop_dio"
for name in ours dd256M dd512; do
  printf '  %-62s %8.2f s  %7.1f MiB/s of device\n' "${label[$name]}" "${secs[$name]}" \
    "$(awk -v s="${secs[$name]}" -v t="$size_mib" 'BEGIN { print t / s }')"
done
ratio() { awk -v a="${secs[$1]}" -v b="${secs[$2]}" 'BEGIN { printf "%.1f", a / b }'; }
printf 'ratio dd bs=256M / ours: %s x (target >= 3 x)\n' "$(ratio dd256M ours)"
printf 'ratio plain dd / ours:   %s x\n' "$(ratio dd512 ours)"
printf 'ratio plain dd / dd bs=256M: %s x\n' "$(ratio dd512 dd256M)"
