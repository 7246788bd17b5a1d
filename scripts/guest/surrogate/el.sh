# shellcheck shell=bash
# surrogate.sh recipe "el": an Enterprise-Linux-like system (Amazon Linux 2023, Rocky/Alma, CentOS
# Stream) installed with dnf (or yum) --installroot from the given repositories, as autoknitter
# does it with yum for CentOS.
#
#   --releasever 2023 --repo name=https://URL --gpgkey name=https://KEY [--repo … --gpgkey …]
#   [--packages a,b] [--dry-run]
#
# The repositories go into a temporary configuration (dnf.conf + yum.repos.d of their own): the
# worker's repositories are never used. Installed: @core (or the --packages list instead), kernel,
# dracut, cloud-init, and GRUB for the boot mode (grub2-pc for BIOS; grub2-efi-x64 +
# grub2-efi-x64-modules, or grub2-efi-aa64 + grub2-efi-aa64-modules, for UEFI). Every package's
# signature is checked: gpgcheck=1 always, each repository with its own key(s) (surrogate.sh refuses
# a repository without one, or not over https).
#
# --dry-run: prints the commands of the whole build, one per line on stderr as "+ cmd", and changes
# nothing (not even the target's label).

# el_packages ARCH MODE PACKAGES(comma list): the install list, one per line.
el_packages() {
  local arch=$1 mode=$2 extra=$3
  if [ -n "$extra" ]; then tr ',' '\n' <<<"$extra" | sed '/^$/d'; else printf '@core\n'; fi
  printf '%s\n' kernel dracut cloud-init grub2-tools
  case $arch/$mode in
    x86_64/legacy-bios) printf '%s\n' grub2-pc ;;
    x86_64/uefi) printf '%s\n' grub2-pc grub2-efi-x64 grub2-efi-x64-modules ;;
    arm64/uefi) printf '%s\n' grub2-efi-aa64 grub2-efi-aa64-modules ;;
  esac
}

# el_keys_of NAME KEYS(space list of name=url): the key URLs of repository NAME, space separated.
el_keys_of() {
  local name=$1 k out=() all=()
  read -ra all <<<"$2"
  for k in "${all[@]}"; do [ "${k%%=*}" = "$name" ] && out+=("${k#*=}"); done
  printf '%s' "${out[*]}"
}

# el_write_config DIR RELEASEVER ARCH KEYS(space list of name=url) REPO...: DIR/dnf.conf and DIR/yum.repos.d.
el_write_config() {
  local dir=$1 rel=$2 arch=$3 keys=$4 spec name url
  shift 4
  mkdir -p "$dir/yum.repos.d"
  cat >"$dir/dnf.conf" <<CONF
[main]
reposdir=$dir/yum.repos.d
gpgcheck=1
localpkg_gpgcheck=1
installonly_limit=3
clean_requirements_on_remove=True
best=True
skip_if_unavailable=False
install_weak_deps=False
keepcache=False
CONF
  local cred
  for spec in "$@"; do
    name=${spec%%=*} url=${spec#*=}
    # A repository's credentials as its username and password options (dnf.conf(5)), in a file only
    # root reads, outside the image (the configuration directory goes on exit).
    cred=$(url_credentials "$url")
    (umask 077
      { printf '[%s]\nname=%s\nbaseurl=%s\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=0\ngpgkey=%s\n' "$name" "$name" "$(plain_url "$url")" "$(el_keys_of "$name" "$keys")"
        [ -z "$cred" ] || printf 'username=%s\npassword=%s\n' "$(url_decode "${cred%%:*}")" "$(url_decode "${cred#*:}")"
      } >"$dir/yum.repos.d/$name.repo")
  done
}

# el_populate ROOT ARCH MODE RELEASEVER PACKAGES REPO... (EL_GPGKEYS: name=url, space separated)
el_populate() {
  local root=$1 arch=$2 mode=$3 rel=$4 extra=$5 keys=${EL_GPGKEYS:-} dnf cfg
  shift 5
  dnf=$(command -v dnf || command -v yum || true)
  [ "$BOOTDISK_DRY_RUN" = 1 ] && dnf=${dnf:-dnf}
  [ -n "$dnf" ] || die "neither dnf nor yum on the worker (the el recipe needs one: Amazon Linux, Fedora, RHEL-like workers)"
  dnf=${dnf##*/}
  cfg=$EL_CONFIG_DIR
  el_write_config "$cfg" "$rel" "$arch" "$keys" "$@"
  local spec
  dry_note "write $cfg/dnf.conf: reposdir=$cfg/yum.repos.d gpgcheck=1 install_weak_deps=False"
  for spec in "$@"; do dry_note "write $cfg/yum.repos.d/${spec%%=*}.repo: baseurl=$(plain_url "${spec#*=}") gpgcheck=1 gpgkey=$(el_keys_of "${spec%%=*}" "$keys")"; done
  local -a pkgs
  mapfile -t pkgs < <(el_packages "$arch" "$mode" "$extra")
  log "installing ${pkgs[*]} with $dnf --installroot (releasever $rel)"
  run "$dnf" --config="$cfg/dnf.conf" --installroot="$root" --releasever="$rel"\
    --setopt=reposdir="$cfg/yum.repos.d" --setopt=install_weak_deps=False --assumeyes \
    install "${pkgs[@]}" || die "$dnf --installroot install failed"
  run "$dnf" --config="$cfg/dnf.conf" --installroot="$root" --releasever="$rel" clean all || true
  if [ "$BOOTDISK_DRY_RUN" != 1 ]; then
    # Networking and a console login are cloud-init's job; keep the machine-id empty for first boot.
    : >"$root/etc/machine-id"
    [ -e "$root/etc/hostname" ] || printf 'localhost\n' >"$root/etc/hostname"
    # SELinux: relabel on first boot (files written outside the policy's knowledge).
    [ -f "$root/etc/selinux/config" ] && : >"$root/.autorelabel"
  else
    dry_note "write $root/etc/machine-id (empty), $root/.autorelabel when SELinux is configured"
  fi
}
