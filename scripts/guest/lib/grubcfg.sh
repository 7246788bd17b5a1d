#!/usr/bin/env bash
# shellcheck shell=bash
# The boot configuration of a converted PV-GRUB image: the image keeps following its own GRUB legacy
# menu (boot/grub/menu.lst, grub.conf on RHEL), which its tools keep up to date (grubby on
# CentOS/RHEL 6 and Amazon Linux 1, update-grub-legacy-ec2 on Ubuntu add an entry per new kernel).
# The menu is rewritten in place for an HVM boot from a partitioned disk, and GRUB 2's grub.cfg only
# tells GRUB 2 to read that menu (legacy_configfile) at every boot. pv_boot_config is the one entry
# point, for a disk copied by pv2hvm.sh or converted in place. Sourced; also a command, so that each
# part can be run (and tested) on plain files:
#
#   grubcfg.sh rewrite MENU_LST --uuid UUID [--part N]  -> the rewritten menu on stdout
#   grubcfg.sh apply GRUB_DIR --uuid UUID [--part N] [--fs-module ext2] [--kernel-prefix /boot]
#                                     rewrites GRUB_DIR's menu in place and writes GRUB_DIR/grub.cfg
#   grubcfg.sh kernels MENU_LST       -> one kernel path per line (entries with a kernel line)
#   grubcfg.sh default-kernel MENU_LST -> the kernel path of the default entry
#   grubcfg.sh synthesize ROOT_DIR [KERNEL_PREFIX] -> a menu.lst from ROOT_DIR/boot/vmlinuz-*
#
# The rewrite, line by line (everything else, comments and order included, is kept):
#   root (hd0) / (hd0,N), rootnoverify …    -> root (hd0,P): P is the partition (0-based, GRUB
#                                              legacy numbering) of the filesystem holding the menu;
#                                              (hd0) when that filesystem is the whole disk
#   (hdX[,N]) device prefixes on kernel, initrd, splashimage paths -> (hd0,P)
#   kernel PATH ARGS, in ARGS:
#       console=hvc0*, console=xvc0*  -> console=ttyS0,115200n8 (once); xencons=* dropped
#       no console=ttyS* at all       -> console=ttyS0,115200n8 appended
#       root=/dev/xvdX[N], /dev/sdX[N], /dev/hdX[N] (xvde1 on RHEL 6 too) -> root=UUID=<uuid>
#       root=LABEL=…, root=UUID=…, everything else -> kept as is
# Rewriting a rewritten menu changes nothing, so a new entry that grubby copies from the default
# one is already in HVM form.

