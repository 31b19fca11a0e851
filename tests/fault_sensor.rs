//! Sensor faults injected through `P/mock/set` into a running daemon: NACK (unplugged), stuck value, saturation,
//! then recovery. Each alert must be raised within two sensor intervals, cleared after recovery, the
//! `control.on_sensor_failure` policy applied once the reading is stale, and all without a restart.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{mqtt_section, test_config, Daemon};
use common::observe::{alert, json};
use common::{Mosquitto, Observer};

const INTERVAL: Duration = Duration::from_millis(750);
const LIMIT: Duration = Duration::from_secs(10);

fn config(port: u16, prefix: &str, policy: &str, ambient: u32) -> String {
    test_config(
        &mqtt_section(port, prefix),
        &format!(
            "[sensor]\ninterval_s = 0.75\nstale_after_s = 3\n\n[control]\nmin_on_s = 0\nmin_off_s = 0\nwindow = \"\"\n\
             on_sensor_failure = \"{policy}\"\n\n[monitor]\nsettle_s = 1\n\n[mock]\nambient = \"{ambient}\"\nlamp_lux = 400\n"
        ),
    )
}

async fn mock_set(obs: &Observer, prefix: &str, payload: &str) -> Instant {
    obs.publish(&format!("{prefix}/mock/set"), payload, false)
        .await;
    Instant::now()
}

fn raised_within_two_intervals(name: &str, took: Duration) {
    // Two intervals from the injection, plus the time the reading itself takes to be published.
    assert!(
        took <= INTERVAL * 2 + Duration::from_millis(250),
        "{name} raised after {took:?}, more than 2 sensor intervals"
    );
}

/// Unplug (NACK) and re-plug with `on_sensor_failure = "on"`: `sensor_error` within 2 intervals, then after
/// `stale_after_s` `sensor_stale` and the light on with reason `sensor_failure`; after re-plugging both alerts
/// clear and the rule takes over again (light off in bright ambient). Same process throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_replug_with_failure_policy_on() {
    policy_scenario("on", 1000, "off").await;
}

/// The same with `on_sensor_failure = "off"` in dim ambient (light on by the rule, off on failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_replug_with_failure_policy_off() {
    policy_scenario("off", 100, "on").await;
}

