//! The real daemon against a fake `NOTIFY_SOCKET`: READY=1 with a STATUS line once running, WATCHDOG=1 at the
//! requested rate from the control loop, no ping while that loop is stalled, STOPPING=1 on SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::daemon::{Cfg, Daemon};
use common::{prefix, Mosquitto, Observer};

/// Datagrams received with their arrival time.
fn recv_until(
    sock: &UnixDatagram,
    end: Instant,
    out: &mut Vec<(Instant, String)>,
    stop: impl Fn(&str) -> bool,
) {
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        let left = end
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        sock.set_read_timeout(Some(left)).expect("timeout");
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                let done = stop(&msg);
                out.push((Instant::now(), msg));
                if done {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }
}

fn pings(msgs: &[(Instant, String)]) -> Vec<Instant> {
    msgs.iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect()
}

#[tokio::test]
async fn notify_protocol_ready_watchdog_stall_and_stopping() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("notify");
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind fake NOTIFY_SOCKET");
    let obs = Observer::connect(broker.port(), &p).await;
    // WatchdogSec=2: the daemon must ping at least every second.
    let mut daemon = Daemon::start_with_env(
        &Cfg::broker(broker.port(), &p).render(),
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().expect("utf-8")),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );

    let mut msgs = Vec::new();
    recv_until(
        &sock,
        Instant::now() + Duration::from_secs(15),
        &mut msgs,
        |m| m.contains("READY=1"),
    );
    let ready = msgs
        .iter()
        .find(|(_, m)| m.contains("READY=1"))
        .map(|(_, m)| m.clone());
    let ready = ready.unwrap_or_else(|| panic!("no READY=1; got {msgs:?}\n{}", daemon.log()));
    assert!(
        ready.contains("STATUS=") && ready.contains("light"),
        "READY carries a status line: {ready:?}"
    );

    // Steady state: pings about once a second.
    let t0 = Instant::now();
    recv_until(&sock, t0 + Duration::from_secs(4), &mut msgs, |_| false);
    let steady: Vec<Instant> = pings(&msgs).into_iter().filter(|t| *t >= t0).collect();
    assert!(
        steady.len() >= 3,
        "expected ≥ 3 pings in 4 s at WatchdogSec=2, got {}",
        steady.len()
    );
    for w in steady.windows(2) {
        assert!(
            w[1] - w[0] < Duration::from_millis(1900),
            "ping gap {:?} too long",
            w[1] - w[0]
        );
    }

    // A stalled control loop sends nothing.
    let stall_from = Instant::now();
    obs.publish(&format!("{p}/mock/set"), r#"{"stall_loop_s": 3}"#, false)
        .await;
    recv_until(
        &sock,
        stall_from + Duration::from_secs(6),
        &mut msgs,
        |_| false,
    );
    // The gap that spans the stall: from the last ping before it to the first one after it.
    let all = pings(&msgs);
    let before = all
        .iter()
        .rev()
        .find(|t| **t < stall_from)
        .copied()
        .expect("pings before the stall");
    let after: Vec<Instant> = all.into_iter().filter(|t| *t >= stall_from).collect();
    let first_after = *after.first().expect("pings resume after the stall");
    assert!(
        first_after - before >= Duration::from_millis(2500),
        "pings continued during the stall (gap {:?}): {}",
        first_after - before,
        daemon.log()
    );
    let last = *after.last().expect("pings resume after the stall");
    assert!(
        last - stall_from >= Duration::from_secs(3),
        "pings resume after the stall"
    );
    assert!(daemon.log().contains("stalling the control loop"));

    daemon.signal("TERM");
    recv_until(
        &sock,
        Instant::now() + Duration::from_secs(5),
        &mut msgs,
        |m| m.contains("STOPPING=1"),
    );
    assert!(
        msgs.iter().any(|(_, m)| m.contains("STOPPING=1")),
        "no STOPPING=1: {msgs:?}"
    );
    assert_eq!(
        daemon
            .wait_exit(Duration::from_secs(5))
            .and_then(|s| s.code()),
        Some(0)
    );
}
