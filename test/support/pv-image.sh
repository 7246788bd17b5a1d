#!/usr/bin/env bash
# Builds paravirtual-style (PV-GRUB) EC2 source disk images for the pv2hvm boot test, from a
# minimal Debian root made by debootstrap and cached as a tarball outside the repository.
#
#   pv-image.sh rootfs
#       Makes sure the cached root tarball exists; prints its path. The first run takes a few
#       minutes (debootstrap + kernel + initramfs); later runs reuse
#       ${AMI_FACTORY_CACHE:-$HOME/.cache/ami-factory}/debootstrap/<key>.tar
#   pv-image.sh build --layout flat|msdos|bootpart|rhel6 --out FILE --marker TOKEN [--size-mib N] [--label L]
#                     [--bare-initramfs] [--grub-package] [--stay-up]
#       Writes a raw disk image FILE in a PV layout real EC2 images have: no boot loader of its
#       own, a PV-GRUB menu (console=hvc0), an /etc/fstab naming Xen devices, and the leftovers
#       that `pv2hvm.sh --sanitize` must remove. Prints one JSON line with the facts a test checks
#       against (uuid, label, kernel version, ...).
#       flat:     ext4 on the whole image (menu.lst: root (hd0), root=LABEL=...)
#       msdos:    an msdos label: partition 1 a 64 MiB swap area, partition 2 the ext4 root
#                 (menu.lst: root (hd0,1), root=/dev/xvda2), so the root must be found, not assumed
#       bootpart: an msdos label: partition 1 /boot (ext4, 160 MiB; menu paths relative to it:
#                 kernel /vmlinuz-…, root (hd0,0)), partition 2 the root (root=/dev/xvda2)
#       rhel6:    ext4 on the whole image named as RHEL 6 kernels name it: root=/dev/xvde1 on the
#                 kernel line and in fstab, swap on /dev/xvde3, an ephemeral disk /dev/xvdb; the
#                 menu is boot/grub/grub.conf with menu.lst -> ./grub.conf, as on RHEL
#       --bare-initramfs: the initramfs has the ext4 driver but neither NVMe nor ENA (Xen era).
#       --grub-package: before the kernel update, the first boot installs grub-pc from the .debs the
#       root carries, then upgrades it after naming the boot disk in debconf (so that its postinst runs
#       grub-install onto it; update-grub runs both times), and prints AMI-FACTORY-GRUB-INSTALL rc=N
#       and AMI-FACTORY-GRUB-UPGRADE DISK rc=N, then the /etc/grub.d scripts grub.cfg is made of.
#       Once up, the image prints "AMI-FACTORY-BOOTED <TOKEN>" and its /proc/cmdline on /dev/ttyS0,
#       then updates its kernel menu the way grubby does (a copy of the default entry with the
#       extra argument ami_factory_update=<TOKEN> becomes the first entry and the default) and
#       reboots; the next boot prints "AMI-FACTORY-UPDATED <TOKEN>" and /proc/cmdline and powers
#       off.
#       --stay-up: the image prints "AMI-FACTORY-BOOTED <TOKEN>" and stays up, as an AMI does when
#       EC2 launches it (the twin's launch verification judges the boot of a running instance; a
#       guest that powers itself off reads as impaired there).
#
# Needs root (debootstrap, chroot, ownership in the tarball); builds images without loop devices
# or mounts (mke2fs -d).
set -euo pipefail

