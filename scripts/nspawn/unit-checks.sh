#!/bin/bash
# The real-systemd checks of systemd/greenhoused.service, run inside the nspawn container by
# run-tests.sh DEB_FILE (the .deb is at /ghtest/greenhoused.deb). Each check prints PASS/FAIL.
# After the unit's life cycle: the quick start's broker situations with the packaged config (url = "embedded"
# beside the mosquitto service, alone, and beside a non-MQTT listener -> exit 69), then scripts/journal-check.sh
# (copied to /ghtest by run-tests.sh) for the native journal fields.
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


# -- quick start: url = "embedded" beside the mosquitto service (issue 11, item 1) ---------------------------
# The packaged config as the README's first command uses it: url = "embedded", embedded_listen 127.0.0.1:1883.
# Three owners of the port in turn: Debian's mosquitto service (the daemon uses it as a client and says so at
# notice level), nobody (the daemon hosts its own broker), a program that is not MQTT (exit 69, port named).
owner() { ss -Htlnp 'sport = :1883' | grep -o 'users:(("[^"]*"' | head -n 1 | cut -d'"' -f2; }   # listener's name
since() { date '+%Y-%m-%d %H:%M:%S'; }
jsince() { journalctl -u $U --since "$1" -o cat --no-pager "${@:2}"; }   # jsince SINCE [journalctl args]
fresh_lux() { mosquitto_sub -R -t $P/luminosity -C 1 -W 20; }              # -R: a new reading, not the retained one
timeout 30 systemctl stop $U >/dev/null 2>&1; systemctl reset-failed $U 2>/dev/null
if [ -f /tmp/greenhoused.toml.dist ] && grep -qx 'url = "embedded"' /tmp/greenhoused.toml.dist \
    && grep -qx 'embedded_listen = "127.0.0.1:1883"' /tmp/greenhoused.toml.dist; then
    cp /tmp/greenhoused.toml.dist /etc/greenhoused/greenhoused.toml
    echo "     (config: the packaged /etc/greenhoused/greenhoused.toml: url = \"embedded\", embedded_listen = \"127.0.0.1:1883\")"
else
    fail "quickstart: the packaged config does not default to url = \"embedded\" on 127.0.0.1:1883"
    printf '[mqtt]\nurl = "embedded"\nembedded_listen = "127.0.0.1:1883"\n' > /etc/greenhoused/greenhoused.toml
fi

# (a) mosquitto (running since the broker setup above, as its postinst leaves it) holds 1883.
systemctl is-active --quiet mosquitto || systemctl start mosquitto
wait_until 10 mosquitto_pub -t ghtest/ping -m x || fail "quickstart: mosquitto not accepting on 1883"
s=$(since)
if timeout 30 systemctl start $U && [ "$(prop $U ActiveState)" = active ]; then
    n=$(jsince "$s" -p notice..notice | grep -F 'already answers on 127.0.0.1:1883' | head -n 1)
    [ -n "$n" ] && pass "quickstart/mosquitto: started; notice line: '$n'" \
        || { fail "quickstart/mosquitto: no notice line about the broker already on 127.0.0.1:1883"; jsince "$s" | tail -n 8; }
    o=$(owner); lux=$(fresh_lux)
    [ "$o" = mosquitto ] && [[ $lux =~ ^[0-9]+(\.[0-9]+)?$ ]] \
        && pass "quickstart/mosquitto: 1883 held by '$o', mosquitto_sub got a fresh $P/luminosity = $lux through it" \
        || fail "quickstart/mosquitto: 1883 held by '$o', fresh $P/luminosity '${lux:-<nothing in 20 s>}'"
else
    fail "quickstart/mosquitto: 'systemctl start' failed with the mosquitto service on 1883 (ActiveState=$(prop $U ActiveState), ExecMainStatus=$(prop $U ExecMainStatus))"
    jsince "$s" | tail -n 8
fi