async fn policy_scenario(policy: &str, ambient: u32, rule_light: &str) {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let prefix = common::prefix(&format!("sensor-policy-{policy}"));
    let mut obs = Observer::connect(broker.port(), &prefix).await;
    let mut daemon = Daemon::start(&config(broker.port(), &prefix, policy, ambient));
    let pid = daemon.pid();
    let state = format!("{prefix}/state");
    let light = format!("{prefix}/light");
    obs.wait_for(
        &state,
        |m| {
            json(m)["light"] == rule_light
                && json(m)["sensor"] == "ok"
                && json(m)["lux"].is_number()
        },
        LIMIT,
    )
    .await
    .expect("rule applied before the fault");

    let mark = obs.mark();
    let t = mock_set(&obs, &prefix, r#"{"sensor_fault": "nack"}"#).await;
    let error_after = alert(&mut obs, mark, &prefix, "sensor_error", true, t).await;
    raised_within_two_intervals("sensor_error", error_after);
    let stale_after = alert(&mut obs, mark, &prefix, "sensor_stale", true, t).await;
    let policy_state = obs
        .wait_for(&state, |m| json(m)["reason"] == "sensor_failure", LIMIT)
        .await
        .expect("reason sensor_failure in P/state");
    let policy_after = t.elapsed();
    assert_eq!(
        json(&policy_state)["light"],
        policy,
        "{}",
        policy_state.payload
    );
    // After the fault: the start-up `P/light` may already show the policy's value.
    assert!(
        obs.wait_after(mark, &light, |m| m.payload == policy, LIMIT)
            .await
            .is_some(),
        "P/light does not show the policy"
    );
    assert!(
        stale_after >= Duration::from_secs(3) - INTERVAL,
        "stale after {stale_after:?}, before sensor.stale_after_s"
    );

    let mark = obs.mark();
    let t = mock_set(&obs, &prefix, r#"{"sensor_fault": "none"}"#).await;
    let cleared_error = alert(&mut obs, mark, &prefix, "sensor_error", false, t).await;
    let cleared_stale = alert(&mut obs, mark, &prefix, "sensor_stale", false, t).await;
    let back = obs
        .wait_for(
            &state,
            |m| {
                json(m)["sensor"] == "ok"
                    && json(m)["light"] == rule_light
                    && json(m)["reason"] != "sensor_failure"
            },
            LIMIT,
        )
        .await
        .expect("rule back after re-plug");
    let health_topic = format!("{prefix}/health");
    let health = obs
        .wait_after(mark, &health_topic, |m| json(m)["ok"] == true, LIMIT)
        .await;
    assert!(health.is_some(), "health not ok after recovery");
    assert!(daemon.running(), "daemon exited:\n{}", daemon.log());
    assert_eq!(daemon.pid(), pid);
    let log = daemon.log();
    assert_eq!(log.matches("started:").count(), 1, "restarted?\n{log}");
    assert_eq!(log.matches("alert sensor_error raised").count(), 1, "{log}");
    assert_eq!(
        log.matches("alert sensor_error cleared").count(),
        1,
        "{log}"
    );
    eprintln!(
        "SENSOR policy={policy}: sensor_error raised {:.2} s after unplug, sensor_stale {:.2} s, light {policy} \
         (reason sensor_failure) {:.2} s; after re-plug error cleared {:.2} s, stale cleared {:.2} s, rule back ({})",
        error_after.as_secs_f64(),
        stale_after.as_secs_f64(),
        policy_after.as_secs_f64(),
        cleared_error.as_secs_f64(),
        cleared_stale.as_secs_f64(),
        json(&back)["reason"]
    );
}

/// Saturation and a stuck value: `sensor_saturated` within 2 intervals and cleared by the next valid reading;
/// `sensor_stuck` once the light toggled and the reading did not move (within 2 intervals after the settle time),
/// cleared when the value moves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_and_stuck_sensor() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let prefix = common::prefix("sensor-sat-stuck");
    let mut obs = Observer::connect(broker.port(), &prefix).await;
    let mut daemon = Daemon::start(&config(broker.port(), &prefix, "keep", 1000));
    let state = format!("{prefix}/state");
    obs.wait_for(&state, |m| json(m)["lux"].is_number(), LIMIT)
        .await
        .expect("first reading");

    let mark = obs.mark();
    let t = mock_set(&obs, &prefix, r#"{"sensor_fault": "saturated"}"#).await;
    let sat = alert(&mut obs, mark, &prefix, "sensor_saturated", true, t).await;
    raised_within_two_intervals("sensor_saturated", sat);
    assert!(
        obs.wait_for(&state, |m| json(m)["sensor"] == "saturated", LIMIT)
            .await
            .is_some(),
        "P/state sensor not saturated"
    );
    let lux_topic = format!("{prefix}/luminosity");
    let mark = obs.mark();
    let t = mock_set(&obs, &prefix, r#"{"sensor_fault": "none"}"#).await;
    let sat_clear = alert(&mut obs, mark, &prefix, "sensor_saturated", false, t).await;
    // Saturated readings are flagged, never published as a number: every published lux is a real one (< 65535).
    for m in obs.seen.iter().filter(|m| m.topic == lux_topic) {
        let lux: f64 = m.payload.parse().expect("lux is a number");
        assert!(lux < 60_000.0, "saturated value published as lux: {lux}");
    }

    // Stuck: freeze the value, then switch the light on by command; after settle the reading has not moved.
    let mark = obs.mark();
    mock_set(&obs, &prefix, r#"{"sensor_fault": "stuck"}"#).await;
    obs.publish(&format!("{prefix}/light/set"), "on", false)
        .await;
    obs.wait_payload(&format!("{prefix}/light"), "on", LIMIT)
        .await
        .expect("light on by command");
    let switched = Instant::now();
    let stuck = alert(&mut obs, mark, &prefix, "sensor_stuck", true, switched).await;
    // settle_s = 1, then the first reading after it: within settle + 2 intervals.
    assert!(
        stuck <= Duration::from_secs(1) + INTERVAL * 2 + Duration::from_millis(250),
        "sensor_stuck after {stuck:?}"
    );
    let mark = obs.mark();
    let t = mock_set(&obs, &prefix, r#"{"sensor_fault": "none"}"#).await;
    let stuck_clear = alert(&mut obs, mark, &prefix, "sensor_stuck", false, t).await;
    assert!(daemon.running(), "daemon exited:\n{}", daemon.log());
    let log = daemon.log();
    for name in ["sensor_saturated", "sensor_stuck"] {
        assert_eq!(
            log.matches(&format!("alert {name} raised")).count(),
            1,
            "{log}"
        );
        assert_eq!(
            log.matches(&format!("alert {name} cleared")).count(),
            1,
            "{log}"
        );
    }
    eprintln!(
        "SENSOR saturated: raised {:.2} s, cleared {:.2} s after recovery; stuck: raised {:.2} s after the switch \
         (settle 1 s), cleared {:.2} s after recovery",
        sat.as_secs_f64(),
        sat_clear.as_secs_f64(),
        stuck.as_secs_f64(),
        stuck_clear.as_secs_f64()
    );
}
