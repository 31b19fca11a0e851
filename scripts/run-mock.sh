#!/usr/bin/env bash
# The run command of the README: set up a fresh machine, then run the daemon on simulated hardware with the
# embedded MQTT broker on 127.0.0.1:1883. Extra arguments go to greenhoused (e.g. -c my.toml, -v).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release -- --mock-hardware "$@"
