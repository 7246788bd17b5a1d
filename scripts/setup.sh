#!/usr/bin/env bash
# Idempotent set-up for local runs and tests: Node 22/24 (Node 24 LTS into the cache when the
# machine's node is another major), node modules, the Pulumi CLI of the pinned version and a
# pulumi-language-nodejs, actionlint, and a moto server; with --guest also the tools of the guest
# scripts' boot test (apt); with --twin also the emulator twin's worker disk (a small Debian built
# once into the cache, rebuilt when its inputs change: scripts/emulator/twin_worker/).
# Versions: package.json "config" (pulumiCli, node, actionlint).
# Quiet when there is nothing to do; says what it does on long steps.
# Writes .local/toolchain.env, which scripts/local/with-toolchain.sh, the local runner and the
# test harness read.
set -euo pipefail

guest=false
twin=false
for arg in "$@"; do
  case $arg in
    --guest) guest=true ;;
    --twin) twin=true ;;
    *) printf 'usage: setup.sh [--guest] [--twin]\n' >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${AMI_FACTORY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ami-factory}
say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

cd "$repo"
mkdir -p .local "$cache"
pin() { node -p "require('./package.json').config[process.argv[1]] || ''" "$1"; }
export GOSUMDB=${GOSUMDB:-off} # the checksum database is not reachable from every network; the module proxy is the trust root then

# --- Node ---------------------------------------------------------------------------------------
# The program, the tests and the engine's Node processes (language host, dynamic-provider plugin)
# run on Node 22 or 24 (package.json engines). A machine's node of another major is left alone:
# Node 24 LTS comes from the npm registry's node-linux-<arch> package (the official binary inside)
# into the cache, and .local/toolchain.env puts it first on PATH for everything started from here.
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed (any version; Node 24 is installed from npm)"
node_version=$(pin node)
case $(node -p 'process.versions.node.split(".")[0]') in
  22|24) node_bin=$(dirname "$(command -v node)") ;;
  *)
    node_bin="$cache/node/v$node_version/bin"
    if [ "$("$node_bin/node" --version 2>/dev/null)" != "v$node_version" ]; then
      case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) die "no node-linux package for $(uname -m)" ;; esac
      say "node $(node --version) is not 22 or 24: installing node v$node_version (npm package node-linux-$arch) into $cache/node"
      mkdir -p "$cache/node" && tmp=$(mktemp -d "$cache/node/.install.XXXXXX")
      (cd "$tmp" && npm pack --silent "node-linux-$arch@$node_version" >/dev/null) || die "npm pack node-linux-$arch@$node_version failed"
      # Unpacked beside, then moved in whole: a concurrent run never sees half a node.
      mkdir -p "$tmp/unpacked"
      tar -xzf "$tmp"/node-linux-*.tgz -C "$tmp/unpacked" --strip-components=1 package/bin/node package/LICENSE
      rm -rf "$cache/node/v$node_version" && mv "$tmp/unpacked" "$cache/node/v$node_version"
      rm -rf "$tmp"
      [ "$("$node_bin/node" --version)" = "v$node_version" ] || die "the installed node does not report v$node_version"
    fi
    ;;
esac
export PATH="$node_bin:$PATH"

# --- node modules -------------------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch node_modules
fi

# The providers compiled to JavaScript for the provider process (providers/core/runtime.js would
# otherwise do it on the first provider start of each source change).
node -e 'require("./providers/core/runtime.js").compiledProviders(process.cwd())' || say "could not pre-compile the providers: the provider process will"

