#!/usr/bin/env bash
# shellcheck shell=bash
# The worker's tools: finds the commands a guest script needs and installs the missing ones with
# the worker's package manager (dnf or yum on Amazon Linux 2023 / RHEL, apt-get on Debian /
# Ubuntu). Sourced after common.sh (log, die); also a command, so that the table can be tested:
#
#   tools.sh package PM TOOL      -> the package providing TOOL with PM (dnf, yum, apt-get); exit 1
#                                    when PM has none
#   tools.sh ensure TOOL...       -> ensure_tools TOOL... (exit 1 with the message when it cannot)
#   tools.sh which TOOL           -> the command (path) that satisfies TOOL
#
# A TOOL is
#   a command name                 blkid, sfdisk, mkfs.vfat …
#   alternatives  a|b              grub-install|grub2-install: either will do; the package
#                                  installed is that of the first alternative this PM has one for
#   grub-modules:PLATFORM          GRUB's modules for i386-pc, x86_64-efi or arm64-efi, in
#                                  /usr/lib/grub/PLATFORM (or /usr/lib/grub2/PLATFORM)
#
# The same program has different names per family, and the scripts say which they accept:
#   Debian, Ubuntu                              Amazon Linux 2023, RHEL, Fedora
#   grub-install, grub-mkimage (grub2-common)   grub2-install, grub2-mkimage (grub2-tools)
#   lsinitramfs (initramfs-tools-core)          lsinitrd (dracut)
#   debootstrap (debootstrap)                   no package: lib/debootstrap.sh fetches it
#
# Environment: GUEST_PKG_MANAGER=dnf|yum|apt-get|none overrides the detection (tests).

# tool_package PM TOOL: the package that provides TOOL with PM (see above); nothing (and status 1)
# when PM has none.
tool_package() {
  local pm=$1 tool=$2 col
  case $pm in dnf | yum) col=2 ;; apt-get | apt) col=3 ;; *) return 1 ;; esac
  awk -v t="$tool" -v c="$col" '
    /^[ \t]*(#|$)/ { next }
    { n = split($1, names, ",")
      for (i = 1; i <= n; i++) if (names[i] == t) { if ($c != "-") { print $c; found = 1 } exit } }
    END { exit !found }' <<'TABLE'
# tool(s)                                        dnf / yum               apt-get
blkid,lsblk,findmnt,partx,wipefs,blockdev,flock  util-linux              util-linux
unshare                                          util-linux-core         util-linux
capsh                                            libcap                  libcap2-bin
mount,umount,losetup                             util-linux              mount
sfdisk                                           util-linux              fdisk
mkfs.ext4,e2fsck,resize2fs,debugfs,e2image       e2fsprogs               e2fsprogs
dumpe2fs,chattr                                  e2fsprogs               e2fsprogs
mkfs.vfat                                        dosfstools              dosfstools
mcopy,mmd                                        mtools                  mtools
xfs_growfs,xfs_repair                            xfsprogs                xfsprogs
qemu-img                                         qemu-img                qemu-utils
cpio                                             cpio                    cpio
lsinitrd                                         dracut                  dracut-core
lsinitramfs                                      -                       initramfs-tools-core
grub-install                                     -                       grub2-common
grub2-install                                    grub2-tools             -
grub-mkimage                                     -                       grub-common
grub2-mkimage                                    grub2-tools             -
grub-modules:i386-pc                             grub2-pc-modules        grub-pc-bin
grub-modules:x86_64-efi                          grub2-efi-x64-modules   grub-efi-amd64-bin
grub-modules:arm64-efi                           grub2-efi-aa64-modules  grub-efi-arm64-bin
debootstrap                                      -                       debootstrap
ar                                               binutils                binutils
gpgv                                             gnupg2                  gpgv
wget                                             wget                    wget
curl                                             curl                    curl
perl                                             perl-interpreter        perl-base
xz                                               xz                      xz-utils
gzip                                             gzip                    gzip
zstd                                             zstd                    zstd
tar                                              tar                     tar
sha256sum,base64,chroot,dd,stat,mktemp           coreutils               coreutils
aws                                              awscli-2                awscli
udevadm                                          systemd-udev            udev
TABLE
}

# tools_pkg_manager: dnf, yum or apt-get, whichever the worker has (GUEST_PKG_MANAGER overrides);
# "none" when it has none.
tools_pkg_manager() {
  if [ -n "${GUEST_PKG_MANAGER:-}" ]; then printf '%s\n' "$GUEST_PKG_MANAGER"; return 0; fi
  local pm
  for pm in dnf yum apt-get; do command -v "$pm" >/dev/null && { printf '%s\n' "$pm"; return 0; }; done
  printf 'none\n'
}

