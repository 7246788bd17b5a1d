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
# shellcheck source=lib/source.sh
. "$repo/bench/lib/source.sh"

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

cleanup() {
  bench_cleanup
  rm -f "$dir"/source.img "$dir"/target-*.img
}
on_exit cleanup
install_cleanup_traps

# --- the source ----------------------------------------------------------------------------------
log "making a ${size_mib} MiB ext4 source, ~${fill_pct}% full, in $dir"
make_source "$dir/source.img" "$size_mib" "$fill_pct"
used=$(ext_used_bytes "$src")
check_files=("${SOURCE_CHECK_FILES[@]}")

# --- the runs ------------------------------------------------------------------------------------
declare -A secs label

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
    verify_copy "$dev" "$name"
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
