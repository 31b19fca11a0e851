#!/bin/sh
# Runs inside the HA root while it is built: one start of Home Assistant with the integrations the test loads, so
# Home Assistant installs their requirements now (the test then runs it with --skip-pip and fetches nothing).
set -eu
cfg=/tmp/ha-warmup
rm -rf "$cfg"; mkdir -p "$cfg"
cat > "$cfg/configuration.yaml" <<'YAML'
homeassistant:
  name: warmup
  unit_system: metric
  time_zone: UTC
http:
  server_host: 127.0.0.1
  server_port: 18123
api:
logger:
  default: info
mqtt_statestream:
  base_topic: warmup
YAML
/opt/ha/bin/hass -c "$cfg" --log-file "$cfg/ha.log" > "$cfg/out.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ]; do
    if grep -q "Home Assistant initialized in" "$cfg/ha.log" 2>/dev/null; then break; fi
    if ! kill -0 $pid 2>/dev/null; then echo "warm-up: hass exited early"; tail -50 "$cfg/out.log"; exit 1; fi
    sleep 1; i=$((i+1))
done
kill $pid; wait $pid || true
grep -q "Home Assistant initialized in" "$cfg/ha.log" || { echo "warm-up: hass did not start within 600 s"; tail -50 "$cfg/ha.log"; exit 1; }
echo "warm-up: $(grep -o 'Home Assistant initialized in.*' "$cfg/ha.log")"
grep -iE "requirement|pip" "$cfg/ha.log" | head -20 || true
rm -rf "$cfg"
