#!/usr/bin/env bash
# Cross-build greenhoused for a Raspberry Pi with `cross` in the project's local Docker image.
#
#   scripts/cross-docker.sh TARGET [--light] [--deb] [-- extra cargo args]
#
# TARGET: aarch64-unknown-linux-gnu (64-bit Pi OS) or armv7-unknown-linux-gnueabihf (32-bit Pi OS).
# Builds or reuses the image (scripts/docker/build-cross-image.sh: Debian bullseye + Debian's cross gcc), selects it
# with cross's per-target override CROSS_TARGET_<TARGET>_IMAGE (unless that is already set), and runs
#   cross build --release --target TARGET
# then checks the binary with scripts/check-binary.sh (only glibc + libgcc_s dynamic, glibc floor <= 2.31).
# Output: $CARGO_TARGET_DIR/TARGET/release/greenhoused, CARGO_TARGET_DIR defaulting to target/cross: build scripts
# compiled inside the bullseye image must not mix with those of host builds in target/ (a build script linked on
# the host against a newer glibc fails to start inside the image: "GLIBC_2.34 not found").
# --deb: then package it (scripts/build-deb.sh --target TARGET --no-build, same target directory).
# --light: the release profile without LTO and with 16 codegen units (CARGO_PROFILE_RELEASE_LTO=off,
#   CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16; cross passes CARGO_* variables into the container). CI uses it to
#   save the single-threaded LTO step; same code, same dependencies, a larger binary. Releases: without --light.
# Needs: cross (`cargo install cross --locked`), the docker CLI and a Docker engine, root (debootstrap), binutils.
set -euo pipefail

usage() { echo "usage: $0 aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf [--light] [--deb] [-- cargo args]" >&2; exit 2; }
[ $# -ge 1 ] || usage
target=$1; shift
light=
deb=
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --light) light=1 ;;
        --deb) deb=1 ;;
        --) shift; extra=("$@"); break ;;
        *) usage ;;
    esac
    shift
done
case $target in
    aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf) ;;
    *) echo "error: unsupported target '$target'" >&2; usage ;;
esac
command -v cross >/dev/null || { echo "error: cross not found; fix: cargo install cross --locked" >&2; exit 1; }

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cross}
var=CROSS_TARGET_$(echo "${target//-/_}" | tr '[:lower:]' '[:upper:]')_IMAGE
if [ -z "${!var:-}" ]; then
    image=$(scripts/docker/build-cross-image.sh | tail -n 1)
    export "$var=$image"
fi
echo "+ $var=${!var}"

# cross 0.2.5 (the crates.io release) decides whether the toolchain is installed from `rustup toolchain list`,
# whose active toolchain reads "stable-x86_64-unknown-linux-gnu (active, default)" since rustup 1.28, so it would
# run `rustup toolchain add stable` (an update, or a failure offline) on every call (cross-rs/cross#1678). A
# rustup wrapper first on cross's PATH answers that one query with `toolchain list --quiet` (bare names, the
# upstream fix) and passes everything else through.
real_rustup=$(command -v rustup || true)
if [ -n "$real_rustup" ]; then
    shim=$(mktemp -d /tmp/greenhoused-cross-shim.XXXXXX)
    trap 'rm -rf "$shim"' EXIT
    cat > "$shim/rustup" <<SHIM
#!/bin/sh
# rustup < 1.28 has no --quiet here, and no suffix to strip either.
if [ "\$1" = toolchain ] && [ "\$2" = list ] && [ \$# -eq 2 ]; then
    "$real_rustup" toolchain list --quiet 2>/dev/null || exec "$real_rustup" toolchain list
    exit 0
fi
exec "$real_rustup" "\$@"
SHIM
    chmod +x "$shim/rustup"
    PATH=$shim:$PATH
fi

# Sources are fetched on the host (the container need not reach the registry): cross mounts the cargo home.
cargo fetch --locked --quiet
if [ -n "$light" ]; then
    export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
    echo "+ CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 (--light)"
fi
echo "+ cross build --release --target $target ${extra[*]}"
start=$(date +%s)
cross build --release --target "$target" "${extra[@]}"
echo "build time: $(( $(date +%s) - start )) s ($(cross --version 2>/dev/null | head -n1))"

bin=$CARGO_TARGET_DIR/$target/release/greenhoused
scripts/check-binary.sh --max-glibc 2.31 "$bin"
echo "binary: $bin"
if [ -n "$deb" ]; then
    scripts/build-deb.sh --target "$target" --no-build
fi
