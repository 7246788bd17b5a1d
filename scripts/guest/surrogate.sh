#!/usr/bin/env bash
# surrogate.sh — writes an operating system from nothing onto an empty volume attached to a
# temporary worker (the EBS-surrogate way of building an AMI), then makes it bootable on EC2.
# Runs as root (SSM AWS-RunShellScript), bundled into one script by lib/bundle.sh.
#
#   surrogate.sh --target DEV --recipe debian|el|image|script [--boot-mode legacy-bios|uefi]
#                [--arch x86_64|arm64] [--root-label LABEL] [--size-check] [--sanitize]
#                [--secret-args NAME[,NAME…] --secret-region REGION] RECIPE-OPTIONS
#
# --secret-args: more RECIPE-OPTIONS, read from those SSM SecureString parameters (lib/secrets.sh);
# the credentials of their URLs are written as *** in everything this script prints.
#
#   debian: --suite S [--mirror URL] [--packages a,b] [--debootstrap-tarball PATH]
#           [--keyring-sha256 HEX] [--user-script-b64 B64]                (surrogate/debian.sh)
#   el:     --releasever V --repo name=https://URL --gpgkey name=https://KEY [--repo … --gpgkey …] [--packages a,b]
#           [--user-script-b64 B64] [--dry-run]                           (surrogate/el.sh)
#   image:  --url URL|PATH --sha256 HEX [--format raw|qcow2]               (surrogate/image.sh)
#   script: --user-script-b64 B64                                          (surrogate/script.sh)
#
# DEV is a block device path or an EBS volume id (lib/devices.sh). Defaults: --boot-mode
# legacy-bios (x86_64) / uefi (arm64, which has no BIOS), --arch x86_64, --root-label root.
#
# debian, el, script:
#   1. a fresh label: legacy-bios msdos, one partition from 1 MiB; uefi GPT, 1 MiB BIOS boot
#      partition + 200 MiB ESP (vfat) + root, so that the disk boots with BIOS and with UEFI;
#   2. ext4 (label --root-label) mounted, the ESP at /boot/efi;
#   3. the recipe fills it (then --user-script-b64 runs, when given to debian or el);
#   4. /etc/fstab by UUID (and the ESP); nvme/ena in the initramfs when the kernel has them as
#      modules; GRUB 2 (i386-pc, and x86_64-efi/arm64-efi to EFI/BOOT with --removable: no NVRAM
#      entry needed) with grub.cfg: root by UUID, console=ttyS0,115200n8, serial terminal;
#   5. refuses the image when its kernel has neither an NVMe nor a virtio-blk driver (an EC2
#      instance could not find its root volume); cloud-init present or a warning in the facts;
#   6. --sanitize: host keys, histories, cloud-init state, machine-id (lib/image.sh).
# image: written as it is, last partition grown, then 5 and 6 (GRUB and partitions are its own).
#
# Tools: what the worker lacks is installed with its package manager first (dnf on Amazon Linux
# 2023, apt-get on Debian/Ubuntu; lib/tools.sh), and debootstrap, which dnf has no package for, is
# fetched from the Debian mirror with its signatures checked (lib/debootstrap.sh).
#
# --size-check: problems of size are fatal instead of warnings: a target smaller than the recipe
# needs (debian/el/script 2 GiB), a root filesystem more than 85% full at the end.
#
# Output: progress on stderr; stdout carries one line, the facts, in the schema below (checked by
# the provider, providers/worker/facts.ts; written only by this script, lib/common.sh
# guest_facts_channel: the recipe's tools and the user's script cannot):
# @facts {"script":"surrogate","schemaVersion":1,"fields":{"recipe":"string","bootMode":"string","partitionTable":"string","fsType":"string","rootUuid":"string","rootLabel":"string","kernels":"string[]","defaultKernel":"string","enaDriver":"boolean","nvmeDriver":"boolean","enaInInitramfs":"boolean","nvmeInInitramfs":"boolean","cloudInit":"boolean","warnings":"string[]","sanitized":"boolean","seconds":"number"}}
# Exit status: 0 done, 1 failed, 2 bad arguments. Every exit path unmounts what was mounted and
# removes the partition mappings added; running it again on the same target starts over.
set -euo pipefail

