//! `mqtt.url` as a list: the paho client gets every broker (server URI list) and fails over in order, against
//! real mosquitto brokers on loopback.

mod common;

use std::time::Duration;

use common::{free_port, settings, wait_event, Mosquitto, Observer};
use greenhoused::config::{BrokerUrl, Endpoint, MqttSettings};
use greenhoused::mqtt::client::{self, spawn_with, Tuning};
use greenhoused::mqtt::topics::Topics;
use greenhoused::mqtt::Event;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

fn loopback(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        tls: false,
    }
}

fn list_settings(ports: &[u16], prefix: &str) -> MqttSettings {
    MqttSettings {
        url: BrokerUrl::Remote(ports.iter().map(|p| loopback(*p)).collect()),
        ..settings(ports[0], prefix)
    }
}

fn fast() -> Tuning {
    Tuning {
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
        ..Tuning::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_first_broker_is_skipped() {
    let Some(live) = Mosquitto::start() else {
        return;
    };
    // Nothing listens on the first port: paho moves on to the second URI of the list.
    let dead = free_port();
    let p = common::prefix("list-skip");
    let t = Topics::new(&p);
    let mut obs = Observer::connect(live.port(), &p).await;
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) = spawn_with(
        list_settings(&[dead, live.port()], &p),
        t.status.clone(),
        vec![],
        cancel.clone(),
        fast(),
    )
    .expect("spawn client");
    outbox.publish(&t.status, "online", true);
    assert!(
        wait_event(&mut events, |e| matches!(e, Event::Connected), T)
            .await
            .is_some(),
        "never connected through the list"
    );
    obs.wait_payload(&t.status, "online", T)
        .await
        .expect("online on the second broker");
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fails_over_to_the_next_broker_in_order() {
    let (Some(mut first), Some(second)) = (Mosquitto::start(), Mosquitto::start()) else {
        return;
    };
    let p = common::prefix("list-failover");
    let t = Topics::new(&p);
    let mut on_first = Observer::connect(first.port(), &p).await;
    let mut on_second = Observer::connect(second.port(), &p).await;
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) = spawn_with(
        list_settings(&[first.port(), second.port()], &p),
        t.status.clone(),
        vec![],
        cancel.clone(),
        fast(),
    )
    .expect("spawn client");
    outbox.publish(&t.status, "online", true);
    assert!(
        wait_event(&mut events, |e| matches!(e, Event::Connected), T)
            .await
            .is_some()
    );
    // Both brokers are up: the first of the list is used.
    on_first
        .wait_payload(&t.status, "online", T)
        .await
        .expect("online on the first broker");
    assert!(
        !on_second.seen.iter().any(|m| m.topic == t.status),
        "the second broker was used while the first was up"
    );

    first.kill();
    assert!(
        wait_event(&mut events, |e| matches!(e, Event::Disconnected { .. }), T)
            .await
            .is_some()
    );
    assert!(
        wait_event(&mut events, |e| matches!(e, Event::Connected), T)
            .await
            .is_some(),
        "no reconnect after the first broker died"
    );
    // The retained state is republished on the second broker.
    on_second
        .wait_payload(&t.status, "online", T)
        .await
        .expect("online on the second broker after the failover");
    outbox.publish(&t.luminosity, "321", false);
    on_second
        .wait_payload(&t.luminosity, "321", T)
        .await
        .expect("a reading through the second broker");
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}
