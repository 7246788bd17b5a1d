#!/usr/bin/env bash
# shellcheck shell=bash
# Making an empty disk bootable, for surrogate.sh (an OS written from nothing onto an EBS volume):
# partition layout, chroot mounts, /etc/fstab, GRUB 2 (BIOS and UEFI) with a serial console,
# NVMe/ENA drivers in the initramfs. Sourced after common.sh, devices.sh and image.sh; also a
# command, so that the pure parts can be tested on plain folders:
#
#   bootdisk.sh grub-cfg ROOT UUID [--gpt] [--kernel-dir /boot]  -> grub.cfg on stdout
#   bootdisk.sh fstab ROOT UUID FSTYPE [ESP_UUID]                 rewrites ROOT/etc/fstab
#   bootdisk.sh kernels ROOT                                      -> kernel versions, newest first
#   bootdisk.sh storage ROOT KVER                                 -> "nvme virtio_blk" (0/1 each)
#
# Dry runs: every command that changes the target goes through `run` (or `run_in ROOT`). With
# BOOTDISK_DRY_RUN=1 it prints "+ cmd args" (shell-quoted) on stderr and does nothing.

BOOTDISK_DRY_RUN=${BOOTDISK_DRY_RUN:-0}

# quote_cmd ARGS...: ARGS as one shell-quoted line (printf %q, but plain words stay plain).
quote_cmd() {
  local out="" a q
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@,+%^-]+$ ]]; then q=$a
    elif [[ $a != *"'"* ]]; then q="'$a'"
    else printf -v q '%q' "$a"; fi
    out+="${out:+ }$q"
  done
  printf '%s\n' "$out"
}

# run CMD ARGS...: runs it (its output on stderr), or only prints it in a dry run.
run() {
  if [ "$BOOTDISK_DRY_RUN" = 1 ]; then
    printf '+ %s\n' "$(quote_cmd "$@")" >&2
    return 0
  fi
  "$@" >&2
}

# The image's own programs (its package scripts, GRUB, initramfs builder) run in a sandbox, since
# they come from the source image or the recipe's repositories (README, "Worker"): a chroot with
# - a network namespace of its own (no interface but a down loopback: not the instance metadata
#   service, not the role's credentials, nothing outside);
# - a PID namespace and a mount namespace of their own, with a /proc of that PID namespace: no
#   worker process is seen, so no /proc/PID/root, /proc/PID/ns or /proc/PID/mem of one;
#   /proc/sys, /proc/sysrq-trigger and /sys read-only (core_pattern, uevent_helper run programs on
#   the worker); no file descriptor but 0-2 carried in;
# - a /dev of its own (a tmpfs): null zero full random urandom tty (the worker's nodes), a new
#   devpts with ptmx, shm, and of the worker's block devices only those allowed (--device DEV or
#   SANDBOX_DEVICES: the target disk, whose partitions come with it), not the worker's root disk
#   or the source volume; every other mount in the root is remounted nodev there (a device node
#   the image ships cannot be opened) and CAP_MKNOD is dropped;
# - only the capabilities that installing packages needs (SANDBOX_KEEP_CAPS): none of
#   CAP_SYS_ADMIN (mount, setns), CAP_SYS_CHROOT (a chroot inside the chroot walks out of it),
#   CAP_DAC_READ_SEARCH (open_by_handle_at reaches any file of a filesystem), CAP_SYS_PTRACE,
#   CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_NET_ADMIN, CAP_MKNOD, ...; the bounding set is cut, so no
#   later exec (setuid or not) gets one back.
# capsh chroots (then cds to /) after cutting the bounding set, and runs the command through the
# image's /bin/bash (its /bin/sh when it has no bash).
SANDBOX_KEEP_CAPS=cap_chown,cap_dac_override,cap_fowner,cap_fsetid,cap_kill,cap_setgid,cap_setuid,cap_setfcap,cap_audit_write,cap_net_bind_service
SANDBOX_DEVICES=${SANDBOX_DEVICES:-}
CHROOT=(in_sandbox)

# sandbox_drop_caps: the capabilities this kernel knows minus SANDBOX_KEEP_CAPS, comma separated.
sandbox_drop_caps() {
  local last all c out=()
  last=$(cat /proc/sys/kernel/cap_last_cap)
  all=$(capsh --decode="$(printf '0x%x' $(((1 << (last + 1)) - 1)))") || return 1
  for c in $(tr ',' ' ' <<<"${all#*=}"); do
    [[ ,$SANDBOX_KEEP_CAPS, == *",$c,"* ]] || out+=("$c")
  done
  (IFS=,; printf '%s\n' "${out[*]}")
}

