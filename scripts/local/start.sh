#!/usr/bin/env bash
# npm start [-- --recorded | --twin] [--keep]: the set-up the mode needs, then scripts/local-up.ts
# (which decides the mode the same way and explains it). The twin (the default) needs the guest
# tools and the twin's worker disk: installed and built once, as root, then cached.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
say() { printf '[npm start] %s\n' "$*"; }

mode=twin
[ "${AMI_FACTORY_EMULATOR:-}" = recorded ] && mode=recorded
for a in "$@"; do
  case $a in --recorded) mode=recorded ;; --twin) mode=twin ;; esac
done

if [ "$mode" = twin ]; then
  if ! command -v qemu-system-x86_64 >/dev/null || ! bash scripts/emulator/twin_worker/build-worker-disk.sh path >/dev/null 2>&1; then
    say "NEEDS ROOT (once, then cached): the Debian packages qemu, debootstrap, grub, e2fsprogs (scripts/install-guest-deps.sh) and the twin's worker disk (a chroot: scripts/emulator/twin_worker/build-worker-disk.sh), by 'scripts/setup.sh --twin'"
  fi
  bash scripts/setup.sh --twin
else
  bash scripts/setup.sh
fi
exec bash scripts/local/with-toolchain.sh node -r ts-node/register scripts/local-up.ts "$@"
