#!/bin/sh
# Regenerate docs/dashboard.png and docs/dashboard-phone.png: a daemon on mock hardware (release build) runs for
# 270 s at mock.time_scale = 10000 with the DLI strategy (up to 31 simulated days; a loaded 2-core machine manages
# about two weeks), then headless chromium photographs the page at desktop and phone width. Needs chromium (apt-get install chromium). Loopback only; ports 18080 (HTTP) and 18831 (embedded broker).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin greenhoused
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/state"
cat > "$work/demo.toml" <<'TOML'
[device]
id = "demo"
[mqtt]
url = "embedded"
embedded_listen = "127.0.0.1:18831"
[control]
strategy = "dli"
[dli]
target_mol = 14
lamp_watts = 150
default_price = 0.30
[mock]
ambient = "day"
lamp_lux = 400
time_scale = 10000
[http]
listen = "127.0.0.1:18080"
TOML
STATE_DIRECTORY="$work/state" target/release/greenhoused --mock-hardware -c "$work/demo.toml" --log-target stderr \
    2>"$work/daemon.log" &
pid=$!
sleep 270
shot() {
    timeout 90 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" \
        --virtual-time-budget=10000 --window-size="$1" --screenshot="$2" http://127.0.0.1:18080/ 2>/dev/null
}
shot 1100,1040 docs/dashboard.png
shot 412,1400 docs/dashboard-phone.png
ls -l docs/dashboard.png docs/dashboard-phone.png
