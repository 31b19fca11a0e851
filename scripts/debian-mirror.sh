# shellcheck shell=bash
# Sourced by the debootstrap scripts. debian_mirror prints the Debian mirror to debootstrap from:
# $DEBIAN_MIRROR, else the first .../debian URI of the host's apt sources (main archive, not -security),
# else http://deb.debian.org/debian. No trailing slash.
debian_mirror() {
    local mirror=${DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then
        # deb822 *.sources or one-line *.list files.
        mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
            | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "${mirror%/}"
}

# debootstrap_retry ARGS...: debootstrap ARGS, up to 3 attempts (a mirror caught mid-update gives a transient
# "Invalid Release signature" or a hash mismatch). The target directory is the second-to-last argument and is
# wiped between attempts.
debootstrap_retry() {
    local dir=${*: -2:1} attempt
    for attempt in 1 2 3; do
        debootstrap "$@" && return 0
        [ "$attempt" -eq 3 ] && { echo "error: debootstrap failed 3 times (see $dir/debootstrap/debootstrap.log)" >&2; return 1; }
        echo "debootstrap attempt $attempt failed; retrying in 10 s" >&2
        rm -rf "$dir"; sleep 10
    done
}
