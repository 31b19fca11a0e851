#!/usr/bin/env bash
# Smoke-test a cross-built greenhoused under qemu-user against a real local mosquitto.
#
#   scripts/qemu-smoke.sh [TARGET] [BINARY]
#
# TARGET: aarch64-unknown-linux-gnu (default), armv7-unknown-linux-gnueabihf, or `native` (no qemu; the
#         same checks against a host binary, default target/debug/greenhoused).
# BINARY: default target/TARGET/release/greenhoused (build it with scripts/cross-build.sh TARGET).
# QEMU_SYSROOT: the target's root for qemu -L (its glibc and loader); default the host's libc6-*-cross
#               (/usr/aarch64-linux-gnu, /usr/arm-linux-gnueabihf). CI points it at the cross image's copy, Debian
#               bullseye's glibc 2.31, so the binary is run against the oldest glibc it claims to need.
#
# Starts mosquitto on a free loopback port, runs `greenhoused --mock-hardware` under qemu with a temporary
# config pointing at it, and checks: --version runs, a reading arrives on P/luminosity, `on` sent to
# P/light/set comes back as P/light = on, SIGTERM gives exit 0, and P/status is `offline` afterwards.
# Prints PASS/FAIL per check, exits 1 if any check failed. Bounded: every wait has a deadline.
# Needs: qemu-user, mosquitto, mosquitto-clients, python3 (free port), the target's libc (libc6-*-cross).
set -uo pipefail

target=${1:-aarch64-unknown-linux-gnu}
cd "$(dirname "$0")/.." || exit 2
bin=${2:-target/$target/release/greenhoused}
case $target in
    aarch64-unknown-linux-gnu)     qemu="qemu-aarch64"; sysroot=/usr/aarch64-linux-gnu; libc=libc6-arm64-cross ;;
    armv7-unknown-linux-gnueabihf) qemu="qemu-arm";     sysroot=/usr/arm-linux-gnueabihf; libc=libc6-armhf-cross ;;
    native) qemu=; sysroot=; bin=${2:-target/debug/greenhoused} ;;
    *) echo "usage: $0 [aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf|native] [BINARY]" >&2; exit 2 ;;
esac
sysroot=${QEMU_SYSROOT:-$sysroot}
run=()
[ -n "$qemu" ] && run=("$qemu" -L "$sysroot")
prefix=laboratory/greenhouse
startup_s=${SMOKE_STARTUP_S:-60}      # qemu-user is slow; first reading may take a while

for tool in $qemu mosquitto mosquitto_sub mosquitto_pub python3; do
    command -v "$tool" >/dev/null || { echo "FAIL setup: $tool not found (apt-get install qemu-user mosquitto mosquitto-clients)"; exit 1; }
done
[ -x "$bin" ] || { echo "FAIL setup: $bin missing; build it with scripts/cross-build.sh $target"; exit 1; }
[ -z "$sysroot" ] || [ -d "$sysroot" ] || { echo "FAIL setup: $sysroot missing (apt-get install $libc)"; exit 1; }

work=$(mktemp -d /tmp/greenhoused-smoke.XXXXXX)
broker_pid=; daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
    [ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
show_log() { echo "---- daemon log (last 30 lines) ----"; tail -n 30 "$work/daemon.log"; echo "----"; }

# Check 1: the binary runs under qemu at all.
if out=$(timeout 60 "${run[@]}" "$bin" --version 2>&1); then
    pass "version: $out"
else
    fail "version: '$bin --version' ${qemu:+under $qemu }failed: $out"; exit 1
fi

# A real broker on a free loopback port (retry if another process grabs the port in between).
port=
for _ in 1 2 3 4 5; do
    candidate=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$candidate" > "$work/mosquitto.conf"
    mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 50); do
        mosquitto_pub -h 127.0.0.1 -p "$candidate" -t smoke/ping -m x 2>/dev/null && { port=$candidate; break; }
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] && break
    kill "$broker_pid" 2>/dev/null; wait "$broker_pid" 2>/dev/null; broker_pid=
done
[ -n "$port" ] || { fail "broker: mosquitto did not start: $(tail -n 3 "$work/mosquitto.log")"; exit 1; }
pass "broker: mosquitto on 127.0.0.1:$port"
sub() { mosquitto_sub -h 127.0.0.1 -p "$port" "$@"; }

# Ambient well above off_above_lux so the rule keeps the light OFF: `on` can only come from the command.
cat > "$work/greenhoused.toml" <<TOML
[mqtt]
url = "mqtt://127.0.0.1:$port"
topic_prefix = "$prefix"

[sensor]
interval_s = 1.0

[control]
window = ""

[mock]
ambient = "1000"
lamp_lux = 400
TOML

"${run[@]}" "$bin" --mock-hardware -c "$work/greenhoused.toml" --log-target stderr -v \
    > "$work/daemon.log" 2>&1 &
daemon_pid=$!

# Check 2: a reading arrives, as a plain decimal number.
if lux=$(sub -t "$prefix/luminosity" -C 1 -W "$startup_s"); then
    if [[ $lux =~ ^[0-9]+(\.[0-9]+)?$ ]]; then pass "reading: $prefix/luminosity = $lux"
    else fail "reading: $prefix/luminosity payload '$lux' is not a plain decimal number"; fi
else
    fail "reading: no $prefix/luminosity within ${startup_s}s"; show_log
fi

# Check 3: a command is applied and echoed (P/light is retained; poll it until `on` or the deadline).
light=
deadline=$(( $(date +%s) + 30 ))
while [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$daemon_pid" 2>/dev/null; do
    mosquitto_pub -h 127.0.0.1 -p "$port" -t "$prefix/light/set" -m on
    light=$(sub -t "$prefix/light" -C 1 -W 2 2>/dev/null) || light=
    [ "$light" = on ] && break
done
if [ "$light" = on ]; then pass "command: $prefix/light/set on -> $prefix/light = on"
else fail "command: $prefix/light stayed '${light:-<none>}' after 'on' on $prefix/light/set"; show_log; fi

# Check 4: SIGTERM -> clean exit 0 (qemu-user forwards the signal to the guest).
if kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    code=
    for _ in $(seq 300); do   # up to 30 s
        kill -0 "$daemon_pid" 2>/dev/null || { wait "$daemon_pid"; code=$?; break; }
        sleep 0.1
    done
    if [ -z "$code" ]; then fail "stop: still running 30 s after SIGTERM"; show_log
    elif [ "$code" -eq 0 ]; then pass "stop: SIGTERM -> exit 0"
    else fail "stop: SIGTERM -> exit $code (expected 0)"; show_log; fi
    daemon_pid=
else
    wait "$daemon_pid"; code=$?; daemon_pid=
    fail "stop: daemon had already exited with $code before SIGTERM"; show_log
fi

# Check 5: the graceful stop left P/status = offline retained.
status=$(sub -t "$prefix/status" -C 1 -W 5 2>/dev/null) || status=
if [ "$status" = offline ]; then pass "status: $prefix/status = offline (retained) after stop"
else fail "status: $prefix/status = '${status:-<none>}' after stop (expected offline)"; fi

if [ "$failures" -eq 0 ]; then echo "qemu smoke ($target): all checks passed"; exit 0; fi
echo "qemu smoke ($target): $failures check(s) failed"; exit 1
