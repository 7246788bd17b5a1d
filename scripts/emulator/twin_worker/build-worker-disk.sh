#!/usr/bin/env bash
# The twin's worker disk: the machine a worker instance boots in the emulator's twin mode
# (AMI_FACTORY_EMULATOR=twin). A small Debian bookworm with the tools the guest scripts need
# (scripts/guest/lib/tools.sh), the SSM stand-in agent (agent.py, a systemd unit, talking over
# the virtio-serial port ami-factory.ssm) and a udev rule that names hot-plugged EBS-like NVMe
# controllers as EC2's udev does. Its network is what a worker in a private subnet with an S3
# gateway endpoint and an SSM interface endpoint has: the instance metadata service, S3 and SSM,
# all answered by the emulator (twin/network.py); nothing is fetched when it boots. Built once by
# `scripts/setup.sh --twin`, never at `pulumi up`.
#
#   build-worker-disk.sh build   builds the disk unless the cached one is current; prints its folder
#   build-worker-disk.sh path    prints the current disk's folder; fails, naming the setup command,
#                                when it is missing or stale
#   build-worker-disk.sh key     the cache key (a hash of every input)
#
# The folder ${AMI_FACTORY_CACHE:-~/.cache/ami-factory}/twin-worker/<key>/ holds
#   disk.qcow2   the root filesystem (ext4 on the whole disk: /dev/vda), compressed qcow2; boot it
#                through a copy-on-write overlay, never directly
#   vmlinux, initrd.img, cmdline   direct kernel boot (qemu -kernel/-initrd/-append; the kernel
#                                  uncompressed, started at its PVH entry): no boot loader
#   manifest.json                  what is inside (kernel version, packages, sizes)
#   endpoint-hosts                 the AWS endpoint names (S3, SSM) the disk's /etc/hosts maps to
#                                  the twin's endpoint address (the emulator's TLS certificate names them)
#
# The twin's CA (${AMI_FACTORY_CACHE:-~/.cache/ami-factory}/twin-ca/: ca.pem, ca.key), made once
# here with openssl, never in the repository: the disk trusts it (update-ca-certificates) and the
# emulator signs its S3 endpoint's certificate with it, so the AWS CLI talks https to the real
# endpoint names. Part of the key: a new CA rebuilds the disk.
# Stale folders (other keys) are removed once the new one is in place, all but the newest three.
#
# The base is the Debian root of test/support/pv-image.sh (same debootstrap, kernel and cached
# tarball, so one download serves both); the worker layer adds its packages from the same mirror.
# Needs root (chroot, ownership); the filesystem image itself is made without mounts (mke2fs -d).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
pv_image=$repo/test/support/pv-image.sh
cache=${AMI_FACTORY_CACHE:-${HOME:-/root}/.cache/ami-factory}/twin-worker
# What the guest scripts use (scripts/guest/lib/tools.sh's table, apt-get column), the agent's
# python3, nvme-cli to look at controllers by hand, and the AWS CLI (the surrogate image recipe's
# `aws s3 cp`; Amazon Linux has it). Part of the key.
packages=(
  python3 util-linux mount fdisk parted e2fsprogs xfsprogs dosfstools mtools
  grub-pc-bin grub-efi-amd64-bin grub2-common grub-common qemu-utils cpio initramfs-tools-core
  debootstrap binutils gpgv wget curl ca-certificates xz-utils gzip zstd tar coreutils udev kmod
  rsync nvme-cli libcap2-bin awscli
)
# The root disk's virtual size: room for what commands write under /root and /tmp.
disk_size=4G
# Bump when the package layer's recipe (make_root_tarball) changes: its tarball is keyed by this,
# the base and the packages only, so that changing the agent rebuilds the disk in a minute.
root_recipe_version=1
# console=ttyS0: the console is the VM's serial port (the emulator's console output).
cmdline="root=/dev/vda rw console=ttyS0 quiet systemd.show_status=auto net.ifnames=0"
# The worker's network (twin/network.py, the qemu side): the stand-in for the S3 gateway endpoint and
# the SSM interface endpoint is this address; the names a worker may use for them in its region
# (any region: the emulator is one endpoint). The guest scripts call S3 (aws s3 cp) and SSM (aws ssm
# get-parameter, the build's secret parameters); the agent's own SSM traffic is the virtio port.
s3_address=169.254.0.100
regions=(
  us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 ca-west-1 sa-east-1 mx-central-1
  eu-west-1 eu-west-2 eu-west-3 eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2
  ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-southeast-1 ap-southeast-2 ap-southeast-3
  ap-southeast-4 ap-southeast-5 ap-southeast-7 ap-south-1 ap-south-2 ap-east-1 me-south-1
  me-central-1 il-central-1 af-south-1
)
ca_dir=${AMI_FACTORY_CACHE:-${HOME:-/root}/.cache/ami-factory}/twin-ca

