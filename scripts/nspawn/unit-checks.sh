#!/bin/bash
# The real-systemd checks of systemd/greenhoused.service, run inside the nspawn container by
# run-tests.sh DEB_FILE (the .deb is at /ghtest/greenhoused.deb). Each check prints PASS/FAIL.
set -u
. /ghtest/lib.sh
P=laboratory/greenhouse
U=greenhoused.service

# -- install --------------------------------------------------------------------------------------
if out=$(dpkg -i /ghtest/greenhoused.deb 2>&1); then
    pass "install: dpkg -i greenhoused.deb"
else
    fail "install: dpkg -i failed:"; echo "$out" | tail -n 15; finish
fi
en=$(systemctl is-enabled $U 2>&1); act=$(systemctl is-active $U 2>&1)
[ "$act" != active ] && [ "$en" != enabled ] && pass "install: unit not enabled or started by the package ($en, $act)" \
    || fail "install: package enabled/started the unit (is-enabled=$en, is-active=$act)"
user=$(prop $U User); user=${user:-greenhoused}
groups=$(id -nG "$user" 2>&1)
[[ " $groups " == *" gpio "* && " $groups " == *" i2c "* ]] && pass "install: user $user in groups: $groups" \
    || fail "install: user '$user' groups '$groups' (want gpio and i2c)"

# -- broker, mock-hardware drop-in, test config ---------------------------------------------------
systemctl enable --now mosquitto.service >/dev/null 2>&1
wait_until 10 mosquitto_pub -t ghtest/ping -m x || { fail "broker: mosquitto not accepting on 1883"; finish; }

argv=$(prop $U ExecStart | sed -n 's/.*argv\[\]=\([^;]*\) ;.*/\1/p' | sed 's/ *$//')
[ -n "$argv" ] || { fail "setup: cannot read ExecStart of $U"; finish; }
mkdir -p /etc/systemd/system/$U.d
cat > /etc/systemd/system/$U.d/50-test-mock.conf <<CONF
[Service]
ExecStart=
ExecStart=$argv --mock-hardware
# short watchdog so the SIGSTOP check finishes quickly
WatchdogSec=3
CONF
mkdir -p /etc/greenhoused
[ -f /etc/greenhoused/greenhoused.toml ] && cp /etc/greenhoused/greenhoused.toml /tmp/greenhoused.toml.dist
# Ambient far above off_above_lux: auto mode keeps the light off, so `on` can only come from a command.
cat > /tmp/good.toml <<'TOML'
[mqtt]
url = "mqtt://127.0.0.1:1883"

[control]
window = ""

[mock]
ambient = "1000"
TOML
cp /tmp/good.toml /etc/greenhoused/greenhoused.toml
systemctl daemon-reload
echo "     (ExecStart: $argv --mock-hardware; WatchdogSec=3; config: /etc/greenhoused/greenhoused.toml)"

# -- start: returns after READY, with STATUS ------------------------------------------------------
t=$SECONDS
if timeout 30 systemctl start $U; then
    st=$(prop $U StatusText)
    if [ "$(prop $U Type)" = notify ] && [ "$(prop $U ActiveState)" = active ] && [ -n "$st" ]; then
        pass "start: Type=notify, active after 'systemctl start' ($((SECONDS - t)) s), StatusText='$st'"
    else
        fail "start: Type=$(prop $U Type) ActiveState=$(prop $U ActiveState) StatusText='$st'"
    fi
else
    fail "start: 'systemctl start' failed or took > 30 s"; journalctl -u $U -n 20 --no-pager -o cat; finish
fi

# -- readings -------------------------------------------------------------------------------------
lux=$(mosquitto_sub -t $P/luminosity -C 1 -W 20)
[[ $lux =~ ^[0-9]+(\.[0-9]+)?$ ]] && pass "reading: $P/luminosity = $lux" \
    || fail "reading: $P/luminosity got '${lux:-<nothing in 20 s>}'"

# -- journal priorities ---------------------------------------------------------------------------
jw() { journalctl _SYSTEMD_UNIT=$U -p 0..4 -o cat --no-pager; }     # the daemon's warning-or-worse lines
ji() { journalctl _SYSTEMD_UNIT=$U -p 5..7 -o cat --no-pager; }     # its notice/info/debug lines
before=$(jw | wc -l)
mosquitto_pub -q 1 -t $P/light/set -m bogus
if wait_until 10 sh -c "[ \$(journalctl _SYSTEMD_UNIT=$U -p 0..4 -o cat --no-pager | wc -l) -gt $before ]"; then
    pass "journal: 'bogus' command logged at warning or worse: $(jw | tail -n 1)"
else
    fail "journal: no new warning line 10 s after sending 'bogus' to $P/light/set"
fi
info=$(ji)
[ -n "$info" ] && pass "journal: info lines exist at priority >= notice and are not in -p warning ($(echo "$info" | wc -l) lines, e.g. '$(echo "$info" | head -n 1)')" \
    || fail "journal: the daemon logged nothing below warning (priorities not parsed?)"
raw=$( { jw; ji; } | grep -E '^<[0-7]>' | head -n 2)
[ -z "$raw" ] && pass "journal: no raw '<N>' priority prefixes in messages" || fail "journal: raw prefixes: $raw"

# -- reload keeps the PID -------------------------------------------------------------------------
pid=$(prop $U MainPID)
if timeout 20 systemctl reload $U && [ "$(prop $U MainPID)" = "$pid" ] && [ "$(prop $U ActiveState)" = active ]; then
    pass "reload: 'systemctl reload' kept MainPID $pid"
