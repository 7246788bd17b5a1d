#!/usr/bin/env bash
# Idempotent: installs with apt-get what the guest scripts (scripts/guest/*.sh) and the boot test
# (test/guest/*.test.ts, test/support/{pv-image.sh,qemu.ts}) need. Run as root. Quiet when every
# package is already there; runs 'apt-get update' once, only when something is missing.
set -euo pipefail

say() { printf 'install-guest-deps: %s\n' "$*" >&2; }
die() { printf 'install-guest-deps: error: %s\n' "$*" >&2; exit 1; }

# package            what uses it
packages=(
  qemu-system-x86    # test/support/qemu.ts: boots the converted image
  seabios            # BIOS firmware for qemu (bios.bin / bios-256k.bin)
  qemu-utils         # qemu-img: surrogate.sh image recipe (qcow2/raw writes); its test makes a qcow2
  debootstrap        # test/support/pv-image.sh and surrogate.sh debian recipe: the Debian root
  grub-pc-bin        # i386-pc GRUB modules that pv2hvm.sh / surrogate.sh (script recipe) install on the target
  grub-efi-amd64-bin # x86_64-efi GRUB modules: surrogate.sh --boot-mode uefi with the worker's GRUB
  ovmf               # UEFI firmware for qemu: test/guest/surrogate.test.ts boots the uefi build
  mtools             # mdir: looking into the ESP without mounting it (surrogate test)
  grub2-common       # grub-install, grub-probe
  udev               # udevadm: grub-install asks it where a partition starts
  e2fsprogs          # e2image, e2fsck, resize2fs, mke2fs -d, debugfs, dumpe2fs
  parted             # the msdos label and the partition on the target
  fdisk              # sfdisk: pv-image.sh writes the source partition table; surrogate.sh grows partitions
  util-linux         # losetup, partx, blkid, lsblk, findmnt
  libcap2-bin        # capsh: the sandbox of the image's own tools (lib/bootdisk.sh in_sandbox)
  dosfstools         # mkfs.vfat / fsck.vfat, for images with an EFI or vfat partition
  cpio               # listing an initramfs
  initramfs-tools-core # lsinitramfs / unmkinitramfs
  zstd               # compressed initramfs images
  xz-utils           # compressed initramfs images / kernel modules
  gzip               # compressed initramfs images
  coreutils
)

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get install)"
command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
  die "apt-get/dpkg-query not found: this script supports Debian and Ubuntu only"

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

say "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
  die "apt-get install ${missing[*]} failed"

# Check the tools themselves, not only the package database.
for tool in qemu-system-x86_64 debootstrap grub-install udevadm e2image e2fsck resize2fs mke2fs \
            parted partx sfdisk losetup blkid cpio qemu-img mkfs.vfat; do
  command -v "$tool" >/dev/null || die "$tool is still missing after the install"
done
ls /usr/lib/grub/i386-pc/boot.img >/dev/null 2>&1 || die "grub i386-pc modules missing (grub-pc-bin)"
ls /usr/share/seabios/bios*.bin >/dev/null 2>&1 || die "SeaBIOS firmware missing (seabios)"
ls /usr/lib/grub/x86_64-efi/normal.mod >/dev/null 2>&1 || die "grub x86_64-efi modules missing (grub-efi-amd64-bin)"
ls /usr/share/ovmf/OVMF.fd >/dev/null 2>&1 || die "OVMF firmware missing (ovmf)"
say "done"
