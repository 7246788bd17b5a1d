#!/usr/bin/env bash
# Prints a guest script with the library files it sources inlined, as one self-contained script to
# send through SSM (or anywhere the lib/ folder is not beside it):
#
#   scripts/guest/lib/bundle.sh scripts/guest/pv2hvm.sh > pv2hvm.bundled.sh
#
# A line   . "$SOMETHING/file.sh" # @bundle lib/file.sh   is replaced by lib/file.sh (path relative
# to the script's folder) without its shebang and without its trailing command-line part (from the
# line `if [[ ${BASH_SOURCE[0]} == "$0" ]]; then` on). Everything else is copied as is. The
# output is deterministic: the same inputs give the same bytes (and hash).
set -euo pipefail
script=${1:?usage: bundle.sh GUEST_SCRIPT}
dir=$(cd "$(dirname "$script")" && pwd)
while IFS= read -r line || [ -n "$line" ]; do
  if [[ $line =~ \#\ @bundle\ ([A-Za-z0-9_./-]+)[[:space:]]*$ ]]; then
    lib=$dir/${BASH_REMATCH[1]}
    [ -f "$lib" ] || { printf 'bundle: %s not found\n' "$lib" >&2; exit 1; }
    printf '# ---- begin %s ----\n' "${BASH_REMATCH[1]}"
    awk 'NR == 1 && /^#!/ { next }
         /^if \[\[ \$\{BASH_SOURCE\[0\]\} == "\$0" \]\]; then/ { exit }
         { print }' "$lib"
    printf '# ---- end %s ----\n' "${BASH_REMATCH[1]}"
  else
    printf '%s\n' "$line"
  fi
done <"$script"