SURROGATE_DIR=${SURROGATE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
GUEST_LOG_PREFIX=surrogate
# shellcheck source=lib/common.sh
. "$SURROGATE_DIR/lib/common.sh" # @bundle lib/common.sh
# shellcheck source=lib/tools.sh
. "$SURROGATE_DIR/lib/tools.sh" # @bundle lib/tools.sh
# shellcheck source=lib/secrets.sh
. "$SURROGATE_DIR/lib/secrets.sh" # @bundle lib/secrets.sh
# shellcheck source=lib/debootstrap.sh
. "$SURROGATE_DIR/lib/debootstrap.sh" # @bundle lib/debootstrap.sh
# shellcheck source=lib/devices.sh
. "$SURROGATE_DIR/lib/devices.sh" # @bundle lib/devices.sh
# shellcheck source=lib/image.sh
. "$SURROGATE_DIR/lib/image.sh" # @bundle lib/image.sh
# shellcheck source=lib/bootdisk.sh
. "$SURROGATE_DIR/lib/bootdisk.sh" # @bundle lib/bootdisk.sh
# shellcheck source=surrogate/debian.sh
. "$SURROGATE_DIR/surrogate/debian.sh" # @bundle surrogate/debian.sh
# shellcheck source=surrogate/el.sh
. "$SURROGATE_DIR/surrogate/el.sh" # @bundle surrogate/el.sh
# shellcheck source=surrogate/image.sh
. "$SURROGATE_DIR/surrogate/image.sh" # @bundle surrogate/image.sh
# shellcheck source=surrogate/script.sh
. "$SURROGATE_DIR/surrogate/script.sh" # @bundle surrogate/script.sh
guest_facts_channel "$@"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# --- arguments -----------------------------------------------------------------------------------
# The recipe's URLs and script come from the build's secret parameters (lib/secrets.sh); from here
# on, what the script prints passes a filter that hides their credentials.
secret_args_expand "$@"
set -- "${SECRET_EXPANDED_ARGS[@]}"
secret_redact_output
target_spec="" recipe="" boot_mode="" arch=x86_64 root_label=root size_check=0 sanitize=0
suite="" mirror="" packages="" db_tarball="" releasever="" dry_run=0 url="" sha256="" format=""
user_b64="" have_user_b64=0 keyring_sha256=""
repos=() gpgkeys=() given=()
need_value() { [ "$2" -ge 2 ] || usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
  opt=$1 val=""
  case $opt in --*=*) val=${opt#*=}; opt=${opt%%=*}; set -- "$opt" "$val" "${@:2}" ;; esac
  case $opt in
    --target | --recipe | --boot-mode | --arch | --root-label | --suite | --mirror | --packages | \
      --debootstrap-tarball | --keyring-sha256 | --releasever | --repo | --gpgkey | --url | --sha256 | --format | --user-script-b64)
      need_value "$opt" $#; val=$2; shift 2 ;;
    --size-check | --sanitize | --dry-run) shift ;;
    -h | --help) usage ;;
    *) usage_error "unknown option '$opt' (see --help)" ;;
  esac
  given+=("$opt")
  case $opt in
    --target) target_spec=$val ;;
    --recipe) recipe=$val ;;
    --boot-mode) boot_mode=$val ;;
    --arch) arch=$val ;;
    --root-label) root_label=$val ;;
    --size-check) size_check=1 ;;
    --sanitize) sanitize=1 ;;
    --dry-run) dry_run=1 ;;
    --suite) suite=$val ;;
    --mirror) mirror=$val ;;
    --packages) packages=$val ;;
    --debootstrap-tarball) db_tarball=$val ;;
    --keyring-sha256) keyring_sha256=$val ;;
    --releasever) releasever=$val ;;
    --repo) repos+=("$val") ;;
    --gpgkey) gpgkeys+=("$val") ;;
    --url) url=$val ;;
    --sha256) sha256=$val ;;
    --format) format=$val ;;
    --user-script-b64) user_b64=$val; have_user_b64=1 ;;
  esac
