#!/usr/bin/env bash
# Conversion benchmark for pv2hvm.sh, by hand (not npm test), as root: the guest step of the three
# ways to turn a PV root into an HVM disk, side by side in one run, on the same source:
#   in place   pv2hvm.sh --in-place SRC (bare ext: GRUB's boot sector + core.img, menu, fstab)
#   copy       pv2hvm.sh --source SRC --target TGT (e2image -ra: used blocks only, then the same)
#   dd         dd if=SRC of=TGT bs=256M (what the seed's pv2hvm did before anything else)
# For each: bytes written to the disk that becomes the image (its /sys/block/NAME/stat counter, as
# pv2hvm.sh's facts report it) and the wall time. On EC2 both are what the conversion costs: each
# block written is read first from a volume restored lazily from S3, and stored by the new snapshot.
#
#   bash bench/inplace.sh            # 8 GiB and 64 GiB sparse sources, 25% used
#
# Environment: BENCH_DIR (default /var/tmp/ami-factory-bench), BENCH_SIZES_GIB (default "8 64"),
# BENCH_FILL_PERCENT (default 25). The source is a bare ext4 PV root (fstab, PV-GRUB menu, a kernel
# file) filled with files of random data. Page cache dropped before each run; loop devices with
# direct I/O (lib/source.sh); times include the flush. dd needs a target as large as the source: when
# the disk has no room for it, dd writes to /dev/null instead, its time is then a lower bound and its
# bytes written the device size (dd bs=256M writes every byte), labelled so.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/guest/lib/devices.sh
. "$repo/scripts/guest/lib/devices.sh"
# shellcheck source=lib/source.sh
. "$repo/bench/lib/source.sh"

dir=${BENCH_DIR:-/var/tmp/ami-factory-bench}
sizes=${BENCH_SIZES_GIB:-8 64}
fill_pct=${BENCH_FILL_PERCENT:-25}
pv2hvm=$repo/scripts/guest/pv2hvm.sh

[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, mount, drop_caches)"
for t in losetup mke2fs e2fsck e2image dumpe2fs mount sha256sum dd grub-install; do
  command -v "$t" >/dev/null || die "$t missing: run scripts/install-guest-deps.sh"
done
mkdir -p "$dir"
cleanup() {
  bench_cleanup
  rm -f "$dir"/inplace-source.img "$dir"/inplace-target-*.img "$dir"/pool
}
on_exit cleanup
install_cleanup_traps

# pv_root MOUNTPOINT: what pv2hvm.sh needs to find a PV root: /etc/fstab on a Xen device, /boot
# with a PV-GRUB menu and the kernel it names (a stand-in file: nothing boots it here).
pv_root() {
  mkdir -p "$1/etc" "$1/boot/grub"
  printf '/dev/xvda1 / ext4 defaults,noatime 0 1\n' >"$1/etc/fstab"
  head -c 8M /dev/urandom >"$1/boot/vmlinuz-6.1.0-bench"
  printf 'default=0\ntimeout=1\ntitle bench\nroot (hd0)\nkernel /boot/vmlinuz-6.1.0-bench root=/dev/xvda1 console=hvc0 ro\n' >"$1/boot/grub/menu.lst"
}

free_mib() { df -Pm "$dir" | awk 'NR == 2 { print $4 }'; }

# facts_field JSON KEY: a number or string field of a facts line.
facts_field() { sed -E "s/.*\"$2\":(\"[^\"]*\"|[0-9]+).*/\\1/; s/^\"//; s/\"$//" <<<"$1"; }

