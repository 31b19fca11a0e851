//! `--mock-hardware` with an accelerated clock (`mock.time_scale`): the simulated BH1750's conversions, the sensor
//! thread's cadence, staleness, dwell, the window and `ts` all run on the one simulated clock, so the daemon
//! behaves as at scale 1, only faster: no spurious `sensor_stale`, no flapping relay, timestamps in simulated time.
//! The real process with a real mosquitto; each run takes a few wall seconds.

mod common;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Timelike};
use common::broker::Broker;
use common::collector::{Collector, Rec};
use common::daemon::{mqtt_section, test_config, Daemon};
use common::procfs::tz_for_local_time;
use serde_json::Value;

/// What a run published, in arrival order.
struct Run {
    records: Vec<Rec>,
    prefix: String,
    log: String,
}

impl Run {
    fn on(&self, topic: &str) -> Vec<&Rec> {
        let topic = format!("{}/{topic}", self.prefix);
        self.records.iter().filter(|r| r.topic == topic).collect()
    }

    fn states(&self) -> Vec<Value> {
        self.on("state")
            .iter()
            .map(|r| serde_json::from_str(&r.payload).expect("P/state is JSON"))
            .collect()
    }

    /// Alerts raised (name) during the run.
    fn raised(&self) -> Vec<String> {
        self.on("alert")
            .iter()
            .filter_map(|r| {
                let v: Value = serde_json::from_str(&r.payload).ok()?;
                (v["active"] == true).then(|| v["alert"].as_str().unwrap_or("?").to_string())
            })
            .collect()
    }

    /// The light's changes as `P/light` showed them.
    fn lights(&self) -> Vec<String> {
        self.on("light").iter().map(|r| r.payload.clone()).collect()
    }
}

fn ts(state: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(state["ts"].as_str().expect("ts is a string"))
        .expect("ts is RFC 3339")
}

/// Run the daemon at `scale` from local time `hh:mm` for `wall` real time with `extra` config.
async fn run(
    name: &str,
    scale: f64,
    (hh, mm): (u32, u32),
    wall: Duration,
    extra: &str,
) -> Option<Run> {
    let broker = Broker::anonymous()?;
    let prefix = common::prefix(name);
    let collector = Collector::connect(broker.port(), &format!("{prefix}/#")).await;
    let config = test_config(
        &mqtt_section(broker.port(), &prefix),
        &format!("{extra}\n[mock]\nambient = 300\nlamp_lux = 400\ntime_scale = {scale}\n"),
    );
    let tz = tz_for_local_time(hh, mm, 0);
    let mut daemon = Daemon::start_with_env(&config, &[("TZ", &tz)]);
    let online = collector
        .wait(
            0,
            |r| r.topic == format!("{prefix}/status") && r.payload == "online",
            Duration::from_secs(15),
        )
        .await;
    assert!(online.is_some(), "the daemon came up\n{}", daemon.log());
    tokio::time::sleep(wall).await;
    daemon.terminate(Duration::from_secs(5));
    let records = collector.records();
    Some(Run {
        records,
        prefix,
        log: daemon.log(),
    })
}

/// At 60× (6 wall seconds ≈ 6 simulated minutes of 1-second readings): dark enough for the lamp (300 lx ambient),
/// the lamp adds 400 lx at the sensor. The light goes on once after `min_off` (60 simulated seconds) and stays on;
/// readings keep coming every simulated second, so nothing goes stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_scale_60_no_spurious_stale_no_flapping() {
    let Some(run) = run("scale60", 60.0, (12, 0), Duration::from_secs(6), "").await else {
        return;
    };
    let states = run.states();
    let (first, last) = (ts(&states[0]), ts(states.last().expect("states")));
    let simulated = (last - first).num_milliseconds() as f64 / 1000.0;
    let readings = run.on("luminosity").len();
    eprintln!(
        "scale 60: {simulated:.0} simulated s, {readings} readings, lights {:?}, alerts {:?}",
        run.lights(),
        run.raised()
    );
    assert!(
        simulated > 120.0,
        "the clock runs fast: {simulated} s simulated\n{}",
        run.log
    );
    assert!(
        readings as f64 >= 0.8 * simulated,
        "one reading per simulated second: {readings} in {simulated} s"
    );
    assert!(
        run.raised().is_empty(),
        "alerts raised: {:?}\n{}",
        run.raised(),
        run.log
    );
    // Retained "off" at start, "on" once, and the final "off" of relay.on_stop.
    assert_eq!(run.lights(), vec!["off", "on", "off"], "{}", run.log);
    // The switch waited for min_off (60 s) on the simulated clock: held first, on about a simulated minute after
    // the start (the first state seen may be a little later than the start, so only an upper bound here).
    let on_at = states
        .iter()
        .position(|s| s["light"] == "on")
        .expect("a state with the light on");
    assert!(
        states[..on_at]
            .iter()
            .any(|s| s["reason"] == "min_off_hold"),
        "min_off held the light first"
    );
    let after = (ts(&states[on_at]) - first).num_milliseconds() as f64 / 1000.0;
    assert!(after < 75.0, "switched on {after} simulated s after start");
    assert!(
        states.iter().all(|s| s["sensor"] == "ok"),
        "sensor never stale"
    );
}

/// At 3600× (a simulated hour per wall second) with a reading every 5 simulated seconds, from 21:30: the light goes
/// on, and off when the window closes at 22:00 simulated local time, as `ts` shows; no stale readings, no flaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_scale_3600_window_closes_on_simulated_time() {
    let extra = "[sensor]\ninterval_s = 5\nstale_after_s = 12\n";
    let Some(run) = run(
        "scale3600",
        3600.0,
        (21, 30),
        Duration::from_millis(1500),
        extra,
    )
    .await
    else {
        return;
    };
    let states = run.states();
    let (first, last) = (ts(&states[0]), ts(states.last().expect("states")));
    eprintln!(
        "scale 3600: {} → {}, {} readings, lights {:?}, alerts {:?}",
        first,
        last,
        run.on("luminosity").len(),
        run.lights(),
        run.raised()
    );
    assert!(
        last.hour() >= 22,
        "simulated time passed 22:00: {last}\n{}",
        run.log
    );
    assert!(
        run.raised().is_empty(),
        "alerts raised: {:?}\n{}",
        run.raised(),
        run.log
    );
    assert_eq!(run.lights(), vec!["off", "on", "off"], "{}", run.log);
    let off = states
        .iter()
        .find(|s| s["reason"] == "outside_window")
        .expect("a state outside the window");
    let t = ts(off).time();
    assert!(
        t.hour() == 22 && t.minute() == 0,
        "the window closed at {t} simulated local time"
    );
    assert!(
        states.iter().all(|s| s["sensor"] == "ok"),
        "sensor never stale"
    );
}
