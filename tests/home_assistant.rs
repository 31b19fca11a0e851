//! Home Assistant discovery as the daemon does it, on a real mosquitto: the retained device config on connect,
//! the re-announcement 1–5 s after Home Assistant's `online` followed by the retained states, and the empty config
//! of `discovery = false`. (The same against a real Home Assistant: scripts/ha/run-test.sh.)

mod common;

use std::time::Duration;

use common::collector::{Collector, Rec};
use common::daemon::{Cfg, Daemon};
use common::{prefix, Mosquitto};
use serde_json::Value;

const T: Duration = Duration::from_secs(15);

fn config_topic(prefix: &str) -> String {
    format!("{prefix}/device/greenhoused_test/config")
}

fn cfg(port: u16, p: &str, disc_prefix: &str, discovery: bool) -> String {
    Cfg::broker(port, p)
        .set("dli.lamp_watts", "120")
        .set(
            "homeassistant.discovery",
            if discovery { "true" } else { "false" },
        )
        .set(
            "homeassistant.discovery_prefix",
            &format!("\"{disc_prefix}\""),
        )
        .set(
            "homeassistant.status_topic",
            &format!("\"{disc_prefix}/status\""),
        )
        .render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announces_on_connect_and_again_after_home_assistant_comes_online() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("ha");
    // A discovery prefix of its own, so parallel tests do not see each other's announcements.
    let hp = prefix("ha-discovery");
    let ha = Collector::connect(broker.port(), &format!("{hp}/#")).await;
    // Every topic (the broker is this test's own): the order of the config and the states is only defined on one
    // connection; receipt times on two connections can invert by microseconds.
    let states = Collector::connect(broker.port(), "#").await;
    let _daemon = Daemon::start(&cfg(broker.port(), &p, &hp, true));

    let topic = config_topic(&hp);
    let (_, first) = ha
        .wait(0, |r| r.topic == topic, T)
        .await
        .expect("the daemon announces on connect");
    let v: Value = serde_json::from_str(&first.payload).expect("the config is JSON");
    assert_eq!(v["dev"]["ids"][0], "greenhoused_test");
    assert_eq!(v["availability_topic"], format!("{p}/status"));
    let cmps = v["cmps"].as_object().expect("cmps is an object");
    assert_eq!(cmps.len(), 9, "{cmps:?}");
    assert_eq!(cmps["lamp_energy"]["device_class"], "energy");
    assert_eq!(cmps["lux"]["state_topic"], format!("{p}/state"));
    // Retained: a late subscriber (Home Assistant starting later) gets it from the broker.
    let late = Collector::connect(broker.port(), &format!("{hp}/device/#")).await;
    assert!(
        late.wait(0, |r| r.topic == topic && r.retained, T)
            .await
            .is_some(),
        "the config is retained"
    );
    states
        .wait(0, |r| r.topic == format!("{p}/light"), T)
        .await
        .expect("P/light");

    // An `offline` is no restart of Home Assistant: nothing happens.
    let mark = ha.len();
    ha.publish(&format!("{hp}/status"), "offline").await;
    // Home Assistant (re)started: its birth message.
    let mark_states = states.len();
    let online_at = std::time::Instant::now();
    ha.publish(&format!("{hp}/status"), "online").await;
    let (_, again) = ha
        .wait(mark, |r: &Rec| r.topic == topic && !r.retained, T)
        .await
        .expect("re-announced after online");
    let delay = again.at.duration_since(online_at);
    assert!(
        delay >= Duration::from_millis(950) && delay <= Duration::from_millis(5500),
        "re-announced {delay:?} after online (1-5 s)"
    );
    assert_eq!(again.payload, first.payload, "the same config");
    // Then the retained states again, after the config (these change rarely, unlike P/state: here, not at all).
    let (config_at, _) = states
        .wait(mark_states, |r| r.topic == topic && !r.retained, T)
        .await
        .expect("the re-announcement, seen by the states subscriber too");
    for sub in ["light", "mode", "health", "status"] {
        let (i, _) = states
            .wait(mark_states, |r| r.topic == format!("{p}/{sub}"), T)
            .await
            .unwrap_or_else(|| panic!("P/{sub} republished"));
        assert!(i > config_at, "P/{sub} came after the config");
    }
    // Once: no second announcement for one online.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let count = ha
        .records()
        .iter()
        .skip(mark)
        .filter(|r| r.topic == topic)
        .count();
    assert_eq!(count, 1, "one re-announcement per online");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_off_leaves_a_retained_removal_of_every_component() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("ha-off");
    let hp = prefix("ha-off-discovery");
    let topic = config_topic(&hp);
    let mut on = Daemon::start(&cfg(broker.port(), &p, &hp, true));
    let ha = Collector::connect(broker.port(), &format!("{hp}/#")).await;
    ha.wait(0, |r| r.topic == topic, T)
        .await
        .expect("announced");
    on.terminate(Duration::from_secs(5));

    let _off = Daemon::start(&cfg(broker.port(), &p, &hp, false));
    // Retained: a Home Assistant that starts later still removes the device.
    let is_removal = |r: &Rec| {
        r.topic == topic
            && serde_json::from_str::<Value>(&r.payload).is_ok_and(|v| {
                v["cmps"].as_object().is_some_and(|c| {
                    c.len() >= 9
                        && c.values()
                            .all(|x| x.as_object().map(|o| o.len()) == Some(1))
                })
            })
    };
    let mut found = false;
    for _ in 0..50 {
        let late = Collector::connect(broker.port(), &format!("{hp}/device/#")).await;
        if late
            .wait(
                0,
                |r| r.retained && is_removal(r),
                Duration::from_millis(300),
            )
            .await
            .is_some()
        {
            found = true;
            break;
        }
    }
    assert!(
        found,
        "discovery = false leaves a retained config with every component platform-only"
    );
}
