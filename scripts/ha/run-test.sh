#!/usr/bin/env bash
# greenhoused against a real Home Assistant Core: discovery, entities, control, restarts, removal, a clean log.
#
#   scripts/ha/run-test.sh [--out FILE]
#
# Builds (once, cached by content hash) a Debian trixie root with Home Assistant in a venv (build-rootfs.sh),
# then on loopback: a mosquitto on a free port, Home Assistant (chroot, own mount and PID namespace, --skip-pip:
# nothing is fetched) with the MQTT integration added through its config flow, and greenhoused --mock-hardware.
# The phases are in check.py. Ends with "N passed, N failed"; exit 0 only if nothing failed. Needs root,
# mosquitto, mosquitto_pub, unshare, python3, debootstrap (first run). GREENHOUSED_BIN: the daemon to test (default target/debug/greenhoused,
# built if missing). Every wait is bounded; the whole run takes about 2-4 minutes once the root exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=
[ "${1:-}" = "--out" ] && out=$2
if [ -n "$out" ]; then
    exec > >(tee "$out") 2>&1
fi
start=$(date +%s)
step() { echo; echo "=== $* (t+$(( $(date +%s) - start )) s)"; }

for tool in mosquitto mosquitto_pub unshare chroot python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool missing; fix: apt-get install mosquitto mosquitto-clients util-linux python3" >&2; exit 1; }
done

step "Home Assistant root (scripts/ha/build-rootfs.sh; cached)"
root=$("$here/build-rootfs.sh" | tail -n 1)
ha_version=$(chroot "$root" /opt/ha/bin/python -c 'import homeassistant.const as c; print(c.__version__)')
echo "Home Assistant $ha_version in $root"

bin=${GREENHOUSED_BIN:-$repo/target/debug/greenhoused}
if [ ! -x "$bin" ]; then
    step "cargo build (no $bin)"
    (cd "$repo" && cargo build --quiet)
fi

work=$(mktemp -d /tmp/greenhoused-ha.XXXXXX)
mkdir -p "$root/work" "$work/config"
cp "$here/check.py" "$work/"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # Only our own children: a plain `wait` would also wait for the `tee` of --out, which waits for us.
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mqtt_port=$(free_port)
ha_port=$(free_port)
export MQTT_PORT=$mqtt_port HA_URL=http://127.0.0.1:$ha_port HA_TOKEN_FILE=/work/token
export PREFIX=greenhoused-test/hatest DEVICE_ID=hatest DEVICE_NAME="Greenhouse test"

passed=0 failed=0
# Run a check.py phase inside the root (its Python has aiohttp and paho-mqtt); count its ok/FAIL lines.
phase() {
    local log=$work/phase.log rc=0
    unshare --mount sh -c "mount --bind '$work' '$root/work' && exec chroot '$root' /opt/ha/bin/python /work/check.py $*" \
        > "$log" 2>&1 || rc=$?
    cat "$log"
    passed=$(( passed + $(grep -c '^ok:' "$log" || true) ))
    failed=$(( failed + $(grep -c '^FAIL:' "$log" || true) ))
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL:' "$log"; then
        echo "FAIL: check.py $1 exited $rc"; failed=$(( failed + 1 ))
    fi
    return 0
}
expect() { # expect CONDITION-EXIT-CODE MESSAGE
    if [ "$1" -eq 0 ]; then echo "ok: $2"; passed=$((passed + 1)); else echo "FAIL: $2"; failed=$((failed + 1)); fi
}

step "mosquitto on 127.0.0.1:$mqtt_port"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mqtt_port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
pids+=($!)

cat > "$work/config/configuration.yaml" <<YAML
homeassistant:
  name: greenhoused test
  unit_system: metric
  time_zone: UTC
  latitude: 52.0
  longitude: 5.0
  elevation: 0
http:
  server_host: 127.0.0.1
  server_port: $ha_port
api:
config:
logger:
  default: info
YAML
phase token /work/config | tail -n 1 > "$work/token.out" || true
grep -v '^ok:\|^FAIL:' "$work/token.out" > "$work/token"
[ -s "$work/token" ] || { echo "error: no token"; cat "$work/phase.log"; exit 1; }

ha_pid=
start_ha() {
    : > "$work/config/home-assistant.log"
    unshare --mount --pid --fork --kill-child sh -c "mount -t proc proc '$root/proc' && mount --bind '$work' '$root/work' && \
        exec chroot '$root' /opt/ha/bin/hass -c /work/config --skip-pip --log-file /work/config/home-assistant.log" \
        >> "$work/ha.out" 2>&1 &
    ha_pid=$!
    pids+=("$ha_pid")
    local t0; t0=$(date +%s)
    until python3 -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]}), timeout=5)' \
            "$HA_URL/api/" "$(cat "$work/token")" 2>/dev/null; do
        if ! kill -0 "$ha_pid" 2>/dev/null; then echo "error: Home Assistant exited"; tail -n 40 "$work/ha.out"; exit 1; fi
        [ $(( $(date +%s) - t0 )) -lt 300 ] || { echo "error: Home Assistant API not up within 300 s"; tail -n 40 "$work/config/home-assistant.log"; exit 1; }
        sleep 1
    done
    echo "Home Assistant API up in $(( $(date +%s) - t0 )) s"
}
stop_ha() {
    # hass is PID 1 of its namespace, the child of unshare: SIGTERM makes it stop cleanly.
    local child; child=$(pgrep -P "$ha_pid" | head -n 1 || true)
    [ -n "$child" ] && kill -TERM "$child"
    local i=0
    while kill -0 "$ha_pid" 2>/dev/null && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
    kill -0 "$ha_pid" 2>/dev/null && { echo "Home Assistant did not stop within 120 s; killing it"; kill -KILL "$ha_pid"; }
    wait "$ha_pid" 2>/dev/null || true
    cat "$work/config/home-assistant.log" >> "$work/ha-all.log"
}

