#!/bin/sh
# Check, inside a booted systemd machine or container where greenhoused runs as the unit with --mock-hardware
# (e.g. a drop-in `ExecStart=/usr/bin/greenhoused --mock-hardware`), that its records reach the journal through
# the native protocol with structured fields. Needs mosquitto-clients. Exit 0 when every check passes.
#   scripts/journal-check.sh [TOPIC_PREFIX]     (default laboratory/greenhouse)
set -eu
P="${1:-laboratory/greenhouse}"
since="$(date '+%Y-%m-%d %H:%M:%S')"
fail() { echo "journal-check: $*" >&2; exit 1; }

systemctl is-active --quiet greenhoused || fail "greenhoused is not running"
# A broken lamp, then the light on: the monitor raises lamp_no_effect (warning, ALERT=lamp_no_effect), and the
# switch line carries REASON=.
# The check compares the first reading monitor.settle_s after the switch with the last one before it: wait for a
# fresh (not retained) reading first, then give the alert up to TIMEOUT_S (default 20) to reach the journal.
mosquitto_pub -t "$P/mock/set" -m '{"lamp_broken": true}'
mosquitto_sub -R -t "$P/luminosity" -C 1 -W 20 >/dev/null || fail "no reading on $P/luminosity within 20 s"
mosquitto_pub -t "$P/light/set" -m on
deadline=$(($(date +%s) + ${TIMEOUT_S:-20}))
until journalctl -u greenhoused --since "$since" ALERT=lamp_no_effect -o cat -q | grep -q .; do
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 0.5
done
mosquitto_pub -t "$P/light/set" -m auto
mosquitto_pub -t "$P/mock/set" -m '{"lamp_broken": false}'

journalctl -u greenhoused --since "$since" ALERT=lamp_no_effect -o verbose >/tmp/journal-alert.txt ||
    fail "journalctl failed"
grep -q 'PRIORITY=4' /tmp/journal-alert.txt || fail "no ALERT=lamp_no_effect record at PRIORITY=4 within ${TIMEOUT_S:-20} s of switching a broken lamp on (is monitor.lamp_min_rise_lux > 0?)"
grep -q 'SYSLOG_IDENTIFIER=greenhoused' /tmp/journal-alert.txt || fail "no SYSLOG_IDENTIFIER"
grep -q 'CODE_FILE=' /tmp/journal-alert.txt || fail "no CODE_FILE"
journalctl -u greenhoused --since "$since" -o verbose | grep -q '^ *REASON=' || fail "no REASON= on switch lines"
# sd-daemon prefixes must not leak into messages: the native protocol carries the priority.
if journalctl -u greenhoused --since "$since" -o cat | grep -q '^<[0-7]>'; then
    fail "records with <N> prefixes: the daemon wrote to stderr instead of the journal socket"
fi
echo "journal-check: ok (ALERT=, REASON=, PRIORITY, CODE_FILE present)"