suite=bookworm
mirror=${AMI_FACTORY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What goes into the root. Part of the cache key: change anything here and the cache is rebuilt.
include_pkgs=systemd-sysv,udev,kmod,initramfs-tools,zstd
kernel_pkg=linux-image-amd64
# Packages (with the dependencies the root lacks) kept as .deb files in $offline_debs_dir inside the
# root, not installed: a boot test installs them in the converted image (the guest's own GRUB).
offline_pkgs=grub-pc
offline_debs_dir=/var/cache/ami-factory/debs
recipe_version=4
cache=${AMI_FACTORY_CACHE:-${HOME:-/root}/.cache/ami-factory}/debootstrap

say() { printf 'pv-image: %s\n' "$*" >&2; }
die() { printf 'pv-image: error: %s\n' "$*" >&2; exit 1; }

cleanups=()
run_cleanups() {
  local i
  for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do eval "${cleanups[i]}" || true; done
  cleanups=()
}
trap run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root ($1)"; }

cache_key() {
  printf '%s\n' "$suite" "$mirror" "$include_pkgs" "$kernel_pkg" "$offline_pkgs" "$offline_debs_dir" "$recipe_version" |
    sha256sum | cut -c1-12
}

tarball_path() { printf '%s/%s-amd64-%s.tar\n' "$cache" "$suite" "$(cache_key)"; }

# The cached root: minbase + systemd + a stock Debian kernel with an initramfs that carries the
# ext4, NVMe and ENA drivers. Nothing GRUB installed: a PV image is booted by PV-GRUB from outside;
# grub-pc and what it needs lie in $offline_debs_dir for a test to install offline.
make_rootfs_tarball() {
  local tarball dir
  tarball=$(tarball_path)
  [ -s "$tarball" ] && { printf '%s\n' "$tarball"; return 0; }
  need_root "debootstrap"
  command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/install-guest-deps.sh"
  mkdir -p "$cache"
  dir=$(mktemp -d "$cache/.root.XXXXXX")
  cleanups+=("rm -rf --one-file-system '$dir'")
  say "debootstrap $suite into $dir (one time, a few minutes; cached as $tarball)"
  debootstrap --variant=minbase --include="$include_pkgs" "$suite" "$dir" "$mirror" \
    >"$dir.log" 2>&1 || { tail -30 "$dir.log" >&2; die "debootstrap failed (log: $dir.log)"; }
  rm -f "$dir.log"

  # The initramfs fsck hook cannot see the root fs from inside a chroot: name its type.
  mkdir -p "$dir/etc/initramfs-tools/conf.d"
  printf 'FSTYPE=ext4\nMODULES=most\n' >"$dir/etc/initramfs-tools/conf.d/ami-factory"
  printf 'ena\nnvme\n' >>"$dir/etc/initramfs-tools/modules"
  # No boot loader: the kernel package must not look for one.
  printf 'do_symlinks = yes\nlink_in_boot = no\n' >"$dir/etc/kernel-img.conf"

  say "installing $kernel_pkg in the chroot"
  (
    trap 'umount -l "$dir/dev" 2>/dev/null; umount -l "$dir/proc" 2>/dev/null' EXIT
    mount -t proc proc "$dir/proc"
    mount --bind /dev "$dir/dev"
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "$kernel_pkg" >"$dir.log" 2>&1 || { tail -30 "$dir.log" >&2; exit 1; }
    mkdir -p "$dir$offline_debs_dir/partial"
    chroot "$dir" apt-get install -y -q --no-install-recommends --download-only -o Dir::Cache::archives="$offline_debs_dir" \
      ${offline_pkgs//,/ } >>"$dir.log" 2>&1 || { tail -30 "$dir.log" >&2; exit 1; }
    rm -rf "$dir$offline_debs_dir/partial" "$dir$offline_debs_dir/lock"
    chroot "$dir" apt-get clean
  ) || die "installing $kernel_pkg in the chroot failed (log: $dir.log)"
  rm -f "$dir.log"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
  ls "$dir"/boot/vmlinuz-* "$dir"/boot/initrd.img-* >/dev/null || die "no kernel/initrd in the root"

  tar --numeric-owner --xattrs -C "$dir" -cpf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  say "cached $(du -h "$tarball" | cut -f1) root tarball"
  printf '%s\n' "$tarball"
}

# Writes the per-image parts into an unpacked root: PV-GRUB menu, Xen fstab, boot marker unit and
# the files that --sanitize must remove.
customise_root() {
  local dir=$1 layout=$2 label=$3 marker=$4 kver=$5 grub_root kernel_root kp=/boot menu=menu.lst
  case $layout in
    flat) grub_root='(hd0)' kernel_root="LABEL=$label" ;;
    msdos) grub_root='(hd0,1)' kernel_root=/dev/xvda2 ;;
    bootpart) grub_root='(hd0,0)' kernel_root=/dev/xvda2 kp="" ;;
    rhel6) grub_root='(hd0)' kernel_root=/dev/xvde1 menu=grub.conf ;;
  esac

  mkdir -p "$dir/boot/grub"
  cat >"$dir/boot/grub/$menu" <<EOF
