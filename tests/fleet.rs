//! Fleets (SPEC "Fleets", docs/FLEET.md), against real mosquittos on loopback and the daemon binary on mock
//! hardware:
//! - 50 gateways on one broker, the broker killed and restarted: all come back, their reconnects spread out;
//!   the broker's CPU and the gateways' memory measured;
//! - a site broker bridged to a central one with the shipped configuration
//!   (config/examples/mosquitto-site-bridge.conf): the central broker down for a while;
//! - failover between the brokers of an `mqtt.url` list, and the policy of staying on the broker that works.
//!
//! The figures are printed (`cargo test --test fleet -- --nocapture`) and quoted in docs/FLEET.md.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::broker::{Broker, Stop};
use common::collector::{Collector, Rec};
use common::daemon::{Cfg, Daemon};
use common::procfs::{cpu_time, rss_kib, tz_for_local_time};

/// The tests of this file run one at a time: the fleet test alone starts 50 processes on a small machine, and
/// the others count readings on a schedule.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Gateways in the fleet test.
const GATEWAYS: usize = 50;

/// A gateway of a fleet: its own device id, the default client id (`greenhoused-<device.id>`), the fleet's topic
/// layout and no HTTP listener (50 of them would fight over one port).
fn gateway(url: &str, device: &str) -> Cfg {
    Cfg::broker(0, "greenhouses/{device}")
        .set("mqtt.url", url)
        .set("device.id", &format!("\"{device}\""))
        .set("mqtt.client_id", "\"\"")
        .set("http.listen", "\"\"")
}

/// `mqtt.url` for one broker, or a failover list.
fn url(ports: &[u16]) -> String {
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("\"mqtt://127.0.0.1:{p}\""))
        .collect();
    match urls.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Real seconds between readings in the counting tests.
const INTERVAL: f64 = 0.75;
/// Simulated time runs this much faster: the twilight before sunrise then raises the lux by about 1 % per
/// reading, so every reading has its own value and readings can be counted and told apart (as in
/// tests/fault_broker.rs). Start the daemon with `TZ` = [`twilight_tz`].
const TIME_SCALE: f64 = 4.0;

/// Readings that can be counted: rising twilight, the window closed (light off in auto), a lamp that adds no
/// light (a manual switch does not disturb the readings).
fn counting(cfg: Cfg) -> Cfg {
    cfg.set("sensor.interval_s", &format!("{}", INTERVAL * TIME_SCALE))
        .set("sensor.stale_after_s", "60")
        .set("control.window", "\"12:00-13:00\"")
        .set("mock.ambient", "\"day\"")
        .set("mock.lamp_lux", "0")
        .set("mock.time_scale", &format!("{TIME_SCALE}"))
}

fn twilight_tz() -> String {
    tz_for_local_time(5, 48, 0)
}

