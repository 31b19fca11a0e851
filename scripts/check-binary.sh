#!/usr/bin/env bash
# Print and check what a greenhoused binary needs from the system it runs on.
#
#   scripts/check-binary.sh [--max-glibc X.Y] [--allow LIB]... BINARY...
#
# For each BINARY (any ELF architecture: it reads the headers with readelf, nothing is run):
#   - its dynamic dependencies (DT_NEEDED). Allowed: glibc's libraries (libc, libm, libpthread, libdl, librt,
#     the ld-linux loader) and libgcc_s; anything else fails (e.g. libssl.so.3: OpenSSL was not linked
#     statically), unless named with --allow LIB (repeatable, an exact soname);
#   - its glibc floor: the highest GLIBC_x.y symbol version it needs (the oldest glibc it starts with). With
#     --max-glibc X.Y a higher floor fails (bullseye has glibc 2.31, bookworm 2.36);
#   - whether OpenSSL is inside (its version string, e.g. "OpenSSL 3.5.1"): informational.
# Exit status: 0 every check passed, 1 a check failed, 2 usage error or unreadable binary.
set -uo pipefail

usage() { echo "usage: $0 [--max-glibc X.Y] [--allow SONAME]... BINARY..." >&2; exit 2; }
max_glibc=
allowed=(libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libgcc_s.so.1)
bins=()
while [ $# -gt 0 ]; do
    case $1 in
        --max-glibc) [ $# -ge 2 ] || usage; max_glibc=$2; shift
            [[ $max_glibc =~ ^[0-9]+\.[0-9]+$ ]] || { echo "error: --max-glibc wants X.Y (e.g. 2.31), got '$max_glibc'" >&2; exit 2; } ;;
        --allow) [ $# -ge 2 ] || usage; allowed+=("$2"); shift ;;
        -h|--help) usage ;;
        -*) echo "error: unknown option $1" >&2; usage ;;
        *) bins+=("$1") ;;
    esac
    shift
done
[ ${#bins[@]} -ge 1 ] || usage
command -v readelf >/dev/null || { echo "error: readelf missing; fix: apt-get install binutils" >&2; exit 2; }

failures=0
# version_le A B: A <= B for dotted versions.
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }

for bin in "${bins[@]}"; do
    echo "== $bin"
    if ! header=$(readelf -h "$bin" 2>&1); then
        echo "FAIL $bin: not a readable ELF file: $(echo "$header" | tail -n1)"; exit 2
    fi
    machine=$(echo "$header" | sed -n 's/^ *Machine: *//p')
    printf '   machine: %s, %s bytes (%s)\n' "$machine" "$(stat -c %s "$bin")" "$(du -h "$bin" | cut -f1)"

    needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p')
    echo "   needs: $(echo $needed)"
    bad=()
    for lib in $needed; do
        ok=
        for a in "${allowed[@]}"; do [ "$lib" = "$a" ] && ok=1; done
        case $lib in ld-linux*.so.*) ok=1 ;; esac
        [ -n "$ok" ] || bad+=("$lib")
    done
    if [ -z "$needed" ]; then
        echo "FAIL $bin: no dynamic dependencies at all (not a dynamically linked glibc binary)"; failures=$((failures + 1))
    elif [ ${#bad[@]} -eq 0 ]; then
        echo "PASS $bin: dynamic dependencies are only glibc and libgcc_s${allowed[6]:+ (and the --allow list)}"
    else
        echo "FAIL $bin: dynamic dependencies beyond glibc/libgcc_s: ${bad[*]}"
        case " ${bad[*]} " in *libssl*|*libcrypto*)
            echo "     (OpenSSL is linked dynamically: build with openssl-sys's vendored feature, see Cargo.toml)" ;;
        esac
        failures=$((failures + 1))
    fi

    # The version-needs section lists every GLIBC_x.y the binary references.
    floor=$(readelf -V --wide "$bin" | grep -oE 'Name: GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/.*GLIBC_//' | sort -uV | tail -n1)
    if [ -z "$floor" ]; then
        echo "FAIL $bin: no GLIBC_ symbol versions found"; failures=$((failures + 1))
    elif [ -z "$max_glibc" ]; then
        echo "   glibc floor: $floor (highest GLIBC_ symbol version needed)"
    elif version_le "$floor" "$max_glibc"; then
        echo "PASS $bin: glibc floor $floor <= $max_glibc"
    else
        echo "FAIL $bin: glibc floor $floor > $max_glibc; the symbols that need more than $max_glibc:"
        readelf --dyn-syms --wide "$bin" | grep -oE '[^ ]+@GLIBC_[0-9.]+' | sort -u | while IFS=@ read -r sym ver; do
            version_le "${ver#GLIBC_}" "$max_glibc" || echo "     $sym@$ver"
        done | head -n 15
        failures=$((failures + 1))
    fi

    ssl=$(grep -aoE 'OpenSSL [0-9]+\.[0-9]+\.[0-9]+[a-z]*' "$bin" | head -n1)
    if [ -n "$ssl" ]; then
        echo "   OpenSSL: $ssl built in"
    else
        echo "   OpenSSL: no version string inside (dynamic or not linked)"
    fi
done

if [ "$failures" -eq 0 ]; then echo "check-binary: all checks passed"; exit 0; fi
echo "check-binary: $failures check(s) failed"; exit 1