# sandbox_enter ROOT DROP SHELL DEVICES CMD ARGS...: runs as PID 1 of the new namespaces
# (in_sandbox), still with the worker's files and every capability: the mounts that only this
# namespace sees, then capsh. DEVICES: the block device paths (under /dev) the sandbox may open.
sandbox_enter() {
  local root=$1 drop=$2 shell=$3 devices=$4 fd p m rel
  shift 4
  fail() { echo "sandbox: $*" >&2; exit 125; }
  for fd in /proc/self/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && { exec {fd}>&-; } 2>/dev/null
  done
  if [ -d "$root/proc" ]; then
    umount -l "$root/proc" 2>/dev/null || true # the worker's /proc (chroot_mounts), here only
    mount -t proc -o nosuid,nodev,noexec proc "$root/proc" || fail "cannot mount /proc in $root"
    for p in sys sysrq-trigger irq bus; do
      [ -e "$root/proc/$p" ] || continue
      if ! mount --bind "$root/proc/$p" "$root/proc/$p" || ! mount -o remount,bind,ro "$root/proc/$p"; then
        fail "cannot make /proc/$p read-only"
      fi
    done
  fi
  if [ -d "$root/sys" ] && [ -n "$(ls -A "$root/sys" 2>/dev/null)" ]; then
    mount -o remount,bind,ro "$root/sys" || fail "cannot make /sys read-only"
  fi
  # The worker's /dev (chroot_mounts) goes, with its /dev/pts; then no device node on any mount in
  # the root opens (nodev), except those bound into the fresh /dev below (a bind keeps the
  # flags of the worker's devtmpfs).
  [ ! -L "$root/dev" ] || fail "/dev in $root is a symbolic link"
  if mountpoint -q "$root/dev"; then umount -l "$root/dev" || fail "cannot unmount the worker's /dev from $root"; fi
  mkdir -p "$root/dev" || fail "cannot create $root/dev"
  mountpoint -q "$root" || mount --bind "$root" "$root" || fail "cannot bind $root onto itself"
  while read -r m; do
    m=$(printf '%b' "$m")
    mount -o "remount,bind,nodev,$(findmnt -n -o VFS-OPTIONS --mountpoint "$m" | tail -1)" "$m" || fail "cannot make $m nodev"
  done < <(findmnt -R -r -n -o TARGET --mountpoint "$root")
  mount -t tmpfs -o nosuid,nodev,noexec,mode=0755,size=1m sandbox-dev "$root/dev" || fail "cannot mount a /dev in $root"
  for p in null zero full random urandom tty $devices; do
    [[ $p == /* ]] || p=/dev/$p
    rel=${p#/dev/}
    [ -c "$p" ] || [ -b "$p" ] || continue
    if ! { mkdir -p "$root/dev/$(dirname "$rel")" && : >"$root/dev/$rel" && mount --bind "$p" "$root/dev/$rel"; }; then
      fail "cannot bind $p into $root/dev"
    fi
  done
  mkdir -p "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$root/dev/pts" || fail "cannot mount /dev/pts in $root"
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$root/dev/shm" || fail "cannot mount /dev/shm in $root"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"
  exec capsh --drop="$drop" --inh= --chroot="$root" --shell="$shell" -- -c 'exec "$@"' sandbox "$@"
}

# in_sandbox [--device DEV]... ROOT CMD ARGS...: CMD (looked up in the image's PATH) in the sandbox
# above. DEV (and SANDBOX_DEVICES, space separated): a block device the command may open, with its
# partitions (grub-install needs the disk it installs to).
in_sandbox() {
  local drop shell d devices="" allowed=() root
  while [ "${1:-}" = --device ]; do allowed+=("$2"); shift 2; done
  root=$1
  shift
  if [ -x "$root/bin/bash" ]; then shell=/bin/bash
  elif [ -x "$root/bin/sh" ]; then shell=/bin/sh
  else echo "in_sandbox: $root has neither /bin/bash nor /bin/sh" >&2; return 126; fi
  # shellcheck disable=SC2206 # a space-separated list of device paths
  allowed+=($SANDBOX_DEVICES)
  for d in "${allowed[@]}"; do
    [ -n "$d" ] || continue
    d=$(readlink -f "$d")
    if [ ! -b "$d" ] || [[ $d != /dev/* ]]; then echo "in_sandbox: $d is not a block device under /dev" >&2; return 125; fi
    devices+=" $(lsblk -lnpo NAME "$d" | tr '\n' ' ')"
  done
  drop=$(sandbox_drop_caps) || { echo "in_sandbox: capsh cannot list the capabilities" >&2; return 125; }
  unshare --net --pid --mount --fork --kill-child --propagation private -- \
    bash -c "$(declare -f sandbox_enter)"'; sandbox_enter "$@"' sandbox "$root" "$drop" "$shell" "$devices" "$@"
}

# run_in ROOT CMD ARGS...: CMD inside the chroot ROOT (see chroot_mounts), in the sandbox.
run_in() { local root=$1; shift; run "${CHROOT[@]}" "$root" "$@"; }

# dry_note TEXT: in a dry run, what a file write would do ("+ write PATH: summary").
dry_note() { [ "$BOOTDISK_DRY_RUN" = 1 ] && printf '+ %s\n' "$*" >&2; return 0; }

# predict_partition DISK N: the node name the kernel gives partition N (for dry runs and checks).
predict_partition() {
  case ${1##*/} in *[0-9]) printf '%sp%s\n' "$1" "$2" ;; *) printf '%s%s\n' "$1" "$2" ;; esac
}

