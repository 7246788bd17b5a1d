# shellcheck shell=bash
# surrogate.sh recipe "debian": debootstrap a Debian (or Ubuntu-like) system into the mounted root.
#
#   --suite bookworm [--mirror http://deb.debian.org/debian] [--packages a,b,c]
#   [--debootstrap-tarball PATH] [--keyring-sha256 HEX]
#
# Variant minbase plus what an EC2 image needs: systemd, udev, kmod, the distribution kernel
# (linux-image-amd64 / linux-image-arm64), initramfs-tools, openssh-server, the image's own GRUB
# modules (grub-pc-bin and grub-efi-amd64-bin / grub-efi-arm64-bin), ifupdown-free DHCP through
# systemd-networkd. cloud-init only when --packages names it (otherwise a warning in the facts).
#
# --debootstrap-tarball PATH: the downloaded .debs, kept between runs. When PATH is missing, or was
# made for another suite / mirror / arch / package list (PATH.meta says which), it is first made
# with debootstrap --make-tarball; then the root is installed from it with --unpack-tarball, so
# nothing is downloaded again.
#
# debootstrap: the worker's own, or on a worker with no package for it (Amazon Linux 2023) the
# mirror's, fetched and checked by lib/debootstrap.sh (surrogate.sh calls debootstrap_ensure
# before the target is touched, which sets DEBOOTSTRAP). --keyring-sha256 HEX: the sha256 of the
# debian-archive-keyring .deb to trust for that (default: the one pinned in lib/debootstrap.sh).

debian_base_packages() {
  local arch=$1
  local -a p=(systemd systemd-sysv udev kmod initramfs-tools zstd openssh-server e2fsprogs grub2-common)
  case $arch in
    x86_64) p+=(linux-image-amd64 grub-pc-bin grub-efi-amd64-bin) ;;
    arm64) p+=(linux-image-arm64 grub-efi-arm64-bin) ;;
  esac
  printf '%s\n' "${p[@]}"
}


# debian_apt_sources ROOT MIRROR SUITE: the image's sources.list, without credentials. What was there
# (debootstrap writes the mirror as given) is overwritten in place first, so that its blocks do not
# keep the password.
debian_apt_sources() {
  [ ! -s "$1/etc/apt/sources.list" ] || shred -z -n 1 "$1/etc/apt/sources.list"
  printf 'deb %s %s main\n' "$(plain_url "$2")" "$3" >"$1/etc/apt/sources.list"
}

