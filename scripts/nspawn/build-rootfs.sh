#!/usr/bin/env bash
# Build (once, cached) a minimal Debian bookworm rootfs with systemd, dbus and mosquitto for the
# systemd-nspawn unit tests.
#
#   scripts/nspawn/build-rootfs.sh [DIR]        default DIR: /var/tmp/greenhoused-rootfs
#
# Skips the build when DIR/etc/os-release exists. Keep DIR outside the repository.
# Mirror: $DEBIAN_MIRROR, else the first deb.debian.org-style URI of the host's apt sources, else
# http://deb.debian.org/debian. Needs root, debootstrap, and network access to the mirror.
set -euo pipefail

dir=${1:-/var/tmp/greenhoused-rootfs}
suite=${DEBIAN_SUITE:-bookworm}
# adduser: package maintainer scripts commonly create their system user with it (not in minbase).
packages=systemd,systemd-sysv,dbus,mosquitto,mosquitto-clients,procps,iproute2,ca-certificates,libssl3,adduser

if [ -e "$dir/etc/os-release" ]; then
    echo "rootfs: $dir exists ($(. "$dir/etc/os-release"; echo "$PRETTY_NAME")), not rebuilding"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "error: debootstrap needs root; re-run with sudo" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: debootstrap missing; fix: apt-get install debootstrap" >&2; exit 1; }

# shellcheck source=../debian-mirror.sh
. "$(dirname "$0")/../debian-mirror.sh"
mirror=$(debian_mirror)

case $dir in
    "$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || echo /nonexistent)"/*)
        echo "warning: $dir is inside the repository; prefer /var/tmp/greenhoused-rootfs" >&2 ;;
esac

tmp=$dir.partial
rm -rf "$tmp"
mkdir -p "$(dirname "$dir")"
echo "debootstrap $suite (minbase + $packages) from $mirror into $dir"
start=$(date +%s)
debootstrap_retry --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror"

# Make the image boot quietly and fast in a container.
echo ghtest > "$tmp/etc/hostname"
# minbase has no /etc/hosts (nor nss-myhostname): without it "localhost" does not resolve.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tghtest\n' > "$tmp/etc/hosts"
: > "$tmp/etc/machine-id"                       # generated on first boot
# Units that are useless or slow without real hardware / network.
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
            systemd-networkd-wait-online.service getty@tty1.service; do
    ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
# mosquitto is started explicitly by the tests; keep it disabled so a boot is deterministic.
chroot "$tmp" systemctl disable mosquitto.service >/dev/null 2>&1 || true
# Journal: keep it in memory, no rate limiting that could hide test lines.
mkdir -p "$tmp/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\n' > "$tmp/etc/systemd/journald.conf.d/test.conf"
apt-get -o Dir="$tmp" clean >/dev/null 2>&1 || true

mv "$tmp" "$dir"
echo "rootfs: built $dir in $(( $(date +%s) - start )) s, $(du -sh "$dir" | cut -f1)"