/// Wait until every device of `ids` has a record at index ≥ `from` that `pred(device, record)` accepts (bounded).
/// Returns, per device found, the time of its first such record.
async fn wait_all(
    col: &Collector,
    from: usize,
    ids: &[String],
    pred: impl Fn(&str, &Rec) -> bool,
    limit: Duration,
) -> BTreeMap<String, Instant> {
    let end = Instant::now() + limit;
    let mut found = BTreeMap::new();
    let mut seen = from;
    loop {
        let recs = col.records();
        for r in recs.iter().skip(seen) {
            let Some(device) = r
                .topic
                .strip_prefix("greenhouses/")
                .and_then(|t| t.split('/').next())
            else {
                continue;
            };
            if !found.contains_key(device) && ids.iter().any(|i| i == device) && pred(device, r) {
                found.insert(device.to_string(), r.at);
            }
        }
        seen = recs.len();
        if found.len() == ids.len() || Instant::now() >= end {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn missing(ids: &[String], found: &BTreeMap<String, Instant>) -> Vec<String> {
    ids.iter()
        .filter(|i| !found.contains_key(*i))
        .cloned()
        .collect()
}

/// Live readings of `device` as numbers, in arrival order.
fn readings(col: &Collector, device: &str) -> Vec<f64> {
    let topic = format!("greenhouses/{device}/luminosity");
    col.records()
        .iter()
        .filter(|r| r.topic == topic)
        .map(|r| r.payload.parse::<f64>().expect("lux is a number"))
        .collect()
}

fn distinct(values: &[f64]) -> Vec<f64> {
    let mut d = values.to_vec();
    d.sort_by(f64::total_cmp);
    d.dedup();
    d
}

/// Stop the daemon in the middle of a sensor interval, so the number of readings it took is known: readings
/// happen at t0' + k·INTERVAL (drift-free schedule), t0' = the first reading's time (`t0` is its arrival).
/// Returns the number of readings taken.
async fn stop_between_readings(daemon: &mut Daemon, t0: Instant) -> usize {
    let k = ((Instant::now() + Duration::from_millis(1500) - t0).as_secs_f64() / INTERVAL).ceil();
    let stop_at = t0 + Duration::from_secs_f64((k + 0.5) * INTERVAL);
    tokio::time::sleep_until(stop_at.into()).await;
    daemon.terminate(Duration::from_secs(5));
    k as usize + 1
}

/// Wait for the last `P/state` of `device` on `col` to name `broker` (bounded); returns the last state seen.
async fn wait_state_broker(
    col: &Collector,
    device: &str,
    broker: &str,
    limit: Duration,
) -> Option<serde_json::Value> {
    let topic = format!("greenhouses/{device}/state");
    let end = Instant::now() + limit;
    loop {
        let last = col
            .records()
            .iter()
            .rev()
            .find(|r| r.topic == topic)
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.payload).ok());
        if let Some(s) = &last {
            if s["broker"] == broker {
                return last;
            }
        }
        if Instant::now() >= end {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fake systemd notify socket, read all the time (as systemd does: a full socket would block the sender).
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind NOTIFY_SOCKET");
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        // Ends with the test process (the socket file goes with the temp dir).
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        NotifySocket {
            _dir: dir,
            path,
            received,
        }
    }

    /// Wait until a `STATUS=` line containing `needle` arrived (bounded).
    async fn wait_status(&self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            let found = self
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .flat_map(|m| m.lines())
                .any(|l| l.starts_with("STATUS=") && l.contains(needle));
            if found {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// 50 gateways (distinct device ids, `topic_prefix = "greenhouses/{device}"`) on one mosquitto: all online and
/// publishing; the broker killed and restarted after 3 s: all back with readings, their reconnects spread out by
/// the jittered backoff. Prints the spread, the broker's CPU and the gateways' total RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_gateways_on_one_broker_come_back_after_its_restart() {
    let _serial = SERIAL.lock().await;
    let Some(mut broker) = Broker::anonymous() else {
        return;
    };
    let col = Collector::connect(broker.port(), "greenhouses/#").await;
    let ids: Vec<String> = (0..GATEWAYS).map(|i| format!("house-{i:02}")).collect();
    let started = Instant::now();
    let mut fleet: Vec<Daemon> = ids
        .iter()
        .map(|id| {
            let cfg = gateway(&url(&[broker.port()]), id)
                // A reading every 3 s: 50 debug builds on two cores stay light.
                .set("sensor.interval_s", "3")
                .set("sensor.stale_after_s", "20");
            Daemon::start(&cfg.render())
        })
        .collect();
    let limit = Duration::from_secs(60);
    let online = wait_all(
        &col,
        0,
        &ids,
        |d, r| r.topic == format!("greenhouses/{d}/status") && r.payload == "online",
        limit,
    )
    .await;
    assert!(
        online.len() == GATEWAYS,
        "not online: {:?}",
        missing(&ids, &online)
    );
    let publishing = wait_all(
        &col,
        0,
        &ids,
        |d, r| r.topic == format!("greenhouses/{d}/luminosity"),
        limit,
    )
    .await;
    assert!(
        publishing.len() == GATEWAYS,
        "no readings from {:?}",
        missing(&ids, &publishing)
    );
    let all_up = started.elapsed();

    // Steady state: the broker's CPU share, the gateways' CPU and memory, the message rate.
    let broker_pid = broker.pid().expect("broker running");
    let pids: Vec<u32> = fleet.iter().map(Daemon::pid).collect();
    let gw_cpu = |pids: &[u32]| -> Duration { pids.iter().filter_map(|p| cpu_time(*p)).sum() };
    let (b0, g0, n0, w0) = (
        cpu_time(broker_pid).expect("broker cpu"),
        gw_cpu(&pids),
        col.len(),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let window = w0.elapsed().as_secs_f64();
    let broker_share = (cpu_time(broker_pid).expect("broker cpu") - b0).as_secs_f64() / window;
    let gw_share = (gw_cpu(&pids) - g0).as_secs_f64() / window;
    let rate = (col.len() - n0) as f64 / window;
    let rss: Vec<u64> = pids.iter().filter_map(|p| rss_kib(*p)).collect();
    assert_eq!(rss.len(), GATEWAYS, "a gateway exited");
    let rss_total: u64 = rss.iter().sum();
    let broker_rss = rss_kib(broker_pid).unwrap_or(0);

    // The broker dies (no will messages: the broker itself is gone) and comes back after 3 s, empty.
    broker.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from = col.len();
    broker.start_again();
    let restarted = Instant::now();
    let broker_pid = broker.pid().expect("broker running");
    let back = wait_all(
        &col,
        from,
        &ids,
        |d, r| r.topic == format!("greenhouses/{d}/status") && r.payload == "online",
        Duration::from_secs(40),
    )
    .await;
    let storm_cpu = cpu_time(broker_pid).unwrap_or_default();
    assert!(
        back.len() == GATEWAYS,
        "not back online after the restart: {:?}",
        missing(&ids, &back)
    );
    let fresh = wait_all(
        &col,
        from,
        &ids,
        |d, r| r.topic == format!("greenhouses/{d}/luminosity") && !r.retained,
        Duration::from_secs(20),
    )
    .await;
    assert!(
        fresh.len() == GATEWAYS,
        "no readings after the restart from {:?}",
        missing(&ids, &fresh)
    );
    // Reconnect times after the restart. The collector itself reconnects within ~0.2 s; a gateway that was
    // quicker shows up at the collector's resubscription (its retained `online`), so the earliest times are
    // late and the measured spread is a lower bound of the real one.
    let mut at: Vec<f64> = back
        .values()
        .map(|t| t.saturating_duration_since(restarted).as_secs_f64())
        .collect();
    at.sort_by(f64::total_cmp);
    let spread = at[GATEWAYS - 1] - at[0];
    for d in fleet.iter_mut() {
        assert!(d.running(), "a gateway exited:\n{}", d.log());
    }
    eprintln!(
        "FLEET: {GATEWAYS} gateways online and publishing {:.1} s after start; steady state (reading every 3 s, \
         {:.0} msg/s through the broker): broker CPU {:.2} % of a core, RSS {broker_rss} KiB; gateways CPU \
         {:.2} % of a core in total ({:.3} % each), RSS {:.1} MiB in total ({:.1} MiB each, debug build)",
        all_up.as_secs_f64(),
        rate,
        broker_share * 100.0,
        gw_share * 100.0,
        gw_share * 100.0 / GATEWAYS as f64,
        rss_total as f64 / 1024.0,
        rss_total as f64 / 1024.0 / GATEWAYS as f64,
    );
    eprintln!(
        "FLEET: broker killed, restarted after 3 s: all {GATEWAYS} back {:.2}..{:.2} s after the restart \
         (spread {spread:.2} s, median {:.2} s, 90 % by {:.2} s), readings from all within {:.2} s; broker CPU \
         from its restart until all were back {:.0} ms",
        at[0],
        at[GATEWAYS - 1],
        percentile(&at, 0.5),
        percentile(&at, 0.9),
        fresh
            .values()
            .map(|t| t.saturating_duration_since(restarted).as_secs_f64())
            .fold(0.0, f64::max),
        storm_cpu.as_secs_f64() * 1000.0,
    );
    // Without jitter the 50 would retry on the same backoff steps and arrive within a few scheduling delays.
    assert!(
        spread > 0.3,
        "reconnects not spread out: {at:.2?} s after the restart"
    );
    assert!(
        at[GATEWAYS - 1] < 30.0,
        "the last gateway came back {:.1} s after the restart",
        at[GATEWAYS - 1]
    );
}

/// The site broker, bridged to `central_port` with the shipped configuration: only the central address and a
/// short reconnect time (the shipped 2..30 s backoff would make the test wait) are replaced.
fn site_bridge_lines(dir: &std::path::Path, central_port: u16) -> String {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/examples/mosquitto-site-bridge.conf"
    ))
    .expect("read config/examples/mosquitto-site-bridge.conf");
    assert!(shipped.contains("\naddress central.example.net:1883\n"));
    assert!(shipped.contains("\nrestart_timeout 2 30\n"));
    let bridge = shipped
        .replace(
            "\naddress central.example.net:1883\n",
            &format!("\naddress 127.0.0.1:{central_port}\n"),
        )
        .replace("\nrestart_timeout 2 30\n", "\nrestart_timeout 1 2\n");
    format!(
        "allow_anonymous true\npersistence_location {}/\n{bridge}",
        dir.display()
    )
}

/// A gateway on a site broker bridged to a central broker: commands from the central side reach the gateway;
/// the central broker down for 6 s: local control and the site broker keep working, and every reading published
/// meanwhile reaches the central side after it is back (counted: lost and duplicated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_queues_readings_while_the_central_broker_is_down() {
    let _serial = SERIAL.lock().await;
    let Some(mut central) = Broker::persistent() else {
        return;
    };
    let central_port = central.port();
    let Some(site) = Broker::start(|dir| site_bridge_lines(dir, central_port)) else {
        return;
    };
    let on_central = Collector::connect(central.port(), "greenhouses/#").await;
    let on_site = Collector::connect(site.port(), "greenhouses/#").await;
    // The bridge is up once a message published on the site reaches the central broker.
    let up = Instant::now();
    loop {
        on_site.publish("greenhouses/probe/bridge", "up").await;
        if on_central
            .wait(
                0,
                |r| r.topic == "greenhouses/probe/bridge",
                Duration::from_millis(500),
            )
            .await
            .is_some()
        {
            break;
        }
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "the bridge did not come up:\n{}",
            site.log()
        );
    }

    let device = "house-b";
    let t = |s: &str| format!("greenhouses/{device}/{s}");
    let cfg = counting(gateway(&url(&[site.port()]), device));
    let mut daemon = Daemon::start_with_env(&cfg.render(), &[("TZ", twilight_tz())]);
    let (_, first) = on_central
        .wait(0, |r| r.topic == t("luminosity"), Duration::from_secs(15))
        .await
        .expect("a reading through the bridge");
    let t0 = first.at;

    // A command from the central side: central → bridge → site → gateway, and the answer back up.
    let from = on_central.len();
    on_central.publish(&t("light/set"), "on").await;
    let via_bridge = Instant::now();
    assert!(
        on_central
            .wait_live(from, &t("light"), "on", Duration::from_secs(10))
            .await
            .is_some(),
        "a command from the central broker did not reach the gateway:\n{}",
        daemon.log()
    );
    let command_rtt = via_bridge.elapsed();

    // The central broker goes away for 6 s (SIGTERM: it keeps its sessions, as a maintained broker does).
    central.stop(Stop::Term);
    let outage_start = on_site.len();
    // Local control keeps working through the site broker.
    on_site.publish(&t("light/set"), "off").await;
    assert!(
        on_site
            .wait_live(outage_start, &t("light"), "off", Duration::from_secs(5))
            .await
            .is_some(),
        "local control stopped while the central broker was down:\n{}",
        daemon.log()
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = on_site.records()[outage_start..]
        .iter()
        .filter(|r| r.topic == t("luminosity"))
        .count();
    central.start_again();
    let central_back = Instant::now();

    let taken = stop_between_readings(&mut daemon, t0).await;
    // A marker published on the site after the last reading: once it is on the central side, the bridge has
    // forwarded everything queued before it (QoS 1, in order).
    on_site.publish(&t("marker"), "end").await;
    assert!(
        on_central
            .wait(0, |r| r.topic == t("marker"), Duration::from_secs(30))
            .await
            .is_some(),
        "the bridge did not deliver after the central broker came back:\n{}",
        site.log()
    );
    let drained_in = central_back.elapsed();
    // Loop check: the one command from the central side ("on") was not sent back up by the bridge. (The local
    // "off" goes up like everything published on the site.)
    let commands_on_central = on_central
        .records()
        .iter()
        .filter(|r| r.topic == t("light/set") && r.payload == "on")
        .count();

    let site_all = readings(&on_site, device);
    let central_all = readings(&on_central, device);
    let (site_d, central_d) = (distinct(&site_all), distinct(&central_all));
    // The central collector subscribed before the gateway started: it must have every reading taken.
    let lost_site = taken.saturating_sub(site_d.len());
    let lost_central = taken.saturating_sub(central_d.len());
    eprintln!(
        "BRIDGE: command central→gateway→central {:.0} ms; central down 6 s: {during} readings on the site \
         meanwhile, local control kept working; readings taken {taken}: site received {} (lost {lost_site}, \
         duplicated {}), central received {} (lost {lost_central}, duplicated {}); bridge drained {:.1} s after \
         the central broker restarted; commands echoed back to central by the bridge: {}",
        command_rtt.as_secs_f64() * 1000.0,
        site_all.len(),
        site_all.len() - site_d.len(),
        central_all.len(),
        central_all.len() - central_d.len(),
        drained_in.as_secs_f64(),
        commands_on_central - 1,
    );
    assert!(
        during >= 5,
        "the gateway stopped publishing to the site broker while the central one was down ({during} readings)"
    );
    assert!(
        site_d.len() <= taken && central_d.len() <= taken,
        "more distinct readings than taken ({taken})"
    );
    assert_eq!(lost_site, 0, "readings lost on the site broker");
    assert_eq!(
        lost_central, 0,
        "readings lost on their way to the central broker"
    );
    assert_eq!(
        commands_on_central, 1,
        "the bridge loops commands back to the central broker"
    );
}

/// `mqtt.url = [first, second]`: the first broker killed → the gateway on the second within 10 s, its `P/state`
/// naming it, no reading lost; the first back → the gateway stays on the second (policy: a broker is left only
/// when it fails); the second killed → back on the first (every reconnect walks the list from the top).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_second_broker_and_stay_there_until_it_fails() {
    let _serial = SERIAL.lock().await;
    let (Some(mut first), Some(mut second)) = (Broker::persistent(), Broker::persistent()) else {
        return;
    };
    let on_first = Collector::connect(first.port(), "greenhouses/#").await;
    let on_second = Collector::connect(second.port(), "greenhouses/#").await;
    let device = "house-f";
    let t = |s: &str| format!("greenhouses/{device}/{s}");
    let (first_url, second_url) = (
        format!("mqtt://127.0.0.1:{}", first.port()),
        format!("mqtt://127.0.0.1:{}", second.port()),
    );
    let cfg = counting(gateway(&url(&[first.port(), second.port()]), device));
    // The systemd STATUS line names the broker too.
    let notify = NotifySocket::bind();
    let mut daemon = Daemon::start_with_env(
        &cfg.render(),
        &[
            ("TZ", twilight_tz()),
            ("NOTIFY_SOCKET", notify.path.display().to_string()),
        ],
    );
    let (_, reading) = on_first
        .wait(0, |r| r.topic == t("luminosity"), Duration::from_secs(15))
        .await
        .expect("a reading on the first broker");
    let t0 = reading.at;
    let state = wait_state_broker(&on_first, device, &first_url, Duration::from_secs(5)).await;
    assert_eq!(
        state.as_ref().map(|s| s["broker"].clone()),
        Some(first_url.clone().into()),
        "P/state does not name the first broker"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The first broker dies: the gateway goes to the second.
    let from = on_second.len();
    first.kill();
    let killed = Instant::now();
    assert!(
        on_second
            .wait_live(from, &t("status"), "online", Duration::from_secs(10))
            .await
            .is_some(),
        "not on the second broker within 10 s:\n{}",
        daemon.log()
    );
    let failover = killed.elapsed();
    let state = wait_state_broker(&on_second, device, &second_url, Duration::from_secs(5)).await;
    assert_eq!(
        state.as_ref().map(|s| s["broker"].clone()),
        Some(second_url.clone().into()),
        "P/state does not name the second broker"
    );
    let status = format!("broker connected to {second_url}");
    assert!(
        notify.wait_status(&status, Duration::from_secs(5)).await,
        "no STATUS= line with {status:?}"
    );
    assert!(
        daemon
            .wait_log(
                &format!("MQTT connected to {second_url}"),
                Duration::from_secs(1)
            )
            .await,
        "the log does not name the second broker:\n{}",
        daemon.log()
    );

    // Commands come through the second broker too (the command connection follows the publishing one).
    let from = on_second.len();
    on_second.publish(&t("light/set"), "on").await;
    assert!(
        on_second
            .wait_live(from, &t("light"), "on", Duration::from_secs(10))
            .await
            .is_some(),
        "a command on the second broker did not reach the gateway:\n{}",
        daemon.log()
    );

    // The first broker comes back: the gateway stays where it is.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first_log_from = first.log().len();
    first.start_again();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let client_id = format!("greenhoused-{device}");
    let first_log = first.log();
    assert!(
        !first_log[first_log_from..].contains(&client_id),
        "the gateway went back to the first broker while the second worked:\n{}",
        &first_log[first_log_from..]
    );
    let on_second_now = on_second.len();
    assert!(
        on_second
            .wait(
                on_second_now,
                |r| r.topic == t("luminosity"),
                Duration::from_secs(3)
            )
            .await
            .is_some(),
        "no readings on the second broker"
    );

    // The second broker dies: back to the first, the top of the list.
    let from = on_first.len();
    second.kill();
    let killed2 = Instant::now();
    assert!(
        on_first
            .wait_live(from, &t("status"), "online", Duration::from_secs(10))
            .await
            .is_some(),
        "not back on the first broker within 10 s:\n{}",
        daemon.log()
    );
    let failback = killed2.elapsed();
    // Bring the second back so that anything it had queued for its collector is delivered too.
    second.start_again();

    let taken = stop_between_readings(&mut daemon, t0).await;
    for (col, name) in [(&on_first, "first"), (&on_second, "second")] {
        col.publish(&t("marker"), "end").await;
        assert!(
            col.wait(0, |r| r.topic == t("marker"), Duration::from_secs(10))
                .await
                .is_some(),
            "marker not received on the {name} broker"
        );
    }
    let (a, b) = (readings(&on_first, device), readings(&on_second, device));
    let both: Vec<f64> = a.iter().chain(&b).copied().collect();
    let d = distinct(&both);
    let lost = taken.saturating_sub(d.len());
    eprintln!(
        "FAILOVER: first broker killed → on the second after {:.2} s (P/state and the log name it); first back: \
         stayed on the second for 6 s; second killed → back on the first after {:.2} s; readings taken {taken}: \
         {} on the first broker, {} on the second, distinct {}, lost {lost}, duplicated {}",
        failover.as_secs_f64(),
        failback.as_secs_f64(),
        a.len(),
        b.len(),
        d.len(),
        both.len() - d.len(),
    );
    assert!(d.len() <= taken, "more distinct readings than taken");
    assert_eq!(
        lost, 0,
        "readings lost in the failovers ({lost} of {taken})"
    );
}

/// A failover list keeps stdout clean: the bundled Paho C prints "checking <uri>" to stdout on every connect
/// attempt given a server URI list without TLS options (see `connect_options` in src/mqtt/client.rs). The daemon
/// with a dead first broker retries a few times and connects to the second; its stdout stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_list_prints_nothing_on_stdout() {
    let _serial = SERIAL.lock().await;
    let Some(live) = Broker::anonymous() else {
        return;
    };
    let dead = common::free_port();
    let on_live = Collector::connect(live.port(), "greenhouses/#").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("greenhoused.toml");
    std::fs::write(
        &config,
        gateway(&url(&[dead, live.port()]), "house-s").render(),
    )
    .expect("write config");
    let stdout = dir.path().join("stdout");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_greenhoused"))
        .arg("--mock-hardware")
        .arg("-c")
        .arg(&config)
        .arg("--log-target")
        .arg("stderr")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env("STATE_DIRECTORY", dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn greenhoused");
    let online = on_live
        .wait_live(
            0,
            "greenhouses/house-s/status",
            "online",
            Duration::from_secs(15),
        )
        .await;
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    assert!(online.is_some(), "never connected to the second broker");
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(out.is_empty(), "the daemon wrote to stdout:\n{out}");
}
