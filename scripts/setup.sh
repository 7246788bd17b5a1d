#!/usr/bin/env bash
# Idempotent set-up for local runs and tests: node modules, the Pulumi engine of the pinned
# version, and a moto server; with --guest also the tools of the guest scripts' boot test (apt).
# Quiet when there is nothing to do; says what it does on long steps.
# Writes .local/toolchain.env, which the local runner and the test harness read.
set -euo pipefail

guest=false
for arg in "$@"; do
  case $arg in
    --guest) guest=true ;;
    *) printf 'usage: setup.sh [--guest]\n' >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${AMI_FACTORY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ami-factory}
say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

cd "$repo"
mkdir -p .local "$cache"

# --- node modules -------------------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch node_modules
fi

# The one Pulumi version: the exact @pulumi/pulumi pinned in package.json.
pulumi_version=$(node -p 'require("./package.json").dependencies["@pulumi/pulumi"]')
[[ $pulumi_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
  die "package.json must pin @pulumi/pulumi to an exact version (found '$pulumi_version')"
pulumi_bin="$cache/pulumi/v$pulumi_version/bin"

version_of() { "$1" version 2>/dev/null | head -n1 | sed 's/^v//'; }

# --- the Pulumi CLI ------------------------------------------------------------------------------
build_pulumi_cli() {
  command -v go >/dev/null ||
    die "no pulumi v$pulumi_version on PATH and no Go to build it. Install the CLI of that exact version
       (https://www.pulumi.com/docs/install/versions/, e.g. 'curl -fsSL https://get.pulumi.com | sh -s -- --version $pulumi_version')
       or install Go >= 1.25 and run this script again."
  local work="$cache/pulumi/v$pulumi_version/build"
  mkdir -p "$work" "$pulumi_bin"
  say "building pulumi v$pulumi_version from the Go module proxy (one time, a few minutes)"
  (
    cd "$work"
    # The checksum database is not reachable from every network; the module proxy is the trust root then.
    export GOSUMDB=${GOSUMDB:-off} GOFLAGS=-mod=mod
    cat >go.mod <<EOF
module amifactory/pulumibuild

go 1.25
EOF
    printf '//go:build tools\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >tools.go
    go mod edit -require="github.com/pulumi/pulumi/pkg/v3@v$pulumi_version" \
                -require="github.com/pulumi/pulumi/sdk/v3@v$pulumi_version"
    # pkg/v3 carries replace lines that only a main module may apply: copy the ones that point at
    # other module versions (not the ../sdk path inside Pulumi's own repository).
    local pkg_mod
    pkg_mod=$(go mod download -json "github.com/pulumi/pulumi/pkg/v3@v$pulumi_version" | node -e '
      let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s).GoMod || ""));')
    [ -f "$pkg_mod" ] || die "could not download github.com/pulumi/pulumi/pkg/v3@v$pulumi_version from the Go module proxy"
    awk '/^replace[ \t]*\(/{inblock=1; next} inblock && /^\)/{inblock=0; next}
         /^replace /{sub(/^replace[ \t]+/, ""); print; next} inblock{print}' "$pkg_mod" |
      grep -v '=> \.' | while read -r old _ new newver; do
        [ -n "${newver:-}" ] && go mod edit -replace="$old=$new@$newver"
      done
    go mod tidy >build.log 2>&1 || { tail -20 build.log >&2; die "go mod tidy failed (log: $work/build.log)"; }
    go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$pulumi_version" \
      -o "$pulumi_bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >>build.log 2>&1 ||
      { tail -20 build.log >&2; die "go build of the pulumi CLI failed (log: $work/build.log)"; }
  )
}

# pulumi-language-nodejs has no version tags: the pseudo-version of the release commit is the one to
# use, and some module proxies refuse it. The local runner and the tests do not need it (they serve
# the program from the Node SDK's own language runtime through the automation API), so its absence
# is reported, not fatal. Tried once per version; delete the .unavailable marker to try again.
build_language_host() {
  local marker="$pulumi_bin/.language-host-unavailable"
  [ -x "$pulumi_bin/pulumi-language-nodejs" ] || [ -f "$marker" ] && return 0
  command -v go >/dev/null || return 0
  local work="$cache/pulumi/v$pulumi_version/build-langhost"
  mkdir -p "$work"
  say "trying to build pulumi-language-nodejs for v$pulumi_version"
  if (
    cd "$work"
    export GOSUMDB=${GOSUMDB:-off} GOFLAGS=-mod=mod
    printf 'module amifactory/langhostbuild\n\ngo 1.25\n' >go.mod
    printf '//go:build tools\npackage tools\n\nimport _ "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"\n' >tools.go
    go mod edit -require="github.com/pulumi/pulumi/pkg/v3@v$pulumi_version" \
                -require="github.com/pulumi/pulumi/sdk/v3@v$pulumi_version"
    # The release commit is the one the release tag points at; the proxy reports it as the tag's
    # Origin.Hash (sdk/v3 first, else pkg/v3) and resolves a hash query to the pseudo-version.
    field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const v=j.Error?"":process.argv[1].split(".").reduce((o,k)=>o&&o[k],j);console.log(v||"")})' "$1"; }
    local commit="" m
    for m in sdk pkg; do
      [ -n "$commit" ] || commit=$(go mod download -json "github.com/pulumi/pulumi/$m/v3@v$pulumi_version" 2>/dev/null | field Origin.Hash || true)
    done
    [ -n "$commit" ] || exit 1
    local pseudo
    pseudo=$(go mod download -json "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$commit" 2>/dev/null | field Version) || exit 1
    [ -n "$pseudo" ] || exit 1
    go mod edit -require="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$pseudo"
    go mod tidy >build.log 2>&1 &&
      go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$pulumi_version" \
        -o "$pulumi_bin/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 >>build.log 2>&1
  ); then
    say "built pulumi-language-nodejs"
  else
    date -u +%FT%TZ >"$marker"
    say "note: pulumi-language-nodejs v$pulumi_version is not available from the Go module proxy here;"
    say "      'npm start' and 'npm test' do not need it. For plain 'pulumi up' install the official CLI."
  fi
}

