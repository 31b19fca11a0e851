#!/usr/bin/env bash
# Boot the Debian rootfs from build-rootfs.sh with systemd as PID 1 (systemd-nspawn --boot) and run a test
# script inside it, as root, with systemctl/journalctl talking to the container's own systemd.
#
#   scripts/nspawn/run-tests.sh DEB_FILE              install the .deb and run scripts/nspawn/unit-checks.sh
#   scripts/nspawn/run-tests.sh --selftest            prove the harness: boot, mosquitto pub/sub, clean shutdown
#   scripts/nspawn/run-tests.sh --script FILE [DEB]   run your own bash FILE inside (debugging); DEB, if given,
#                                                     is at /ghtest/greenhoused.deb, lib.sh at /ghtest/lib.sh,
#                                                     scripts/journal-check.sh at /ghtest/journal-check.sh
#
# Env: ROOTFS (default /var/tmp/greenhoused-rootfs, built when missing), TEST_TIMEOUT_S (default 300), MACHINE,
#      KEEP_LOGS=1 keeps the work directory with the container console log.
#
# How it works (the host runs no systemd, so no machinectl): the rootfs is booted read-only with a tmpfs
# overlay (--volatile=overlay: nothing the tests do persists in the cached rootfs), private network (only a
# loopback, so the broker inside cannot clash with the host), --register=no --keep-unit (no host systemd). A host work directory is
# bound at /ghtest. Commands are run in the container with `nsenter -t <container PID 1> -a` (mount, pid, net,
# uts, ipc and cgroup namespaces of the container). Everything has a deadline; the container is powered off
# at the end (SIGKILL as a last resort). Exit status: 0 all checks passed, 1 a check failed, 2 harness error.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rootfs=${ROOTFS:-/var/tmp/greenhoused-rootfs}
total_timeout=${TEST_TIMEOUT_S:-300}
machine=${MACHINE:-ghtest}   # must be unique among concurrently running containers

usage() { echo "usage: $0 DEB_FILE | --selftest | --script FILE [DEB_FILE]" >&2; exit 2; }
[ $# -ge 1 ] || usage
deb=
case $1 in
    --selftest) [ $# -eq 1 ] || usage; mode=selftest; script=$here/selftest.sh ;;
    --script) [ $# -ge 2 ] && [ $# -le 3 ] || usage; mode=script
        script=$(realpath -e "$2") || { echo "error: $2: no such script" >&2; exit 2; }
        [ $# -eq 3 ] && { deb=$(realpath -e "$3") || { echo "error: $3: no such .deb" >&2; exit 2; }; } ;;
    -*) usage ;;
    *) [ $# -eq 1 ] || usage; mode=unit; script=$here/unit-checks.sh
        deb=$(realpath -e "$1") || { echo "error: $1: no such .deb" >&2; exit 2; } ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "error: needs root (systemd-nspawn, nsenter)" >&2; exit 2; }
for tool in systemd-nspawn nsenter timeout; do
    command -v "$tool" >/dev/null || { echo "error: $tool missing; fix: apt-get install systemd-container util-linux coreutils" >&2; exit 2; }
done

# Build the rootfs when missing (own deadline, not counted in TEST_TIMEOUT_S), then re-exec under the
# overall deadline (the inner run tears the container down in its EXIT trap).
if [ -z "${GH_NSPAWN_INNER:-}" ]; then
    timeout 1800 "$here/build-rootfs.sh" "$rootfs" || { echo "FAIL harness: rootfs build failed" >&2; exit 2; }
    GH_NSPAWN_INNER=1 timeout --kill-after=20 "$total_timeout" "$0" "$@"
    rc=$?
    [ "$rc" -eq 124 ] && echo "FAIL harness: whole run exceeded ${total_timeout}s"
    exit "$rc"
fi

trap 'exit 124' TERM INT
t0=${EPOCHREALTIME/./}
elapsed() { local us=$(( ${EPOCHREALTIME/./} - t0 )); printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000)); }
log() { echo "[$(elapsed)s] $*"; }

work=$(mktemp -d /var/tmp/greenhoused-nspawn.XXXXXX)
chmod 755 "$work"
nspawn_pid=; leader=
teardown() {
    local rc=$?
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        log "powering off the container"
        if [ -n "$leader" ] && ! in_ct systemctl --no-block poweroff >/dev/null 2>&1; then
            kill -s RTMIN+4 "$leader" 2>/dev/null   # systemd's "power off" signal, works without its bus
        fi
        for _ in $(seq 150); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done   # 30 s
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            log "container did not power off within 30 s; killing systemd-nspawn"
            kill -KILL "$nspawn_pid" 2>/dev/null
        else
            log "container powered off"
        fi
        wait "$nspawn_pid" 2>/dev/null
    fi
    if [ "${KEEP_LOGS:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "console log: $work/console.log (last lines below)"; tail -n 15 "$work/console.log" 2>/dev/null
        [ "${KEEP_LOGS:-0}" = 1 ] || rm -rf "$work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap teardown EXIT

# Run a command inside the container as root with a clean environment.
in_ct() {
    nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= TERM=dumb "$@"
}

cp "$here/lib.sh" "$work/lib.sh"
cp "$here/../journal-check.sh" "$work/journal-check.sh"   # used by unit-checks.sh
cp "$script" "$work/checks.sh"
[ -n "$deb" ] && cp "$deb" "$work/greenhoused.deb"

log "booting $rootfs as '$machine'"
systemd-nspawn --quiet --boot --directory="$rootfs" --machine="$machine" --register=no --keep-unit \
    --volatile=overlay --private-network --console=read-only --bind="$work:/ghtest" \
    > "$work/console.log" 2>&1 < /dev/null &
nspawn_pid=$!

# The container's PID 1 is the descendant of systemd-nspawn whose PID in its own namespace is 1.
find_leader() {
    local p ns
    for p in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null) $(for c in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null); do ps -o pid= --ppid "$c"; done); do
        ns=$(awk '/^NSpid:/ {print $NF}' "/proc/$p/status" 2>/dev/null)
        [ "$ns" = 1 ] && [ "$(awk '/^NSpid:/ {print NF}' "/proc/$p/status")" -gt 2 ] && { echo "$p"; return 0; }
    done
    return 1
}
for _ in $(seq 150); do   # 30 s
    kill -0 "$nspawn_pid" 2>/dev/null || { echo "FAIL harness: systemd-nspawn exited early"; exit 2; }
    leader=$(find_leader) && break
    sleep 0.2
done
[ -n "$leader" ] || { echo "FAIL harness: container PID 1 not found within 30 s"; exit 2; }
log "container PID 1 is host PID $leader"

# Wait for the container's systemd to finish booting (its private socket appears first).
for _ in $(seq 150); do   # 30 s
    [ -S "/proc/$leader/root/run/systemd/private" ] && break
    sleep 0.2
done
state=$(timeout 90 nsenter -t "$leader" -a env -i PATH=/usr/bin:/bin systemctl is-system-running --wait 2>&1)
case $state in
    running) log "boot complete: system running" ;;
    degraded)
        log "boot complete: system degraded; failed units:"
        in_ct systemctl --failed --no-legend --plain | sed 's/^/    /' ;;
    *) echo "FAIL harness: container did not finish booting (is-system-running: '${state:-timeout}')"; exit 2 ;;
esac
echo "BOOT_TIME_S=$(elapsed)"

log "running $(basename "$script") ($mode) in the container"
in_ct bash /ghtest/checks.sh
rc=$?
log "checks finished with status $rc"
[ "$rc" -eq 0 ] || exit 1
exit 0
