#!/usr/bin/env bash
# Cross-build greenhoused for a Raspberry Pi WITHOUT Docker, with Debian's cross gcc.
#
#   scripts/cross-build.sh TARGET [--debug] [-- extra cargo args]
#
# TARGET: aarch64-unknown-linux-gnu (64-bit Pi OS) or armv7-unknown-linux-gnueabihf (32-bit Pi OS).
# Builds `--release` by default (on ARM, Cargo.toml compiles OpenSSL from source and links it statically, so no
# target libssl-dev is needed), then strips a copy to target/TARGET/release/greenhoused.stripped, prints sizes and
# runs scripts/check-binary.sh (only glibc + libgcc_s dynamic; the glibc floor is the build host's: Debian 12's
# cross libc gives binaries for Raspberry Pi OS bookworm and later; scripts/cross-docker.sh gives bullseye's).
#
# Needs (Debian/Ubuntu):
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross      # aarch64
#   apt-get install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross    # armv7
#   apt-get install cmake perl make                                  # paho C lib + vendored OpenSSL
#   rustup target add TARGET
set -euo pipefail

usage() { echo "usage: $0 aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf [--debug] [-- cargo args]" >&2; exit 2; }

[ $# -ge 1 ] || usage
target=$1; shift
profile=release
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --release) profile=release ;;
        --debug) profile=debug ;;
        --) shift; extra=("$@"); break ;;
        *) usage ;;
    esac
    shift
done

case $target in
    aarch64-unknown-linux-gnu)     gnu=aarch64-linux-gnu ;;
    armv7-unknown-linux-gnueabihf) gnu=arm-linux-gnueabihf ;;
    *) echo "error: unsupported target '$target'" >&2; usage ;;
esac

missing=()
for tool in "$gnu-gcc" "$gnu-ar" "$gnu-strip" cmake perl make file; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "error: missing tools: ${missing[*]}" >&2
    echo "fix:   apt-get install gcc-$gnu cmake perl make (see the header of $0)" >&2
    exit 1
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "error: Rust standard library for $target is not installed; fix: rustup target add $target" >&2
    exit 1
fi

# cargo/cc/cmake crate conventions: <VAR>_<target with underscores> and CARGO_TARGET_<TARGET>_LINKER.
t_lower=${target//-/_}
t_upper=$(echo "$t_lower" | tr '[:lower:]' '[:upper:]')
export "CARGO_TARGET_${t_upper}_LINKER=$gnu-gcc"
export "CC_${t_lower}=$gnu-gcc"
export "AR_${t_lower}=$gnu-ar"
# The cmake crate (paho-mqtt-sys builds the Paho C library with it) sets CMAKE_SYSTEM_NAME=Linux and
# CMAKE_SYSTEM_PROCESSOR itself when target != host and takes the compiler from CC_<target>, so no
# toolchain file is needed. OpenSSL comes from openssl-src (openssl-sys "vendored" on ARM, see Cargo.toml).

cd "$(dirname "$0")/.."
cargo_args=(build --target "$target")
[ "$profile" = release ] && cargo_args+=(--release)
echo "+ cargo ${cargo_args[*]} ${extra[*]}"
start=$(date +%s)
cargo "${cargo_args[@]}" "${extra[@]}"
echo "build time: $(( $(date +%s) - start )) s"

bin=target/$target/$profile/greenhoused
stripped=$bin.stripped
"$gnu-strip" -o "$stripped" "$bin"
file "$bin" | sed 's/, BuildID[^,]*//'
printf 'size: %s bytes (%s), stripped copy %s: %s bytes (%s)\n' \
    "$(stat -c %s "$bin")" "$(du -h "$bin" | cut -f1)" \
    "$stripped" "$(stat -c %s "$stripped")" "$(du -h "$stripped" | cut -f1)"
scripts/check-binary.sh "$bin"
