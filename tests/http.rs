//! The HTTP server on a real loopback socket: routes, methods, the `hours` check, the bounds that keep hostile
//! clients cheap (header size, header timeout, connection limit). The requests are written by hand on a
//! `TcpStream`, so the test sees exactly what goes over the wire.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use greenhoused::core::dli::DliPayload;
use greenhoused::core::history::{Day, History, Sample};
use greenhoused::http::{
    HistoryView, Server, Snapshot, StateView, HEADER_TIMEOUT, MAX_CONNECTIONS,
};
use tokio::sync::watch;

fn snapshot() -> Snapshot {
    let t0 = NaiveDate::from_ymd_opt(2026, 6, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut h = History::new();
    // 50 hours of one update every 20 s; the lamp on from 18:00 to 22:00.
    for i in 0..(50 * 180) {
        let t = t0 + chrono::Duration::seconds(20 * i);
        let hour = (i / 180) % 24;
        h.update(
            t,
            Sample {
                lux: Some(100.0 + hour as f64),
                ambient_lux: Some(hour as f64),
                light_on: (18..22).contains(&hour),
                window_open: (6..22).contains(&hour),
            },
        );
    }
    for d in 0..40 {
        h.set_day(Day {
            day: Day::day_number(t0.date()) - 40 + d,
            sun_mol: 8.0,
            lamp_mol: 4.0,
            target_mol: 12.0,
            lamp_on_s: 7200,
            lamp_kwh: 0.5,
            cost: 0.15,
        });
    }
    let now = t0 + chrono::Duration::hours(50);
    Snapshot {
        state: StateView {
            ts: "2026-06-03T02:00:00+02:00".into(),
            lux: Some(412.5),
            ambient_lux: Some(12.5),
            light: "on".into(),
            mode: "auto".into(),
            reason: "below_threshold".into(),
            sensor: "ok".into(),
            window_open: true,
            alerts: vec![],
            broker_connected: true,
            broker: None,
            dli: Some(DliPayload {
                mol: 3.5,
                target_mol: 12.0,
                status: "on_track",
                ..DliPayload::default()
            }),
            lamp_on_seconds_total: 60.0,
            lamp_switches_total: 2,
            version: "test".into(),
        },
        history: Arc::new(HistoryView::from_history(&h, now)),
    }
}

fn start() -> (Server, watch::Sender<Snapshot>) {
    let (tx, rx) = watch::channel(snapshot());
    let server = Server::start("127.0.0.1:0".parse().unwrap(), rx).expect("bind a free port");
    (server, tx)
}

/// Send `request` as is and read the whole answer (the server closes after `Connection: close`).
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let answer = raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, answer)
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn routes_methods_and_parameters() {
    let (server, _tx) = start();
    let addr = server.local_addr();

    let (status, page) = request(addr, "GET", "/");
    assert_eq!(status, 200);
    assert!(page.contains("content-type: text/html"), "{page}");
    assert!(page.contains("content-security-policy: default-src 'none'"));
    // Offline: nothing is loaded from elsewhere.
    let html = body(&page);
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("@import")
    );
    assert!(html.contains("/api/history?hours=48"));

    let (status, state) = request(addr, "GET", "/api/state");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(body(&state)).unwrap();
    assert_eq!(v["lux"], 412.5);
    assert_eq!(v["light"], "on");
    assert_eq!(v["dli"]["target_mol"], 12.0);

    let (status, hist) = request(addr, "GET", "/api/history");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(body(&hist)).unwrap();
    assert_eq!(v["hours"], 48);
    let minutes = v["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 48 * 60 - 1, "48 h of closed minutes");
    assert_eq!(minutes[0]["t"], "2026-06-01T02:00");
    assert_eq!(v["days"].as_array().unwrap().len(), 30);
    assert_eq!(v["days"][29]["total_mol"], 12.0);
    assert_eq!(v["days"][29]["lamp_hours"], 2.0);

    let (status, hist) = request(addr, "GET", "/api/history?hours=2&days=3");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(body(&hist)).unwrap();
    assert_eq!(v["minutes"].as_array().unwrap().len(), 119);
    assert_eq!(v["days"].as_array().unwrap().len(), 3);

    for bad in ["0", "49", "abc", "1.5", "-1", ""] {
        let (status, answer) = request(addr, "GET", &format!("/api/history?hours={bad}"));
        assert_eq!(status, 400, "hours={bad}: {answer}");
        assert!(
            body(&answer).contains("hours must be a whole number from 1 to 48"),
            "{answer}"
        );
    }
    let (status, answer) = request(addr, "GET", "/api/history?hour=3");
    assert_eq!(status, 400);
    assert!(
        body(&answer).contains("unknown parameter \"hour\""),
        "{answer}"
    );

    let (status, metrics) = request(addr, "GET", "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("content-type: application/openmetrics-text"));
    assert!(body(&metrics).contains("greenhoused_lux 412.5"));
    assert!(body(&metrics).contains("greenhoused_dli_today_mol_per_m2 3.5"));

    for path in ["/", "/metrics", "/api/state", "/api/history"] {
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let (status, answer) = request(addr, method, path);
            assert_eq!(status, 405, "{method} {path}: {answer}");
            assert!(
                answer.to_lowercase().contains("allow: get,head"),
                "{answer}"
            );
        }
    }
    for path in ["/nope", "/api", "/api/state/x", "/metrics/"] {
        let (status, answer) = request(addr, "GET", path);
        assert_eq!(status, 404, "{path}: {answer}");
    }
    server.stop();
}

