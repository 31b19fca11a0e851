#!/usr/bin/env bash
# Short, bounded fuzz pass over the parsers that take operator or network input: the P/light/set command parser,
# the P/mock/set parser and the configuration loader.
#
#  1. Coverage-guided (cargo-fuzz / libFuzzer with AddressSanitizer) for FUZZ_SECONDS per target (default 30),
#     when cargo-fuzz and a nightly toolchain are installed:
#       rustup toolchain install nightly && cargo install cargo-fuzz
#     Crashes land in fuzz/artifacts/<target>/; reproduce with `cargo +nightly fuzz run <target> <file>`.
#  2. Always: the proptest pass (tests/fuzz_parsers.rs), GREENHOUSED_FUZZ_CASES cases per property (default
#     20000; the full run uses 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
cases=${GREENHOUSED_FUZZ_CASES:-20000}

if cargo fuzz --version >/dev/null 2>&1 && cargo +nightly --version >/dev/null 2>&1; then
  for target in light_set mock_set config; do
    mkdir -p "fuzz/corpus/$target"
    echo "fuzz-short: $target for ${seconds} s"
    cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1
  done
else
  echo "fuzz-short: cargo-fuzz or the nightly toolchain is missing: skipping the coverage-guided pass" \
       "(rustup toolchain install nightly && cargo install cargo-fuzz)" >&2
fi

echo "fuzz-short: proptest pass, $cases cases per property"
GREENHOUSED_FUZZ_CASES=$cases cargo test --test fuzz_parsers
