#!/usr/bin/env bash
# Runs a command on this machine as if some commands were not installed: a worker without them
# (Amazon Linux 2023 has no debootstrap, dpkg or apt-get). Needs root (mount namespaces, overlayfs).
#
#   hide-commands.sh NAME[,NAME...] -- COMMAND [ARG...]
#
# In a mount namespace of its own, each folder of PATH (and /usr/sbin, /usr/bin, /sbin, /bin) that
# holds one of the NAMEs gets an overlay with a whiteout for it: the file is gone for COMMAND and
# its children, by any path, and nothing changes for the rest of the machine. A chroot into another
# filesystem still finds that filesystem's own copies. Mounts COMMAND makes stay in the namespace
# (they go when it ends). Exit status: COMMAND's.
set -euo pipefail
names=${1:?usage: hide-commands.sh NAME[,NAME...] -- COMMAND [ARG...]}
shift
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { printf 'hide-commands: no command\n' >&2; exit 2; }
[ "$(id -u)" = 0 ] || { printf 'hide-commands: needs root (mount namespace, overlayfs)\n' >&2; exit 2; }

if [ -z "${HIDE_COMMANDS_INSIDE:-}" ]; then
  scratch=$(mktemp -d /tmp/hide-commands.XXXXXX)
  rc=0
  HIDE_COMMANDS_INSIDE=$scratch unshare --mount --propagation private "$0" "$names" -- "$@" || rc=$?
  rm -rf "$scratch"
  exit "$rc"
fi

# Inside the namespace: one overlay per real folder holding a hidden name.
scratch=$HIDE_COMMANDS_INSIDE
unset HIDE_COMMANDS_INSIDE
IFS=, read -ra hide <<<"$names"
declare -A done_dirs=()
n=0
IFS=: read -ra dirs <<<"$PATH:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  real=$(readlink -f "$d")
  [ -z "${done_dirs[$real]:-}" ] || continue
  done_dirs[$real]=1
  wh=()
  for h in "${hide[@]}"; do [ -e "$real/$h" ] || [ -L "$real/$h" ] && wh+=("$h"); done
  [ ${#wh[@]} -gt 0 ] || continue
  n=$((n + 1))
  mkdir -p "$scratch/$n/upper" "$scratch/$n/work"
  for h in "${wh[@]}"; do mknod "$scratch/$n/upper/$h" c 0 0; done
  mount -t overlay "hide-commands" -o "lowerdir=$real,upperdir=$scratch/$n/upper,workdir=$scratch/$n/work" "$real"
done
hash -r
for h in "${hide[@]}"; do
  ! command -v "$h" >/dev/null || { printf 'hide-commands: %s is still found (%s)\n' "$h" "$(command -v "$h")" >&2; exit 2; }
done
exec "$@"
