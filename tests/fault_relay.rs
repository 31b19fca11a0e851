//! Relay and lamp faults injected through `P/mock/set`, and how the relay is left when the process stops:
//! `relay_stuck` (the pin ignores writes) → `relay_readback` and `rule_mismatch`; `lamp_broken` (relay switches,
//! no light) → `lamp_no_effect`; SIGTERM puts the relay to `relay.on_stop`; SIGKILL leaves the will `offline`.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{mqtt_section, test_config, Daemon};
use common::observe::{alert, json};
use common::{Mosquitto, Observer};

const LIMIT: Duration = Duration::from_secs(10);

fn config(port: u16, prefix: &str, extra_control: &str, monitor: &str, relay: &str) -> String {
    test_config(
        &mqtt_section(port, prefix),
        &format!(
            "[sensor]\ninterval_s = 0.75\nstale_after_s = 3\n\n[relay]\n{relay}\n\n[control]\nmin_on_s = 0\n\
             min_off_s = 0\nwindow = \"\"\n{extra_control}\n\n[monitor]\nsettle_s = 1\n{monitor}\n\n[mock]\n\
             ambient = \"1000\"\nlamp_lux = 400\n"
        ),
    )
}

/// A stuck relay: commanded on, the pin stays off. `relay_readback` and, after `settle_s`, `rule_mismatch` are
/// raised; `P/light` keeps telling the truth (off). Once the relay works again the daemon re-asserts the line and
/// both alerts clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_relay_is_detected_and_recovers() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let prefix = common::prefix("relay-stuck");
    let mut obs = Observer::connect(broker.port(), &prefix).await;
    let mut daemon = Daemon::start(&config(broker.port(), &prefix, "", "", ""));
    let light = format!("{prefix}/light");
    obs.wait_for(
        &format!("{prefix}/state"),
        |m| json(m)["reason"] == "above_threshold",
        LIMIT,
    )
    .await
    .expect("rule says off");

    let mark = obs.mark();
    obs.publish(
        &format!("{prefix}/mock/set"),
        r#"{"relay_stuck": true}"#,
        false,
    )
    .await;
    let t = Instant::now();
    obs.publish(&format!("{prefix}/light/set"), "on", false)
        .await;
    let readback = alert(&mut obs, mark, &prefix, "relay_readback", true, t).await;
    let mismatch = alert(&mut obs, mark, &prefix, "rule_mismatch", true, t).await;
    assert!(
        !obs.payloads(&light).iter().any(|p| p == "on"),
        "P/light claimed on while the pin stayed off"
    );
    let health = obs
        .wait_after(
            mark,
            &format!("{prefix}/health"),
            |m| json(m)["alerts"].as_array().is_some_and(|a| a.len() >= 2),
            LIMIT,
        )
        .await;
    assert!(health.is_some(), "P/health does not list the relay alerts");

    let mark = obs.mark();
    obs.publish(
        &format!("{prefix}/mock/set"),
        r#"{"relay_stuck": false}"#,
        false,
    )
    .await;
    let t = Instant::now();
    let readback_clear = alert(&mut obs, mark, &prefix, "relay_readback", false, t).await;
    let mismatch_clear = alert(&mut obs, mark, &prefix, "rule_mismatch", false, t).await;
    assert!(
        obs.wait_seen(&light, "on", LIMIT).await.is_some(),
        "light not on after the relay recovered"
    );
    assert!(daemon.running(), "daemon exited:\n{}", daemon.log());
    let log = daemon.log();
    assert_eq!(
        log.matches("alert relay_readback raised").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("alert rule_mismatch raised").count(),
        1,
        "{log}"
    );
    eprintln!(
        "RELAY stuck: relay_readback raised {:.2} s, rule_mismatch {:.2} s (settle 1 s) after the command; \
         cleared {:.2} s / {:.2} s after the relay recovered",
        readback.as_secs_f64(),
        mismatch.as_secs_f64(),
        readback_clear.as_secs_f64(),
        mismatch_clear.as_secs_f64()
    );
}

