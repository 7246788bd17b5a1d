#!/usr/bin/env bash
# shellcheck shell=bash
# What pv2hvm.sh does inside the copied root filesystem (mounted at ROOT). Sourced; also a command
# so that each part can be tested on a plain directory:
#
#   image.sh fix-fstab ROOT UUID [BOOT_UUID]  rewrite Xen device names in ROOT/etc/fstab
#   image.sh drivers ROOT KVER [INITRD]   print "ena nvme enaInitramfs nvmeInitramfs ixgbevf" (0/1 each)
#   image.sh sanitize ROOT                remove host keys, histories, cloud-init and OpsWorks state

# fix_fstab ROOT UUID [BOOT_UUID]: lines naming a Xen device (/dev/xvd*, /dev/sd*, /dev/hd*; RHEL 6
# shifts xvda to xvde) are made safe for an HVM boot, where those names no longer exist:
#   the root filesystem's (and /boot's, with BOOT_UUID) -> UUID=<uuid>;
#   swap on such a device (instance-store swap, /dev/xvde3) -> commented out ("# pv2hvm: …");
#   any other (ephemeral disks, data volumes)           -> the nofail option added.
# Comments, spacing and every other line are kept. Sets FSTAB_REMOVED (devices whose line was
# commented out) and FSTAB_NOFAIL (mount points given nofail); one line per change on stderr.
fix_fstab() {
  local root=$1 uuid=$2 boot_uuid=${3:-} f tmp changes
  FSTAB_REMOVED=() FSTAB_NOFAIL=()
  f=$root/etc/fstab
  [ -f "$f" ] || { printf 'fstab: %s has no /etc/fstab\n' "$root" >&2; return 0; }
  tmp=$(mktemp "$f.pv2hvm.XXXXXX")
  changes=$(mktemp "$f.pv2hvm-changes.XXXXXX")
  awk -v uuid="$uuid" -v boot_uuid="$boot_uuid" -v changes="$changes" '
    function report(kind, what, msg) { print kind "\t" what > changes; print "fstab: " msg > "/dev/stderr" }
    /^[ \t]*#/ || NF < 2 { print; next }
    $1 ~ /^\/dev\/(xvd|sd|hd)[a-z]+[0-9]*$/ {
      dev = $1
      if ($2 == "/" || ($2 == "/boot" && boot_uuid != "")) {
        u = ($2 == "/") ? uuid : boot_uuid
        line = $0; sub(/[^ \t]+/, "UUID=" u, line); print line
        report("uuid", $2, $2 " " dev " -> UUID=" u); next
      }
      if ($3 == "swap") {
        print "# pv2hvm: a Xen device that HVM instances do not have: " $0
        report("removed", dev, "swap on " dev ": commented out (Xen device name)"); next
      }
      if (NF >= 4 && $4 !~ /(^|,)nofail(,|$)/) {
        line = $0
        # Replace the 4th field in place, keeping the separators.
        match(line, /^[ \t]*[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+/)
        head = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
        sub(/^[^ \t]+/, $4 ",nofail", rest)
        print head rest
        report("nofail", $2, dev " on " $2 ": added nofail (Xen device name)"); next
      }
    }
    { print }' "$f" >"$tmp"
  chmod --reference="$f" "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$f"
  local kind what
  while IFS=$'\t' read -r kind what; do
    case $kind in removed) FSTAB_REMOVED+=("$what") ;; nofail) FSTAB_NOFAIL+=("$what") ;; esac
  done <"$changes"
  rm -f "$changes"
}

# list_initramfs FILE: the paths in an initramfs (any compression, early cpio archives included).
list_initramfs() {
  local f=$1
  if command -v lsinitramfs >/dev/null; then
    lsinitramfs "$f" 2>/dev/null && return 0
  fi
  if command -v lsinitrd >/dev/null; then
    lsinitrd "$f" 2>/dev/null && return 0
  fi
  # Without either tool: the whole file through each decompressor, then plain cpio.
  local d
  for d in "gzip -dc" "zstd -dcq" "xz -dc" "lz4 -dc" "bzip2 -dc" "lzma -dc"; do
    command -v "${d%% *}" >/dev/null || continue
    $d <"$f" 2>/dev/null | cpio -it --quiet 2>/dev/null && return 0
  done
  cpio -it --quiet <"$f" 2>/dev/null
}