# partition_target DISK MODE: a fresh label on DISK. Sets PART_ROOT, PART_ESP (uefi), PART_TABLE.
#   legacy-bios: msdos, one partition from 1 MiB to the end (bootable flag).
#   uefi:        gpt, 1: BIOS boot (1 MiB, for GRUB i386-pc: hybrid), 2: ESP 200 MiB, 3: root.
partition_target() {
  local disk=$1 mode=$2 p
  if [ "$BOOTDISK_DRY_RUN" != 1 ]; then
    for p in $(disk_partitions "$disk"); do wipefs -aq "$p" 2>/dev/null || true; done
  fi
  run wipefs -aq "$disk"
  case ${disk##*/} in loop*) [ "$BOOTDISK_DRY_RUN" = 1 ] || partx -d "$disk" >/dev/null 2>&1 || true ;; esac
  if [ "$mode" = uefi ]; then
    PART_TABLE=gpt
    # Type GUIDs: BIOS boot, EFI System, Linux filesystem data (UEFI spec; GRUB's "BIOS Boot Partition").
    run write_partition_table "$disk" 'label: gpt' \
      'start=1MiB, size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=biosboot' \
      'start=2MiB, size=200MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP' \
      'start=202MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root'
  else
    PART_TABLE=msdos
    run write_partition_table "$disk" 'label: dos' 'start=1MiB, type=83, bootable'
  fi
  if [ "$BOOTDISK_DRY_RUN" = 1 ]; then
    PART_ESP="" PART_ROOT=$(predict_partition "$disk" 1)
    [ "$mode" = uefi ] && { PART_ESP=$(predict_partition "$disk" 2); PART_ROOT=$(predict_partition "$disk" 3); }
    return 0
  fi
  make_partitions_visible "$disk"
  case ${disk##*/} in loop*) [[ $PARTX_REMOVAL_REGISTERED == *" $disk "* ]] || on_exit "partx -d '$disk' >/dev/null 2>&1" ;; esac
  PART_ESP=""
  if [ "$mode" = uefi ]; then
    PART_ESP=$(partition_path "$disk" 2) || die "partition 2 (ESP) of $disk did not appear"
    PART_ROOT=$(partition_path "$disk" 3) || die "partition 3 (root) of $disk did not appear"
  else
    PART_ROOT=$(partition_path "$disk" 1) || die "partition 1 of $disk did not appear"
  fi
  [ -b "$PART_ROOT" ] || die "root partition $PART_ROOT has no device node"
}

# chroot_mounts ROOT: /proc, /sys, /dev, /dev/pts and /run inside ROOT, undone at exit.
chroot_mounts() {
  local root=$1
  local m
  [ "$BOOTDISK_DRY_RUN" = 1 ] && return 0
  # mount follows a symbolic link: an image's /run -> /run would get the tmpfs over the worker's. Such
  # a link is made a directory (a root's /proc, /sys, /dev and /run are mount points; debootstrap run
  # in a container leaves /proc -> /proc), never mounted through.
  for m in proc sys dev run; do
    if [ -L "$root/$m" ]; then
      log "the image's /$m is a symbolic link (to $(readlink "$root/$m")): made a directory, so that nothing is mounted through it"
      rm -f "$root/$m" && mkdir "$root/$m" || die "cannot replace the symbolic link /$m in $root by a directory"
    fi
  done
  mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp"
  mount -t proc proc "$root/proc" || die "cannot mount /proc in $root"; on_exit "! mountpoint -q '$root/proc' || umount -l '$root/proc'"
  mount -t sysfs sysfs "$root/sys"; on_exit "! mountpoint -q '$root/sys' || umount -l '$root/sys'"
  mount --bind /dev "$root/dev"; on_exit "! mountpoint -q '$root/dev' || umount -l '$root/dev'"
  mkdir -p "$root/dev/pts"
  mount -t devpts devpts "$root/dev/pts" -o gid=5,mode=620,ptmxmode=666,newinstance 2>/dev/null ||
    mount --bind /dev/pts "$root/dev/pts"
  on_exit "! mountpoint -q '$root/dev/pts' || umount -l '$root/dev/pts'"
  mkdir -p "$root/run"
  mount -t tmpfs tmpfs "$root/run"; on_exit "! mountpoint -q '$root/run' || umount -l '$root/run'"
}

# chroot_umounts ROOT: undoes chroot_mounts early (before the root is unmounted).
chroot_umounts() {
  local root=$1 m
  for m in run dev/pts dev sys proc; do
    ! mountpoint -q "$root/$m" || umount -l "$root/$m" || true
  done
}

# root_kernels ROOT: kernel versions with a /boot/vmlinuz-* (or vmlinux-, Image-), newest first.
root_kernels() {
  local root=$1
  (cd "$root/boot" 2>/dev/null && ls -1 vmlinuz-* vmlinux-* Image-* 2>/dev/null) |
    sed -E 's/^(vmlinuz|vmlinux|Image)-//' | grep -v -- '-rescue-' | sort -rVu
}

# kernel_image ROOT KVER / kernel_initrd ROOT KVER: /boot-relative paths ("" when absent).
kernel_image() {
  local f
  for f in "vmlinuz-$2" "vmlinux-$2" "Image-$2"; do [ -e "$1/boot/$f" ] && { printf '/boot/%s\n' "$f"; return 0; }; done
  return 0
}
kernel_initrd() {
  local f
  for f in "initrd.img-$2" "initramfs-$2.img" "initrd-$2.img" "initrd-$2"; do
    [ -e "$1/boot/$f" ] && { printf '/boot/%s\n' "$f"; return 0; }
  done
  return 0
}

# storage_report ROOT KVER: sets VIRTIO_BLK_DRIVER (module file or built in) to 0/1.
storage_report() {
  local root=$1 kver=$2 d
  VIRTIO_BLK_DRIVER=0
  for d in "$root/lib/modules/$kver" "$root/usr/lib/modules/$kver"; do
    [ -d "$d" ] || continue
    [ -n "$(find "$d" -name 'virtio_blk.ko*' -print -quit 2>/dev/null)" ] && VIRTIO_BLK_DRIVER=1
    [ -f "$d/modules.builtin" ] && grep -Eq '(^|/)virtio_blk\.ko$' "$d/modules.builtin" && VIRTIO_BLK_DRIVER=1
  done
  [ -f "$root/boot/config-$kver" ] && grep -q '^CONFIG_VIRTIO_BLK=y' "$root/boot/config-$kver" && VIRTIO_BLK_DRIVER=1
  return 0
}

# write_fstab ROOT UUID FSTYPE [ESP_UUID]: / by UUID (and /boot/efi by UUID) first; other lines of
# an existing fstab kept, except earlier lines for / and /boot/efi.
write_fstab() {
  local root=$1 uuid=$2 fstype=$3 esp=${4:-} f tmp pass=1
  f=$root/etc/fstab
  mkdir -p "$root/etc"
  [ "$fstype" = xfs ] && pass=0
  tmp=$(mktemp "$f.surrogate.XXXXXX")
  {
    printf '# /etc/fstab: written by ami-factory surrogate.sh (filesystems by UUID)\n'
    printf 'UUID=%s\t/\t%s\tdefaults,noatime\t0 %s\n' "$uuid" "$fstype" "$pass"
    [ -z "$esp" ] || printf 'UUID=%s\t/boot/efi\tvfat\tumask=0077,nofail\t0 2\n' "$esp"
    if [ -f "$f" ]; then
      awk '/^# \/etc\/fstab: written by ami-factory/ { next }
           /^[ \t]*#/ || NF < 2 { print; next }
           $2 == "/" || $2 == "/boot/efi" { next }
           { print }' "$f"
    fi
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$f"
}

# grub_cfg ROOT UUID GPT(0/1) [KERNEL ARGS]: a grub.cfg on stdout with one entry per kernel in
# ROOT/boot (newest first, the default), root by UUID, serial console. The same file serves BIOS
# (i386-pc) and UEFI GRUB: the root filesystem is found by UUID, not by disk position.
grub_cfg() {
  local root=$1 uuid=$2 gpt=$3 extra=${4:-} k img initrd n=0
  [[ $uuid =~ ^[0-9A-Fa-f-]+$ ]] || { printf 'grub_cfg: bad filesystem UUID "%s"\n' "$uuid" >&2; return 2; }
  printf '# Generated by ami-factory surrogate.sh: root filesystem UUID %s, serial console ttyS0.\n' "$uuid"
  printf 'serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n'
  printf 'terminal_input serial console\nterminal_output serial console\n'
  if [ "$gpt" = 1 ]; then printf 'insmod part_gpt\n'; else printf 'insmod part_msdos\n'; fi
  printf 'insmod ext2\ninsmod xfs\n'
  printf "search --no-floppy --fs-uuid --set=root %s\n" "$uuid"
  printf 'set default=0\nset timeout=1\n'
  while read -r k; do
    [ -n "$k" ] || continue
    img=$(kernel_image "$root" "$k"); initrd=$(kernel_initrd "$root" "$k")
    printf "\nmenuentry 'Linux %s' {\n" "$k"
    printf "\tsearch --no-floppy --fs-uuid --set=root %s\n" "$uuid"
    printf '\tlinux %s root=UUID=%s ro console=tty0 console=ttyS0,115200n8%s\n' "$img" "$uuid" "${extra:+ $extra}"
    [ -z "$initrd" ] || printf '\tinitrd %s\n' "$initrd"
    printf '}\n'
    n=$((n + 1))
  done < <(root_kernels "$root")
  [ "$n" -gt 0 ] || { printf 'grub_cfg: no kernel in %s/boot\n' "$root" >&2; return 3; }
}

# grub_tool_in ROOT: grub-install or grub2-install inside ROOT (path inside), or nothing.
grub_tool_in() {
  local t
  for t in usr/sbin/grub-install usr/sbin/grub2-install sbin/grub-install sbin/grub2-install usr/bin/grub-install usr/bin/grub2-install; do
    [ -x "$1/$t" ] && { printf '/%s\n' "$t"; return 0; }
  done
  return 1
}

# grub_modules_present PREFIX TARGET: PREFIX/usr/lib/grub{,2}/TARGET exists (PREFIX "" = worker).
grub_modules_present() { [ -d "$1/usr/lib/grub/$2" ] || [ -d "$1/usr/lib/grub2/$2" ]; }

# install_grub ROOT DISK MODE ARCH UUID GPT VIA: GRUB for MODE onto DISK, grub.cfg into the boot
# directory it uses. VIA: chroot (the image's own GRUB: el, debian), worker (this machine's), or
# auto (the image's when it has the modules for the target, else the worker's).
# Sets GRUB_VIA and GRUB_CFG (path inside ROOT).
install_grub() {
  local root=$1 disk=$2 mode=$3 arch=$4 uuid=$5 gpt=$6 via=$7 efi_target tool="" grubdir secure=() t
  local -a targets=()
  case $arch in
    x86_64) efi_target=x86_64-efi ;;
    arm64) efi_target=arm64-efi ;;
  esac
  if [ "$mode" = uefi ]; then
    targets=("$efi_target")
    [ "$arch" = x86_64 ] && targets+=(i386-pc)
  else
    targets=(i386-pc)
  fi
  if [ "$via" = auto ]; then
    via=worker
    if tool=$(grub_tool_in "$root") && [ "$(uname -m | sed 's/aarch64/arm64/')" = "$arch" ]; then
      via=chroot
      for t in "${targets[@]}"; do grub_modules_present "$root" "$t" || via=worker; done
    fi
  fi
  GRUB_VIA=$via
  if [ "$via" = chroot ]; then
    if [ "$BOOTDISK_DRY_RUN" = 1 ]; then tool=${GRUB_DRY_RUN_TOOL:-/usr/sbin/grub2-install}
    else tool=$(grub_tool_in "$root") || die "the image has no grub-install/grub2-install"; fi
    for t in "${targets[@]}"; do
      [ "$BOOTDISK_DRY_RUN" = 1 ] || grub_modules_present "$root" "$t" || die "the image has no GRUB modules for $t (package grub-pc-bin/grub2-pc-modules, grub-efi-*-bin/grub2-efi-*-modules)"
    done
  else
    # The worker's GRUB: grub-install on Debian/Ubuntu, grub2-install on Amazon Linux/RHEL
    # (lib/tools.sh installs the one its package manager has, and the modules for each target).
    local -a need=('grub-install|grub2-install')
    for t in "${targets[@]}"; do need+=("grub-modules:$t"); done
    [ "$BOOTDISK_DRY_RUN" = 1 ] || ensure_tools "${need[@]}"
    tool=$(command -v grub-install || command -v grub2-install || true)
    [ -n "$tool" ] || die "no GRUB in the image and none on the worker (grub-install / grub2-install)"
    for t in "${targets[@]}"; do
      grub_modules_present "" "$t" || die "GRUB modules for $t missing on the worker (grub-pc-bin / grub-efi-amd64-bin / grub-efi-arm64-bin, or grub2-pc-modules / grub2-efi-*-modules)"
    done
  fi
  # grub2-install (Fedora/RHEL/Amazon Linux) uses boot/grub2; grub-install (Debian) boot/grub.
  case ${tool##*/} in grub2-install) grubdir=grub2 ;; *) grubdir=grub ;; esac
  GRUB_CFG=/boot/$grubdir/grub.cfg
  local prefix=() boot_dir=/boot efi_dir=/boot/efi
  if [ "$via" = chroot ]; then prefix=("${CHROOT[@]}" --device "$disk" "$root"); else boot_dir=$root/boot efi_dir=$root/boot/efi; fi
  for t in "${targets[@]}"; do
    if [ "$t" = i386-pc ]; then
      run "${prefix[@]}" "$tool" --target=i386-pc --boot-directory="$boot_dir" "$disk" ||
        die "grub-install --target=i386-pc on $disk failed"
    elif [ "${ESP_MOUNTED:-1}" = 0 ]; then
      efi_image_to_esp "$root" "$via" "$t" "$grubdir" "$uuid" "$arch" "$ESP_DEVICE"
    else
      secure=()
      # Debian's grub-install would look for shim/signed images; RHEL's refuses EFI without --force.
      if [ "$BOOTDISK_DRY_RUN" != 1 ] && "${prefix[@]}" "$tool" --help 2>/dev/null | grep -q -- '--no-uefi-secure-boot'; then
        secure=(--no-uefi-secure-boot)
      elif [ "$grubdir" = grub2 ]; then
        secure=(--force)
      fi
      run "${prefix[@]}" "$tool" --target="$t" --efi-directory="$efi_dir" --boot-directory="$boot_dir" \
        --removable --no-nvram "${secure[@]}" || die "grub-install --target=$t (removable, to the ESP) failed"
    fi
  done
  if [ "$BOOTDISK_DRY_RUN" = 1 ]; then
    dry_note "write $root$GRUB_CFG: search --fs-uuid, console=ttyS0,115200n8, one entry per /boot kernel"
    return 0
  fi
  mkdir -p "$root/boot/$grubdir"
  local tmp
  tmp=$(mktemp "$root/boot/$grubdir/grub.cfg.XXXXXX")
  grub_cfg "$root" "$uuid" "$gpt" "${GRUB_EXTRA_ARGS:-}" >"$tmp" || { rm -f "$tmp"; die "no kernel in the image's /boot: nothing to boot"; }
  chmod 0644 "$tmp"
  mv -f "$tmp" "$root$GRUB_CFG"
  # The other spelling too, so that either GRUB build finds it.
  if [ "$grubdir" = grub2 ] && [ ! -e "$root/boot/grub" ]; then ln -s grub2 "$root/boot/grub"; fi
  if [ "$grubdir" = grub ] && [ ! -e "$root/boot/grub2" ]; then ln -s grub "$root/boot/grub2"; fi
}

# vfat_mountable: this kernel can mount a FAT filesystem (some container hosts cannot).
vfat_mountable() {
  grep -qw vfat /proc/filesystems && return 0
  modprobe -q vfat 2>/dev/null || true
  grep -qw vfat /proc/filesystems
}

# efi_image_to_esp ROOT VIA TARGET GRUBDIR UUID ARCH ESP_DEV: what grub-install --removable does,
# for an ESP that cannot be mounted: GRUB's modules into ROOT/boot/GRUBDIR/TARGET, an EFI image
# (grub-mkimage, finding /boot/GRUBDIR by the root UUID) written to EFI/BOOT/BOOT<ARCH>.EFI on the
# unmounted vfat ESP with mtools.
efi_image_to_esp() {
  local root=$1 via=$2 t=$3 grubdir=$4 uuid=$5 arch=$6 esp=$7 mkimage="" libdir="" stage name
  ensure_tools mcopy mmd
  case $arch in x86_64) name=BOOTX64.EFI ;; arm64) name=BOOTAA64.EFI ;; esac
  local pre=""; [ "$via" = chroot ] && pre=$root
  for d in usr/lib/grub usr/lib/grub2; do [ -d "$pre/$d/$t" ] && { libdir=/$d/$t; break; }; done
  [ -n "$libdir" ] || die "GRUB modules for $t not found"
  if [ "$via" = chroot ]; then
    for m in usr/bin/grub-mkimage usr/bin/grub2-mkimage; do [ -x "$root/$m" ] && { mkimage=/$m; break; }; done
  else
    ensure_tools 'grub-mkimage|grub2-mkimage'
    mkimage=$(command -v grub-mkimage || command -v grub2-mkimage || true)
  fi
  [ -n "$mkimage" ] || die "grub-mkimage not found ($via)"
  mkdir -p "$root/boot/$grubdir/$t"
  cp -a "$pre$libdir"/*.mod "$pre$libdir"/*.lst "$root/boot/$grubdir/$t/"
  stage=$(mktemp -d "$root/tmp/surrogate.esp.XXXXXX")
  printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/%s\n' "$uuid" "$grubdir" >"$stage/early.cfg"
  local inner=$stage; [ "$via" = chroot ] && inner=${stage#"$root"}
  local -a cmd=("$mkimage" -O "$t" -d "$pre$libdir" -o "$inner/$name" -p "/boot/$grubdir" -c "$inner/early.cfg"
    part_gpt part_msdos fat ext2 xfs search search_fs_uuid normal configfile linux serial terminal echo)
  [ "$via" = chroot ] && cmd=("${CHROOT[@]}" "$root" "$mkimage" -O "$t" -d "$libdir" -o "$inner/$name" -p "/boot/$grubdir" -c "$inner/early.cfg"
    part_gpt part_msdos fat ext2 xfs search search_fs_uuid normal configfile linux serial terminal echo)
  "${cmd[@]}" >&2 || { rm -rf "$stage"; die "grub-mkimage -O $t failed"; }
  mmd -D o -i "$esp" ::/EFI ::/EFI/BOOT 2>/dev/null || true
  mcopy -o -i "$esp" "$stage/$name" "::/EFI/BOOT/$name" >&2 || { rm -rf "$stage"; die "writing EFI/BOOT/$name to $esp failed (mtools)"; }
  rm -rf "$stage"
  log "EFI/BOOT/$name written to the ESP $esp with grub-mkimage + mtools (vfat cannot be mounted here)"
}

# initramfs_drivers ROOT KVER: puts nvme and ena (those the kernel has as modules) into the image's
# initramfs for KVER and into its configuration (so that later kernels get them too), with the
# image's own initramfs-tools, dracut or (RHEL 5) mkinitrd. Used by surrogate.sh and pv2hvm.sh.
# Sets INITRAMFS_TOOL (initramfs-tools, dracut, mkinitrd or none).
initramfs_drivers() {
  local root=$1 kver=$2 drivers=() m moddir=""
  for m in "$root/lib/modules/$kver" "$root/usr/lib/modules/$kver"; do [ -d "$m" ] && { moddir=$m; break; }; done
  for m in nvme ena; do
    [ -n "$moddir" ] && [ -n "$(find "$moddir" -name "$m.ko*" -print -quit 2>/dev/null)" ] && drivers+=("$m")
  done
  INITRAMFS_TOOL=none
  if [ "$BOOTDISK_DRY_RUN" = 1 ]; then
    # Nothing is installed in a dry run: the recipe says which tool its packages bring.
    drivers=(nvme ena)
    case ${INITRAMFS_DRY_RUN_TOOL:-dracut} in
      dracut)
        INITRAMFS_TOOL=dracut
        dry_note "write $root/etc/dracut.conf.d/ami-factory.conf: add_drivers+=\" nvme ena \""
        run_in "$root" dracut --force --add-drivers "${drivers[*]}" --regenerate-all ;;
      initramfs-tools)
        INITRAMFS_TOOL=initramfs-tools
        dry_note "append nvme, ena to $root/etc/initramfs-tools/modules"
        run_in "$root" update-initramfs -u -k all ;;
    esac
    return 0
  fi
  if [ -x "$root/usr/sbin/update-initramfs" ] || [ -x "$root/sbin/update-initramfs" ]; then
    INITRAMFS_TOOL=initramfs-tools
    [ ${#drivers[@]} -gt 0 ] || { log "kernel $kver has nvme/ena built in or not at all: initramfs left as is"; return 0; }
    for m in "${drivers[@]}"; do
      grep -qx "$m" "$root/etc/initramfs-tools/modules" 2>/dev/null || printf '%s\n' "$m" >>"$root/etc/initramfs-tools/modules"
    done
    run_in "$root" update-initramfs -u -k "$kver" || die "update-initramfs -u -k $kver failed in the image"
  elif [ -x "$root/usr/bin/dracut" ] || [ -x "$root/usr/sbin/dracut" ] || [ -x "$root/sbin/dracut" ]; then
    INITRAMFS_TOOL=dracut
    [ ${#drivers[@]} -gt 0 ] || { log "kernel $kver has nvme/ena built in or not at all: initramfs left as is"; return 0; }
    mkdir -p "$root/etc/dracut.conf.d"
    printf '# ami-factory: EBS volumes are NVMe devices and the network is ENA on Nitro instances\nadd_drivers+=" %s "\n' \
      "${drivers[*]}" >"$root/etc/dracut.conf.d/ami-factory.conf"
    run_in "$root" dracut --force --add-drivers "${drivers[*]}" --regenerate-all || die "dracut failed in the image"
  elif [ -x "$root/sbin/mkinitrd" ] || [ -x "$root/usr/sbin/mkinitrd" ]; then
    # RHEL/CentOS 5 era: mkinitrd names the modules to add with --with; the image is rebuilt in place.
    INITRAMFS_TOOL=mkinitrd
    [ ${#drivers[@]} -gt 0 ] || { log "kernel $kver has nvme/ena built in or not at all: initramfs left as is"; return 0; }
    local with=() img
    for m in "${drivers[@]}"; do with+=("--with=$m"); done
    img=$(kernel_initrd "$root" "$kver")
    [ -n "$img" ] || img=/boot/initrd-$kver.img
    run_in "$root" mkinitrd -f "${with[@]}" "$img" "$kver" || die "mkinitrd failed in the image"
  else
    log "warning: the image has neither initramfs-tools, dracut nor mkinitrd: its initramfs (if any) is left as is"
  fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  cmd=${1:-}; shift || true
  case $cmd in
    grub-cfg)
      r=${1:?ROOT}; u=${2:?UUID}; shift 2; g=0
      [ "${1:-}" = --gpt ] && g=1
      grub_cfg "$r" "$u" "$g" ;;
    fstab) write_fstab "${1:?ROOT}" "${2:?UUID}" "${3:?FSTYPE}" "${4:-}" ;;
    kernels) root_kernels "${1:?ROOT}" ;;
    storage)
      . "$(dirname "$0")/image.sh"
      driver_report "${1:?ROOT}" "${2:?KVER}"; storage_report "$1" "$2"
      printf '%s %s\n' "$NVME_DRIVER" "$VIRTIO_BLK_DRIVER" ;;
    *) printf 'usage: %s grub-cfg ROOT UUID [--gpt] | fstab ROOT UUID FSTYPE [ESP_UUID] | kernels ROOT | storage ROOT KVER\n' "$0" >&2; exit 2 ;;
  esac
fi
