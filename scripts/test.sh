#!/usr/bin/env bash
# The test command of the README: set up a fresh machine, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --all-targets "$@"
