# shellcheck shell=bash
# Making a mounted PV root boot as HVM: the one code path of both conversions (pv2hvm.sh's copy
# and --in-place), so that a copied and an in-place converted image follow the same rules. Sourced
# after common.sh, tools.sh, grubcfg.sh, image.sh and bootdisk.sh; never run.
#
#   install_bios_grub DISK BOOT_DIR FS_MODULE embed|blocklist
#       GRUB 2 for BIOS from the worker's tools onto DISK, its files in BOOT_DIR/grub. embed: boot
#       code in the MBR, core image in the gap before partition 1 (grub-install refuses when it
#       does not fit). blocklist: a filesystem on the whole disk, boot code in sector 0 (ext leaves
#       its first 1 KiB unused), core image a file in BOOT_DIR/grub/i386-pc read by its sector list;
#       that file is made immutable, because the boot code finds it by position only.
#   hvm_boot_menu ROOT BOOT_ROOT UUID MENU_PART FS_MODULE KERNEL_PREFIX
#       the image's own menu rewritten (lib/grubcfg.sh pv_boot_config), its kernels listed. Sets
#       KERNEL_PATHS, KERNELS_JSON, DEFAULT_KERNEL, DEFAULT_VERSION.
#   guard_guest_grub ROOT MENU_NAME FS_MODULE
#       blocklist only: keeps the image's own GRUB from breaking that boot (see below). Sets
#       GRUB_INSTALL_GUARD (dpkg-divert or local-wrapper).
#   hvm_fstab_drivers ROOT BOOT_ROOT UUID BOOT_UUID NITRO(0/1)
#       /etc/fstab (lib/image.sh fix_fstab), NVMe/ENA into the initramfs with the image's own tool
#       (lib/bootdisk.sh initramfs_drivers). Sets INITRAMFS_UPDATED, NITRO_READY and the driver
#       variables of driver_report.

GRUB_CORE_IMMUTABLE=""
# What GRUB needs at boot to read the image's legacy menu (grubcfg_legacy_stub) and start Linux (the
# legacy kernel command loads it with linux16 on a BIOS); the modules they depend on come along.
# Not every module, font and locale of the worker: on a disk converted in place each block written
# is a block the new snapshot stores. grub-install copies only those its core image is made of
# (it fsyncs each file, a journal commit each); the others are copied in one go after it.
GRUB_BOOT_MODULES="normal legacycfg linux linux16 serial terminal part_msdos ext2 xfs biosdisk echo test search search_fs_uuid search_label configfile ls cat halt reboot sleep gzio"

# grub_module_closure MODDEP_LST MODULES: MODULES and every module they depend on, one a line.
grub_module_closure() {
  awk -v want="$2" '
    { m = $1; sub(/:$/, "", m); deps[m] = ""; for (i = 2; i <= NF; i++) deps[m] = deps[m] " " $i }
    END {
      n = split(want, q, " "); for (i = 1; i <= n; i++) stack[++top] = q[i]
      while (top > 0) {
        m = stack[top--]; if (m in seen) continue; seen[m] = 1; print m
        k = split(deps[m], d, " "); for (j = 1; j <= k; j++) if (!(d[j] in seen)) stack[++top] = d[j]
      }
    }' "$1"
}

# copy_grub_modules DEST: GRUB_BOOT_MODULES and their dependencies from the worker into DEST,
# each only when DEST lacks it or has another version (no block is rewritten for nothing).
copy_grub_modules() {
  local dest=$1 src m
  src=$(grub_platform_dir i386-pc) || die "no GRUB i386-pc modules on the worker"
  while read -r m; do
    [ -f "$src/$m.mod" ] || continue
    cmp -s "$src/$m.mod" "$dest/$m.mod" || cp "$src/$m.mod" "$dest/$m.mod"
  done < <(grub_module_closure "$src/moddep.lst" "$GRUB_BOOT_MODULES")
}

