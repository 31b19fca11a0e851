#!/usr/bin/env bash
# Build the local Docker image that `cross` uses for the Raspberry Pi targets, without any container registry:
# debootstrap a Debian root with both ARM cross toolchains and `docker import` it.
#
#   scripts/docker/build-cross-image.sh          prints the image name (greenhoused-cross:SUITE-HASH) last
#
# Then select it with cross's documented per-target image override (scripts/cross-docker.sh does this):
#   CROSS_TARGET_AARCH64_UNKNOWN_LINUX_GNU_IMAGE=IMAGE cross build --release --target aarch64-unknown-linux-gnu
#
# Suite: bullseye (default; $CROSS_IMAGE_SUITE overrides): the binaries link against its glibc 2.31, so they
# need glibc >= 2.31 at most and run on Raspberry Pi OS bullseye (11) and bookworm (12) and later.
# Cached: the tag carries a hash of this recipe (this file and the suite); when `docker image inspect` finds
# that tag nothing is built. Old tags are left alone (`docker image ls greenhoused-cross` lists them).
# Needs root, debootstrap, docker, and the Debian mirror ($DEBIAN_MIRROR, else the host's apt mirror).
#
# What cross needs from the image: a shell, the C toolchains and, as environment, the linker and C compiler per
# target. cross itself mounts the host's Rust toolchain at /rust, the cargo home at /cargo, the project at
# /project and the target directory at /target, and runs `cargo` inside as the calling user.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../debian-mirror.sh
. "$here/../debian-mirror.sh"

suite=${CROSS_IMAGE_SUITE:-bullseye}
# gcc + libc6-dev: build scripts and proc-macros are compiled for the x86_64 host inside the container.
# cmake: the bundled Paho C library. perl + make: OpenSSL built from source (openssl-src). pkg-config: -sys crates.
packages=gcc,libc6-dev,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross,gcc-arm-linux-gnueabihf,libc6-dev-armhf-cross
packages+=,cmake,make,perl,pkg-config
# Environment of every container: what Debian's cross gcc is called for each Rust target (cargo's linker, the cc
# and cmake crates' compiler and archiver). The cmake crate sets CMAKE_SYSTEM_NAME/PROCESSOR itself.
envs=(
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
    CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
    AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
)

hash=$( { cat "$0"; echo "$suite"; } | sha256sum | cut -c1-12)
image=greenhoused-cross:$suite-$hash

command -v docker >/dev/null || { echo "error: docker CLI missing; fix: apt-get install docker.io (or docker-ce-cli)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "error: no Docker engine answers ('docker info' failed); start dockerd" >&2; exit 1; }
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "cross image: $image exists (recipe hash $hash), not rebuilding" >&2
    echo "$image"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "error: debootstrap needs root; re-run with sudo" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: debootstrap missing; fix: apt-get install debootstrap" >&2; exit 1; }

mirror=$(debian_mirror)
root=$(mktemp -d /var/tmp/greenhoused-cross-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$(date +%s)
echo "cross image: debootstrap $suite (minbase + $packages) from $mirror" >&2
debootstrap_retry --variant=minbase --include="$packages" "$suite" "$root/rootfs" "$mirror" >&2
echo "cross image: debootstrap done in $(( $(date +%s) - start )) s" >&2

# Smaller image: no package caches, lists, docs or man pages (nothing in the image runs apt).
rm -rf "$root"/rootfs/var/cache/apt/archives/*.deb "$root"/rootfs/var/lib/apt/lists/* \
       "$root"/rootfs/usr/share/doc/* "$root"/rootfs/usr/share/man/* "$root"/rootfs/usr/share/locale/*
# Fail here, not halfway through a cargo build, if a toolchain piece is missing.
for tool in gcc aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc cmake make perl pkg-config; do
    chroot "$root/rootfs" sh -c "command -v $tool" >/dev/null || { echo "error: $tool missing in the image root" >&2; exit 1; }
done

changes=()
for e in "${envs[@]}"; do changes+=(--change "ENV $e"); done
changes+=(--change "LABEL org.greenhoused.recipe=$hash org.greenhoused.suite=$suite")
t=$(date +%s)
tar -C "$root/rootfs" --numeric-owner -c . | docker import "${changes[@]}" - "$image" >/dev/null
echo "cross image: imported $image in $(( $(date +%s) - t )) s ($(docker image inspect -f '{{.Size}}' "$image" \
    | awk '{printf "%.0f MB", $1 / 1e6}')); total $(( $(date +%s) - start )) s" >&2
echo "$image"
