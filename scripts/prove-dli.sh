#!/bin/sh
# The DLI strategy's proof (docs/CONTROL.md), reproduced:
# 1. `greenhoused simulate` (the daemon's Core on mock hardware, a reading a second) with scripts/dli-proof.toml on
#    the three real-weather weeks of data/weather/, strategy dli and the threshold rule: docs/dli/sim-<week>/
#    (report.json, days.csv, chart.svg). A few minutes in a debug build.
# 2. tests/dli_proof.rs (the controller and DLI engine in a closed loop, per-day tables, every goal asserted,
#    charts into docs/dli/) and tests/dli_simulate.rs (the goals checked on the simulator's report).
# Usage: scripts/prove-dli.sh [--release]
set -eu
cd "$(dirname "$0")/.."
profile=debug
[ "${1:-}" = "--release" ] && profile=release
if [ "$profile" = release ]; then cargo build --release; else cargo build; fi
for week in winter spring summer; do
    "target/$profile/greenhoused" simulate -c scripts/dli-proof.toml --weather "data/weather/$week.csv" \
        --out "docs/dli/sim-$week"
done
mkdir -p docs/dli
DLI_PROOF_CHARTS=docs/dli cargo test ${1:+"$1"} --test dli_proof --test dli_simulate -- --nocapture --test-threads 1
