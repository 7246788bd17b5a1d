#!/usr/bin/env bash
# Runs a command on the toolchain scripts/setup.sh chose (.local/toolchain.env): its Node (22/24)
# and the Pulumi CLI first on PATH, so the command, its children and the engine's Node processes
# all run on it. Used by the npm scripts: `bash scripts/local/with-toolchain.sh mocha …`.
set -euo pipefail
env_file="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.local/toolchain.env"
[ -f "$env_file" ] || { printf '%s is missing: run npm run setup (npm start and npm test do)\n' "$env_file" >&2; exit 1; }
node_bin=$(sed -n 's/^NODE_BIN_DIR=//p' "$env_file")
pulumi_bin=$(sed -n 's/^PULUMI_BIN_DIR=//p' "$env_file")
export PATH="$node_bin:$pulumi_bin:$PATH"
exec "$@"
