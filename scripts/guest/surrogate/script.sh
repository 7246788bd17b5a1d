# shellcheck shell=bash
# surrogate.sh recipe "script": the user's own script fills the mounted root.
#
#   --user-script-b64 B64
#
# B64 is a base64-encoded script (a shebang line picks its interpreter; bash without one). It runs
# as root on the worker, in a directory of its own, with TARGET_DEVICE (the whole disk),
# TARGET_ROOT (the mounted root filesystem; the ESP is mounted at $TARGET_ROOT/boot/efi for uefi),
# TARGET_ARCH and TARGET_BOOT_MODE in its environment; its output goes to the progress log. It
# must leave a system with a kernel in $TARGET_ROOT/boot. surrogate.sh then writes /etc/fstab,
# GRUB, the initramfs drivers, and sanitizes. The debian and el recipes also accept
# --user-script-b64: there the script runs after the OS is installed, before those steps.

# user_script_run B64 DISK ROOT ARCH MODE
user_script_run() {
  local b64=$1 disk=$2 root=$3 arch=$4 mode=$5 dir rc=0
  dir=$(mktemp -d /tmp/surrogate.user.XXXXXX)
  on_exit "rm -rf --one-file-system '$dir'"
  base64 -d <<<"$b64" >"$dir/user-script" 2>/dev/null || die "--user-script-b64 is not valid base64"
  [ -s "$dir/user-script" ] || die "--user-script-b64 decodes to an empty script"
  chmod 0700 "$dir/user-script"
  log "running the user script ($(wc -c <"$dir/user-script") bytes)"
  if head -c2 "$dir/user-script" | grep -q '^#!'; then
    (cd "$dir" && TARGET_DEVICE=$disk TARGET_ROOT=$root TARGET_ARCH=$arch TARGET_BOOT_MODE=$mode "$dir/user-script") >&2 || rc=$?
  else
    (cd "$dir" && TARGET_DEVICE=$disk TARGET_ROOT=$root TARGET_ARCH=$arch TARGET_BOOT_MODE=$mode bash "$dir/user-script") >&2 || rc=$?
  fi
  [ "$rc" = 0 ] || die "the user script exited $rc"
  log "user script done"
}