done
[ -n "$target_spec" ] || usage_error "--target DEV is required"
[ -n "$recipe" ] || usage_error "--recipe debian|el|image|script is required"
case $recipe in
  debian) allowed=" --suite --mirror --packages --debootstrap-tarball --keyring-sha256 --user-script-b64 " ;;
  el) allowed=" --releasever --repo --packages --gpgkey --dry-run --user-script-b64 " ;;
  image) allowed=" --url --sha256 --format " ;;
  script) allowed=" --user-script-b64 " ;;
  *) usage_error "unknown --recipe '$recipe' (debian, el, image or script)" ;;
esac
common_opts=" --target --recipe --boot-mode --arch --root-label --size-check --sanitize "
for o in "${given[@]}"; do
  [[ $common_opts == *" $o "* || $allowed == *" $o "* ]] || usage_error "option $o does not apply to --recipe $recipe"
done
case $arch in x86_64 | arm64) ;; amd64) arch=x86_64 ;; aarch64) arch=arm64 ;;
  *) usage_error "--arch must be x86_64 or arm64 (got '$arch')" ;; esac
if [ -z "$boot_mode" ]; then boot_mode=legacy-bios; [ "$arch" = arm64 ] && boot_mode=uefi; fi
case $boot_mode in legacy-bios | uefi) ;; *) usage_error "--boot-mode must be legacy-bios or uefi (got '$boot_mode')" ;; esac
[ "$arch/$boot_mode" != arm64/legacy-bios ] || usage_error "--boot-mode legacy-bios does not exist for --arch arm64 (EC2 Graviton boots UEFI only)"
[[ $root_label =~ ^[A-Za-z0-9_.-]{1,16}$ ]] || usage_error "--root-label must be 1-16 letters, digits, _ . - (ext4 label; got '$root_label')"
[[ -z $packages || $packages =~ ^[A-Za-z0-9@+._:,-]+$ ]] || usage_error "--packages must be a comma-separated list of package names (got '$packages')"
case $recipe in
  debian)
    [ -n "$suite" ] || usage_error "--suite is required for --recipe debian (e.g. --suite bookworm)"
    [[ $suite =~ ^[a-z0-9-]+$ ]] || usage_error "--suite '$suite' is not a suite name"
    mirror=${mirror:-http://deb.debian.org/debian}
    [[ $mirror =~ ^(https?|file)://[^[:space:]]+$ ]] || usage_error "--mirror must be an http(s):// or file:// URL (got '$mirror')"
    [[ -z $keyring_sha256 || $keyring_sha256 =~ ^[0-9A-Fa-f]{64}$ ]] || usage_error "--keyring-sha256 must be 64 hex digits (got '$keyring_sha256')" ;;
  el)
    [ -n "$releasever" ] || usage_error "--releasever is required for --recipe el (e.g. --releasever 2023)"
    [[ $releasever =~ ^[A-Za-z0-9._-]+$ ]] || usage_error "--releasever '$releasever' is not a release version"
    [ ${#repos[@]} -gt 0 ] || usage_error "--repo name=URL is required for --recipe el (at least one)"
    # Nothing unsigned: repositories over https only, each with its signing key (gpgcheck is always on).
    for r in "${repos[@]}"; do
      [[ $r =~ ^[A-Za-z0-9_.-]+=https://[^[:space:]]+$ ]] || usage_error "--repo must be name=https://URL (got '$r')"
      has_key=0
      for k in "${gpgkeys[@]}"; do [ "${k%%=*}" = "${r%%=*}" ] && has_key=1; done
      [ "$has_key" = 1 ] || usage_error "--repo ${r%%=*} has no --gpgkey ${r%%=*}=https://URL: every repository needs its signing key"
    done
    for k in "${gpgkeys[@]}"; do
      [[ $k =~ ^[A-Za-z0-9_.-]+=https://[^[:space:]]+$ ]] || usage_error "--gpgkey must be name=https://URL (got '$k')"
    done ;;
  image)
    [ -n "$url" ] || usage_error "--url is required for --recipe image"
    [ -n "$sha256" ] || usage_error "--sha256 is required for --recipe image"
    [[ $sha256 =~ ^[0-9A-Fa-f]{64}$ ]] || usage_error "--sha256 must be 64 hex digits (got '$sha256')"
    format=${format:-raw}
    case $format in raw | qcow2) ;; *) usage_error "--format must be raw or qcow2 (got '$format')" ;; esac ;;
  script)
    [ "$have_user_b64" = 1 ] || usage_error "--user-script-b64 is required for --recipe script" ;;
esac
[ "$have_user_b64" = 0 ] || [ -n "$user_b64" ] || usage_error "--user-script-b64 is empty"

BOOTDISK_DRY_RUN=$dry_run
worker_arch=$(uname -m); worker_arch=${worker_arch/aarch64/arm64}
if [ "$dry_run" = 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  if [ "$recipe" != image ] && [ "$arch" != "$worker_arch" ]; then
    die "--arch $arch needs a $arch worker (this one is $worker_arch): the image's tools run in a chroot"
  fi
fi

install_cleanup_traps
warnings=()
warn() { log "warning: $*"; warnings+=("$*"); }
step_n=0
step() { step_n=$((step_n + 1)); guest_step "$step_n: $*"; log "step $step_n: $*"; }

if [ "$dry_run" = 0 ]; then
  # What this build runs on the worker; missing ones are installed now, before the target is
  # touched. GRUB (for images without their own) is looked for when it is needed (install_grub).
  tools=(blkid lsblk findmnt partx wipefs blockdev mount umount flock unshare capsh sha256sum 'lsinitramfs|lsinitrd')
  case $recipe in
    image)
      tools+=(sfdisk e2fsck resize2fs debugfs)
      [ "$format" = qcow2 ] && tools+=(qemu-img)
      case $url in http://* | https://*) tools+=(curl) ;; esac ;;
    *) tools+=(sfdisk mkfs.ext4 chroot base64) ;;
  esac
  [ "$boot_mode" = uefi ] && [ "$recipe" != image ] && tools+=(mkfs.vfat)
  [ "$boot_mode" = uefi ] && [ "$recipe" != image ] && ! vfat_mountable && tools+=(mcopy mmd)
  ensure_tools "${tools[@]}"
  if [ "$recipe" = debian ]; then
    debootstrap_ensure "$mirror" "$suite" "$([ "$arch" = arm64 ] && echo arm64 || echo amd64)" "$keyring_sha256"
    log "debootstrap: $DEBOOTSTRAP_ORIGIN"
    [ -z "$keyring_sha256" ] || [ "${DEBOOTSTRAP[0]}" = env ] ||
      warn "--keyring-sha256 was not used: the worker's own debootstrap checks with the worker's own keyring"
  fi
fi

# --- target --------------------------------------------------------------------------------------
step "resolving the target $target_spec"
if [ "$dry_run" = 1 ]; then
  target_dev=$(resolve_device "$target_spec") || die "cannot find the target device '$target_spec'"
else
  target_dev=$(resolve_device "$target_spec") || die "cannot find the target device '$target_spec'"
  [ -b "$target_dev" ] || die "target $target_dev is not a block device"
  is_whole_disk "$target_dev" || die "target $target_dev is a partition: give the whole disk"
  # The image's tools (lib/bootdisk.sh in_sandbox) may open this disk and its partitions, no other.
  SANDBOX_DEVICES=$target_dev
  exec {lock_fd}<"$target_dev"
  flock -n "$lock_fd" || die "another process holds $target_dev (a build already going?)"
  # A leftover mount of an earlier run (killed hard) is undone; any other mount is refused.
  while read -r mdev mpoint; do
    [ -n "$mdev" ] || continue
    if [[ $mpoint == /tmp/surrogate.* ]]; then
      log "unmounting $mdev from $mpoint (left by an earlier run)"
      umount -R "$mpoint" 2>/dev/null || umount -l "$mpoint" || die "cannot unmount $mpoint"
    else
      die "target $mdev is mounted at $mpoint: refusing to overwrite it"
    fi
  done < <(mounts_of "$target_dev" | sort -r -k2)
  target_bytes=$(blockdev --getsize64 "$target_dev")
  log "target $target_dev, $(human_bytes "$target_bytes")"
  if [ "$recipe" != image ] && [ "$target_bytes" -lt $((2 * 1024 * 1024 * 1024)) ]; then
    if [ "$size_check" = 1 ]; then die "target $target_dev is $(human_bytes "$target_bytes"): --recipe $recipe needs at least 2 GiB"
    else warn "target is $(human_bytes "$target_bytes"): less than the 2 GiB a full system usually needs"; fi
  fi
fi

if [ "$dry_run" = 1 ]; then work=/tmp/surrogate.dry-run; else work=$(mktemp -d /tmp/surrogate.XXXXXX); on_exit "rmdir '$work' 2>/dev/null"; fi
mnt=$work/root
partition_table="" esp_uuid="" root_dev=""

if [ "$recipe" = image ]; then
  # --- image: written as it is ---------------------------------------------------------------
  step "fetching, checking and writing the image"
  IMG_GROW_XFS=0
  image_write "$target_dev" "$url" "$sha256" "$format"
  case $IMG_PTTYPE in dos) partition_table=msdos ;; *) partition_table=$IMG_PTTYPE ;; esac
  root_dev=$IMG_ROOT fs_type=$IMG_FS
  mkdir -p "$mnt"; on_exit "rmdir '$mnt' 2>/dev/null"
  mopts=(); [ "$fs_type" = xfs ] && mopts=(-o nouuid)
  mount "${mopts[@]}" "$root_dev" "$mnt" || die "cannot mount the image's root filesystem $root_dev"
  on_exit "! mountpoint -q '$mnt' || umount '$mnt'"
  if [ "$boot_mode" = uefi ] && [ "$partition_table" != gpt ]; then
    warn "--boot-mode uefi, but the image has a $partition_table partition table: it must bring its own EFI boot"
  fi
else
  # --- debian, el, script: label, filesystems ------------------------------------------------
  step "partitioning $target_dev for $boot_mode"
  partition_target "$target_dev" "$boot_mode"
  partition_table=$PART_TABLE root_dev=$PART_ROOT fs_type=ext4
  run mkfs.ext4 -q -F -L "$root_label" "$root_dev" || die "mkfs.ext4 $root_dev failed"
  [ -z "$PART_ESP" ] || run mkfs.vfat -F 32 -n EFI "$PART_ESP" || die "mkfs.vfat $PART_ESP failed"
  [ "$dry_run" = 1 ] || mkdir -p "$mnt"
  run mount "$root_dev" "$mnt"
  if [ "$dry_run" = 0 ]; then
    on_exit "rmdir '$mnt' 2>/dev/null"
    on_exit "! mountpoint -q '$mnt' || umount -R '$mnt' || umount -l '$mnt'"
  fi
  ESP_MOUNTED=0 ESP_DEVICE=${PART_ESP:-}
  if [ -n "$PART_ESP" ]; then
    [ "$dry_run" = 1 ] || mkdir -p "$mnt/boot/efi"
    if [ "$dry_run" = 1 ] || vfat_mountable; then
      run mount "$PART_ESP" "$mnt/boot/efi"; ESP_MOUNTED=1
    else
      log "this kernel cannot mount vfat: the ESP is filled with mtools instead of being mounted"
    fi
  fi

  step "recipe $recipe"
  case $recipe in
    debian) debian_populate "$mnt" "$arch" "$suite" "$mirror" "$packages" "$db_tarball" ;;
    el)
      EL_CONFIG_DIR=$work/dnf
      [ "$dry_run" = 1 ] || { on_exit "rm -rf '$EL_CONFIG_DIR'"; }
      if [ "$dry_run" = 1 ]; then
        # In a dry run nothing is written: show the configuration on stderr instead.
        el_write_config() { :; }
      fi
      EL_GPGKEYS="${gpgkeys[*]}" el_populate "$mnt" "$arch" "$boot_mode" "$releasever" "$packages" "${repos[@]}" ;;
    script) user_script_run "$user_b64" "$target_dev" "$mnt" "$arch" "$boot_mode" ;;
  esac
  if [ "$recipe" != script ] && [ "$have_user_b64" = 1 ]; then
    step "user script"
    [ "$dry_run" = 1 ] && dry_note "run the user script with TARGET_DEVICE=$target_dev TARGET_ROOT=$mnt" ||
      user_script_run "$user_b64" "$target_dev" "$mnt" "$arch" "$boot_mode"
  fi
  # apt's credentials were for the user's script: gone before anything else writes the image.
  [ "$recipe" != debian ] || debian_apt_auth_remove "$mnt"