else
    fail "reload: MainPID $pid -> $(prop $U MainPID), ActiveState=$(prop $U ActiveState)"
fi

new_main() {   # new_main OLDPID: a different MainPID and the unit active again
    local p; p=$(systemctl show -P MainPID $U)
    [ "$p" != 0 ] && [ "$p" != "$1" ] && [ "$(systemctl show -P ActiveState $U)" = active ]
}

# -- SIGKILL -> restarted -------------------------------------------------------------------------
systemctl reset-failed $U 2>/dev/null   # start-rate limit counters
pid=$(prop $U MainPID); n0=$(prop $U NRestarts); t=$SECONDS
kill -KILL "$pid"
if wait_until 40 new_main "$pid"; then
    pass "sigkill: MainPID $pid killed, restarted as $(prop $U MainPID) in $((SECONDS - t)) s (NRestarts $n0 -> $(prop $U NRestarts))"
else
    fail "sigkill: not restarted within 40 s (ActiveState=$(prop $U ActiveState), MainPID=$(prop $U MainPID))"
fi

# -- SIGSTOP (hung loop) -> watchdog restart ------------------------------------------------------
systemctl reset-failed $U 2>/dev/null
wd0=$(journalctl -u $U -o cat --no-pager | grep -c 'Watchdog timeout')
pid=$(prop $U MainPID); t=$SECONDS
kill -STOP "$pid"
if wait_until 60 new_main "$pid"; then
    wd1=$(journalctl -u $U -o cat --no-pager | grep -c 'Watchdog timeout')
    [ "$wd1" -gt "$wd0" ] && pass "watchdog: stopped MainPID $pid restarted as $(prop $U MainPID) after $((SECONDS - t)) s ('Watchdog timeout' in the journal)" \
        || fail "watchdog: restarted, but not by the watchdog (no new 'Watchdog timeout' line)"
else
    fail "watchdog: SIGSTOPped MainPID $pid not restarted within 60 s"; kill -CONT "$pid" 2>/dev/null
fi

# -- bad config -> exit 78, failed, no restart loop -----------------------------------------------
systemctl reset-failed $U 2>/dev/null
cat > /etc/greenhoused/greenhoused.toml <<'TOML'
[mqtt]
url = "mqtt://127.0.0.1:1883"
no_such_key = 1

[control]
on_below_lux = 600
off_above_lux = 500
TOML
s78=$(journalctl -u $U -o cat --no-pager | grep -c 'status=78')
timeout 30 systemctl restart $U >/dev/null 2>&1 && fail "badconfig: 'systemctl restart' succeeded with an invalid config"
wait_until 15 sh -c "[ \"\$(systemctl show -P ActiveState $U)\" = failed ]"
n1=$(prop $U NRestarts)
rs=$(prop $U RestartUSec)        # e.g. 100ms, 5s
case $rs in *ms) win=$(( ${rs%ms} * 3 / 1000 + 2 )) ;; *s) win=$(( ${rs%s} * 3 + 2 )) ;; *) win=10 ;; esac
[ "$win" -gt 20 ] && win=20
sleep "$win"    # observing that nothing happens needs a window: 3 x RestartSec + 2 s
n2=$(prop $U NRestarts); state=$(prop $U ActiveState)
s78b=$(journalctl -u $U -o cat --no-pager | grep -c 'status=78')
if [ "$state" = failed ] && [ "$n1" = "$n2" ] && [ "$s78b" -gt "$s78" ]; then
    pass "badconfig: exit status 78, unit failed, NRestarts stayed $n2 over ${win} s"
else
    fail "badconfig: ActiveState=$state NRestarts $n1 -> $n2 ExecMainStatus=$(prop $U ExecMainStatus) status=78 lines $s78 -> $s78b"
    journalctl -u $U -n 8 -o cat --no-pager
fi
cp /tmp/good.toml /etc/greenhoused/greenhoused.toml
systemctl reset-failed $U 2>/dev/null
timeout 30 systemctl start $U && [ "$(prop $U ActiveState)" = active ] && pass "badconfig: starts again with a fixed config" \
    || fail "badconfig: does not start again after fixing the config"

# -- stop -> offline retained, relay at on_stop (off) ---------------------------------------------
wait_until 20 sh -c "[ \"\$(mosquitto_sub -t $P/status -C 1 -W 2)\" = online ]" || fail "stop: $P/status never 'online' before stop"
light=
wait_until 20 sh -c "mosquitto_pub -q 1 -t $P/light/set -m on; [ \"\$(mosquitto_sub -t $P/light -C 1 -W 2)\" = on ]" \
    && light=on
[ "$light" = on ] || fail "stop: could not switch the light on before stopping (light=$(mosquitto_sub -t $P/light -C 1 -W 2))"
if timeout 30 systemctl stop $U; then
    status=$(mosquitto_sub -t $P/status -C 1 -W 5); light=$(mosquitto_sub -t $P/light -C 1 -W 5)
    res=$(prop $U Result); code=$(prop $U ExecMainStatus)
    [ "$status" = offline ] && pass "stop: $P/status = offline (retained)" || fail "stop: $P/status = '$status'"
    [ "$light" = off ] && pass "stop: $P/light = off (relay at on_stop)" || fail "stop: $P/light = '$light' (want off)"
    [ "$res" = success ] && [ "$code" = 0 ] && pass "stop: clean exit (Result=success, status 0)" \
        || fail "stop: Result=$res ExecMainStatus=$code"
else
    fail "stop: 'systemctl stop' failed or took > 30 s"
fi

finish
