#!/usr/bin/env bash
# shellcheck shell=bash
# debootstrap on any worker. Sourced after common.sh and tools.sh; also a command:
#
#   debootstrap.sh fetch MIRROR SUITE DARCH [KEYRING_SHA256]   -> prints the command line to run
#                                                                  (the fetched copy stays in /tmp)
#
# debootstrap_ensure MIRROR SUITE DARCH [KEYRING_SHA256] sets DEBOOTSTRAP (the command to run, an
# array) and DEBOOTSTRAP_ORIGIN (one line for the log):
#   1. the worker's own debootstrap, when it has one (with --force-check-gpg: a worker without the
#      archive keyring fails instead of installing unchecked packages);
#   2. else the worker's package manager, when it has a package for it (apt-get);
#   3. else (Amazon Linux 2023, RHEL: no package) debootstrap is fetched from MIRROR itself and run
#      from a temporary folder with DEBOOTSTRAP_DIR (it is shell and data files, architecture
#      "all"; it needs wget, ar, gpgv, perl, xz on the worker, which tools.sh installs). The chain
#      of trust, nothing taken on faith:
#        a. debian-archive-keyring .deb: located through the suite's Packages file, accepted only
#           when its SHA256 is KEYRING_SHA256 (default: the pinned bookworm one below; the mirror
#           cannot vouch for its own keyring, so the hash must come from outside);
#        b. dists/SUITE/Release: its signature (Release.gpg) checked with gpgv against that keyring,
#           and its Codename or Suite must be SUITE;
#        c. the Packages file: its SHA256 must be the one the signed Release lists;
#        d. the debootstrap .deb: its SHA256 must be the one that Packages file lists;
#        e. debootstrap itself then runs with --keyring=<that keyring> --force-check-gpg (and
#           --extractor=ar: no dpkg-deb on such workers), so every package it installs is checked.
#      Any mismatch stops the build with what was expected and what was found. Debian mirrors only
#      (Ubuntu's keyring is another package).
#
# The pin: debian-archive-keyring_2023.3+deb12u2_all.deb, the package bookworm's Packages lists
# (SHA256 read from bookworm's Packages after checking its Release with a Debian 12 system's own
# keyring). When bookworm updates the package, a run fails naming the new version and hash: check
# that hash independently (a Debian system's /var/cache/apt/archives, snapshot.debian.org,
# packages.debian.org) and pass it as KEYRING_SHA256 (surrogate.sh --keyring-sha256), or update the
# pin here.
DEBIAN_KEYRING_PIN_VERSION=2023.3+deb12u2
DEBIAN_KEYRING_PIN_SHA256=f699e2f88dca05212f2a452b58475f2993cb6993dfbafb1d0205a3291eb8b4b8
DEBOOTSTRAP=()

# deb_download URL FILE: curl (http, https, file) or wget (http, https), failing on HTTP errors.
deb_download() {
  local url=$1 out=$2
  if command -v curl >/dev/null; then
    curl -fsSL --retry 3 --retry-delay 2 -o "$out" "$url"
  else
    case $url in
      file://*) cp -f -- "${url#file://}" "$out" ;;
      *) wget -q --tries=3 -O "$out" "$url" ;;
    esac
  fi
}

# deb_stanza_field FILE PACKAGE FIELD [SHA256]: FIELD of PACKAGE's stanza in a Packages file (the
# stanza whose SHA256 is the 4th argument when one is, else the first).
deb_stanza_field() {
  awk -v pkg="$2" -v field="$3" -v want="${4:-}" '
    BEGIN { RS = ""; FS = "\n" }
    { name = ""; value = ""; sum = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^Package: /) name = substr($i, 10)
        if ($i ~ ("^" field ": ")) value = substr($i, length(field) + 3)
        if ($i ~ /^SHA256: /) sum = substr($i, 9)
      }
      if (name != pkg) next
      if (first == "") first = value
      if (want != "" && tolower(sum) == tolower(want)) { print value; found = 1; exit }
    }
    END { if (!found && first != "") { print first; found = 1 } exit !found }' "$1"
}

# deb_release_sha256 RELEASE PATH: the SHA256 the Release file lists for PATH (e.g.
# main/binary-all/Packages.xz).
deb_release_sha256() {
  awk -v p="$2" '/^[^ ]/ { in256 = ($0 == "SHA256:") } in256 && $3 == p { print $1; found = 1; exit } END { exit !found }' "$1"
}

# deb_unpack DEB DIR: the data of DEB into DIR, with ar and tar (no dpkg needed).
deb_unpack() {
  local deb=$1 dir=$2 scratch data
  scratch=$(mktemp -d "$dir.ar.XXXXXX")
  (cd "$scratch" && ar x "$deb") || { rm -rf "$scratch"; return 1; }
  data=$(cd "$scratch" && ls data.tar* 2>/dev/null | head -1)
  [ -n "$data" ] || { rm -rf "$scratch"; printf 'deb_unpack: no data.tar* in %s\n' "$deb" >&2; return 1; }
  case $data in *.zst) ensure_tools zstd ;; esac
  mkdir -p "$dir"
  tar -xf "$scratch/$data" -C "$dir" || { rm -rf "$scratch"; return 1; }
  rm -rf "$scratch"
}

