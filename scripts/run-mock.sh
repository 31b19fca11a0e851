#!/usr/bin/env bash
# The run command of the README: set up a fresh machine, then run the daemon on simulated hardware with the local
# MQTT broker on 127.0.0.1:1883: the mosquitto service when one runs there (setup.sh installs it), else the
# embedded one. Extra arguments go to greenhoused (e.g. -c my.toml, -v).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release -- --mock-hardware "$@"