cli=""
if command -v pulumi >/dev/null && [ "$(version_of pulumi)" = "$pulumi_version" ]; then
  cli=$(command -v pulumi)
elif [ -x "$pulumi_bin/pulumi" ] && [ "$(version_of "$pulumi_bin/pulumi")" = "$pulumi_version" ]; then
  cli="$pulumi_bin/pulumi"
else
  build_pulumi_cli
  [ "$(version_of "$pulumi_bin/pulumi")" = "$pulumi_version" ] || die "the built pulumi does not report v$pulumi_version"
  cli="$pulumi_bin/pulumi"
  say "pulumi v$pulumi_version ready at $cli"
fi
if [ "$cli" = "$pulumi_bin/pulumi" ] && ! command -v pulumi-language-nodejs >/dev/null; then
  build_language_host
fi

# The dynamic-provider plugin ships inside @pulumi/pulumi; the engine looks for it by this exact
# name next to the CLI, then on PATH.
plugin_src=node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs
[ -f "$plugin_src" ] || die "$plugin_src is missing: run 'npm ci'"
plugin_dir=$(dirname "$(readlink -f "$cli")")
if [ ! -w "$plugin_dir" ]; then plugin_dir="$pulumi_bin"; mkdir -p "$plugin_dir"; fi
if ! cmp -s "$plugin_src" "$plugin_dir/pulumi-resource-pulumi-nodejs"; then
  install -m 0755 "$plugin_src" "$plugin_dir/pulumi-resource-pulumi-nodejs"
fi

# --- moto (the launcher scripts/emulator/moto_server.py runs it with this python) ----------------------------------------------------------------------------------------
moto_python=""
# The emulator's patches need moto >= 5.1.17 (< 6): older ones read EC2 parameters differently.
moto_ok='import moto.server, werkzeug, sys; v = tuple(int(x) for x in moto.__version__.split(".")[:3]); sys.exit(0 if (5, 1, 17) <= v < (6,) else 1)'
if command -v python3 >/dev/null && python3 -c "$moto_ok" 2>/dev/null; then
  moto_python=$(command -v python3)
else
  venv="$cache/moto-venv"
  if ! "$venv/bin/python" -c "$moto_ok" 2>/dev/null; then
    say "installing moto[server] into $venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.1.17,<6' pytest >&2
  fi
  moto_python="$venv/bin/python"
fi

# --- the guest scripts' boot test: qemu, debootstrap, grub, e2fsprogs (Debian packages) ---------
if $guest; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/install-guest-deps.sh
  elif ! command -v qemu-system-x86_64 >/dev/null || ! command -v debootstrap >/dev/null; then
    die "the boot test needs root and Debian packages: run 'sudo bash scripts/install-guest-deps.sh' once"
  fi
fi

cat >.local/toolchain.env <<EOF
PULUMI_VERSION=$pulumi_version
PULUMI_CLI=$cli
PULUMI_BIN_DIR=$(dirname "$cli")
PULUMI_PLUGIN_DIR=$plugin_dir
MOTO_PYTHON=$moto_python
EOF
