//! The daemon process against a broker path that goes silent or away (a proxy in front of a real mosquitto):
//! a stop with a silent broker is quick, and a command sent while the daemon was away never switches the lamp
//! when the connection comes back (the command connection has a clean session).

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Cfg, Daemon};
use common::{prefix, Mosquitto, Observer, Proxy};

const T: Duration = Duration::from_secs(15);

/// The bound of issue 11: a stop with a silent broker ends within 0.5 s of SIGTERM.
const SILENT_STOP_LIMIT: Duration = Duration::from_millis(500);

/// Connected through a proxy that then forwards nothing (the broker hung, or a black-holed network): SIGTERM →
/// exit 0 as soon as the final publishes are handed over and their confirmation has had its short chance, not
/// after the old 1.5 s "abandoning" wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_a_silent_broker_is_quick() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let proxy = Proxy::start(broker.port()).await;
    let p = prefix("silent-stop");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let config = Cfg::broker(proxy.port(), &p)
        .set("relay.on_start", "\"on\"")
        .set("relay.on_stop", "\"off\"")
        .render();
    let mut daemon = Daemon::start(&config);
    obs.wait_payload(&format!("{p}/status"), "online", T)
        .await
        .expect("daemon online");
    // Wait for a reading to be confirmed, so the connection is in its steady state.
    obs.wait_for(&format!("{p}/luminosity"), |_| true, T)
        .await
        .expect("a reading");
    proxy.freeze();
    let took = daemon.terminate(Duration::from_secs(5));
    let log = daemon.log();
    eprintln!("SILENT STOP: SIGTERM → exit in {took:.3?}");
    assert!(
        took <= SILENT_STOP_LIMIT,
        "stop took {took:?} (limit {SILENT_STOP_LIMIT:?}):\n{log}"
    );
    assert!(!log.contains("abandoning"), "{log}");
    assert!(
        log.contains("exit: relay off"),
        "final relay level not logged:\n{log}"
    );
}

/// The daemon's path to the broker is cut; meanwhile someone sends `on` (QoS 1) to the broker. When the path comes
/// back, the broker must have nothing queued for the daemon: the light stays off. (With a persistent session on
/// the subscribing connection, mosquitto would deliver the stale `on` at the reconnect.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_sent_during_an_outage_do_not_switch_the_lamp_later() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let mut proxy = Proxy::start(broker.port()).await;
    let p = prefix("outage-cmd");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let config = Cfg::broker(proxy.port(), &p).render();
    let daemon = Daemon::start(&config);
    let topic = |s: &str| format!("{p}/{s}");
    obs.wait_payload(&topic("status"), "online", T)
        .await
        .expect("daemon online");
    obs.wait_seen(&topic("light"), "off", T)
        .await
        .expect("light off in auto (bright simulated light)");
    // The command connection works: on, then back to the rule (off in the bright simulated light).
    obs.publish(&topic("light/set"), "on", false).await;
    obs.wait_payload(&topic("light"), "on", T)
        .await
        .expect("command on");
    obs.publish(&topic("light/set"), "auto", false).await;
    obs.wait_payload(&topic("light"), "off", T)
        .await
        .expect("command auto");

    proxy.cut();
    assert!(
        daemon.wait_log("MQTT connection to", T).await,
        "the daemon did not notice the cut:\n{}",
        daemon.log()
    );
    // The broker has seen both connections go (their sessions: the publishing one persistent, the command one
    // clean): this command finds no session that subscribes to it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    obs.publish(&topic("light/set"), "on", false).await;

    let mark = obs.mark();
    proxy.restore().await;
    obs.wait_after(mark, &topic("status"), |m| m.payload == "online", T)
        .await
        .expect("daemon back online (retained state republished)");
    // Long enough for a queued message to have been delivered and acted on (it comes right after CONNACK).
    let quiet_until = Instant::now() + Duration::from_secs(3);
    let switched = obs
        .wait_after(
            mark,
            &topic("light"),
            |m| m.payload == "on",
            quiet_until - Instant::now(),
        )
        .await;
    let log = daemon.log();
    assert!(
        switched.is_none(),
        "a command sent during the outage switched the lamp after the reconnect:\n{log}"
    );
}

/// An older greenhoused (one connection) left a persistent session on the daemon's client id, subscribed to the
/// commands, and the broker queued an `on` for it while nobody was connected. The daemon's publishing connection
/// resumes that session: the queued command must not switch the lamp (it is as stale as an outage's), and the
/// old subscription is dropped, so later commands arrive once, on the command connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_queued_for_an_older_session_do_not_switch_the_lamp() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("old-session");
    let topic = |s: &str| format!("{p}/{s}");
    let client_id = format!("gh-{}", p.replace('/', "-"));
    // The older daemon's session: persistent, subscribed at QoS 1, then gone.
    let old = paho_mqtt::AsyncClient::new(
        paho_mqtt::CreateOptionsBuilder::new()
            .server_uri(format!("tcp://127.0.0.1:{}", broker.port()))
            .client_id(&client_id)
            .finalize(),
    )
    .expect("client");
    old.connect(
        paho_mqtt::ConnectOptionsBuilder::new_v3()
            .clean_session(false)
            .finalize(),
    )
    .await
    .expect("old session connects");
    old.subscribe(topic("light/set"), 1)
        .await
        .expect("old session subscribes");
    old.disconnect(None).await.expect("old session leaves");

    let mut obs = Observer::connect(broker.port(), &p).await;
    obs.publish(&topic("light/set"), "on", false).await;

    let config = Cfg::broker(broker.port(), &p).render();
    let daemon = Daemon::start(&config);
    let mark = obs.mark();
    obs.wait_payload(&topic("status"), "online", T)
        .await
        .expect("daemon online");
    // The queued `on` comes right after CONNACK; give it time to be acted on if it were.
    let switched = obs
        .wait_after(
            mark,
            &topic("light"),
            |m| m.payload == "on",
            Duration::from_secs(3),
        )
        .await;
    assert!(
        switched.is_none(),
        "a command queued for the older session switched the lamp:\n{}",
        daemon.log()
    );
    // Commands still work, and arrive once (the old subscription was dropped): a toggle handled twice would
    // switch the lamp on and off again.
    let mark = obs.mark();
    obs.publish(&topic("light/set"), "toggle", false).await;
    obs.wait_after(mark, &topic("light"), |m| m.payload == "on", T)
        .await
        .expect("a live toggle switches the lamp on");
    let twice = obs
        .wait_after(
            mark,
            &topic("light"),
            |m| m.payload == "off",
            Duration::from_secs(2),
        )
        .await;
    assert!(
        twice.is_none(),
        "the toggle was handled twice (on, then off):\n{}",
        daemon.log()
    );
}
