#!/usr/bin/env bash
# Build (once, cached by the content hash of this recipe) a Debian trixie root with Home Assistant Core in a venv,
# for the Home Assistant discovery test (scripts/ha/run-test.sh).
#
#   scripts/ha/build-rootfs.sh            prints the root's path on its last line
#
# The root is $HA_CACHE/ha-rootfs-<hash> (default HA_CACHE=/var/cache/greenhoused); <hash> covers this script and
# requirements.txt, so changing either builds a new root. Needs root, debootstrap, and the Debian mirror and PyPI.
# Home Assistant needs Python >= 3.13: bookworm has 3.11, trixie 3.13.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${HA_CACHE:-/var/cache/greenhoused}
hash=$(cat "$here/build-rootfs.sh" "$here/requirements.txt" "$here/warmup.sh" | sha256sum | cut -c1-16)
dir=$cache/ha-rootfs-$hash

mkdir -p "$cache"
# One build at a time (CI starts it in the background, then run-test.sh asks for it again).
exec 9> "$cache/ha-rootfs.lock"
flock 9
if [ -e "$dir/.complete" ]; then
    echo "ha rootfs: $dir exists, not rebuilding" >&2
    echo "$dir"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "error: debootstrap and chroot need root; re-run with sudo" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: debootstrap missing; fix: apt-get install debootstrap" >&2; exit 1; }

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

start=$(date +%s)
# The Debian base is kept across failed later steps (it does not depend on them): $tmp/.debootstrapped.
tmp=$dir.partial
mkdir -p "$cache"
packages=python3,python3-venv,ca-certificates,procps
if [ ! -e "$tmp/.debootstrapped" ]; then
    rm -rf "$tmp"
    echo "ha rootfs: debootstrap trixie (minbase + $packages) from $mirror" >&2
    for attempt in 1 2 3; do
        debootstrap --variant=minbase --include="$packages" trixie "$tmp" "$mirror" >&2 && break
        [ "$attempt" -eq 3 ] && { echo "error: debootstrap failed 3 times (see $tmp/debootstrap/debootstrap.log)" >&2; exit 1; }
        echo "debootstrap attempt $attempt failed; retrying in 10 s" >&2
        rm -rf "$tmp"; sleep 10
    done
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$tmp/etc/hosts"
    apt-get -o Dir="$tmp" clean >/dev/null 2>&1 || true
    touch "$tmp/.debootstrapped"
    echo "ha rootfs: debootstrap done in $(( $(date +%s) - start )) s" >&2
fi
in_root() { unshare --mount --fork sh -c "mount -t proc proc '$tmp/proc' && chroot '$tmp' $*"; }
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
if [ ! -e "$tmp/.buildtools" ]; then
    # A few of Home Assistant's requirements (e.g. lru-dict) have no wheel for Python 3.13: pip compiles them.
    in_root apt-get update -qq >&2
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-dev >&2
    in_root apt-get clean >&2
    touch "$tmp/.buildtools"
fi
rm -rf "$tmp/opt/ha"
# pip inside the root reaches PyPI like the host's pip: same DNS, same CA bundle (a proxy may use its own CA).
host_ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
cp "$host_ca" "$tmp/etc/ssl/certs/host-ca-bundle.crt"
export PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt
unset PIP_FIND_LINKS

# The venv and Home Assistant (pip uses the host's network through the chroot).
cp "$here/requirements.txt" "$here/warmup.sh" "$tmp/root/"
in_root /usr/bin/python3 -m venv /opt/ha >&2
in_root /opt/ha/bin/pip install --disable-pip-version-check -q -r /root/requirements.txt >&2
echo "ha rootfs: homeassistant installed at t+$(( $(date +%s) - start )) s" >&2
# One start of Home Assistant with the test's integrations, so that it installs their requirements now (it pip
# installs an integration's requirements on first use) and the test never fetches anything.
in_root sh /root/warmup.sh >&2
rm -rf "$tmp/etc/resolv.conf" "$tmp/etc/ssl/certs/host-ca-bundle.crt" "$tmp/root/.cache"
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
# Roots of older recipes (1.4 GB each) are not used again.
for old in "$cache"/ha-rootfs-*; do
    case $old in "$dir"|"$cache/ha-rootfs.lock") ;; *) rm -rf "$old" ;; esac
done
echo "ha rootfs: built $dir in $(( $(date +%s) - start )) s, $(du -sh "$dir" | cut -f1)" >&2
echo "$dir"