# PV-GRUB menu, as EC2 PV images had it
default=0
timeout=1
hiddenmenu

title Debian GNU/Linux 12, kernel $kver
root $grub_root
kernel $kp/vmlinuz-$kver root=$kernel_root console=hvc0 ro
initrd $kp/initrd.img-$kver

title Debian GNU/Linux 12, kernel $kver (recovery mode)
root $grub_root
kernel $kp/vmlinuz-$kver root=$kernel_root console=hvc0 ro single
initrd $kp/initrd.img-$kver
EOF
  [ "$menu" = menu.lst ] || ln -sf "./$menu" "$dir/boot/grub/menu.lst"
  case $layout in
    flat) printf '/dev/xvda1 / ext4 defaults,noatime 0 1\n' ;;
    msdos) printf '/dev/xvda2 / ext4 defaults,noatime 0 1\n' ;;
    bootpart) printf '/dev/xvda2 / ext4 defaults,noatime 0 1\n/dev/xvda1 /boot ext4 defaults 0 2\n' ;;
    rhel6) printf '/dev/xvde1 / ext4 defaults,noatime 0 1\n/dev/xvde3 swap swap defaults 0 0\n/dev/xvdb /media/ephemeral0 auto defaults,comment=cloudconfig 0 2\n' ;;
  esac | { printf '# <file system> <mount point> <type> <options> <dump> <pass>\n'; cat; printf 'proc /proc proc defaults 0 0\n'; } >"$dir/etc/fstab"
  printf 'pv-source\n' >"$dir/etc/hostname"

  # Boot marker: once multi-user is reached, say so on the serial port and power off.
  mkdir -p "$dir/etc/ami-factory" "$dir/usr/local/sbin"
  printf '%s\n' "$marker" >"$dir/etc/ami-factory/marker"
  cat >"$dir/usr/local/sbin/ami-factory-marker" <<'EOF'
#!/bin/sh
# First boot: say so, update the kernel menu as grubby would, reboot. Second boot: say so, power off.
root=$(findmnt -no SOURCE / 2>/dev/null || echo '?')
token=$(cat /etc/ami-factory/marker)
if [ ! -e /var/lib/ami-factory/updated ]; then
  {
    printf '\r\nami-factory: root %s, cmdline: %s\r\n' "$root" "$(cat /proc/cmdline)"
    printf 'AMI-FACTORY-BOOTED %s\r\n' "$token"
  } >/dev/ttyS0
  [ ! -e /etc/ami-factory/stay-up ] || exit 0
  if [ -e /etc/ami-factory/grub-package ]; then
    # To a file: the serial getty starting meanwhile hangs up /dev/ttyS0 (and whoever writes to it).
    /usr/local/sbin/ami-factory-grub-package >/var/log/ami-factory-grub-package.log 2>&1
    sed 's/$/\r/' /var/log/ami-factory-grub-package.log >/dev/ttyS0
  fi
  if /usr/local/sbin/ami-factory-kernel-update "ami_factory_update=$token" >/dev/ttyS0 2>&1; then
    mkdir -p /var/lib/ami-factory && : >/var/lib/ami-factory/updated && sync
    systemctl --no-block reboot
    exit 0
  fi
  printf 'ami-factory: the kernel menu update failed\r\n' >/dev/ttyS0
else
  {
    printf '\r\nami-factory: after the kernel update: root %s, boot %s, cmdline: %s\r\n' "$root" "$(findmnt -no SOURCE /boot 2>/dev/null || echo -)" "$(cat /proc/cmdline)"
    printf 'AMI-FACTORY-UPDATED %s\r\n' "$token"
  } >/dev/ttyS0