grubcfg_awk_common='
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
# Splits a menu.lst line into KW (lower case) and REST; GRUB legacy allows "key value" and "key=value".
function split_kw(line,    m) {
  KW = line; REST = ""
  if (match(line, /^[A-Za-z_]+([ \t]*=[ \t]*|[ \t]+)/)) {
    KW = substr(line, 1, RLENGTH); REST = trim(substr(line, RLENGTH + 1))
    gsub(/[ \t=]+$/, "", KW)
  }
  KW = tolower(KW)
}
# Drops a GRUB legacy device prefix: (hd0)/boot/vmlinuz -> /boot/vmlinuz
function strip_dev(p) { sub(/^\([^)]*\)/, "", p); return p }
{
  line = trim($0)
  if (line == "" || line ~ /^#/) next
  split_kw(line)
  if (KW == "title") { n++; title[n] = REST; kernel[n] = ""; initrd[n] = ""; next }
  if (n == 0) {
    if (KW == "default") gdefault = REST
    else if (KW == "timeout") gtimeout = REST
    else if (KW == "fallback") gfallback = REST
    else if (KW == "hiddenmenu") ghidden = 1
    next
  }
  if (KW == "kernel") {
    k = REST; path = k; args = ""
    if (match(k, /[ \t]+/)) { path = substr(k, 1, RSTART - 1); args = trim(substr(k, RSTART)) }
    kernel[n] = strip_dev(path); kargs[n] = args
  } else if (KW == "initrd") {
    split(REST, w, /[ \t]+/); initrd[n] = strip_dev(w[1])
  } else if (KW == "root" || KW == "rootnoverify") {
    groot[n] = REST
  }
}
'

# menulst_rewrite MENU UUID [PART]: the menu rewritten for the HVM disk, on stdout. PART "" : the
# filesystem is the whole disk, (hd0) (a bare ext disk converted in place).
menulst_rewrite() {
  local menu=$1 uuid=$2 part=${3-0} dev
  [ -r "$menu" ] || { printf 'grubcfg: cannot read %s\n' "$menu" >&2; return 2; }
  [[ $uuid =~ ^[0-9A-Fa-f-]+$ ]] || { printf 'grubcfg: bad filesystem UUID "%s"\n' "$uuid" >&2; return 2; }
  [[ $part =~ ^[0-9]*$ ]] || { printf 'grubcfg: bad partition index "%s"\n' "$part" >&2; return 2; }
  dev="(hd0,$part)"
  [ -n "$part" ] || dev="(hd0)"
  awk -v uuid="$uuid" -v dev="$dev" '
function dev_of(s) { gsub(/\(hd[0-9]+(,[0-9]+)?\)/, dev, s); return s }
function convert_args(a,    nw, w, i, out, has_serial, added, x) {
  nw = split(a, w, /[ \t]+/); out = ""; has_serial = 0; added = 0
  for (i = 1; i <= nw; i++) if (w[i] ~ /^console=ttyS[0-9]/) has_serial = 1
  for (i = 1; i <= nw; i++) {
    x = w[i]
    if (x == "") continue
    if (x ~ /^console=(hvc|xvc)[0-9]/) {
      if (has_serial || added) continue
      x = "console=ttyS0,115200n8"; added = 1
    } else if (x ~ /^xencons=/) {
      continue
    } else if (x ~ /^root=\/dev\/(xvd|sd|hd)[a-z]+[0-9]*$/) {
      x = "root=UUID=" uuid
    }
    out = out (out == "" ? "" : " ") x
  }
  if (!has_serial && !added) out = out (out == "" ? "" : " ") "console=ttyS0,115200n8"
  return out
}
{
  raw = $0; sub(/\r$/, "", raw)
  if (!match(raw, /^[ \t]*[A-Za-z_]+([ \t]*=[ \t]*|[ \t]+)/)) { print raw; next }
  head = substr(raw, 1, RLENGTH); rest = substr(raw, RLENGTH + 1)
  kw = head; gsub(/[ \t=]/, "", kw); kw = tolower(kw)
  if ((kw == "root" || kw == "rootnoverify") && rest ~ /^\(hd[0-9]+(,[0-9]+)?\)/) {
    sub(/^\(hd[0-9]+(,[0-9]+)?\)/, dev, rest); print head rest
  } else if (kw == "kernel") {
    path = rest; args = ""
    if (match(rest, /[ \t]+/)) { path = substr(rest, 1, RSTART - 1); args = substr(rest, RSTART + RLENGTH) }
    sub(/[ \t]+$/, "", args)
    print head dev_of(path) " " convert_args(args)
  } else if (kw == "initrd" || kw == "splashimage") {
    print head dev_of(rest)
  } else print raw
}' "$menu"
}

# grubcfg_legacy_stub MENU_NAME [FS_MODULE]: a grub.cfg that has GRUB 2 read the legacy menu
# MENU_NAME (beside grub.cfg, in $prefix) at every boot, with a serial console.
grubcfg_legacy_stub() {
  local name=$1 fsmod=${2:-ext2}
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { printf 'grubcfg: bad menu name "%s"\n' "$name" >&2; return 2; }
  printf '# Written by ami-factory pv2hvm.sh. GRUB 2 reads the image'"'"'s own GRUB legacy menu (%s, beside\n' "$name"
  printf '# this file) at every boot, so kernels that the image'"'"'s tools add to it are booted. Edit %s,\n' "$name"
  printf '# not this file. The menu as it was under PV is %s.pv.\n' "$name"
  printf 'serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n'
  printf 'terminal_input serial console\nterminal_output serial console\n'
  printf 'insmod part_msdos\ninsmod %s\ninsmod legacycfg\n' "$fsmod"
  printf 'legacy_configfile ${prefix}/%s\n' "$name"
}

# pv_boot_config GRUB_DIR UUID [PART] [FS_MODULE] [KERNEL_PREFIX]: makes the image in GRUB_DIR (the
# mounted image's boot/grub, on the filesystem that is partition PART, 0-based, of the HVM disk)
# boot with GRUB 2 from its own menu: the menu (grub.conf, else menu.lst; a symlink is followed)
# is kept as NAME.pv and rewritten in place (menulst_rewrite), and grub.cfg written. An image
# without a menu gets one made from its kernels (grubcfg_synthesize, KERNEL_PREFIX "/boot" when
# /boot is on the root filesystem, "" when it is a filesystem of its own). Installing GRUB's boot
# code is the caller's. Sets BOOT_MENU (path) and BOOT_MENU_SOURCE (menu.lst, grub.conf, synthesized).
pv_boot_config() {
  local dir=$1 uuid=$2 part=${3-0} fsmod=${4:-ext2} kprefix=${5-/boot} name tmp from
  BOOT_MENU="" BOOT_MENU_SOURCE=""
  for name in grub.conf menu.lst; do
    if [ -f "$dir/$name" ] && [ ! -L "$dir/$name" ]; then BOOT_MENU=$dir/$name BOOT_MENU_SOURCE=$name; break; fi
  done
  mkdir -p "$dir"
  if [ -z "$BOOT_MENU" ]; then
    BOOT_MENU=$dir/menu.lst BOOT_MENU_SOURCE=synthesized
    # A symlink without a file behind it (menu.lst -> grub.conf) is replaced by the made-up menu.
    rm -f "$BOOT_MENU"
    grubcfg_synthesize "$dir/../.." "$kprefix" >"$BOOT_MENU.pv" || return 1
    from=$BOOT_MENU.pv
  else
    # Run again on a disk converted in place, the .pv of the first run is the menu as it was under PV.
    [ -e "$BOOT_MENU.pv" ] || cp -p "$BOOT_MENU" "$BOOT_MENU.pv"
    from=$BOOT_MENU
  fi
  name=${BOOT_MENU##*/}
  tmp=$(mktemp "$BOOT_MENU.XXXXXX")
  menulst_rewrite "$from" "$uuid" "$part" >"$tmp" || { rm -f "$tmp"; return 1; }
  chmod 0600 "$tmp"; chmod --reference="$from" "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$BOOT_MENU"
  [ "$BOOT_MENU_SOURCE" != synthesized ] || rm -f "$BOOT_MENU.pv"
  [ -n "$(grubcfg_kernels "$BOOT_MENU")" ] || { printf 'grubcfg: the menu %s has no kernel entry\n' "$BOOT_MENU" >&2; return 3; }
  tmp=$(mktemp "$dir/grub.cfg.XXXXXX")
  grubcfg_legacy_stub "$name" "$fsmod" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$dir/grub.cfg"
}

# grubcfg_kernels MENU: kernel paths of the entries, one per line, in menu order.
grubcfg_kernels() {
  awk "$grubcfg_awk_common"'END { for (i = 1; i <= n; i++) if (kernel[i] != "") print kernel[i] }' "$1"
}

# grubcfg_default_kernel MENU: the kernel path of the entry GRUB 2 will boot by default.
grubcfg_default_kernel() {
  awk "$grubcfg_awk_common"'END {
    m = 0; for (i = 1; i <= n; i++) if (kernel[i] != "") { m++; kk[m - 1] = kernel[i]; newidx[i - 1] = m - 1 }
    d = (gdefault ~ /^[0-9]+$/ && ((gdefault) in newidx)) ? newidx[gdefault] : 0
    if (m > 0) print kk[d]
  }' "$1"
}

# grubcfg_initrd_for ROOT KERNEL_PATH: the initrd path of the first entry booting KERNEL_PATH.
grubcfg_initrd_for() {
  awk -v want="$2" "$grubcfg_awk_common"'END { for (i = 1; i <= n; i++) if (kernel[i] == want && initrd[i] != "") { print initrd[i]; exit } }' "$1"
}

# grubcfg_synthesize ROOT [KERNEL_PREFIX]: a menu.lst with one entry per ROOT/boot/vmlinuz-*
# (newest first), for images that have no PV-GRUB menu. Paths are KERNEL_PREFIX/vmlinuz-… (default
# /boot; "" when /boot is a filesystem of its own). The root device is filled in by the rewrite.
grubcfg_synthesize() {
  local root=$1 kp=${2-/boot} k v initrd
  printf '# made by ami-factory pv2hvm.sh: the image had no GRUB legacy menu\ndefault=0\ntimeout=1\n'
  while read -r k; do
    [ -n "$k" ] || continue
    v=${k#vmlinuz-}
    initrd=""
    for i in "initrd.img-$v" "initramfs-$v.img" "initrd-$v.img" "initrd-$v"; do
      [ -e "$root/boot/$i" ] && { initrd=$kp/$i; break; }
    done
    printf '\ntitle Linux %s\nroot (hd0)\nkernel %s/%s root=/dev/xvda1 ro console=hvc0\n' "$v" "$kp" "$k"
    [ -z "$initrd" ] || printf 'initrd %s\n' "$initrd"
  done < <(cd "$root/boot" 2>/dev/null && ls -1 vmlinuz-* 2>/dev/null | sort -rV)
}

# kernel_version_of PATH: /boot/vmlinuz-6.1.0-18-amd64 -> 6.1.0-18-amd64
kernel_version_of() {
  local b=${1##*/}
  case $b in vmlinuz-* | vmlinux-* | bzImage-* | kernel-*) printf '%s\n' "${b#*-}" ;; *) printf '%s\n' "$b" ;; esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  cmd=${1:-}; shift || true
  case $cmd in
    rewrite | apply)
      what=${1:?path}; shift; uuid="" part=0 fsmod=ext2 kprefix=/boot
      while [ $# -gt 0 ]; do
        case $1 in
          --uuid) uuid=$2; shift 2 ;;
          --part) part=$2; shift 2 ;;
          --fs-module) fsmod=$2; shift 2 ;;
          --kernel-prefix) kprefix=$2; shift 2 ;;
          *) printf 'grubcfg: unknown argument %s\n' "$1" >&2; exit 2 ;;
        esac
      done
      [ -n "$uuid" ] || { printf 'grubcfg: --uuid UUID is required\n' >&2; exit 2; }
      if [ "$cmd" = rewrite ]; then menulst_rewrite "$what" "$uuid" "$part"
      else pv_boot_config "$what" "$uuid" "$part" "$fsmod" "$kprefix"; printf '%s %s\n' "$BOOT_MENU_SOURCE" "$BOOT_MENU"; fi ;;
    kernels) grubcfg_kernels "${1:?menu.lst path}" ;;
    default-kernel) grubcfg_default_kernel "${1:?menu.lst path}" ;;
    synthesize) grubcfg_synthesize "${1:?root dir}" "${2-/boot}" ;;
    *) printf 'usage: %s rewrite MENU --uuid UUID [--part N] | apply GRUB_DIR --uuid UUID [--part N] [--fs-module M] [--kernel-prefix P] | kernels MENU | default-kernel MENU | synthesize ROOT [PREFIX]\n' "$0" >&2; exit 2 ;;
  esac
fi
