//! Broker faults against the daemon process: a mosquitto killed and restarted 20 times, a broker that accepts
//! TCP but never answers CONNACK, a broker that refuses the credentials.
//!
//! `GREENHOUSED_FULL=1` runs the chaos scenario with the full outage range (0.5–3 s); the default CI
//! variant uses 0.3–1.2 s outages. While debugging, `CHAOS_CYCLES=n` runs fewer cycles and `CHAOS_DEBUG=1`
//! prints what the collector and the broker saw when a reconnect check fails.

mod common;

use std::time::{Duration, Instant};

use common::broker::{Broker, FakeBroker, Stop};
use common::collector::Collector;
use common::daemon::{mqtt_section, test_config, Daemon};
use common::full;
use common::procfs::{cpu_time, tz_for_local_time};
use rand::Rng;

/// Real seconds between readings.
const INTERVAL: f64 = 0.75;
/// Simulated time runs this much faster (the sensor cadence runs on simulated time: `sensor.interval_s` is
/// `INTERVAL × TIME_SCALE`): the twilight before sunrise then raises the lux by about 1 % per
/// reading, so every reading has its own value (readings can be counted and told apart by value).
const TIME_SCALE: f64 = 4.0;

/// 20 broker restarts (SIGKILL and SIGTERM alternately, random outages) while the daemon publishes a reading every
/// 0.75 s at QoS 1. Counts readings lost and duplicated, checks that the retained state is republished after
/// every reconnect, that a control decision is taken during every outage (a manual override expires while the
/// broker is down, and the light goes back to the rule), and that the daemon never exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_chaos_twenty_restarts() {
    let Some(mut broker) = Broker::persistent() else {
        return;
    };
    let (min_out, max_out) = if full() { (0.5, 3.0) } else { (0.3, 1.2) };
    let prefix = common::prefix("chaos");
    let collector = Collector::connect(broker.port(), &format!("{prefix}/#")).await;
    let t = |s: &str| format!("{prefix}/{s}");

    // Local time 05:48: simulated twilight, strictly rising lux. The window is closed, so in auto mode the light
    // is off (reason outside_window); the mock lamp adds nothing, so switching does not disturb the readings.
    let config = test_config(
        &mqtt_section(broker.port(), &prefix),
        &format!(
            "[sensor]\ninterval_s = {}\n\n[control]\nmin_on_s = 0\nmin_off_s = 0\nwindow = \"12:00-13:00\"\n\n\
             [mock]\nambient = \"day\"\nlamp_lux = 0\ntime_scale = {TIME_SCALE}\n",
            INTERVAL * TIME_SCALE
        ),
    );
    let tz = tz_for_local_time(5, 48, 0);
    let mut daemon = Daemon::start_with_env(&config, &[("TZ", &tz)]);

    let (_, first) = collector
        .wait(0, |r| r.topic == t("luminosity"), Duration::from_secs(10))
        .await
        .expect("first reading");
    let t0 = first.at;
    let started = Instant::now();

    let cycles: usize = std::env::var("CHAOS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut rng = rand::thread_rng();
    let mut republished = 0;
    let mut decisions_offline = 0;
    let mut outages = Vec::new();
    for cycle in 0..cycles {
        let outage = Duration::from_secs_f64(rng.gen_range(min_out..max_out));
        let how = if cycle % 2 == 0 {
            Stop::Kill
        } else {
            Stop::Term
        };
        // A manual override that expires in the middle of the coming outage (for_s is simulated time).
        let for_s = outage.as_secs_f64() / 2.0 * TIME_SCALE;
        let from = collector.len();
        collector
            .publish(
                &t("light/set"),
                &format!("{{\"state\": \"on\", \"for_s\": {for_s:.3}}}"),
            )
            .await;
        assert!(
            collector
                .wait_live(from, &t("light"), "on", Duration::from_secs(5))
                .await
                .is_some(),
            "cycle {cycle}: command not echoed; the broker's log ends with:\n{}",
            tail(&broker.log(), 40)
        );
        let log_before = daemon.log().len();
        broker.stop(how);
        tokio::time::sleep(outage).await;
        let during = daemon.log()[log_before..].to_string();
        if during.contains("light off (reason outside_window, mode auto") {
            decisions_offline += 1;
        }
        let restart_index = collector.len();
        broker.start_again();
        outages.push((how, outage));
        // After the reconnect the daemon republishes its retained state (status, light, ...).
        let online = collector
            .wait_live(
                restart_index,
                &t("status"),
                "online",
                Duration::from_secs(10),
            )
            .await;
        let light = collector
            .wait_live(restart_index, &t("light"), "off", Duration::from_secs(10))
            .await;
        if online.is_some() && light.is_some() {
            republished += 1;
        } else if std::env::var_os("CHAOS_DEBUG").is_some() {
            for r in &collector.records()[restart_index..] {
                eprintln!(
                    "  {:?} {} {} retained={}",
                    r.at - t0,
                    r.topic,
                    r.payload,
                    r.retained
                );
            }
            eprintln!("{}", tail(&broker.log(), 40));
        }
        assert!(
            daemon.running(),
            "cycle {cycle}: the daemon exited:\n{}",
            daemon.log()
        );
    }
    let chaos_time = started.elapsed();

    // Stop in the middle of a sensor interval, so the number of readings taken is known: readings happen at
    // t0' + k·0.75 s (drift-free schedule), t0' = the first reading's time (t0 minus its conversion time).
    let k = ((Instant::now() + Duration::from_millis(1500) - t0).as_secs_f64() / INTERVAL).ceil();
    let stop_at = t0 + Duration::from_secs_f64((k + 0.5) * INTERVAL);
    tokio::time::sleep_until(stop_at.into()).await;
    daemon.terminate(Duration::from_secs(5));
    assert!(
        collector
            .wait_live(0, &t("status"), "offline", Duration::from_secs(5))
            .await
            .is_some(),
        "final offline not received"
    );
    // Round trip through the broker: everything the daemon sent before has been forwarded.
    collector.publish(&t("marker"), "end").await;
    collector
        .wait(0, |r| r.topic == t("marker"), Duration::from_secs(5))
        .await
        .expect("marker");

    let readings: Vec<f64> = collector
        .records()
        .iter()
        .filter(|r| r.topic == t("luminosity"))
        .map(|r| r.payload.parse::<f64>().expect("lux is a number"))
        .collect();
    let mut distinct: Vec<f64> = readings.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let expected = k as usize + 1;
    let lost = expected.saturating_sub(distinct.len());
    let duplicates = readings.len() - distinct.len();
    let log = daemon.log();
    eprintln!(
        "CHAOS: cycles {cycles} ({}), outages {:.1}..{:.1} s, chaos time {:.1} s, readings expected {expected}, \
         received {}, distinct {}, lost {lost}, duplicates {duplicates}, state republished after {republished}/{cycles} \
         reconnects, decisions during outages {decisions_offline}/{cycles}, daemon alive throughout, \
         MQTT connects logged {}",
        if full() { "full" } else { "CI" },
        min_out,
        max_out,
        chaos_time.as_secs_f64(),
        readings.len(),
        distinct.len(),
        log.matches("MQTT connected to").count(),
    );
    assert_eq!(
        republished, cycles,
        "retained state not republished after every reconnect"
    );
    assert_eq!(
        decisions_offline, cycles,
        "control decisions missing during outages:\n{log}"
    );
    assert!(
        distinct.len() <= expected,
        "more distinct readings than taken: {expected} expected"
    );
    assert_eq!(lost, 0, "readings lost ({lost} of {expected})");
    assert!(!log.contains("panicked"), "panic in the log:\n{log}");
}