# debootstrap_fetch MIRROR SUITE DARCH KEYRING_SHA256 DIR: steps a-d into DIR (DIR/debootstrap:
# the unpacked package, DIR/keyring/…). Sets DEBOOTSTRAP_FETCHED_VERSION, DEBOOTSTRAP_KEYRING,
# DEBOOTSTRAP_KEYRING_VERSION.
debootstrap_fetch() {
  local mirror=${1%/} suite=$2 darch=$3 want_key=${4,,} dir=$5 rel idx="" p got want name ver file
  ensure_tools wget ar gpgv perl xz gzip tar sha256sum
  rel=$dir/Release
  deb_download "$mirror/dists/$suite/Release" "$rel" || die "cannot download $mirror/dists/$suite/Release"
  deb_download "$mirror/dists/$suite/Release.gpg" "$rel.gpg" || die "cannot download $mirror/dists/$suite/Release.gpg (the signature of the Release file)"
  # The Packages file that lists architecture-all packages: binary-all when the suite has one.
  for p in main/binary-all/Packages.xz main/binary-all/Packages.gz "main/binary-$darch/Packages.xz" "main/binary-$darch/Packages.gz"; do
    deb_release_sha256 "$rel" "$p" >/dev/null || continue
    deb_download "$mirror/dists/$suite/$p" "$dir/Packages.${p##*.}" || continue
    case $p in *.xz) xz -dc "$dir/Packages.xz" >"$dir/Packages" ;; *.gz) gzip -dc "$dir/Packages.gz" >"$dir/Packages" ;; esac || continue
    idx=$p; break
  done
  [ -n "$idx" ] || die "no main/binary-all or main/binary-$darch Packages file could be downloaded from $mirror/dists/$suite"

  # a. The keyring, trusted only by its pinned (or given) hash.
  want=${want_key:-$DEBIAN_KEYRING_PIN_SHA256}
  name=debian-archive-keyring
  file=$(deb_stanza_field "$dir/Packages" "$name" Filename "$want" || true)
  ver=$(deb_stanza_field "$dir/Packages" "$name" Version "$want" || true)
  got=""
  if [ -n "$file" ]; then
    deb_download "$mirror/$file" "$dir/keyring.deb" || die "cannot download $mirror/$file"
    got=$(sha256sum "$dir/keyring.deb" | cut -d' ' -f1)
  fi
  if [ "$got" != "$want" ] && [ "$want" = "$DEBIAN_KEYRING_PIN_SHA256" ]; then
    # The suite lists another version: the pinned one may still be in the pool.
    local pinned=pool/main/d/$name/${name}_${DEBIAN_KEYRING_PIN_VERSION}_all.deb
    if deb_download "$mirror/$pinned" "$dir/keyring-pinned.deb" 2>/dev/null; then
      if [ "$(sha256sum "$dir/keyring-pinned.deb" | cut -d' ' -f1)" = "$want" ]; then
        mv -f "$dir/keyring-pinned.deb" "$dir/keyring.deb"; got=$want ver=$DEBIAN_KEYRING_PIN_VERSION file=$pinned
      fi
    fi
  fi
  if [ "$got" != "$want" ]; then
    [ -n "$file" ] || die "$mirror/dists/$suite lists no $name package (only Debian mirrors can be used without a debootstrap on the worker)"
    die "$name on $mirror ($file, version $ver) has sha256 $got, not the expected $want" \
      "($([ -n "$want_key" ] && echo "--keyring-sha256" || echo "pinned for $DEBIAN_KEYRING_PIN_VERSION")): its keys cannot be trusted." \
      "Check $got independently and pass it as --keyring-sha256"
  fi
  deb_unpack "$dir/keyring.deb" "$dir/keyring" || die "cannot unpack $file"
  DEBOOTSTRAP_KEYRING=$dir/keyring/usr/share/keyrings/debian-archive-keyring.gpg
  DEBOOTSTRAP_KEYRING_VERSION=$ver
  [ -s "$DEBOOTSTRAP_KEYRING" ] || die "$file has no usr/share/keyrings/debian-archive-keyring.gpg"
  log "debian-archive-keyring $ver: sha256 $got as expected"

  # b. The Release file, signed by a key of that keyring, for this suite.
  local status
  status=$(gpgv --status-fd 1 --keyring "$DEBOOTSTRAP_KEYRING" "$rel.gpg" "$rel" 2>"$dir/gpgv.log") || true
  grep -q '^\[GNUPG:\] VALIDSIG ' <<<"$status" && grep -q '^\[GNUPG:\] GOODSIG ' <<<"$status" ||
    { cat "$dir/gpgv.log" >&2; die "the signature of $mirror/dists/$suite/Release does not verify with debian-archive-keyring $ver"; }
  awk -v s="$suite" -F': ' '($1 == "Codename" || $1 == "Suite") && $2 == s { f = 1 } END { exit !f }' "$rel" ||
    die "$mirror/dists/$suite/Release is signed but is for $(sed -n 's/^Codename: //p' "$rel" | head -1), not $suite"
  log "Release of $suite: signature good ($(sed -n 's/^\[GNUPG:\] GOODSIG [^ ]* //p' <<<"$status" | head -1))"

  # c. The Packages file, as the signed Release lists it.
  want=$(deb_release_sha256 "$rel" "$idx")
  got=$(sha256sum "$dir/Packages.${idx##*.}" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "$mirror/dists/$suite/$idx has sha256 $got, the signed Release lists $want"

  # d. debootstrap, as that Packages file lists it.
  file=$(deb_stanza_field "$dir/Packages" debootstrap Filename) || die "$mirror/dists/$suite/$idx lists no debootstrap"
  want=$(deb_stanza_field "$dir/Packages" debootstrap SHA256)
  ver=$(deb_stanza_field "$dir/Packages" debootstrap Version)
  deb_download "$mirror/$file" "$dir/debootstrap.deb" || die "cannot download $mirror/$file"
  got=$(sha256sum "$dir/debootstrap.deb" | cut -d' ' -f1)
  [ "$got" = "${want,,}" ] || die "$mirror/$file has sha256 $got, the signed Packages file lists $want"
  deb_unpack "$dir/debootstrap.deb" "$dir/debootstrap" || die "cannot unpack $file"
  [ -x "$dir/debootstrap/usr/sbin/debootstrap" ] && [ -f "$dir/debootstrap/usr/share/debootstrap/functions" ] ||
    die "$file has no usr/sbin/debootstrap or usr/share/debootstrap/functions"
  DEBOOTSTRAP_FETCHED_VERSION=$ver
  log "debootstrap $ver: sha256 $got as the signed index lists it"
}