install_bios_grub() {
  local disk=$1 boot_dir=$2 fsmod=$3 mode=$4 tool core
  tool=$(command -v grub-install || command -v grub2-install) || die "no grub-install on the worker"
  mkdir -p "$boot_dir/grub"
  # grub2-install writes to boot/grub2; GRUB 2 built that way looks there too, so link it.
  if [[ $tool == *grub2-install ]] && [ ! -e "$boot_dir/grub2" ]; then ln -s grub "$boot_dir/grub2"; fi
  core=$(readlink -f "$boot_dir/grub")/i386-pc/core.img
  local -a only=(--install-modules="biosdisk part_msdos $fsmod" --fonts= --locales= --themes=)
  if [ "$mode" = embed ]; then
    "$tool" --target=i386-pc --boot-directory="$boot_dir" --modules="part_msdos $fsmod" "${only[@]}" "$disk" >&2 ||
      die "grub-install on $disk failed"
    copy_grub_modules "$(dirname "$core")"
    return 0
  fi
  # A re-run: the core image of the earlier run is immutable, and grub-install writes it anew.
  [ ! -e "$core" ] || chattr -i "$core" || die "chattr -i $core failed"
  # --force: grub-install accepts a disk without embedding area only so; its warning about
  # blocklists is the reason the core image is made immutable below.
  "$tool" --target=i386-pc --force --boot-directory="$boot_dir" --modules="$fsmod" "${only[@]}" "$disk" >&2 ||
    die "grub-install (blocklist) on $disk failed"
  copy_grub_modules "$(dirname "$core")"
  sync
  chattr +i "$core" || die "chattr +i $core failed"
  GRUB_CORE_IMMUTABLE=${core#"${boot_dir%/boot}"}
  log "GRUB's core image ${GRUB_CORE_IMMUTABLE} is read by the boot sector from its sectors: made immutable (chattr +i) so that nothing moves or rewrites it; a tool that must replace it (grub-install) fails until chattr -i"
}

hvm_boot_menu() {
  local root=$1 boot_root=$2 uuid=$3 part=$4 fsmod=$5 kprefix=$6 k v seen=" "
  pv_boot_config "$root/boot/grub" "$uuid" "$part" "$fsmod" "$kprefix" || die "rewriting the boot menu failed"
  [ "$BOOT_MENU_SOURCE" != synthesized ] ||
    log "warning: no boot/grub/menu.lst or grub.conf: one was made from /boot/vmlinuz-*; kernels installed later are booted only if the image's tools add them to it"
  mapfile -t KERNEL_PATHS < <(grubcfg_kernels "$BOOT_MENU")
  KERNELS_JSON=""
  for k in "${KERNEL_PATHS[@]}"; do
    k=${k#(*)}
    [ -e "$boot_root$k" ] || log "warning: menu entry kernel $k does not exist in the image"
    v=$(kernel_version_of "$k")
    [[ $seen == *" $v "* ]] && continue
    seen="$seen$v "
    KERNELS_JSON="$KERNELS_JSON${KERNELS_JSON:+,}$(json_str "$v")"
  done
  DEFAULT_KERNEL=$(grubcfg_default_kernel "$BOOT_MENU"); DEFAULT_KERNEL=${DEFAULT_KERNEL#(*)}
  DEFAULT_VERSION=$(kernel_version_of "$DEFAULT_KERNEL")
  log "boot/grub/${BOOT_MENU##*/} ($BOOT_MENU_SOURCE): ${#KERNEL_PATHS[@]} entries, default $DEFAULT_KERNEL"
}

# A disk converted with a blocklist boots only while core.img and the modules beside it stay as they
# are. The image's GRUB package (grub-pc on Debian/Ubuntu, whose postinst runs grub-install onto the
# devices debconf names; grub2-tools on RPM) would rewrite them there: old versions delete the
# modules and then fail on the immutable core.img, leaving "grub rescue>". So:
#  - grub-install is replaced by a wrapper that skips a device which is itself an ext filesystem
#    (this disk: GRUB can only use blocklists there) with a message on stderr and exit 0, because
#    a failing grub-install fails the package's configure (and every later apt run) although the
#    disk still boots as converted; any other device goes to the real tool. Debian/Ubuntu: a local
#    dpkg-divert of /usr/sbin/grub-install (the package's file becomes grub-install.distrib, every
#    upgrade too); RPM (no diversions): /usr/local/sbin/grub2-install, which no package owns;
#  - debconf: grub-pc/install_devices empty, install_devices_empty true (else a non-interactive
#    grub-pc configure fails on a disk that has a core.img);
#  - update-grub (grub-mkconfig) writes grub.cfg from /etc/grub.d: a first script there puts the
#    stub that reads the image's own menu ahead of what it generates, which is never reached.
GRUB_INSTALL_GUARD=""
guard_guest_grub() {
  local root=$1 name=$2 fsmod=$3 tool=/usr/local/sbin/grub2-install real=/usr/sbin/grub2-install
  mkdir -p "$root/etc/grub.d" "$root/usr/local/sbin"
  { printf "#!/bin/sh\n# ami-factory pv2hvm.sh: grub.cfg starts with the stub that reads the image's own menu.\ncat <<'EOF'\n"
    grubcfg_legacy_stub "$name" "$fsmod"; printf 'EOF\n'; } >"$root/etc/grub.d/00_ami-factory-legacy-menu"
  chmod 0755 "$root/etc/grub.d/00_ami-factory-legacy-menu"
  GRUB_INSTALL_GUARD=local-wrapper
  if [ -x "$root/usr/bin/dpkg-divert" ]; then
    tool=/usr/sbin/grub-install real=/usr/sbin/grub-install.distrib GRUB_INSTALL_GUARD=dpkg-divert
    in_sandbox "$root" dpkg-divert --local --rename --divert "$real" --add "$tool" >&2 || die "dpkg-divert of grub-install in the image failed"
    if [ -x "$root/usr/bin/debconf-set-selections" ]; then
      printf 'grub-pc grub-pc/install_devices multiselect \ngrub-pc grub-pc/install_devices_empty boolean true\n' |
        in_sandbox "$root" debconf-set-selections >&2 || die "debconf-set-selections in the image failed"
    fi
  fi
  cat >"$root$tool.tmp" <<EOF
#!/bin/sh
# ami-factory pv2hvm.sh: this disk is an ext filesystem from sector 0, booted by GRUB's boot sector
# loading /boot/grub/i386-pc/core.img by its sectors. ${tool##*/} onto it would break that, so it is
# skipped (exit 0: package scripts go on; the disk boots as converted). Other devices: $real.
for a in "\$@"; do
  case \$a in -*) continue ;; esac
  [ -b "\$a" ] || continue
  case \$(blkid -p -o value -s TYPE "\$a" 2>/dev/null) in
    ext2 | ext3 | ext4) echo "ami-factory: not running ${tool##*/} on \$a: GRUB boots it from a blocklisted, immutable core.img (see $tool)" >&2; exit 0 ;;
  esac
done
exec $real "\$@"
EOF
  chmod 0755 "$root$tool.tmp"; mv -f "$root$tool.tmp" "$root$tool"
  log "the image's own GRUB cannot undo this boot: $tool skips this disk ($GRUB_INSTALL_GUARD), /etc/grub.d/00_ami-factory-legacy-menu keeps grub.cfg reading ${name}"
}

hvm_fstab_drivers() {
  local root=$1 boot_root=$2 uuid=$3 boot_uuid=$4 nitro=$5 initrd_rel
  fix_fstab "$root" "$uuid" "$boot_uuid"
  initrd_rel=$(grubcfg_initrd_for "$BOOT_MENU" "$DEFAULT_KERNEL"); initrd_rel=${initrd_rel#(*)}
  driver_report "$root" "$DEFAULT_VERSION" "${initrd_rel:+$boot_root$initrd_rel}"
  INITRAMFS_UPDATED=""
  if [ "$nitro" = 1 ] && { { [ "$NVME_DRIVER" = 1 ] && [ "$NVME_IN_INITRAMFS" = 0 ]; } || { [ "$ENA_DRIVER" = 1 ] && [ "$ENA_IN_INITRAMFS" = 0 ]; }; }; then
    log "kernel $DEFAULT_VERSION has nvme/ena modules its initramfs lacks: adding them with the image's own tool"
    chroot_mounts "$root"
    initramfs_drivers "$root" "$DEFAULT_VERSION"
    chroot_umounts "$root"
    [ "$INITRAMFS_TOOL" = none ] || INITRAMFS_UPDATED=$INITRAMFS_TOOL
    driver_report "$root" "$DEFAULT_VERSION" "${initrd_rel:+$boot_root$initrd_rel}"
  elif [ "$nitro" = 0 ]; then
    log "not touching the initramfs (--no-nitro)"
  fi
  NITRO_READY=0
  [ "$NVME_IN_INITRAMFS" = 1 ] && [ "$ENA_DRIVER" = 1 ] && NITRO_READY=1
  log "kernel $DEFAULT_VERSION: ENA driver $ENA_DRIVER (initramfs $ENA_IN_INITRAMFS), NVMe driver $NVME_DRIVER (initramfs $NVME_IN_INITRAMFS), ixgbevf $IXGBEVF_DRIVER"
  [ "$NITRO_READY" = 1 ] || log "warning: not Nitro-ready (the root needs NVMe at boot and the network ENA): the image runs only on Xen HVM instance types (t2, m4, c4, r4, …)"
}