# (b) mosquitto stopped: after a restart the daemon hosts its own broker on 1883.
timeout 30 systemctl stop mosquitto
wait_until 10 sh -c '[ -z "$(ss -Htln "sport = :1883")" ]' || fail "quickstart/embedded: 1883 still held after stopping mosquitto"
s=$(since)
if timeout 30 systemctl restart $U && [ "$(prop $U ActiveState)" = active ]; then
    h=$(jsince "$s" | grep -F 'embedded MQTT broker listening on 127.0.0.1:1883' | head -n 1)
    o=$(owner); lux=$(fresh_lux)
    [ -n "$h" ] && [ "$o" = greenhoused ] && [[ $lux =~ ^[0-9]+(\.[0-9]+)?$ ]] \
        && pass "quickstart/embedded: restarted without mosquitto: '$h', 1883 held by '$o', mosquitto_sub got $P/luminosity = $lux" \
        || { fail "quickstart/embedded: log line '${h:-<none>}', 1883 held by '$o', $P/luminosity '${lux:-<nothing in 20 s>}'"; jsince "$s" | tail -n 8; }
else
    fail "quickstart/embedded: 'systemctl restart' failed with 1883 free (ExecMainStatus=$(prop $U ExecMainStatus))"
    jsince "$s" | tail -n 8
fi

# (c) A program that is not MQTT on 1883 (perl, as the rootfs has no python3/nc/socat): answers like a web
# server and hangs up. The unit must fail with exit status 69 and the journal must name the port.
timeout 30 systemctl stop $U; systemctl reset-failed $U 2>/dev/null
systemd-run --quiet --unit=ghtest-notmqtt perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:1883", Listen => 16, ReuseAddr => 1) or die "listen: $!";
    while (my $c = $s->accept) { print $c "HTTP/1.0 400 Bad Request\r\n\r\n"; close $c; }'
if wait_until 10 sh -c '[ -n "$(ss -Htln "sport = :1883")" ]'; then
    s=$(since)
    timeout 30 systemctl start $U >/dev/null 2>&1 && fail "quickstart/not-mqtt: 'systemctl start' succeeded with a web server on 1883"
    wait_until 15 sh -c "[ \"\$(systemctl show -P ExecMainStatus $U)\" = 69 ]"
    code=$(prop $U ExecMainStatus)
    e=$(jsince "$s" -p err | grep -F '127.0.0.1:1883' | head -n 1)
    [ "$code" = 69 ] && [ -n "$e" ] && [ "$(owner)" = perl ] \
        && pass "quickstart/not-mqtt: exit status 69 (Result=$(prop $U Result)), error line: '$e'" \
        || { fail "quickstart/not-mqtt: ExecMainStatus=$code, error line naming 127.0.0.1:1883: '${e:-<none>}', 1883 held by '$(owner)'"; jsince "$s" | tail -n 8; }
else
    fail "quickstart/not-mqtt: the perl listener did not come up on 1883"; journalctl -u ghtest-notmqtt -o cat --no-pager | tail -n 3
fi
timeout 30 systemctl stop $U >/dev/null 2>&1; systemctl stop ghtest-notmqtt 2>/dev/null
systemctl reset-failed $U ghtest-notmqtt 2>/dev/null

# Back to the state of the checks above: mosquitto on 1883, the test config.
systemctl start mosquitto
wait_until 10 mosquitto_pub -t ghtest/ping -m x || fail "quickstart: mosquitto does not come back on 1883"
cp /tmp/good.toml /etc/greenhoused/greenhoused.toml

# -- native journal fields (issue 11, item 5): scripts/journal-check.sh ---------------------------------
# lamp_min_rise_lux > 0 lets a broken simulated lamp raise lamp_no_effect.
{ cat /tmp/good.toml; printf '\n[monitor]\nlamp_min_rise_lux = 50\n'; } > /etc/greenhoused/greenhoused.toml
if timeout 30 systemctl start $U && [ "$(prop $U ActiveState)" = active ]; then
    wait_until 20 sh -c "[ \"\$(mosquitto_sub -t $P/status -C 1 -W 2)\" = online ]"
    if out=$(sh /ghtest/journal-check.sh $P 2>&1); then
        pass "journal: $out; e.g. $(journalctl -u $U ALERT=lamp_no_effect -o json --no-pager | tail -n 1 \
            | grep -o '"\(PRIORITY\|ALERT\|CODE_FILE\|CODE_LINE\)":"[^"]*"' | tr '\n' ' ')"
    else
        fail "journal: scripts/journal-check.sh: $out"
    fi
else
    fail "journal: the unit did not start with monitor.lamp_min_rise_lux = 50"; journalctl -u $U -n 8 -o cat --no-pager
fi
timeout 30 systemctl stop $U >/dev/null 2>&1
cp /tmp/good.toml /etc/greenhoused/greenhoused.toml

finish