/// A broken lamp: the relay switches but the lux does not rise by `monitor.lamp_min_rise_lux` → `lamp_no_effect`;
/// cleared by the next switch-on that shows the rise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_lamp_is_detected() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let prefix = common::prefix("lamp-broken");
    let mut obs = Observer::connect(broker.port(), &prefix).await;
    let mut daemon = Daemon::start(&config(
        broker.port(),
        &prefix,
        "",
        "lamp_min_rise_lux = 100",
        "",
    ));
    let set = format!("{prefix}/light/set");
    let light = format!("{prefix}/light");
    obs.wait_for(
        &format!("{prefix}/state"),
        |m| json(m)["lux"].is_number(),
        LIMIT,
    )
    .await
    .expect("first reading");

    let mark = obs.mark();
    obs.publish(
        &format!("{prefix}/mock/set"),
        r#"{"lamp_broken": true}"#,
        false,
    )
    .await;
    obs.publish(&set, "on", false).await;
    obs.wait_payload(&light, "on", LIMIT)
        .await
        .expect("relay on");
    let t = Instant::now();
    let raised = alert(&mut obs, mark, &prefix, "lamp_no_effect", true, t).await;
    assert!(
        raised <= Duration::from_secs(1) + Duration::from_millis(1750),
        "lamp_no_effect after {raised:?}"
    );

    let mark = obs.mark();
    obs.publish(
        &format!("{prefix}/mock/set"),
        r#"{"lamp_broken": false}"#,
        false,
    )
    .await;
    obs.publish(&set, "off", false).await;
    obs.wait_payload(&light, "off", LIMIT)
        .await
        .expect("relay off");
    // Let at least one reading without the lamp pass, so the next switch-on has a "before".
    obs.wait_for(
        &format!("{prefix}/luminosity"),
        |m| m.payload.parse::<f64>().is_ok_and(|l| l < 1200.0),
        LIMIT,
    )
    .await
    .expect("reading with the lamp off");
    obs.publish(&set, "on", false).await;
    obs.wait_payload(&light, "on", LIMIT)
        .await
        .expect("relay on again");
    let t = Instant::now();
    let cleared = alert(&mut obs, mark, &prefix, "lamp_no_effect", false, t).await;
    assert!(daemon.running(), "daemon exited:\n{}", daemon.log());
    eprintln!(
        "RELAY lamp_broken: lamp_no_effect raised {:.2} s after switch-on (settle 1 s), cleared {:.2} s after a \
         working switch-on",
        raised.as_secs_f64(),
        cleared.as_secs_f64()
    );
}

/// SIGTERM with `relay.on_stop = "on"` while the light is off: the relay is switched on, the final `P/light on`
/// and `P/status offline` are retained, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_applies_on_stop() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let prefix = common::prefix("on-stop");
    let mut obs = Observer::connect(broker.port(), &prefix).await;
    let mut daemon = Daemon::start(&config(broker.port(), &prefix, "", "", "on_stop = \"on\""));
    obs.wait_for(
        &format!("{prefix}/state"),
        |m| json(m)["light"] == "off" && json(m)["lux"].is_number(),
        LIMIT,
    )
    .await
    .expect("light off by the rule");
    let stop_time = daemon.terminate(Duration::from_secs(3));
    // A fresh subscriber sees the retained final state.
    let mut late = Observer::connect(broker.port(), &prefix).await;
    let light = late
        .wait_after(0, &format!("{prefix}/light"), |m| m.retained, LIMIT)
        .await
        .expect("retained light");
    let status_msg = late
        .wait_after(0, &format!("{prefix}/status"), |m| m.retained, LIMIT)
        .await
        .expect("retained status");
    assert_eq!(light.payload, "on", "relay.on_stop = on not applied");
    assert_eq!(status_msg.payload, "offline");
    assert!(
        daemon.log().contains("stopped: light on"),
        "{}",
        daemon.log()
    );
    eprintln!("RELAY SIGTERM: on_stop=on applied, exit 0 after {:.2} s, retained light on + status offline", stop_time.as_secs_f64());
}

/// SIGKILL: no chance to clean up; the broker publishes the will, so `P/status` is `offline` (retained).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_the_will() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let prefix = common::prefix("will");
    let mut obs = Observer::connect(broker.port(), &prefix).await;
    let mut daemon = Daemon::start(&config(broker.port(), &prefix, "", "", ""));
    let status = format!("{prefix}/status");
    obs.wait_payload(&status, "online", LIMIT)
        .await
        .expect("online");
    let t = Instant::now();
    daemon.signal("KILL");
    daemon.wait_exit(Duration::from_secs(3)).expect("killed");
    obs.wait_payload(&status, "offline", LIMIT)
        .await
        .expect("will published");
    let will_after = t.elapsed();
    let mut late = Observer::connect(broker.port(), &prefix).await;
    let retained = late
        .wait_for(&status, |m| m.retained, LIMIT)
        .await
        .expect("retained status");
    assert_eq!(retained.payload, "offline");
    eprintln!(
        "RELAY SIGKILL: will offline after {:.2} s, retained",
        will_after.as_secs_f64()
    );
}
