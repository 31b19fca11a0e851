//! The HTTP server inside the daemon (`--mock-hardware`): history that survives a restart through the state
//! directory, a damaged history file reported and replaced, and a taken port that costs only the HTTP server.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::daemon::{Cfg, Daemon};
use common::http::{get, wait_json};

/// The minutes `/api/history` reports, once it reports at least `n` (bounded wait).
fn wait_minutes(
    daemon: &mut Daemon,
    addr: SocketAddr,
    n: usize,
    limit: Duration,
) -> Vec<serde_json::Value> {
    let v = wait_json(
        daemon,
        addr,
        "/api/history?hours=48",
        limit,
        &format!("fewer than {n} minutes of history"),
        |v| v["minutes"].as_array().is_some_and(|m| m.len() >= n),
    );
    v["minutes"].as_array().cloned().unwrap_or_default()
}

fn config(broker: &Broker, addr: SocketAddr) -> String {
    // 60× time: a simulated minute per real second, so minutes close quickly.
    Cfg::broker(broker.port(), &common::prefix("httpd"))
        .set("mock.ambient", "\"300\"")
        .set("mock.time_scale", "60")
        .set("http.listen", &format!("\"{addr}\""))
        .render()
}

#[test]
fn history_survives_a_restart() {
    let Some(broker) = Broker::anonymous() else {
        return;
    };
    let state = tempfile::tempdir().expect("state dir");
    let addr: SocketAddr = ([127, 0, 0, 1], common::free_port()).into();
    let cfg = config(&broker, addr);
    let env = [("STATE_DIRECTORY", state.path())];

    let mut first = Daemon::start_with_env(&cfg, &env);
    let before = wait_minutes(&mut first, addr, 3, Duration::from_secs(60));
    // The lamp runs (ambient 300 lx is below the band) and the minutes say so.
    assert!(before.iter().any(|m| m["lamp_on_s"] == 60), "{before:?}");
    // /metrics from the live daemon: the lamp is on, switched once, and has run for minutes of simulated time.
    let (status, metrics) = get(addr, "/metrics").expect("/metrics");
    assert_eq!(status, 200);
    for line in [
        "greenhoused_light_on 1",
        "greenhoused_lamp_switches_total 1",
        "greenhoused_broker_connected 1",
        "greenhoused_sensor_status{status=\"ok\"} 1",
        "greenhoused_lux 700.0",
        "greenhoused_ambient_lux 300.0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line:?} missing in:\n{metrics}"
        );
    }
    let on_s: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("greenhoused_lamp_on_seconds_total "))
        .and_then(|v| v.parse().ok())
        .expect("lamp_on_seconds_total");
    assert!(on_s >= 120.0, "{on_s}");
    first.terminate(Duration::from_secs(5));
    let file = state.path().join("history.bin");
    let size = std::fs::metadata(&file)
        .expect("history.bin written at stop")
        .len();
    assert!(size > 8, "history.bin holds data ({size} bytes)");

    let mut second = Daemon::start_with_env(&cfg, &env);
    let after = wait_minutes(&mut second, addr, before.len(), Duration::from_secs(30));
    // Every minute seen before the restart is still there, with the same figures.
    for m in &before {
        assert!(after.contains(m), "minute {m} lost across the restart");
    }
    assert!(
        !second.log().contains("history file"),
        "no complaint about a clean file:\n{}",
        second.log()
    );
    second.terminate(Duration::from_secs(5));
}

#[test]
fn a_damaged_history_file_is_reported_and_replaced() {
    let Some(broker) = Broker::anonymous() else {
        return;
    };
    let state = tempfile::tempdir().expect("state dir");
    let file = state.path().join("history.bin");
    std::fs::write(&file, b"GHHIST\x00\x01\xff\xff\xff\x00garbage").expect("write");
    let addr: SocketAddr = ([127, 0, 0, 1], common::free_port()).into();
    let mut d =
        Daemon::start_with_env(&config(&broker, addr), &[("STATE_DIRECTORY", state.path())]);
    wait_minutes(&mut d, addr, 2, Duration::from_secs(60));
    let log = d.log();
    assert!(
        log.contains("history file") && log.contains("history.bin") && log.contains("ignored"),
        "the damage is reported:\n{log}"
    );
    d.terminate(Duration::from_secs(5));
    let bytes = std::fs::read(&file).expect("history.bin");
    assert!(
        !bytes.windows(7).any(|w| w == b"garbage"),
        "the file was rewritten from what was good"
    );
}

#[test]
fn a_taken_port_leaves_the_daemon_running_without_http() {
    let Some(broker) = Broker::anonymous() else {
        return;
    };
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = holder.local_addr().expect("addr");
    let mut d = Daemon::start(&config(&broker, addr));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = d.log();
        if log.contains("MQTT connected") && log.contains("cannot serve the dashboard") {
            assert!(
                log.contains(&addr.to_string()) && log.contains("running without HTTP"),
                "{log}"
            );
            break;
        }
        assert!(d.running(), "the daemon exited:\n{log}");
        assert!(
            Instant::now() < deadline,
            "no warning about the taken port:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Still running a while later, and stops cleanly.
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.running());
    d.terminate(Duration::from_secs(5));
}