# debootstrap_ensure MIRROR SUITE DARCH [KEYRING_SHA256]: sets DEBOOTSTRAP and DEBOOTSTRAP_ORIGIN
# (see the top of this file). A fetched copy is removed at exit.
debootstrap_ensure() {
  local mirror=$1 suite=$2 darch=$3 want_key=${4:-} pm dir
  if ! command -v debootstrap >/dev/null; then
    pm=$(tools_pkg_manager)
    if [ "$pm" != none ] && tool_package "$pm" debootstrap >/dev/null; then ensure_tools debootstrap; fi
  fi
  if command -v debootstrap >/dev/null; then
    DEBOOTSTRAP=(debootstrap)
    debootstrap --help 2>/dev/null | grep -q -- --force-check-gpg && DEBOOTSTRAP+=(--force-check-gpg)
    DEBOOTSTRAP_ORIGIN="the worker's $(command -v debootstrap) and keyring"
    return 0
  fi
  log "debootstrap: not on the worker and no package for it ($(tools_pkg_manager)): fetching it from $mirror"
  dir=$(mktemp -d /tmp/debootstrap-fetch.XXXXXX)
  on_exit "rm -rf --one-file-system '$dir'"
  debootstrap_fetch "$mirror" "$suite" "$darch" "$want_key" "$dir"
  DEBOOTSTRAP=(env "DEBOOTSTRAP_DIR=$dir/debootstrap/usr/share/debootstrap" "$dir/debootstrap/usr/sbin/debootstrap"
    "--keyring=$DEBOOTSTRAP_KEYRING" --force-check-gpg --extractor=ar)
  DEBOOTSTRAP_ORIGIN="debootstrap $DEBOOTSTRAP_FETCHED_VERSION fetched from $mirror, keyring debian-archive-keyring $DEBOOTSTRAP_KEYRING_VERSION"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  GUEST_LOG_PREFIX=${GUEST_LOG_PREFIX:-debootstrap}
  here=$(dirname "$0")
  # shellcheck source=common.sh
  . "$here/common.sh"
  # shellcheck source=tools.sh
  . "$here/tools.sh"
  case ${1:-} in
    fetch)
      # The fetched copy stays for the printed command line; a failed fetch leaves nothing.
      dir=$(mktemp -d /tmp/debootstrap-fetch.XXXXXX)
      trap 'rc=$?; [ "$rc" = 0 ] || rm -rf --one-file-system "$dir"; exit "$rc"' EXIT
      debootstrap_fetch "${2:?MIRROR}" "${3:?SUITE}" "${4:?DARCH}" "${5:-}" "$dir"
      printf 'env DEBOOTSTRAP_DIR=%s %s --keyring=%s --force-check-gpg --extractor=ar\n' \
        "$dir/debootstrap/usr/share/debootstrap" "$dir/debootstrap/usr/sbin/debootstrap" "$DEBOOTSTRAP_KEYRING" ;;
    *) printf 'usage: %s fetch MIRROR SUITE DARCH [KEYRING_SHA256]\n' "$0" >&2; exit 2 ;;
  esac
fi
