//! The DLI through the daemon process: `greenhoused --mock-hardware` against a real mosquitto publishes the
//! retained `P/dli`, applies a good `P/dli/target/set`, rejects a bad one on `P/dli/target/set/error` (the light
//! and the target untouched), and saves the day state into its state directory at stop. The DLI logic itself is
//! tested on the pure engine and the Core with chosen times (src/core/dli/tests.rs, src/core/dli_tests.rs).

mod common;

use std::time::Duration;

use common::daemon::{Cfg, Daemon};
use common::{prefix, Mosquitto, Observer};
use serde_json::Value;

const T: Duration = Duration::from_secs(15);

#[tokio::test]
async fn p_dli_is_retained_and_a_bad_target_is_rejected_on_its_error_topic() {
    let Some(broker) = Mosquitto::start() else {
        eprintln!("mosquitto not installed: skipped");
        return;
    };
    let p = prefix("dli");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let config = Cfg::broker(broker.port(), &p)
        .set("dli.target_mol", "17")
        .set("dli.lamp_ppfd", "200")
        .set("dli.lamp_watts", "400")
        .render();
    let mut daemon = Daemon::start(&config);
    let topic = format!("{p}/dli");
    let first = obs
        .wait_for(&topic, |_| true, T)
        .await
        .expect("P/dli published");
    // Retained: a client subscribing later gets it from the broker (flagged retained).
    let mut late = Observer::connect(broker.port(), &p).await;
    let stored = late
        .wait_for(&topic, |m| m.retained, T)
        .await
        .expect("the broker keeps P/dli");
    assert_eq!(stored.topic, first.topic);
    let v: Value = serde_json::from_str(&first.payload).expect("P/dli is JSON");
    assert_eq!(v["target_mol"], 17.0, "{v}");
    assert!(
        ["on_track", "short", "met"].contains(&v["status"].as_str().unwrap_or("")),
        "{v}"
    );

    // A bad target: the reason on the error topic, nothing changed.
    let set = format!("{p}/dli/target/set");
    obs.publish(&set, "lots", false).await;
    let err = obs
        .wait_for(&format!("{set}/error"), |_| true, T)
        .await
        .expect("the rejection is published on P/dli/target/set/error");
    assert!(err.payload.contains("not a number"), "{}", err.payload);
    assert!(
        err.payload.contains("0 (accounting only) to 100"),
        "{}",
        err.payload
    );
    assert!(daemon.wait_log("rejected DLI target", T).await);

    // A good one applies live and P/dli shows it.
    obs.publish(&set, "12.5", false).await;
    let applied = obs
        .wait_for(
            &topic,
            |m| serde_json::from_str::<Value>(&m.payload).is_ok_and(|v| v["target_mol"] == 12.5),
            T,
        )
        .await;
    assert!(applied.is_some(), "P/dli shows the new target");
    // The bad value before it changed nothing: no P/dli ever showed another target than 17 or 12.5.
    for m in obs.seen.iter().filter(|m| m.topic == topic) {
        let v: Value = serde_json::from_str(&m.payload).expect("JSON");
        assert!(v["target_mol"] == 17.0 || v["target_mol"] == 12.5, "{v}");
    }

    // Stop: the day state is saved for the next start.
    daemon.terminate(T);
    let saved = std::fs::read_to_string(daemon.dir().join("dli-state.json"))
        .expect("dli-state.json written at stop");
    assert!(
        greenhoused::core::dli::DliState::from_json(&saved).is_ok(),
        "a valid state file"
    );
}