DEBIAN_APT_AUTH=etc/apt/auth.conf.d/ami-factory.conf
# debian_apt_auth ROOT MIRROR: apt's credentials for MIRROR in ROOT/etc/apt/auth.conf.d (mode 0600,
# apt_auth.conf(5): "machine PROTOCOL://host/path login USER password PASS"), for apt inside the chroot (a
# user's script); surrogate.sh removes it after the user's script (and on exit, when it fails).
# Nothing when MIRROR has no credentials.
debian_apt_auth() {
  local root=$1 mirror=$2 cred machine
  cred=$(url_credentials "$mirror")
  [ -n "$cred" ] || return 0
  # With its protocol: an entry without one applies to https only (apt_auth.conf(5)).
  machine=$(plain_url "$mirror")
  mkdir -p "$root/etc/apt/auth.conf.d"
  (umask 077; printf 'machine %s login %s password %s\n' "${machine%/}" "$(url_decode "${cred%%:*}")" "$(url_decode "${cred#*:}")" >"$root/$DEBIAN_APT_AUTH")
  on_exit "debian_apt_auth_remove '$root'"
}

# debian_apt_auth_remove ROOT: the auth file overwritten in place, then removed (no trace in the
# filesystem's free blocks).
debian_apt_auth_remove() {
  [ -e "$1/$DEBIAN_APT_AUTH" ] || return 0
  shred -z -n 1 -u "$1/$DEBIAN_APT_AUTH"
}

# debian_wgetrc MIRROR: DEBIAN_WGETRC, a wgetrc (root-only, on the worker, removed on exit) with
# MIRROR's credentials, for debootstrap's wget (wget(1), "Wgetrc Commands": user, password):
# debootstrap is given the mirror without them, since it names files of the image after the mirror
# URL (/var/lib/apt/lists/HOST_PATH_dists_…) and writes it into sources.list. Empty without
# credentials.
DEBIAN_WGETRC=""
debian_wgetrc() {
  local cred
  DEBIAN_WGETRC=""
  cred=$(url_credentials "$1")
  [ -n "$cred" ] || return 0
  DEBIAN_WGETRC=$(mktemp /tmp/surrogate.wgetrc.XXXXXX) # mode 0600
  on_exit "rm -f '$DEBIAN_WGETRC'"
  printf 'user = %s\npassword = %s\n' "$(url_decode "${cred%%:*}")" "$(url_decode "${cred#*:}")" >"$DEBIAN_WGETRC"
}

# debian_populate ROOT ARCH SUITE MIRROR PACKAGES(comma list) TARBALL
debian_populate() {
  local root=$1 arch=$2 suite=$3 mirror=$4 extra=$5 tarball=$6 darch include log meta
  [ ${#DEBOOTSTRAP[@]} -gt 0 ] || die "debian_populate: debootstrap_ensure was not called"
  case $arch in x86_64) darch=amd64 ;; arm64) darch=arm64 ;; esac
  include=$( { debian_base_packages "$arch"; tr ',' '\n' <<<"$extra"; } | sed '/^$/d' | sort -u | paste -sd, -)
  log "debootstrap $suite ($darch) from $(plain_url "$mirror"), with: $include"
  log=$(mktemp /tmp/surrogate.debootstrap.XXXXXX.log)
  on_exit "rm -f '$log'"
  local -a common=(--arch="$darch" --variant=minbase --include="$include" --components=main)
  # debootstrap gets the mirror without credentials, and wget gets them from a wgetrc.
  local plain
  debian_wgetrc "$mirror"
  plain=$(plain_url "$mirror")
  [ -z "$DEBIAN_WGETRC" ] || export WGETRC=$DEBIAN_WGETRC
  if [ -n "$tarball" ]; then
    meta="suite=$suite mirror=$plain arch=$darch include=$include"
    if [ ! -s "$tarball" ] || [ "$(cat "$tarball.meta" 2>/dev/null)" != "$meta" ]; then
      local scratch
      mkdir -p "$(dirname "$tarball")"
      scratch=$(mktemp -d /tmp/surrogate.debs.XXXXXX)
      on_exit "rm -rf --one-file-system '$scratch'"
      log "making the package tarball $tarball (downloads once)"
      "${DEBOOTSTRAP[@]}" "${common[@]}" --make-tarball="$tarball.tmp" "$suite" "$scratch" "$plain" >"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "debootstrap --make-tarball failed"; }
      mv -f "$tarball.tmp" "$tarball"
      printf '%s\n' "$meta" >"$tarball.meta"
    else
      log "using the package tarball $tarball"
    fi
    common+=(--unpack-tarball="$(readlink -f "$tarball")")
  fi
  # The kernel's postinst builds an initramfs: tell it the root filesystem type (it cannot see it
  # from inside the chroot) and that no boot loader is managed by the package.
  mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/kernel"
  printf 'FSTYPE=ext4\n' >"$root/etc/initramfs-tools/conf.d/ami-factory"
  printf 'do_symlinks = yes\nlink_in_boot = no\n' >"$root/etc/kernel-img.conf"
  # The first stage (download, check, unpack: no package's code runs) on the worker; the second
  # (every maintainer script) in the sandbox (lib/bootdisk.sh in_sandbox), with nothing to reach.
  "${DEBOOTSTRAP[@]}" "${common[@]}" --foreign "$suite" "$root" "$plain" >"$log" 2>&1 ||
    { tail -30 "$log" >&2; die "debootstrap $suite (first stage) failed (see above)"; }
  chroot_mounts "$root"
  # container=lxc: debootstrap's own check that the target can hold device nodes (mknod of a test
  # /dev/null, skipped in an LXC container) would refuse the sandbox, which grants no device node on
  # purpose (no CAP_MKNOD, nodev); the first stage made the image's /dev nodes already.
  container=lxc in_sandbox "$root" /debootstrap/debootstrap --second-stage >>"$log" 2>&1 ||
    { tail -30 "$log" >&2; die "debootstrap $suite (second stage, in the image's sandbox) failed (see above)"; }
  chroot_umounts "$root"
  log "debootstrap done"
  "${CHROOT[@]}" "$root" apt-get clean >&2 || true
  rm -rf "$root"/var/lib/apt/lists/*_Packages "$root"/var/cache/apt/*.bin

  # Networking without cloud-init: DHCP on every Ethernet interface (ENA shows as ens5/eth0).
  mkdir -p "$root/etc/systemd/network"
  cat >"$root/etc/systemd/network/80-ami-factory-dhcp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  printf 'localhost\n' >"$root/etc/hostname"
  debian_apt_sources "$root" "$mirror" "$suite"
  debian_apt_auth "$root" "$mirror"
}
