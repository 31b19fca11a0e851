#!/bin/sh
# Builds the greenhoused .deb with cargo-deb and checks what it holds.
#
#   scripts/build-deb.sh                      # amd64 (host), release build
#   scripts/build-deb.sh --target aarch64-unknown-linux-gnu [--no-build]
#
# Extra arguments go to `cargo deb` (e.g. --no-build to package a binary already built for --target, such as the
# one scripts/cross-build.sh or scripts/cross-docker.sh makes). Checks the contents, the Architecture (arm64, armhf
# or the host's), that Depends names libc6 and systemd (and not libssl: OpenSSL is static), and that
# the packaged binary is an ELF for that architecture whose glibc floor the libc6 version covers. Cross-built ARM
# binaries are packaged with the arm-cross variant of Cargo.toml's deb metadata (explicit libc6 version). Needs cargo-deb (`cargo install cargo-deb --locked`),
# dpkg-deb and readelf (binutils).
# Prints the path of the .deb on the last line of stdout.
set -eu

cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || { echo "build-deb: cargo-deb not found: cargo install cargo-deb --locked" >&2; exit 2; }
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb not found: apt-get install dpkg" >&2; exit 2; }
for f in config/greenhoused.toml README.md systemd/greenhoused.service systemd/greenhoused.sysusers; do
    [ -f "$f" ] || { echo "build-deb: $f is missing" >&2; exit 1; }
done

# The Debian architecture the package must carry, from --target (default: the host's).
target=
prev=
for a in "$@"; do
    case $a in --target=*) target=${a#--target=} ;; esac
    [ "$prev" = --target ] && target=$a
    prev=$a
done
case $target in
    "") arch=$(dpkg --print-architecture); machine= ;;
    aarch64-unknown-linux-gnu) arch=arm64; machine=AArch64 ;;
    armv7-unknown-linux-gnueabihf) arch=armhf; machine=ARM ;;
    x86_64-unknown-linux-gnu) arch=amd64; machine=X86-64 ;;
    *) echo "build-deb: no Debian architecture known for --target $target" >&2; exit 2 ;;
esac

# Cross-built ARM binaries get the arm-cross variant (Cargo.toml: Depends with the glibc they were linked against,
# not the build host's), unless a --variant is given.
variant=
case $target in
    aarch64-*|armv7-*) case " $* " in *" --variant"*) ;; *) variant=--variant=arm-cross ;; esac ;;
esac

deb=$(cargo deb "$@" $variant | tail -n 1)
[ -f "$deb" ] || { echo "build-deb: cargo deb did not report a .deb (got '$deb')" >&2; exit 1; }

info=$(dpkg-deb -I "$deb")
contents=$(dpkg-deb -c "$deb")
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
postinst=$(dpkg-deb -I "$deb" postinst 2>/dev/null || true)
printf '%s\n\n%s\n\n' "$info" "$contents" >&2

fail() { echo "build-deb: $deb: $*" >&2; exit 1; }
has() { printf '%s\n' "$contents" | grep -q -- "$1" || fail "missing $2"; }

has ' \./usr/bin/greenhoused$' "the binary in /usr/bin"
has '^-rwxr-xr-x .* \./usr/bin/greenhoused$' "mode 0755 on /usr/bin/greenhoused"
has ' \./\(usr/\)\?lib/systemd/system/greenhoused\.service$' "the systemd unit"
has ' \./usr/lib/sysusers\.d/greenhoused\.conf$' "the sysusers.d file"
has ' \./etc/greenhoused/greenhoused\.toml$' "the example configuration"
has ' \./usr/share/doc/greenhoused/README\.md$' "the README"
printf '%s\n' "$conffiles" | grep -qx '/etc/greenhoused/greenhoused.toml' || fail "greenhoused.toml is not a conffile"
printf '%s\n' "$postinst" | grep -q 'systemd-sysusers' || fail "postinst does not create the user"
# Nothing enabled or started without the admin: the unit is enabled again only if it was enabled before (the
# "debian-installed" branch), and the only service action is the try-restart of an upgrade.
printf '%s\n' "$postinst" | grep -q 'deb-systemd-helper debian-installed' || fail "postinst would enable the unit on install"
if printf '%s\n' "$postinst" | grep 'deb-systemd-invoke' | grep -vq 'try-restart'; then
    printf '%s\n' "$postinst" >&2
    fail "postinst starts or restarts the service by itself"
fi

# Architecture and dependencies: the right arch; glibc (+ libgcc_s) from $auto, and the sysusers provider.
field() { printf '%s\n' "$info" | sed -n "s/^ $1: //p"; }
[ "$(field Architecture)" = "$arch" ] || fail "Architecture is '$(field Architecture)', expected $arch"
depends=$(field Depends)
printf '%s\n' "$depends" | grep -q 'libc6' || fail "Depends ($depends) does not name libc6"
printf '%s\n' "$depends" | grep -q 'systemd' || fail "Depends ($depends) does not name systemd (sysusers)"
# Every build links OpenSSL statically (Cargo.toml), so the package must not pull libssl in.
if printf '%s\n' "$depends" | grep -q 'libssl'; then
    fail "Depends ($depends) names libssl, but the $arch binary links OpenSSL statically"
fi
# The packaged binary itself: an ELF for that machine, whose glibc floor the libc6 dependency covers.
unpacked=$(mktemp -d)
dpkg-deb -x "$deb" "$unpacked"
elf=$(readelf -h "$unpacked/usr/bin/greenhoused" 2>/dev/null | sed -n 's/^ *Machine: *//p')
floor=$(readelf -V --wide "$unpacked/usr/bin/greenhoused" | grep -oE 'Name: GLIBC_[0-9]+(\.[0-9]+)+' \
    | sed 's/.*GLIBC_//' | sort -uV | tail -n 1)
rm -rf "$unpacked"
if [ -n "$machine" ]; then
    printf '%s\n' "$elf" | grep -q "$machine" || fail "/usr/bin/greenhoused is a '$elf' binary, expected $machine"
fi
libc_min=$(printf '%s\n' "$depends" | sed -n 's/.*libc6[^,]*(>= \([0-9.]*\)[^)]*).*/\1/p')
if [ -n "$libc_min" ] && [ -n "$floor" ] && \
   [ "$(printf '%s\n%s\n' "$floor" "$libc_min" | sort -V | tail -n 1)" != "$libc_min" ]; then
    fail "Depends asks libc6 >= $libc_min, but the binary needs glibc $floor (raise it in Cargo.toml's arm-cross variant)"
fi
echo "build-deb: $deb: Architecture $arch, Depends: $depends; /usr/bin/greenhoused: $elf, glibc floor $floor" >&2

echo "build-deb: $deb: contents OK" >&2
echo "$deb"
