#!/bin/bash
# Harness self-test, run inside the container by run-tests.sh --selftest. Proves every mechanism
# unit-checks.sh relies on, with stand-ins for greenhoused: systemd as PID 1, mosquitto, journal
# priorities, Type=notify + STATUS, watchdog restart of a SIGSTOPped process, exit 78 without restart.
set -u
. /ghtest/lib.sh

[ "$(cat /proc/1/comm)" = systemd ] && pass "pid1: systemd is PID 1 ($(systemctl --version | head -n1))" \
    || fail "pid1: PID 1 is '$(cat /proc/1/comm)'"

t=$SECONDS
if systemctl enable --now mosquitto.service >/dev/null 2>&1 && wait_until 10 mosquitto_pub -t ghtest/ping -m x; then
    pass "broker: mosquitto enabled, started and accepting on 127.0.0.1:1883 ($((SECONDS - t)) s)"
else
    fail "broker: mosquitto did not start: $(systemctl status --no-pager -n 5 mosquitto 2>&1 | tail -n 5)"
fi

mosquitto_pub -r -q 1 -t ghtest/retained -m world
got=$(mosquitto_sub -t ghtest/retained -C 1 -W 5)
[ "$got" = world ] && pass "mqtt: retained message read back" || fail "mqtt: retained read back '$got'"

mosquitto_sub -t ghtest/live -C 1 -W 10 > /tmp/live.out &
sub=$!
wait_until 10 sh -c 'mosquitto_pub -t ghtest/live -m hello; [ -s /tmp/live.out ]'
wait "$sub"
[ "$(cat /tmp/live.out)" = hello ] && pass "mqtt: live message received by a subscriber" \
    || fail "mqtt: subscriber got '$(cat /tmp/live.out)'"

# Journal priorities as unit-checks.sh reads them.
systemd-cat -t ghtest -p warning echo "ghtest-warning-line"
systemd-cat -t ghtest -p info echo "ghtest-info-line"
wait_until 5 sh -c 'journalctl -t ghtest -o cat | grep -q ghtest-info-line'
w=$(journalctl -t ghtest -p warning -o cat)
if echo "$w" | grep -q ghtest-warning-line && ! echo "$w" | grep -q ghtest-info-line; then
    pass "journal: -p warning shows the warning line and not the info line"
else
    fail "journal: -p warning output was: $w"
fi

# Type=notify with STATUS, watchdog restart of a stopped process.
systemd-run --quiet --unit=ghnotify -p Type=notify -p NotifyAccess=all -p WatchdogSec=2 -p Restart=on-failure \
    -p RestartSec=200ms bash -c 'systemd-notify --ready --status="stand-in ready"; exec sleep infinity'
st=$(prop ghnotify StatusText)
[ "$(prop ghnotify ActiveState)" = active ] && [ -n "$st" ] \
    && pass "notify: systemd-run returned after READY=1, StatusText='$st'" \
    || fail "notify: ActiveState=$(prop ghnotify ActiveState) StatusText='$st'"
# (the stand-in never pings the watchdog, so it restarts every 2 s by itself; a hung greenhoused is
# simulated with SIGSTOP in unit-checks.sh)
pid=$(prop ghnotify MainPID)
t=$SECONDS
kill -STOP "$pid"
if wait_until 20 sh -c "p=\$(systemctl show -P MainPID ghnotify); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ]"; then
    pass "watchdog: SIGSTOPped MainPID $pid replaced by $(prop ghnotify MainPID) after $((SECONDS - t)) s, NRestarts=$(prop ghnotify NRestarts)"
else
    fail "watchdog: MainPID still $(prop ghnotify MainPID) after 20 s"
fi
journalctl -u ghnotify -o cat | grep -q 'Watchdog timeout' && pass "watchdog: journal says 'Watchdog timeout'" \
    || fail "watchdog: no 'Watchdog timeout' in the journal"
systemctl stop ghnotify

# Exit 78 with RestartPreventExitStatus=78: failed, no restart loop.
systemd-run --quiet --unit=ghbad -p Restart=on-failure -p RestartPreventExitStatus=78 -p RestartSec=200ms \
    sh -c 'exit 78'
wait_until 10 sh -c '[ "$(systemctl show -P ActiveState ghbad)" = failed ]'
n1=$(prop ghbad NRestarts); sleep 2; n2=$(prop ghbad NRestarts)
if [ "$(prop ghbad ActiveState)" = failed ] && [ "$(prop ghbad ExecMainStatus)" = 78 ] && [ "$n1" = 0 ] && [ "$n2" = 0 ]; then
    pass "exit78: unit failed with status 78 and NRestarts stayed 0"
else
    fail "exit78: ActiveState=$(prop ghbad ActiveState) ExecMainStatus=$(prop ghbad ExecMainStatus) NRestarts=$n1/$n2"
fi
systemctl reset-failed ghbad 2>/dev/null

finish