/// The last `n` lines of `log`.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A "broker" that accepts the TCP connection and never answers CONNACK: the daemon keeps running and keeps
/// controlling the light, says clearly what is wrong, retries at a bounded rate, and still stops promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_without_connack() {
    let silent = FakeBroker::silent();
    // The window opens about 4 s after the start (local time 11:59:56): the light must switch on then, while
    // the first connect attempt (10 s limit) still hangs.
    let tz = tz_for_local_time(11, 59, 56);
    let config = test_config(
        &format!(
            "url = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = \"silent\"\nkeepalive_s = 5",
            silent.port()
        ),
        "[sensor]\ninterval_s = 0.75\n\n[control]\nmin_on_s = 0\nmin_off_s = 0\nwindow = \"12:00-23:00\"\n\n\
         [mock]\nambient = \"100\"\n",
    );
    let started = Instant::now();
    let mut daemon = Daemon::start_with_env(&config, &[("TZ", &tz)]);
    assert!(
        daemon
            .wait_log("light on (reason below_threshold", Duration::from_secs(10))
            .await,
        "the rule did not switch the light while the broker hung:\n{}",
        daemon.log()
    );
    let switched_after = started.elapsed();
    assert!(
        daemon
            .wait_log("no answer within", Duration::from_secs(14))
            .await,
        "no log line about the silent broker:\n{}",
        daemon.log()
    );
    let observed = started.elapsed();
    let accepts = silent.accepts();
    assert!(daemon.running(), "daemon exited:\n{}", daemon.log());
    assert!(
        !daemon.log().contains("MQTT connected"),
        "connected to a silent broker?"
    );
    // One attempt hangs for the 10 s connect limit, then the backoff: at most 3 connections in ~11 s, for each of
    // the two connections (publishing and commands).
    assert!(
        (1..=6).contains(&accepts),
        "{accepts} connections to the silent broker in {observed:?}"
    );
    assert!(silent.bytes() > 0, "the daemon never sent CONNECT");
    let stopped_in = daemon.terminate(Duration::from_secs(3));
    eprintln!(
        "SILENT: light switched by the rule {:.1} s after start with no broker answer, log line after {:.1} s, \
         {accepts} connections in {:.1} s, SIGTERM → exit {:.2} s",
        switched_after.as_secs_f64(),
        observed.as_secs_f64(),
        observed.as_secs_f64(),
        stopped_in.as_secs_f64()
    );
}