fi

# --- finishing -----------------------------------------------------------------------------------
if [ "$dry_run" = 1 ]; then
  root_uuid="<root-uuid>" esp_uuid=""; [ -n "${PART_ESP:-}" ] && esp_uuid="<esp-uuid>"
  step "fstab, initramfs drivers, GRUB (dry run)"
  dry_note "write $mnt/etc/fstab: UUID=$root_uuid / ext4${esp_uuid:+, UUID=$esp_uuid /boot/efi vfat}"
  chroot_mounts "$mnt"
  INITRAMFS_DRY_RUN_TOOL=dracut initramfs_drivers "$mnt" ""
  install_grub "$mnt" "$target_dev" "$boot_mode" "$arch" "00000000-0000-0000-0000-000000000000" \
    "$([ "$partition_table" = gpt ] && echo 1 || echo 0)" chroot
  [ "$sanitize" = 0 ] || dry_note "sanitize $mnt"
  run umount -R "$mnt"
  log "dry run: nothing was changed"
  guest_emit_facts "$(printf '{"script":"surrogate","schemaVersion":1,"recipe":%s,"bootMode":%s,"partitionTable":%s,"fsType":"ext4","rootUuid":"","rootLabel":%s,"kernels":[],"defaultKernel":"","enaDriver":false,"nvmeDriver":false,"enaInInitramfs":false,"nvmeInInitramfs":false,"cloudInit":false,"warnings":[],"sanitized":false,"seconds":%s,"dryRun":true}\n' \
    "$(json_str "$recipe")" "$(json_str "$boot_mode")" "$(json_str "$partition_table")" "$(json_str "$root_label")" "$(guest_elapsed)")"
  exit 0
