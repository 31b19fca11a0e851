#!/usr/bin/env bash
# The test command of the README: set up a fresh machine, then run the whole test suite.
#
# A test that hangs must fail the run, not stall it: after TEST_TIME_LIMIT seconds (default 1800; the suite takes
# about 6 minutes) the stacks of the test processes still running are printed (with gdb, when installed) and
# they are killed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
limit=${TEST_TIME_LIMIT:-1800}
deps="$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/deps/"  # this checkout's test binaries only

cargo test --all-targets "$@" &
cargo_pid=$!
(
    # Stopped by the kill below when the tests end in time; the trap takes the sleep down with it.
    sleep "$limit" </dev/null >/dev/null 2>&1 &
    sleeper=$!
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    wait "$sleeper"
    echo "scripts/test.sh: tests still running after $limit s; stacks of the test processes:" >&2
    for p in $(pgrep -f "$deps" || true); do
        echo "--- pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2
        if command -v gdb >/dev/null; then
            gdb -p "$p" -batch -ex 'thread apply all bt 25' 2>/dev/null | grep -E '^(Thread|#)' >&2 || true
        fi
    done
    pkill -KILL -f "$deps" || true
) &
watchdog=$!
rc=0
wait "$cargo_pid" || rc=$?
kill "$watchdog" 2>/dev/null || true
exit "$rc"