daemon_pid=
start_daemon() { # start_daemon LAMP_WATTS DISCOVERY
    cat > "$work/greenhoused.toml" <<TOML
[device]
id = "$DEVICE_ID"
name = "$DEVICE_NAME"
[mqtt]
url = "mqtt://127.0.0.1:$mqtt_port"
topic_prefix = "$PREFIX"
[sensor]
interval_s = 1.0
[control]
min_on_s = 1
min_off_s = 1
window = ""
[mock]
ambient = "300"
TOML
    if [ "$has_ha_config" = yes ]; then
        printf '[dli]\nlamp_watts = %s\n[homeassistant]\ndiscovery = %s\n' "$1" "$2" >> "$work/greenhoused.toml"
    fi
    STATE_DIRECTORY=$work "$bin" -c "$work/greenhoused.toml" --mock-hardware --log-target stderr >> "$work/daemon.log" 2>&1 &
    daemon_pid=$!
    pids+=("$daemon_pid")
}
stop_daemon() {
    kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
}

# [homeassistant] and dli.lamp_watts come with the configuration of issue 10; an older daemon rejects them.
printf '[homeassistant]\ndiscovery = true\n[dli]\nlamp_watts = 1\n' > "$work/probe.toml"
if "$bin" -c "$work/probe.toml" --check-config >/dev/null 2>&1; then has_ha_config=yes; else has_ha_config=no; fi
echo "daemon: $("$bin" --version); [homeassistant] and dli.lamp_watts configurable: $has_ha_config"
lamp_watts=0
[ "$has_ha_config" = yes ] && lamp_watts=150
export LAMP_WATTS=$lamp_watts

step "Home Assistant $ha_version: first start, MQTT integration through its config flow"
start_ha
phase setup-mqtt
stop_ha
# mqtt_statestream needs the MQTT config entry at start-up: added now, for the starts that follow.
printf 'mqtt_statestream:\n  base_topic: ha_states\n  publish_attributes: true\n' >> "$work/config/configuration.yaml"
step "Home Assistant: second start, with mqtt_statestream"
start_ha

step "greenhoused --mock-hardware (lamp_watts = $lamp_watts): entities, device classes, units, states"
start_daemon "$lamp_watts" true
phase entities

step "control from Home Assistant: switch, back-to-auto button, DLI target number"
phase control

step "Home Assistant restart: the retained config is cleared while it is down; the daemon re-announces"
stop_ha
mosquitto_pub -p "$mqtt_port" -t "homeassistant/device/greenhoused_$DEVICE_ID/config" -r -n
phase watch-reannounce /work/reannounce.json &
watcher=$!
sleep 1
start_ha
wait "$watcher" || true
phase reannounced /work/reannounce.json

if [ "$has_ha_config" = yes ]; then
    step "removal: restart the daemon with lamp_watts = 0, the energy sensor disappears"
    stop_daemon
    start_daemon 0 true
    LAMP_WATTS=150 phase removed lamp_energy

    step "removal: discovery = false removes the device"
    stop_daemon
    start_daemon 0 false
    phase device-removed
    step "removal: Home Assistant restarted with that retained removal: the device stays away, no warning"
    stop_ha
    start_ha
    phase device-removed
    stop_daemon
else
    echo "note: removal phases skipped: this daemon has no [homeassistant] / dli.lamp_watts keys yet"
fi

step "Home Assistant's log: no MQTT warning or error"
stop_ha
[ -z "$(kill -0 "$daemon_pid" 2>/dev/null && echo running)" ] || stop_daemon
# Lines from the MQTT integration, or naming our topics or ids, at WARNING or above.
# (greenhouse_test: the entity ids' prefix, from the device name.)
bad=$(grep -E '^[0-9-]+ [0-9:.]+ (WARNING|ERROR|CRITICAL) ' "$work/ha-all.log" \
      | grep -E 'homeassistant\.components\.mqtt|greenhoused|greenhouse_test|'"$PREFIX" || true)
if [ -z "$bad" ]; then expect 0 "no MQTT warning or error in Home Assistant's log"; else
    echo "$bad"; expect 1 "no MQTT warning or error in Home Assistant's log"; fi
# Any other warning fails too, except these, which come from how the test runs Home Assistant (--skip-pip, no
# zlib-ng/isal wheels in the root, a loaded CI machine), not from anything greenhoused sent.
benign='Skipping pip installation of required modules|zlib_ng and isal are not available|Setup of .* is taking over'
other=$(grep -E '^[0-9-]+ [0-9:.]+ (WARNING|ERROR|CRITICAL) ' "$work/ha-all.log" | grep -vE "$benign" || true)
if [ -z "$other" ]; then expect 0 "no other warning or error in Home Assistant's log"; else
    echo "$other" | cut -c1-300 | head -n 20; expect 1 "no other warning or error in Home Assistant's log"; fi
echo "(the daemon's warnings, for information:)"; grep -E "WARN|ERROR" "$work/daemon.log" | head -n 10 || true

step "done: Home Assistant $ha_version, greenhoused $("$bin" --version | awk '{print $2}') in $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
