#!/bin/sh
# Build the release daemon and the benchmark, then run it. Arguments go to the benchmark:
#   scripts/bench.sh            full run (~3 min)
#   scripts/bench.sh --quick    short run (< 30 s)
#   scripts/bench.sh --only echo,embedded --commands 2000
# Needs mosquitto on PATH. Loopback only. See docs/PERFORMANCE.md.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin greenhoused
cargo build --release --example bench
exec target/release/examples/bench "$@"
