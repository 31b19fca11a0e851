#!/bin/sh
# The DLI strategy's proof (docs/CONTROL.md): the real controller and DLI engine in a closed loop over three
# real-weather weeks (data/weather/*.csv), against the plain threshold rule and the oracle. Prints one table per
# setup, writes the charts into docs/dli/ and fails if a goal is missed.
# Usage: scripts/prove-dli.sh [extra cargo test args]
set -eu
cd "$(dirname "$0")/.."
mkdir -p docs/dli
DLI_PROOF_CHARTS=docs/dli exec cargo test --test dli_proof "$@" -- --nocapture --test-threads 1