fi
systemctl --no-block poweroff
EOF
  # What grubby --copy-default --make-default does on a kernel update (CentOS/RHEL 6, Amazon
  # Linux 1): the default entry copied as a new first entry (here with one extra argument instead of
  # a new kernel version), default=0, written into the menu file itself (grub.conf via its link).
  cat >"$dir/usr/local/sbin/ami-factory-kernel-update" <<'EOF'
#!/bin/sh
set -eu
arg=$1
menu=$(readlink -f /boot/grub/menu.lst)
[ -f "$menu" ] || { echo "no /boot/grub/menu.lst" >&2; exit 1; }
awk -v arg="$arg" '
  { line[NR] = $0 }
  /^[ \t]*default[ \t=]/ { d = $0; sub(/^[ \t]*default[ \t=]+/, "", d); def = d + 0 }
  /^[ \t]*title[ \t]/ { n++; start[n] = NR; if (n > 1) stop[n - 1] = NR - 1 }
  END {
    if (n == 0) exit 1
    stop[n] = NR
    e = def + 1
    for (i = 1; i < start[1]; i++) { l = line[i]; if (l ~ /^[ \t]*default[ \t=]/) l = "default=0"; print l }
    for (i = start[e]; i <= stop[e]; i++) {
      l = line[i]
      if (l ~ /^[ \t]*title[ \t]/) l = l " (kernel update)"
      if (l ~ /^[ \t]*kernel[ \t]/) l = l " " arg
      if (l !~ /^[ \t]*$/) print l
    }
    print ""
    for (i = start[1]; i <= NR; i++) print line[i]
  }' "$menu" >"$menu.new"
mv "$menu.new" "$menu"
printf 'ami-factory: %s now boots by default:\r\n' "$menu"
sed -n '/^[ \t]*title/,/^[ \t]*$/p' "$menu" | head -5 | sed 's/$/\r/'
EOF
  # The guest's own GRUB package, as an admin or unattended-upgrades brings it (build --grub-package):
  # a fresh install of grub-pc with the debconf answers the image has, then an upgrade (a reinstall)
  # after debconf names the boot disk (as cloud-init's grub_dpkg module does at first boot), so that
  # its postinst runs grub-install onto that disk. Both postinsts run update-grub.
  cat >"$dir/usr/local/sbin/ami-factory-grub-package" <<'EOF'