# The example consumer is its own project (its own @pulumi/aws); its test loads it under mocks.
if [ ! -d examples/consumer/node_modules ] || [ examples/consumer/package-lock.json -nt examples/consumer/node_modules ]; then
  say "installing examples/consumer's node modules (npm ci)"
  (cd examples/consumer && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch examples/consumer/node_modules
fi

# The Pulumi CLI version: package.json config.pulumiCli, a release the Go module proxy serves; the
# SDK (@pulumi/pulumi) is pinned to the same or the nearest release on npm (README: Toolchain).
pulumi_version=$(pin pulumiCli)
[[ $pulumi_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
  die "package.json must pin config.pulumiCli to an exact version (found '$pulumi_version')"
pulumi_bin="$cache/pulumi/v$pulumi_version/bin"

version_of() { "$1" version 2>/dev/null | head -n1 | sed 's/^v//'; }

# --- the Pulumi CLI ------------------------------------------------------------------------------
# go_build_main WORKDIR MODULE VERSION PACKAGE OUTPUT: builds PACKAGE of MODULE@VERSION from the Go
# module proxy in a throw-away main module. Pulumi's modules carry replace lines that only a main
# module may apply (so `go install pkg@version` refuses them): the ones that point at other module
# versions are copied (not the ../sdk paths inside Pulumi's own repository).
go_build_main() {
  local work=$1 module=$2 version=$3 package=$4 output=$5
  mkdir -p "$work" "$(dirname "$output")"
  (
    cd "$work"
    export GOFLAGS=-mod=mod
    printf 'module amifactory/build\n\ngo 1.25\n' >go.mod
    printf '//go:build tools\npackage tools\n\nimport _ "%s"\n' "$package" >tools.go
    go mod edit -require="$module@v$version"
    local mod_file
    mod_file=$(go mod download -json "$module@v$version" | node -e '
      let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s).GoMod || ""));')
    [ -f "$mod_file" ] || die "could not download $module@v$version from the Go module proxy"
    awk '/^replace[ \t]*\(/{inblock=1; next} inblock && /^\)/{inblock=0; next}
         /^replace /{sub(/^replace[ \t]+/, ""); print; next} inblock{print}' "$mod_file" |
      grep -v '=> \.' | while read -r old _ new newver; do
        [ -n "${newver:-}" ] && go mod edit -replace="$old=$new@$newver"
      done
    go mod tidy >build.log 2>&1 || { tail -20 build.log >&2; die "go mod tidy for $package failed (log: $work/build.log)"; }
    go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
      -o "$output" "$package" >>build.log 2>&1 ||
      { tail -20 build.log >&2; die "go build of $package failed (log: $work/build.log)"; }
  )
}

build_pulumi_cli() {
  command -v go >/dev/null ||
    die "no pulumi v$pulumi_version on PATH and no Go to build it. Install the CLI of that exact version
       (https://www.pulumi.com/docs/install/versions/, e.g. 'curl -fsSL https://get.pulumi.com | sh -s -- --version $pulumi_version')
       or install Go >= 1.25 and run this script again."
  say "building pulumi v$pulumi_version from the Go module proxy (one time, a few minutes)"
  go_build_main "$cache/pulumi/v$pulumi_version/build" github.com/pulumi/pulumi/pkg/v3 "$pulumi_version" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$pulumi_bin/pulumi"
}

# --- pulumi-language-nodejs ----------------------------------------------------------------------
# The plain path (`pulumi up` through Pulumi.yaml) needs the Node.js language host. Of the pinned
# version if the module proxy serves it: it has no version tags, so that is the pseudo-version of the
# release commit, which some proxies refuse (tried once per version; delete the .unavailable marker
# to try again). Else the newest one the proxy serves: package nodejs/cmd/pulumi-language-nodejs
# inside github.com/pulumi/pulumi/sdk/v3, up to v3.68.0 (config.languageHostFallback); it only
# starts node on the SDK's own runner, so it drives a current CLI and SDK (README: Toolchain).
# $pulumi_bin/.language-host says which one is there.
build_pinned_language_host() {
  local marker="$pulumi_bin/.language-host-unavailable"
  [ -f "$marker" ] && return 1
  local work="$cache/pulumi/v$pulumi_version/build-langhost"
  mkdir -p "$work"
  say "trying to build pulumi-language-nodejs v$pulumi_version"
  if (
    cd "$work"
    export GOFLAGS=-mod=mod
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
    printf 'v%s (the pinned version)\n' "$pulumi_version" >"$pulumi_bin/.language-host"
  else
    date -u +%FT%TZ >"$marker"
    say "pulumi-language-nodejs v$pulumi_version is not available from the Go module proxy here"
    return 1
  fi
}

build_fallback_language_host() {
  local v dir
  v=$(pin languageHostFallback)
  dir="$cache/pulumi-language-nodejs/v$v/bin"
  if [ ! -x "$dir/pulumi-language-nodejs" ]; then
    say "building pulumi-language-nodejs v$v (github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs) from the Go module proxy"
    go_build_main "$cache/pulumi-language-nodejs/v$v/build" github.com/pulumi/pulumi/sdk/v3 "$v" \
      github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs "$dir/pulumi-language-nodejs"
  fi
  install -m 0755 "$dir/pulumi-language-nodejs" "$pulumi_bin/pulumi-language-nodejs"
  printf 'v%s (github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs: the newest the Go module proxy serves; the pinned one is refused)\n' "$v" >"$pulumi_bin/.language-host"
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
# Next to the CLI, where the engine looks first; else a user's own one on PATH.
if [ ! -x "$pulumi_bin/pulumi-language-nodejs" ] && [ "$cli" = "$pulumi_bin/pulumi" ]; then
  langhost_path=$(command -v pulumi-language-nodejs || true)
  if [ -n "$langhost_path" ]; then
    install -m 0755 "$langhost_path" "$pulumi_bin/pulumi-language-nodejs"
    printf '%s (from PATH: %s)\n' "$(version_of "$langhost_path")" "$langhost_path" >"$pulumi_bin/.language-host"
  elif command -v go >/dev/null; then
    build_pinned_language_host || build_fallback_language_host
  fi
fi
if [ -x "$pulumi_bin/pulumi-language-nodejs" ]; then
  language_host="$pulumi_bin/pulumi-language-nodejs"
  language_host_note=$(cat "$pulumi_bin/.language-host" 2>/dev/null || echo unknown)
else
  language_host=$(command -v pulumi-language-nodejs || true)
  language_host_note="from PATH"
  [ -n "$language_host" ] || die "no pulumi-language-nodejs: install the official Pulumi CLI v$pulumi_version, or Go to build one"
fi
[ -f .local/language-host.said ] && [ "$(cat .local/language-host.said)" = "$language_host $language_host_note" ] ||
  say "pulumi-language-nodejs: $language_host_note"
printf '%s %s' "$language_host" "$language_host_note" >.local/language-host.said

# --- actionlint (checks .github/workflows in npm test) ----------------------------------------------
actionlint_version=$(pin actionlint)
actionlint="$cache/actionlint/v$actionlint_version/bin/actionlint"
if [ ! -x "$actionlint" ]; then
  command -v go >/dev/null || die "Go is needed to build actionlint v$actionlint_version (or put it at $actionlint)"
  say "building actionlint v$actionlint_version from the Go module proxy"
  GOBIN=$(dirname "$actionlint") go install "github.com/rhysd/actionlint/cmd/actionlint@v$actionlint_version" >&2
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
# The twin's worker disk is built with the same tools.
if $guest || $twin; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/install-guest-deps.sh
  elif ! command -v qemu-system-x86_64 >/dev/null || ! command -v debootstrap >/dev/null; then
    die "the boot test needs root and Debian packages: run 'sudo bash scripts/install-guest-deps.sh' once"
  fi
fi

# --- the twin's worker disk (AMI_FACTORY_EMULATOR=twin boots it for worker instances) -------------
# Built here, never at `pulumi up`: a few minutes the first time (debootstrap's root is shared with
# the boot test's source images), then nothing until its inputs change.
# Then one boot of it whose state is saved next to it: worker VMs resume from that in seconds
# instead of booting (scripts/emulator/ami_emulator/twin/worker_resume.py; 1-3 minutes, once per
# disk and qemu).
if $twin; then
  bash scripts/emulator/twin_worker/build-worker-disk.sh build >/dev/null
  (cd scripts/emulator && "$moto_python" -m ami_emulator.twin.worker_resume build >/dev/null)
fi

cat >.local/toolchain.env <<EOF
NODE_BIN_DIR=$node_bin
PULUMI_VERSION=$pulumi_version
PULUMI_CLI=$cli
PULUMI_BIN_DIR=$(dirname "$cli")
PULUMI_PLUGIN_DIR=$plugin_dir
MOTO_PYTHON=$moto_python
LANGUAGE_HOST=$language_host
ACTIONLINT=$actionlint
EOF