# grub_platform_dir PLATFORM: the worker's folder of GRUB modules for PLATFORM, or status 1.
grub_platform_dir() {
  local d
  for d in /usr/lib/grub/"$1" /usr/lib/grub2/"$1"; do [ -d "$d" ] && { printf '%s\n' "$d"; return 0; }; done
  return 1
}

# tool_which TOOL: what satisfies TOOL (a command path or a module folder); status 1 if nothing.
tool_which() {
  local spec=$1 alt
  case $spec in
    grub-modules:*) grub_platform_dir "${spec#grub-modules:}"; return ;;
  esac
  local -a alts
  IFS='|' read -ra alts <<<"$spec"
  for alt in "${alts[@]}"; do command -v "$alt" 2>/dev/null && return 0; done
  return 1
}

# tool_describe TOOL: how a message names TOOL ("grub-install or grub2-install", "GRUB modules
# for i386-pc").
tool_describe() {
  case $1 in
    grub-modules:*) printf 'GRUB modules for %s (/usr/lib/grub/%s)\n' "${1#grub-modules:}" "${1#grub-modules:}" ;;
    *'|'*) printf '%s\n' "${1//|/ or }" ;;
    *) printf '%s\n' "$1" ;;
  esac
}

# tool_spec_package PM TOOL: the package of the first alternative of TOOL that PM has one for.
tool_spec_package() {
  local pm=$1 alt
  local -a alts
  IFS='|' read -ra alts <<<"$2"
  for alt in "${alts[@]}"; do tool_package "$pm" "$alt" && return 0; done
  return 1
}

# tools_install PM PACKAGE...: installs with PM, its output on stderr. apt-get refreshes its lists
# and tries again when the first attempt fails (a fresh instance has none).
tools_install() {
  local pm=$1
  shift
  case $pm in
    dnf | yum) "$pm" -y install "$@" >&2 ;;
    apt-get)
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 && return 0
      log "apt-get install failed: refreshing the package lists and trying again"
      apt-get update >&2 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ;;
    *) return 1 ;;
  esac
}

# ensure_tools TOOL...: every TOOL is on the worker when it returns. Quiet when all are present;
# otherwise the packages for the missing ones are installed with one call of the worker's package
# manager (logged), and each TOOL is checked again. Dies, naming the tool and the package, when a
# TOOL has no package here, when there is no package manager, or when the install did not provide
# it.
ensure_tools() {
  local spec pm pkg
  local -a missing=() pkgs=() nopkg=()
  for spec in "$@"; do tool_which "$spec" >/dev/null || missing+=("$spec"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  pm=$(tools_pkg_manager)
  if [ "$pm" = none ]; then
    local hint="" dnfp aptp
    for spec in "${missing[@]}"; do
      dnfp=$(tool_spec_package dnf "$spec" || echo none) aptp=$(tool_spec_package apt-get "$spec" || echo none)
      hint+="${hint:+; }$(tool_describe "$spec") (package: dnf $dnfp, apt-get $aptp)"
    done
    die "missing on the worker, and no package manager (dnf, yum, apt-get) to install them: $hint"
  fi
  for spec in "${missing[@]}"; do
    if pkg=$(tool_spec_package "$pm" "$spec"); then
      [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
    else
      nopkg+=("$spec")
    fi
  done
  if [ ${#nopkg[@]} -gt 0 ]; then
    local names=""
    for spec in "${nopkg[@]}"; do names+="${names:+, }$(tool_describe "$spec")"; done
    die "$names not found on the worker, and $pm has no package for it here"
  fi
  log "installing ${pkgs[*]} with $pm (for ${missing[*]})"
  local rc=0
  tools_install "$pm" "${pkgs[@]}" || rc=$?
  local -a still=()
  for spec in "${missing[@]}"; do tool_which "$spec" >/dev/null || still+=("$spec"); done
  [ ${#still[@]} -gt 0 ] || return 0
  local msg=""
  for spec in "${still[@]}"; do msg+="${msg:+; }$(tool_describe "$spec") (package $(tool_spec_package "$pm" "$spec"))"; done
  if [ "$rc" != 0 ]; then
    die "missing on the worker: $msg; '$pm install ${pkgs[*]}' failed (exit $rc, its output is above)"
  fi
  die "missing on the worker: $msg; '$pm install ${pkgs[*]}' succeeded but did not provide it"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  GUEST_LOG_PREFIX=${GUEST_LOG_PREFIX:-tools}
  # shellcheck source=common.sh
  . "$(dirname "$0")/common.sh"
  cmd=${1:-}; shift || true
  case $cmd in
    package) tool_spec_package "${1:?PM}" "${2:?TOOL}" ;;
    ensure) ensure_tools "$@" ;;
    which) tool_which "${1:?TOOL}" ;;
    *) printf 'usage: %s package PM TOOL | ensure TOOL... | which TOOL\n' "$0" >&2; exit 2 ;;
  esac
fi