#!/bin/sh
trap '' HUP
export DEBIAN_FRONTEND=noninteractive
root=$(findmnt -no SOURCE /)
disk=$(lsblk -ndo PKNAME "$root"); disk=${disk:+/dev/$disk}; disk=${disk:-$root}
rc=0; dpkg -i /var/cache/ami-factory/debs/*.deb || rc=$?
printf 'AMI-FACTORY-GRUB-INSTALL rc=%s\n' "$rc"
echo "grub-pc grub-pc/install_devices multiselect $disk" | debconf-set-selections
rc=0; dpkg -i /var/cache/ami-factory/debs/grub-pc_*.deb || rc=$?
printf 'AMI-FACTORY-GRUB-UPGRADE %s rc=%s\n' "$disk" "$rc"
printf 'ami-factory: grub.cfg from: %s\n' "$(sed -n 's/^### BEGIN \(.*\) ###$/\1/p' /boot/grub/grub.cfg | tr '\n' ' ')"
EOF
  chmod 0755 "$dir/usr/local/sbin/ami-factory-grub-package"
  chmod 0755 "$dir/usr/local/sbin/ami-factory-kernel-update"
  chmod 0755 "$dir/usr/local/sbin/ami-factory-marker"
  cat >"$dir/etc/systemd/system/ami-factory-marker.service" <<'EOF'
[Unit]
Description=ami-factory boot test hook

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ami-factory-marker

[Install]
WantedBy=multi-user.target
EOF
  mkdir -p "$dir/etc/systemd/system/multi-user.target.wants"
  ln -sf /etc/systemd/system/ami-factory-marker.service \
    "$dir/etc/systemd/system/multi-user.target.wants/ami-factory-marker.service"
  # An emptied machine-id makes the next boot a first boot: nothing may wait for a console answer.
  ln -sf /dev/null "$dir/etc/systemd/system/systemd-firstboot.service"

  # Leftovers that --sanitize removes.
  mkdir -p "$dir/etc/ssh" "$dir/home/admin" "$dir/var/lib/cloud/instances/i-123" "$dir/var/lib/cloud/sem" \
    "$dir/opt/aws/opsworks/current" "$dir/var/lib/aws/opsworks" "$dir/etc/aws/opsworks" \
    "$dir/var/log/aws/opsworks" "$dir/etc/init.d"
  for t in rsa ecdsa ed25519; do
    printf 'FAKE %s PRIVATE KEY\n' "$t" >"$dir/etc/ssh/ssh_host_${t}_key"
    printf 'ssh-%s FAKE root@pv-source\n' "$t" >"$dir/etc/ssh/ssh_host_${t}_key.pub"
  done
  printf 'aws configure\nexport SECRET=1\n' >"$dir/root/.bash_history"
  printf 'ls\n' >"$dir/home/admin/.bash_history"
  printf 'i-123\n' >"$dir/var/lib/cloud/instances/i-123/instance-id"
  ln -sfn /var/lib/cloud/instances/i-123 "$dir/var/lib/cloud/instance"
  : >"$dir/var/lib/cloud/sem/config_scripts_per_once.once"
  printf '0123456789abcdef0123456789abcdef\n' >"$dir/etc/machine-id"
  printf 'agent\n' >"$dir/opt/aws/opsworks/current/VERSION"
  printf 'x\n' >"$dir/var/lib/aws/opsworks/state"
  printf 'x\n' >"$dir/etc/aws/opsworks/instance-agent.yml"
  printf 'x\n' >"$dir/var/log/aws/opsworks/opsworks-agent.log"
  printf '#!/bin/sh\nexit 0\n' >"$dir/etc/init.d/opsworks-agent"
  chmod 0755 "$dir/etc/init.d/opsworks-agent"
}

# bare_initramfs ROOT KVER: an initramfs as a Xen-era image has it: the root filesystem's driver and
# no NVMe or ENA (MODULES=list, only ext4 listed), so that pv2hvm must add them for a Nitro boot.
bare_initramfs() {
  local dir=$1 kver=$2
  printf 'FSTYPE=ext4\nMODULES=list\n' >"$dir/etc/initramfs-tools/conf.d/ami-factory"
  sed -i -e '/^ena$/d' -e '/^nvme$/d' "$dir/etc/initramfs-tools/modules"
  printf 'ext4\n' >>"$dir/etc/initramfs-tools/modules"
  (
    trap 'umount -l "$dir/dev" 2>/dev/null; umount -l "$dir/proc" 2>/dev/null' EXIT
    mount -t proc proc "$dir/proc"
    mount --bind /dev "$dir/dev"
    chroot "$dir" update-initramfs -u -k "$kver" >"$dir.initramfs.log" 2>&1 || { tail -20 "$dir.initramfs.log" >&2; exit 1; }
  ) || die "update-initramfs (bare) failed in the chroot"
  rm -f "$dir.initramfs.log"
}

build_image() {
  local layout="" out="" marker="" size_mib=2048 label=ami-root bare_initramfs=0 grub_package=0 stay_up=0
  while [ $# -gt 0 ]; do
    case $1 in
      --layout) layout=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --marker) marker=$2; shift 2 ;;
      --size-mib) size_mib=$2; shift 2 ;;
      --label) label=$2; shift 2 ;;
      --bare-initramfs) bare_initramfs=1; shift ;;
      --grub-package) grub_package=1; shift ;;
      --stay-up) stay_up=1; shift ;;
      *) die "build: unknown argument '$1'" ;;
    esac
  done
  [[ $layout =~ ^(flat|msdos|bootpart|rhel6)$ ]] || die "build: --layout flat|msdos|bootpart|rhel6"
  [ -n "$out" ] || die "build: --out FILE"
  [[ $marker =~ ^[A-Za-z0-9._-]+$ ]] || die "build: --marker TOKEN ([A-Za-z0-9._-]+)"
  need_root "unpacking a root with its ownership"

  local tarball dir kver fs_file fs_mib
  tarball=$(make_rootfs_tarball)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/pv-image.XXXXXX")
  cleanups+=("rm -rf --one-file-system '$dir'")
  tar --numeric-owner --xattrs -C "$dir" -xpf "$tarball"
  kver=$(cd "$dir/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -n1)
  [ -n "$kver" ] || die "no kernel in $tarball"
  customise_root "$dir" "$layout" "$label" "$marker" "$kver"
  [ "$bare_initramfs" = 0 ] || bare_initramfs "$dir" "$kver"
  [ "$grub_package" = 0 ] || : >"$dir/etc/ami-factory/grub-package"
  [ "$stay_up" = 0 ] || : >"$dir/etc/ami-factory/stay-up"

  rm -f "$out"
  local boot_uuid="" boot_dir
  case $layout in
    flat | rhel6) fs_file=$out; fs_mib=$size_mib ;;
    msdos) fs_file="$out.fs"; fs_mib=$((size_mib - 65)); cleanups+=("rm -f '$fs_file'") ;;
    bootpart)
      fs_file="$out.fs"; fs_mib=$((size_mib - 161)); cleanups+=("rm -f '$fs_file' '$out.boot'")
      # /boot is a filesystem of its own: its content leaves the root, whose /boot stays empty.
      boot_dir=$(mktemp -d "${TMPDIR:-/tmp}/pv-image-boot.XXXXXX")
      cleanups+=("rm -rf --one-file-system '$boot_dir'")
      cp -a "$dir/boot/." "$boot_dir/"
      find "$dir/boot" -mindepth 1 -delete
      mke2fs -q -F -t ext4 -L boot -d "$boot_dir" "$out.boot" 160M >&2 || die "mke2fs -d (boot) failed"
      boot_uuid=$(blkid -p -o value -s UUID "$out.boot" 2>/dev/null || true) ;;
  esac
  mke2fs -q -F -t ext4 -L "$label" -d "$dir" "$fs_file" "${fs_mib}M" >&2 ||
    die "mke2fs -d failed"
  if [ "$layout" = msdos ]; then
    truncate -s "${size_mib}M" "$out"
    printf 'label: dos\nstart=2048, size=131072, type=82\nstart=133120, type=83\n' | sfdisk -q "$out" >/dev/null
    truncate -s 64M "$out.swap"; cleanups+=("rm -f '$out.swap'")
    mkswap -q "$out.swap" >&2
    dd if="$out.swap" of="$out" bs=1M seek=1 conv=notrunc status=none
    dd if="$fs_file" of="$out" bs=1M seek=65 conv=notrunc,sparse status=none
  elif [ "$layout" = bootpart ]; then
    truncate -s "${size_mib}M" "$out"
    printf 'label: dos\nstart=2048, size=327680, type=83, bootable\nstart=329728, type=83\n' | sfdisk -q "$out" >/dev/null
    dd if="$out.boot" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$fs_file" of="$out" bs=1M seek=161 conv=notrunc,sparse status=none
  fi
  local uuid
  uuid=$(blkid -p -o value -s UUID "$fs_file" 2>/dev/null || true)
  [ -n "$uuid" ] || uuid=$(dumpe2fs -h "$fs_file" 2>/dev/null | sed -n 's/^Filesystem UUID: *//p')
  printf '{"layout":"%s","image":"%s","uuid":"%s","bootUuid":"%s","label":"%s","kernel":"%s","sizeMiB":%d}\n' \
    "$layout" "$out" "$uuid" "$boot_uuid" "$label" "$kver" "$size_mib"
}

case ${1:-} in
  rootfs) make_rootfs_tarball ;;
  build) shift; build_image "$@" ;;
  tarball-path) tarball_path ;;
  *) die "usage: $0 rootfs | tarball-path | build --layout flat|msdos|bootpart|rhel6 --out FILE --marker TOKEN [--size-mib N] [--label L]" ;;
esac