# driver_report ROOT KVER [INITRD]: sets ENA_DRIVER, NVME_DRIVER (module file or built in),
# ENA_IN_INITRAMFS, NVME_IN_INITRAMFS (in INITRD, or built in) and IXGBEVF_DRIVER (Intel 82599 VF,
# what SriovNetSupport=simple needs) to 0/1.
driver_report() {
  local root=$1 kver=$2 initrd=${3:-} moddir="" d
  ENA_DRIVER=0 NVME_DRIVER=0 ENA_IN_INITRAMFS=0 NVME_IN_INITRAMFS=0 IXGBEVF_DRIVER=0
  local ena_builtin=0 nvme_builtin=0
  for d in "$root/lib/modules/$kver" "$root/usr/lib/modules/$kver"; do
    [ -d "$d" ] && { moddir=$d; break; }
  done
  if [ -n "$moddir" ]; then
    [ -n "$(find "$moddir" -name 'ena.ko*' -print -quit 2>/dev/null)" ] && ENA_DRIVER=1
    [ -n "$(find "$moddir" -name 'nvme.ko*' -print -quit 2>/dev/null)" ] && NVME_DRIVER=1
    [ -n "$(find "$moddir" -name 'ixgbevf.ko*' -print -quit 2>/dev/null)" ] && IXGBEVF_DRIVER=1
    if [ -f "$moddir/modules.builtin" ]; then
      grep -Eq '(^|/)ena\.ko$' "$moddir/modules.builtin" && ena_builtin=1
      grep -Eq '(^|/)nvme\.ko$' "$moddir/modules.builtin" && nvme_builtin=1
      grep -Eq '(^|/)ixgbevf\.ko$' "$moddir/modules.builtin" && IXGBEVF_DRIVER=1
    fi
  fi
  local config=$root/boot/config-$kver
  if [ -f "$config" ]; then
    grep -q '^CONFIG_ENA_ETHERNET=y' "$config" && ena_builtin=1
    grep -q '^CONFIG_BLK_DEV_NVME=y' "$config" && nvme_builtin=1
    grep -q '^CONFIG_IXGBEVF=y' "$config" && IXGBEVF_DRIVER=1
  fi
  [ "$ena_builtin" = 1 ] && ENA_DRIVER=1 ENA_IN_INITRAMFS=1
  [ "$nvme_builtin" = 1 ] && NVME_DRIVER=1 NVME_IN_INITRAMFS=1
  if [ -n "$initrd" ] && [ -f "$initrd" ]; then
    local listing
    listing=$(list_initramfs "$initrd" || true)
    grep -Eq '(^|/)ena\.ko(\.[a-z0-9]+)?$' <<<"$listing" && ENA_IN_INITRAMFS=1
    grep -Eq '(^|/)nvme\.ko(\.[a-z0-9]+)?$' <<<"$listing" && NVME_IN_INITRAMFS=1
  fi
  return 0
}

# sanitize_root ROOT: removes what must not be baked into an image another instance boots from.
# Prints how many paths it removed or emptied on stderr.
sanitize_root() {
  local root=$1 n=0 p
  local -a paths=()
  shopt -s nullglob dotglob
  paths+=("$root"/etc/ssh/ssh_host_*)
  for home in "$root/root" "$root"/home/*; do
    for h in .bash_history .zsh_history .sh_history .ash_history .history .python_history \
             .mysql_history .psql_history .lesshst .viminfo; do
      [ -e "$home/$h" ] || [ -L "$home/$h" ] && paths+=("$home/$h")
    done
  done
  paths+=("$root/var/lib/cloud/instances" "$root/var/lib/cloud/instance" "$root/var/lib/cloud/sem")
  paths+=("$root/opt/aws/opsworks" "$root/var/lib/aws/opsworks" "$root/etc/aws/opsworks"
          "$root/var/log/aws/opsworks" "$root/etc/init.d/opsworks-agent" "$root/etc/init/opsworks-agent.conf"
          "$root"/etc/rc[0-6S].d/[SK][0-9][0-9]opsworks-agent
          "$root"/etc/systemd/system/opsworks-agent.service "$root"/etc/systemd/system/*.wants/opsworks-agent.service
          "$root"/lib/systemd/system/opsworks-agent.service "$root"/usr/lib/systemd/system/opsworks-agent.service
          "$root"/etc/monit.d/opsworks-agent.monitrc "$root"/etc/monit/conf.d/opsworks-agent.monitrc
          "$root"/etc/cron.d/opsworks-agent*)
  shopt -u nullglob dotglob
  for p in "${paths[@]}"; do
    if [ -e "$p" ] || [ -L "$p" ]; then rm -rf --one-file-system -- "$p"; n=$((n + 1)); fi
  done
  # An empty machine-id: systemd makes a new one on the next boot.
  if [ -f "$root/etc/machine-id" ] && [ ! -L "$root/etc/machine-id" ]; then
    : >"$root/etc/machine-id"; n=$((n + 1))
  fi
  if [ -f "$root/var/lib/dbus/machine-id" ] && [ ! -L "$root/var/lib/dbus/machine-id" ]; then
    rm -f "$root/var/lib/dbus/machine-id"; n=$((n + 1))
  fi
  printf 'sanitize: removed or emptied %d paths\n' "$n" >&2
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  case ${1:-} in
    fix-fstab) fix_fstab "${2:?ROOT}" "${3:?UUID}" "${4:-}" ;;
    drivers)
      driver_report "${2:?ROOT}" "${3:?KVER}" "${4:-}"
      printf '%s %s %s %s %s\n' "$ENA_DRIVER" "$NVME_DRIVER" "$ENA_IN_INITRAMFS" "$NVME_IN_INITRAMFS" "$IXGBEVF_DRIVER" ;;
    sanitize) sanitize_root "${2:?ROOT}" ;;
    *) printf 'usage: %s fix-fstab ROOT UUID | drivers ROOT KVER [INITRD] | sanitize ROOT\n' "$0" >&2; exit 2 ;;
  esac
fi