/// A broker that accepts the first connections and drops each at once — what mosquitto does when a second client
/// connects with the same client id (two Pis sharing one config), or when it rejects what the client sends right
/// after CONNACK. The daemon does not fight back in a tight loop: the pauses grow, the journal says once what the
/// likely cause is, it starts over with a fresh paho client, and when the broker behaves again it is back in
/// business (connected, publishing, state republished).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_dropping_connections_right_after_connack() {
    let Some(broker) = Broker::anonymous() else {
        return;
    };
    // Only the publishing connection (its client id) is dropped; the command connection passes.
    let fake = FakeBroker::dropping_first_of(3, "greenhouse-east", broker.port());
    let prefix = common::prefix("flap");
    let collector = Collector::connect(broker.port(), &format!("{prefix}/#")).await;
    let config = test_config(
        &format!(
            "url = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = \"{prefix}\"\nclient_id = \"greenhouse-east\"",
            fake.port()
        ),
        "[sensor]\ninterval_s = 0.75\n",
    );
    let started = Instant::now();
    let mut daemon = Daemon::start(&config);
    let hint = "is another client connected with client_id \"greenhouse-east\"?";
    assert!(
        daemon.wait_log(hint, Duration::from_secs(10)).await,
        "no hint at the likely cause:\n{}",
        daemon.log()
    );
    let hinted_after = started.elapsed();
    let (_, online) = collector
        .wait(
            0,
            |r| r.topic == format!("{prefix}/status") && r.payload == "online",
            Duration::from_secs(15),
        )
        .await
        .unwrap_or_else(|| {
            panic!(
                "never back online through the healed broker:\n{}",
                daemon.log()
            )
        });
    let back_after = online.at - started;
    collector
        .wait(
            0,
            |r| r.topic == format!("{prefix}/luminosity"),
            Duration::from_secs(5),
        )
        .await
        .expect("readings published after the recovery");
    let log = daemon.log();
    assert_eq!(
        log.matches(hint).count(),
        1,
        "the hint is said once:\n{log}"
    );
    assert!(
        log.contains("after it was made: connection lost; reconnecting in"),
        "the loss line does not say how short the connection was:\n{log}"
    );
    assert!(
        log.contains("starting over with a fresh client"),
        "the paho client was not replaced:\n{log}"
    );
    let times = fake.client_accept_times();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Pauses of 0.5, 1 and 2 s (±25 %) after the three drops; before, each reconnect came within milliseconds.
    assert!(
        gaps.len() >= 3
            && gaps[0] >= Duration::from_millis(375)
            && gaps[1] >= Duration::from_millis(750)
            && gaps[2] >= Duration::from_millis(1500),
        "pauses between connections {gaps:?}"
    );
    assert_eq!(
        times.len(),
        4,
        "connections: 3 dropped, then one that holds ({gaps:?})"
    );
    assert!(daemon.running(), "daemon exited:\n{log}");
    let stopped_in = daemon.terminate(Duration::from_secs(3));
    eprintln!(
        "FLAP: hint after {:.1} s, pauses {gaps:.2?}, fresh client online after {:.1} s, SIGTERM → exit {:.2} s",
        hinted_after.as_secs_f64(),
        back_after.as_secs_f64(),
        stopped_in.as_secs_f64()
    );
}

