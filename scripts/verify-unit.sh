#!/bin/sh
# Checks systemd/greenhoused.service: `systemd-analyze verify` must pass and the offline security exposure must
# be at most MAX_EXPOSURE (default 2.0). Needs systemd-analyze (Debian: apt-get install systemd); PID 1 need not
# be systemd.
#
# `verify` insists that ExecStart= names an existing executable. When /usr/bin/greenhoused is not installed, the
# unit is verified as a temporary copy whose ExecStart= points at $GREENHOUSED_BIN (default: a stub script);
# nothing else in the unit changes.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
unit="$here/systemd/greenhoused.service"
sysusers="$here/systemd/greenhoused.sysusers"
max="${MAX_EXPOSURE:-2.0}"

command -v systemd-analyze >/dev/null || { echo "verify-unit: systemd-analyze not found (apt-get install systemd)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# 1. verify
if [ -x /usr/bin/greenhoused ] && [ -z "${GREENHOUSED_BIN:-}" ]; then
    checked="$unit"
else
    bin="${GREENHOUSED_BIN:-$tmp/greenhoused}"
    if [ ! -x "$bin" ]; then
        printf '#!/bin/sh\nexit 0\n' > "$bin"
        chmod +x "$bin"
    fi
    checked="$tmp/greenhoused.service"
    sed "s|^ExecStart=/usr/bin/greenhoused|ExecStart=$bin|" "$unit" > "$checked"
    grep -q "^ExecStart=$bin" "$checked" || { echo "verify-unit: ExecStart=/usr/bin/greenhoused not found in $unit" >&2; exit 1; }
fi
out=$(systemd-analyze verify "$checked" 2>&1) || { printf '%s\n' "$out" >&2; echo "verify-unit: systemd-analyze verify failed" >&2; exit 1; }
# verify exits 0 on some problems it only warns about (e.g. unknown keys): any output is a failure.
if [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    echo "verify-unit: systemd-analyze verify reported problems" >&2
    exit 1
fi
echo "verify-unit: systemd-analyze verify: OK"

# 2. sysusers syntax (dry run against an empty root)
if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$tmp/root/etc"
    systemd-sysusers --root="$tmp/root" "$sysusers" >/dev/null 2>"$tmp/sysusers.err" || { cat "$tmp/sysusers.err" >&2; exit 1; }
    grep -q '^greenhoused:' "$tmp/root/etc/passwd" || { echo "verify-unit: sysusers did not create greenhoused" >&2; exit 1; }
    for g in gpio i2c; do
        grep -q "^$g:.*greenhoused" "$tmp/root/etc/group" || { echo "verify-unit: greenhoused not in group $g" >&2; exit 1; }
    done
    echo "verify-unit: sysusers.d: OK"
fi

# 3. security exposure
report=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || true
score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for greenhoused.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
    printf '%s\n' "$report" >&2
    echo "verify-unit: no exposure score in systemd-analyze security output" >&2
    exit 1
fi
if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
    printf '%s\n' "$report" | grep '✗' >&2 || true
    echo "verify-unit: exposure $score is above $max" >&2
    exit 1
fi
echo "verify-unit: security exposure $score (max $max): OK"