# log, die and the cleanup stack (on_exit) of the guest scripts.
GUEST_LOG_PREFIX=twin-worker
# shellcheck source-path=SCRIPTDIR source=../../guest/lib/common.sh
. "$repo/scripts/guest/lib/common.sh"
install_cleanup_traps

root_key() {
  {
    bash "$pv_image" tarball-path | xargs basename # the base root's own key
    printf '%s\n' "${packages[@]}" "$root_recipe_version"
  } | sha256sum | cut -c1-12
}

cache_key() {
  { root_key; printf '%s\n' "$disk_size" "$cmdline"; cat "${BASH_SOURCE[0]}" "$here/agent.py" "$here"/rootfs/*
    cat "$ca_dir/ca.pem" 2>/dev/null || echo no-ca; } |
    sha256sum | cut -c1-12
}

folder() { printf '%s/%s\n' "$cache" "$(cache_key)"; }

is_built() { [ -s "$1/manifest.json" ] && [ -s "$1/disk.qcow2" ] && [ -s "$1/vmlinux" ] && [ -s "$1/initrd.img" ] && [ -s "$1/endpoint-hosts" ]; }

# keep_newest N PATH...: removes all but the N newest of PATH... A stale disk goes, but not at once:
# two checkouts of different revisions share the cache without rebuilding each other's disk over and
# over, and a VM started a moment ago keeps the disk its overlay is backed by.
keep_newest() {
  local n=$1
  shift
  [ -e "${1:-}" ] || return 0
  # ...and only one unused for a day: `path` (every emulator start) touches the disk it hands out, so
  # another checkout's build never pulls a disk from under a running emulator.
  ls -dt "$@" | tail -n +"$((n + 1))" | while read -r old; do
    [ -n "$(find "${old%/}" -maxdepth 0 -mmin -1440)" ] || rm -rf "${old%/}"
  done
}

# in_chroot ROOT CMD...: CMD inside ROOT with /proc and /dev mounted for it.
in_chroot() {
  local root=$1
  shift
  (
    trap 'umount -l "$root/dev" 2>/dev/null; umount -l "$root/proc" 2>/dev/null' EXIT
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"
  )
}

# unpack_root PARENT TARBALL MESSAGE: TARBALL unpacked into root/ of a new folder under PARENT
# (removed at exit); sets the caller's dir (the folder) and kver (the root's newest kernel).
unpack_root() {
  mkdir -p "$1"
  dir=$(mktemp -d "$1/.build.XXXXXX")
  on_exit "rm -rf --one-file-system '$dir'"
  log "$3"
  mkdir "$dir/root"
  tar --numeric-owner --xattrs -C "$dir/root" -xpf "$2"
  kver=$(cd "$dir/root/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -n1)
  [ -n "$kver" ] || die "no kernel in $2"
}

# make_root_tarball: the base root with the worker's packages, cached as
# $cache/roots/<root key>.tar; sets root_tar to its path. (Not in a $(…) subshell: its cleanup
# must run.)
make_root_tarball() {
  local dir kver base
  root_tar="$cache/roots/$(root_key).tar"
  [ -s "$root_tar" ] && return 0
  base=$(bash "$pv_image" rootfs)
  unpack_root "$cache/roots" "$base" "adding the worker's packages to the Debian root (one time, a few minutes)"

  # From the mirror the base came from: at build time only.
  cp /etc/resolv.conf "$dir/root/etc/resolv.conf"
  in_chroot "$dir/root" sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@" && apt-get clean' \
    sh "${packages[@]}" >"$dir/apt.log" 2>&1 || { tail -30 "$dir/apt.log" >&2; die "installing the worker packages failed"; }
  rm -rf "$dir/root"/var/lib/apt/lists/* "$dir/root"/var/cache/apt/*.bin
  : >"$dir/root/etc/resolv.conf"

  # Smaller and faster to boot: no docs, no drivers a worker VM can never see; an initramfs with
  # only what mounts the root (virtio disk, ext4); the rest loads from the root when udev asks.
  rm -rf "$dir/root"/usr/share/{doc,man,info}/*
  local m="$dir/root/lib/modules/$kver/kernel"
  rm -rf "$m"/drivers/{gpu,media,net/wireless,infiniband,staging,bluetooth,isdn,iio,hid,input/joystick,input/touchscreen} \
    "$m"/sound "$m"/net/{wireless,mac80211,bluetooth}
  in_chroot "$dir/root" depmod "$kver"
  printf 'FSTYPE=ext4\nMODULES=list\n' >"$dir/root/etc/initramfs-tools/conf.d/ami-factory"
  printf 'virtio_pci\nvirtio_blk\next4\n' >"$dir/root/etc/initramfs-tools/modules"
  in_chroot "$dir/root" update-initramfs -u -k "$kver" >"$dir/initramfs.log" 2>&1 ||
    { tail -20 "$dir/initramfs.log" >&2; die "update-initramfs failed"; }

  tar --numeric-owner --xattrs -C "$dir/root" -cpf "$dir/root.tar" .
  mv "$dir/root.tar" "$root_tar"
  keep_newest 2 "$cache"/roots/*.tar
}

# endpoint_names: the S3 and SSM endpoint names of every region, one a line (S3 by path-style
# addressing: no bucket names, which a hosts file cannot wildcard).
endpoint_names() {
  printf 's3.amazonaws.com\n'
  printf 's3.%s.amazonaws.com\n' "${regions[@]}"
  printf 'ssm.%s.amazonaws.com\n' "${regions[@]}"
}

# make_ca: the twin's CA, once (kept across disk rebuilds: the disk and the emulator must agree).
make_ca() {
  [ -s "$ca_dir/ca.pem" ] && [ -s "$ca_dir/ca.key" ] && return 0
  command -v openssl >/dev/null || die "openssl missing: it makes the twin's CA (apt-get install openssl)"
  mkdir -p "$ca_dir"
  local tmp
  tmp=$(mktemp -d "$ca_dir/.new.XXXXXX")
  on_exit "rm -rf '$tmp'"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ami-factory twin CA (local only)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>"$tmp/openssl.log" || { cat "$tmp/openssl.log" >&2; die "openssl could not make the twin's CA"; }
  chmod 600 "$tmp/ca.key"
  mv "$tmp/ca.key" "$ca_dir/ca.key" && mv "$tmp/ca.pem" "$ca_dir/ca.pem"
}

build() {
  local out root_tar dir kver
  make_ca
  out=$(folder)
  if is_built "$out"; then printf '%s\n' "$out"; return 0; fi
  [ "$(id -u)" -eq 0 ] || die "building the worker disk needs root (chroot): run 'sudo bash scripts/setup.sh --twin'"
  for t in mke2fs qemu-img chroot debootstrap; do command -v "$t" >/dev/null || die "$t missing: run scripts/install-guest-deps.sh"; done
  local started=$SECONDS
  make_root_tarball
  unpack_root "$cache" "$root_tar" "making the worker disk $out"

  # The agent, its unit, the udev rule; a machine of its own that asks nothing at first boot.
  install -m 0755 "$here/agent.py" "$dir/root/usr/local/sbin/ami-factory-agent"
  install -m 0644 "$here/rootfs/ami-factory-agent.service" "$dir/root/etc/systemd/system/"
  install -m 0644 "$here/rootfs/61-ami-factory-ebs-nvme.rules" "$dir/root/etc/udev/rules.d/"
  mkdir -p "$dir/root/etc/systemd/system/multi-user.target.wants"
  ln -sf /etc/systemd/system/ami-factory-agent.service "$dir/root/etc/systemd/system/multi-user.target.wants/"
  # What a worker never needs, each a second or more of a TCG boot: logins, clocks, timers, a
  # journal on disk, NVMe-over-fabrics, utmp.
  local unit
  for unit in systemd-firstboot.service serial-getty@ttyS0.service getty@tty1.service getty-static.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer nvmf-autoconnect.service systemd-binfmt.service systemd-update-utmp.service \
    systemd-update-utmp-runlevel.service; do
    ln -sf /dev/null "$dir/root/etc/systemd/system/$unit"
  done
  mkdir -p "$dir/root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$dir/root/etc/systemd/journald.conf.d/ami-factory.conf"
  printf '/dev/vda / ext4 rw,noatime 0 0\n' >"$dir/root/etc/fstab"
  printf 'ami-factory-worker\n' >"$dir/root/etc/hostname"

  # The network (twin/network.py): DHCP on eth0 from qemu's user network, the agent up only once
  # it is configured (the SSM agent registers over the network). The stand-in for the S3 gateway
  # endpoint, the SSM interface endpoint (private DNS) and the VPC resolver: /etc/hosts maps their
  # endpoint names to the forwarded address; the
  # AWS CLI uses path-style addressing (bucket names cannot be listed in a hosts file) and finds
  # its credentials in the instance metadata, as on EC2 (bookworm's CLI does not read its region
  # there: S3 goes to the global name, and the guest scripts pass --region).
  mkdir -p "$dir/root/etc/systemd/network" "$dir/root/etc/systemd/system/network-online.target.wants"
  printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n\n[DHCPv4]\nUseDNS=no\nUseHostname=no\n' \
    >"$dir/root/etc/systemd/network/10-eth0.network"
  ln -sf /lib/systemd/system/systemd-networkd.service "$dir/root/etc/systemd/system/multi-user.target.wants/"
  ln -sf /lib/systemd/system/systemd-networkd-wait-online.service "$dir/root/etc/systemd/system/network-online.target.wants/"
  { printf '127.0.0.1 localhost\n127.0.1.1 ami-factory-worker\n'
    printf '# The twin: the S3 gateway endpoint and the SSM interface endpoint (the emulator behind qemu guestfwd)\n'
    endpoint_names | sed "s/^/$s3_address /"; } >"$dir/root/etc/hosts"
  mkdir -p "$dir/root/root/.aws"
  # The twin worker's AWS CLI: S3 by path (the hosts file names the endpoints, not buckets); the
  # system trust store, which holds the twin's CA (Debian's CLI otherwise reads a bundle of its
  # own); IMDS given 5 s and 3 tries, not 1 s once (each connection to it starts a relay process
  # on the host, slow on a loaded machine; EC2's IMDS answers in well under a second).
  printf '%s\n' '# The twin worker (scripts/emulator/twin_worker/build-worker-disk.sh)' '[default]' \
    'ca_bundle = /etc/ssl/certs/ca-certificates.crt' 'metadata_service_timeout = 5' 'metadata_service_num_attempts = 3' \
    's3 =' '    addressing_style = path' >"$dir/root/root/.aws/config"
  install -m 0644 "$ca_dir/ca.pem" "$dir/root/usr/local/share/ca-certificates/ami-factory-twin-ca.crt"
  in_chroot "$dir/root" update-ca-certificates >"$dir/ca.log" 2>&1 || { cat "$dir/ca.log" >&2; die "update-ca-certificates failed"; }
  : >"$dir/root/etc/machine-id"

  mkdir "$dir/out"
  # The kernel decompressed, booted at its PVH entry (CONFIG_PVH): qemu loads it as it is, and a TCG
  # boot does not spend seconds in the bzImage's own xz decompressor.
  local xz_at
  xz_at=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$dir/root/boot/vmlinuz-$kver" | head -n1 | cut -d: -f1)
  [ -n "$xz_at" ] || die "vmlinuz-$kver is not xz-compressed: teach this script its compression"
  # (xz stops reading at the stream's end: tail's broken pipe is not a failure.)
  xz -dc --single-stream <(tail -c +"$((xz_at + 1))" "$dir/root/boot/vmlinuz-$kver") >"$dir/out/vmlinux" ||
    die "could not decompress vmlinuz-$kver"
  cp "$dir/root/boot/initrd.img-$kver" "$dir/out/initrd.img"
  printf '%s\n' "$cmdline" >"$dir/out/cmdline"
  endpoint_names >"$dir/out/endpoint-hosts"
  mke2fs -q -F -t ext4 -L ami-worker -d "$dir/root" "$dir/root.img" "$disk_size" >"$dir/mke2fs.log" 2>&1 ||
    { cat "$dir/mke2fs.log" >&2; die "mke2fs -d failed"; }
  qemu-img convert -c -O qcow2 "$dir/root.img" "$dir/out/disk.qcow2" || die "qemu-img convert failed"
  rm -f "$dir/root.img"
  local pkgs_json
  pkgs_json=$(printf '"%s",' "${packages[@]}")
  printf '{"key":"%s","kernel":"%s","cmdline":"%s","diskBytes":%d,"virtualSize":"%s","packages":[%s],"s3Address":"%s","caDir":"%s","builtSeconds":%d}\n' \
    "$(cache_key)" "$kver" "$cmdline" "$(stat -c %s "$dir/out/disk.qcow2")" "$disk_size" "${pkgs_json%,}" "$s3_address" "$ca_dir" \
    "$((SECONDS - started))" >"$dir/out/manifest.json"

  rm -rf "$out" && mv "$dir/out" "$out"
  keep_newest 3 "$cache"/[0-9a-f]*/
  log "worker disk ready in $((SECONDS - started)) s: $(du -sh "$out" | cut -f1) in $out"
  printf '%s\n' "$out"
}

case ${1:-} in
  build) build ;;
  path)
    out=$(folder)
    is_built "$out" || die "the twin's worker disk is missing or stale ($out): run 'bash scripts/setup.sh --twin'"
    touch "$out" 2>/dev/null || true # in use: keep_newest spares it for a day
    printf '%s\n' "$out" ;;
  key) cache_key ;;
  *) die "usage: $0 build | path | key" ;;
esac
