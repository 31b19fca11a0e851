# shellcheck shell=bash
# Helpers for the in-container check scripts (sourced; runs inside the nspawn container as root).
failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
# wait_until SECONDS CMD...: run CMD every 0.2 s until it succeeds (0) or SECONDS pass (1).
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}
prop() { systemctl show -P "$2" "$1"; }          # prop UNIT PROPERTY
finish() {
    if [ "$failures" -eq 0 ]; then echo "ALL CHECKS PASSED"; exit 0; fi
    echo "$failures CHECK(S) FAILED"; exit 1
}