/// A broker that refuses the credentials: one clear error line, exponential backoff (counted at a proxy), no busy
/// loop (CPU time from /proc), the daemon keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_refusing_credentials() {
    let Some(broker) = Broker::with_password("greenhouse", "right-password") else {
        return;
    };
    let proxy = common::Proxy::start(broker.port()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let pw = dir.path().join("mqtt-password");
    std::fs::write(&pw, "wrong-password\n").expect("write password file");
    let config = test_config(
        &format!(
            "url = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = \"creds\"\nusername = \"greenhouse\"\n\
             password_file = \"{}\"",
            proxy.port(),
            pw.display()
        ),
        "[sensor]\ninterval_s = 0.75\n",
    );
    let mut daemon = Daemon::start(&config);
    assert!(
        daemon
            .wait_log("refused the connection", Duration::from_secs(10))
            .await,
        "no clear log line:\n{}",
        daemon.log()
    );
    let cpu_before = cpu_time(daemon.pid()).expect("cpu time");
    let attempts_before = proxy.accepts();
    let window = Duration::from_secs(8);
    tokio::time::sleep(window).await;
    let cpu = cpu_time(daemon.pid()).expect("cpu time") - cpu_before;
    let attempts = proxy.accepts() - attempts_before;
    let log = daemon.log();
    assert!(daemon.running(), "daemon exited:\n{log}");
    // mosquitto 2 answers a wrong password with "not authorized" (MQTT 3.1.1 return code 5); the daemon says
    // which settings to check either way.
    assert!(
        log.contains("check mqtt.username, the password"),
        "no hint what to fix:\n{log}"
    );
    // Backoff 0.5, 1, 2, 4, 8 s (±25 %): after the first refusal at most 4 more attempts fit in 8 s, for each of
    // the two connections (publishing and commands).
    assert!(
        (2..=10).contains(&attempts),
        "{attempts} connection attempts in {window:?}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("ERROR") && l.contains("refused the connection"))
            .count(),
        1,
        "the refusal should be logged once (repeats at debug level only):\n{log}"
    );
    assert!(!log.contains("wrong-password"), "password in the log");
    // A busy loop would burn a whole core; the daemon reads the sensor and retries now and then.
    let share = cpu.as_secs_f64() / window.as_secs_f64();
    assert!(
        share < 0.05,
        "CPU {cpu:?} in {window:?} ({:.1} %)",
        share * 100.0
    );
    eprintln!(
        "CREDENTIALS: {attempts} attempts in {:.0} s after the first refusal, CPU {:.3} s ({:.2} % of a core), \
         refusal logged once",
        window.as_secs_f64(),
        cpu.as_secs_f64(),
        share * 100.0
    );
}