fi

root_uuid=$(blkid -p -o value -s UUID "$root_dev" 2>/dev/null || true)
root_label_now=$(blkid -p -o value -s LABEL "$root_dev" 2>/dev/null || true)
[ -n "$root_uuid" ] || die "the root filesystem on $root_dev has no UUID"
mapfile -t kernels < <(root_kernels "$mnt")
if [ ${#kernels[@]} -eq 0 ]; then
  if [ "$recipe" = image ]; then warn "no kernel found in /boot of the image (a kernel elsewhere is not reported)"
  else die "no kernel in $mnt/boot after the $recipe recipe: nothing to boot"; fi
fi
default_kernel=${kernels[0]:-}

if [ "$recipe" != image ]; then
  step "fstab, initramfs drivers, GRUB"
  [ -z "${PART_ESP:-}" ] || esp_uuid=$(blkid -p -o value -s UUID "$PART_ESP" 2>/dev/null || true)
  write_fstab "$mnt" "$root_uuid" ext4 "$esp_uuid"
  log "/etc/fstab: / UUID=$root_uuid${esp_uuid:+, /boot/efi UUID=$esp_uuid}"
  chroot_mounts "$mnt"
  initramfs_drivers "$mnt" "$default_kernel"
  [ "$INITRAMFS_TOOL" != none ] || warn "the image has neither initramfs-tools nor dracut: NVMe/ENA could not be added to its initramfs"
  via=auto; case $recipe in debian | el) via=chroot ;; esac
  install_grub "$mnt" "$target_dev" "$boot_mode" "$arch" "$root_uuid" "$([ "$partition_table" = gpt ] && echo 1 || echo 0)" "$via"
  log "GRUB ($GRUB_VIA's) for $boot_mode, $GRUB_CFG: ${#kernels[@]} kernel(s), default $default_kernel"
  chroot_umounts "$mnt"
else
  step "checking the image's /etc/fstab"
  if [ -f "$mnt/etc/fstab" ]; then
    fix_fstab "$mnt" "$root_uuid"
  else
    warn "the image has no /etc/fstab"
  fi
fi

step "drivers and cloud-init"
initrd=""
if [ -n "$default_kernel" ]; then
  initrd=$(kernel_initrd "$mnt" "$default_kernel")
  driver_report "$mnt" "$default_kernel" "${initrd:+$mnt$initrd}"
  storage_report "$mnt" "$default_kernel"
else
  ENA_DRIVER=0 NVME_DRIVER=0 ENA_IN_INITRAMFS=0 NVME_IN_INITRAMFS=0 VIRTIO_BLK_DRIVER=0
fi
log "kernel ${default_kernel:-?}: ENA $ENA_DRIVER (initramfs $ENA_IN_INITRAMFS), NVMe $NVME_DRIVER (initramfs $NVME_IN_INITRAMFS), virtio-blk $VIRTIO_BLK_DRIVER"
if [ -n "$default_kernel" ] && [ "$NVME_DRIVER" = 0 ] && [ "$VIRTIO_BLK_DRIVER" = 0 ]; then
  msg="kernel $default_kernel has neither an NVMe driver nor virtio-blk: an EC2 Nitro instance could not find its root volume"
  if [ "$recipe" = image ]; then warn "$msg"; else die "$msg"; fi
fi
[ "$ENA_DRIVER" = 1 ] || [ -z "$default_kernel" ] || warn "kernel $default_kernel has no ENA driver: no network on Nitro instance types"
[ "$NVME_DRIVER" = 0 ] || [ "$NVME_IN_INITRAMFS" = 1 ] || warn "the NVMe driver is not in the initramfs of $default_kernel: the root volume may not be found on Nitro"
cloud_init=0
for c in usr/bin/cloud-init bin/cloud-init usr/local/bin/cloud-init; do [ -e "$mnt/$c" ] && cloud_init=1; done
[ "$cloud_init" = 1 ] || warn "cloud-init is not installed: no SSH key, user data or hostname from EC2 at boot"

if [ "$sanitize" = 1 ]; then
  step "sanitizing"
  sanitize_root "$mnt"
fi

used_pct=$(df --output=pcent "$mnt" | tail -1 | tr -dc 0-9)
if [ "${used_pct:-0}" -gt 85 ]; then
  if [ "$size_check" = 1 ]; then die "the root filesystem is ${used_pct}% full"
  else warn "the root filesystem is ${used_pct}% full"; fi
fi

sync
umount -R "$mnt"
log "done in $(guest_elapsed)s"
kernels_json="" warnings_json=""
for k in "${kernels[@]}"; do kernels_json+="${kernels_json:+,}$(json_str "$k")"; done
for w in "${warnings[@]}"; do warnings_json+="${warnings_json:+,}$(json_str "$w")"; done
guest_emit_facts "$(printf '{"script":"surrogate","schemaVersion":1,"recipe":%s,"bootMode":%s,"partitionTable":%s,"fsType":%s,"rootUuid":%s,"rootLabel":%s,"kernels":[%s],"defaultKernel":%s,"enaDriver":%s,"nvmeDriver":%s,"enaInInitramfs":%s,"nvmeInInitramfs":%s,"cloudInit":%s,"warnings":[%s],"sanitized":%s,"seconds":%s}\n' \
  "$(json_str "$recipe")" "$(json_str "$boot_mode")" "$(json_str "$partition_table")" "$(json_str "$fs_type")" \
  "$(json_str "$root_uuid")" "$(json_str "$root_label_now")" "$kernels_json" "$(json_str "$default_kernel")" \
  "$(json_bool "$ENA_DRIVER")" "$(json_bool "$NVME_DRIVER")" "$(json_bool "$ENA_IN_INITRAMFS")" "$(json_bool "$NVME_IN_INITRAMFS")" \
  "$(json_bool "$cloud_init")" "$warnings_json" "$(json_bool "$sanitize")" "$(guest_elapsed)")"