#[test]
fn the_snapshot_is_what_is_served() {
    let (server, tx) = start();
    let addr = server.local_addr();
    tx.send_modify(|s| {
        s.state.lux = Some(1.25);
        s.state.alerts = vec!["sensor_stale".into()];
    });
    let (_, state) = request(addr, "GET", "/api/state");
    let v: serde_json::Value = serde_json::from_str(body(&state)).unwrap();
    assert_eq!(v["lux"], 1.25);
    assert_eq!(v["alerts"], serde_json::json!(["sensor_stale"]));
    let (_, metrics) = request(addr, "GET", "/metrics");
    assert!(body(&metrics).contains("greenhoused_alert_active{alert=\"sensor_stale\"} 1"));
}

#[test]
fn a_huge_header_is_refused() {
    let (server, _tx) = start();
    let big = "a".repeat(64 * 1024);
    let answer = raw(
        server.local_addr(),
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
    // And the server still serves.
    assert_eq!(request(server.local_addr(), "GET", "/api/state").0, 200);
}

#[test]
fn a_slow_header_is_cut_off() {
    let (server, _tx) = start();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(HEADER_TIMEOUT * 4)).unwrap();
    let t = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Never finish the head: the server must hang up after HEADER_TIMEOUT (a write may fail once it has).
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let waited = t.elapsed();
    assert!(
        waited >= HEADER_TIMEOUT - Duration::from_millis(100),
        "{waited:?}"
    );
    assert!(waited < HEADER_TIMEOUT * 3, "{waited:?}");
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let (server, _tx) = start();
    let addr = server.local_addr();
    // Hold MAX_CONNECTIONS idle connections (slowloris style), then one more.
    let held: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // Let the server accept them all.
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = extra.write_all(b"GET /api/state HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = Vec::new();
    let r = extra.read_to_end(&mut buf);
    assert!(
        r.is_ok() && buf.is_empty()
            || r.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection over the limit is closed without an answer: {buf:?}"
    );
    drop(held);
    // Once the slots are free again the server answers.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ok = std::panic::catch_unwind(|| request(addr, "GET", "/api/state").0 == 200)
            .unwrap_or(false);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_taken_port_is_an_error_for_the_caller() {
    let (server, _tx) = start();
    let (_tx2, rx) = watch::channel(Snapshot::default());
    let err = Server::start(server.local_addr(), rx)
        .err()
        .expect("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}