declare -A written secs note
results=()
for gib in $sizes; do
  size_mib=$((gib * 1024))
  used_mib=$((size_mib * fill_pct / 100))
  # The source's data, plus a copy target as large as the data (e2image writes the used blocks).
  need=$((used_mib * 2 + 2048))
  [ "$(free_mib)" -gt "$need" ] || { log "skipping $gib GiB: $dir has $(free_mib) MiB free, needs $need MiB"; continue; }
  log "=== $gib GiB source, ~$fill_pct% used, in $dir"
  make_source "$dir/inplace-source.img" "$size_mib" "$fill_pct" pv_root
  used=$(ext_used_bytes "$src")

  # dd bs=256M: the whole device, holes and all.
  drop_caches
  if [ "$(free_mib)" -gt $((size_mib + 2048)) ]; then
    tgt=$dir/inplace-target-dd.img; rm -f "$tgt"; truncate -s "${size_mib}M" "$tgt"; attach "$tgt"
    w0=$(device_bytes_written "$dev"); t0=$(now)
    dd if="$src" of="$dev" bs=256M status=none; sync; blockdev --flushbufs "$dev"
    secs[dd]=$(secs_since "$t0"); written[dd]=$(($(device_bytes_written "$dev") - w0)); note[dd]=""
    verify_copy "$dev" dd
    detach "$dev"; rm -f "$tgt"
  else
    t0=$(now)
    dd if="$src" of=/dev/null bs=256M status=none
    secs[dd]=$(secs_since "$t0"); written[dd]=$((size_mib * 1048576)); note[dd]=" (to /dev/null: no room for a $gib GiB target; time a lower bound)"
  fi
  log "dd bs=256M: ${secs[dd]} s, $(human_bytes "${written[dd]}") written${note[dd]}"

  # The copy: pv2hvm.sh's copy path, whole guest step.
  drop_caches
  # pv2hvm.sh wants room for the label before the partition: the target is 16 MiB larger.
  tgt=$dir/inplace-target-copy.img; rm -f "$tgt"; truncate -s "$((size_mib + 16))M" "$tgt"; attach "$tgt"
  t0=$(now)
  facts=$(bash "$pv2hvm" --source "$src" --target "$dev" 2>"$dir/copy.log" | tail -n 1) || { tail -20 "$dir/copy.log" >&2; die "pv2hvm copy failed"; }
  secs[copy]=$(secs_since "$t0"); written[copy]=$(facts_field "$facts" bytesWritten)
  log "copy: ${secs[copy]} s, $(human_bytes "${written[copy]}") written ($(facts_field "$facts" copyMethod))"
  detach "$dev"; rm -f "$tgt"

  # In place, on the source itself (last: it changes it).
  drop_caches
  t0=$(now)
  facts=$(bash "$pv2hvm" --in-place "$src" 2>"$dir/inplace.log" | tail -n 1) || { tail -20 "$dir/inplace.log" >&2; die "pv2hvm --in-place failed"; }
  secs[inplace]=$(secs_since "$t0"); written[inplace]=$(facts_field "$facts" bytesWritten)
  log "in place: ${secs[inplace]} s, $(human_bytes "${written[inplace]}") written ($(facts_field "$facts" inPlaceLayout))"
  verify_copy "$src" "in place"
  detach "$src"; rm -f "$dir/inplace-source.img" "$dir"/*.log

  results+=("$(printf '%s GiB source, %s used (%s%%):\n' "$gib" "$(human_bytes "$used")" "$(awk -v u="$used" -v t="$size_mib" 'BEGIN { printf "%.1f", 100 * u / (t * 1048576) }')")")
  for m in inplace copy dd; do
    results+=("$(printf '  %-9s %12s written  %8.2f s%s' "${m/inplace/in place}" "$(human_bytes "${written[$m]}")" "${secs[$m]}" "${note[$m]:-}")")
  done
  results+=("$(awk -v i="${written[inplace]}" -v c="${written[copy]}" -v d="${written[dd]}" -v u="$used" -v ti="${secs[inplace]}" -v tc="${secs[copy]}" -v td="${secs[dd]}" 'BEGIN {
    printf "  bytes written: in place / used %.4f%% (goal < 0.1%%: %s); copy / in place %.0f x; dd / in place %.0f x\n", 100 * i / u, (i < u / 1000 ? "ok" : "MISSED"), c / i, d / i
    printf "  time: copy / in place %.1f x; dd / in place %.1f x; dd / copy %.1f x", tc / ti, td / ti, td / tc }')")
done

printf '\npv2hvm guest step, loop devices (direct-io=%s), page cache dropped before each run:\n' "$loop_dio"
printf '%s\n' "${results[@]}"
