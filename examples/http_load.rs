//! Does a hostile HTTP client delay the control loop? A benchmark, not a test: it prints numbers.
//!
//! The daemon's arrangement in one process: the HTTP server on its own thread (`greenhoused::http::Server`) and
//! a loop on a single-threaded tokio runtime that wakes every 10 ms and publishes a fresh snapshot through the
//! same `watch` channel the daemon uses (the only thing the two share). The loop's lateness (how long after its
//! deadline each wake-up ran) is measured in three phases of equal length:
//!   1. baseline: no HTTP traffic;
//!   2. flood: 10 000 GET requests from 4 client threads (history, metrics, page, state in turn);
//!   3. slowloris: 300 connections dribbling a header byte a second, and a client sending 64 KiB headers;
//!   4. both at once;
//!   5. baseline again (drift of the shared machine).
//!
//! `cargo run --release --example http_load [-- --seconds N]`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use greenhoused::core::history::{Day, History, Sample};
use greenhoused::http::{HistoryView, Server, Snapshot, StateView};
use tokio::sync::watch;

const TICK: Duration = Duration::from_millis(10);
const REQUESTS: u64 = 10_000;

fn main() {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let phase = Duration::from_secs(seconds);

    let (history, local) = full_history();
    let (tx, rx) = watch::channel(Snapshot {
        state: state(),
        history: Arc::new(HistoryView::from_history(&history, local)),
    });
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), rx).expect("bind");
    let addr = server.local_addr();
    let tx = Arc::new(tx);

    for path in ["/", "/api/history?hours=48", "/api/state", "/metrics"] {
        println!(
            "GET {path}: {} bytes (with headers)",
            get(addr, path).unwrap_or(0)
        );
    }
    println!("phase         ticks   p50 ms   p99 ms   max ms   (lateness of a 10 ms loop)");
    let base = run_loop(&tx, phase, &history, local);
    report("baseline", &base);

    for (name, flood, slow) in [
        ("flood", true, false),
        ("slowloris", false, true),
        ("both", true, true),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let mut threads = Vec::new();
        if flood {
            for i in 0..4 {
                let (stop, counts) = (stop.clone(), counts.clone());
                threads.push(std::thread::spawn(move || {
                    flood_client(addr, i, &stop, &counts)
                }));
            }
        }
        if slow {
            let s1 = stop.clone();
            threads.push(std::thread::spawn(move || slowloris(addr, 300, &s1)));
            let s2 = stop.clone();
            threads.push(std::thread::spawn(move || huge_headers(addr, &s2)));
        }
        let t = Instant::now();
        let late = run_loop(&tx, phase, &history, local);
        let took = t.elapsed();
        report(name, &late);
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        if flood {
            println!(
                "    flood: {} of {REQUESTS} requests sent in {:.1} s: {} answered, {} closed unanswered",
                counts[0].load(Ordering::Relaxed).min(REQUESTS),
                took.as_secs_f64(),
                counts[1].load(Ordering::Relaxed),
                counts[2].load(Ordering::Relaxed),
            );
        }
    }
    let after = run_loop(&tx, phase, &history, local);
    report("baseline", &after);
    server.stop();
}

/// The stand-in control loop: wakes every [`TICK`], publishes a snapshot (a fresh history copy once a second of
/// ticks, as the daemon does once a minute), records how late each wake-up was.
fn run_loop(
    tx: &watch::Sender<Snapshot>,
    length: Duration,
    history: &History,
    local: chrono::NaiveDateTime,
) -> Vec<f64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut late = Vec::new();
        let start = tokio::time::Instant::now();
        let mut next = start + TICK;
        let mut i = 0u64;
        while next - start < length {
            tokio::time::sleep_until(next).await;
            late.push((tokio::time::Instant::now() - next).as_secs_f64() * 1000.0);
            i += 1;
            let fresh = (i % 100 == 0).then(|| Arc::new(HistoryView::from_history(history, local)));
            tx.send_modify(|s| {
                s.state.lamp_switches_total = i;
                if let Some(h) = fresh {
                    s.history = h;
                }
            });
            next += TICK;
        }
        late
    })
}

fn report(name: &str, late: &[f64]) {
    let mut v = late.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<12} {:>6} {:>8.3} {:>8.3} {:>8.3}",
        v.len(),
        q(0.5),
        q(0.99),
        v.last().copied().unwrap_or(0.0)
    );
}

/// One of 4 flood clients: requests in turn until [`REQUESTS`] were sent in all (counts: sent, answered, not).
fn flood_client(addr: SocketAddr, i: usize, stop: &AtomicBool, counts: &[AtomicU64; 3]) {
    let paths = ["/api/history?hours=48", "/metrics", "/", "/api/state"];
    let mut n = i;
    while !stop.load(Ordering::Relaxed) && counts[0].fetch_add(1, Ordering::Relaxed) < REQUESTS {
        match get(addr, paths[n % paths.len()]) {
            Some(_) => counts[1].fetch_add(1, Ordering::Relaxed),
            None => counts[2].fetch_add(1, Ordering::Relaxed),
        };
        n += 1;
    }
}

/// 64 KiB headers in a loop (each answered 431).
fn huge_headers(addr: SocketAddr, stop: &AtomicBool) {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(big.as_bytes());
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<usize> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    (!out.is_empty()).then_some(out.len())
}

/// `n` connections sending one header byte a second, reconnecting when the server hangs up.
fn slowloris(addr: SocketAddr, n: usize, stop: &AtomicBool) {
    let mut conns: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) {
        for c in conns.iter_mut() {
            let alive = match c {
                Some(s) => s.write_all(b"X").is_ok(),
                None => false,
            };
            if !alive {
                *c = TcpStream::connect(addr).ok().and_then(|mut s| {
                    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").ok()?;
                    Some(s)
                });
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn state() -> StateView {
    StateView {
        ts: "2026-06-03T02:00:00+02:00".into(),
        lux: Some(412.5),
        ambient_lux: Some(12.5),
        light: "on".into(),
        mode: "auto".into(),
        reason: "below_threshold".into(),
        sensor: "ok".into(),
        window_open: true,
        broker_connected: true,
        version: "bench".into(),
        ..StateView::default()
    }
}

/// 49 h of minutes and 420 days: the largest history the daemon holds.
fn full_history() -> (History, chrono::NaiveDateTime) {
    let t0 = NaiveDate::from_ymd_opt(2026, 6, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date");
    let mut h = History::new();
    for i in 0..(50 * 60) {
        let t = t0 + chrono::Duration::minutes(i);
        h.update(
            t,
            Sample {
                lux: Some(1000.0 + i as f64),
                ambient_lux: Some(600.0 + i as f64),
                light_on: i % 7 == 0,
                window_open: true,
            },
        );
    }
    for d in 0..420 {
        h.set_day(Day {
            day: Day::day_number(t0.date()) - 420 + d,
            sun_mol: 8.0,
            lamp_mol: 4.0,
            target_mol: 12.0,
            lamp_on_s: 7200,
            lamp_kwh: 0.5,
            cost: 0.15,
        });
    }
    (h, t0 + chrono::Duration::hours(50))
}
