//! `mqtt.url = "embedded"` at process level: a mosquitto already on `embedded_listen` is used as the broker; a
//! port held by something that does not speak MQTT is exit 69 (with the relay put to `on_stop`); a free port gets
//! the embedded broker.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use common::daemon::{Cfg, Daemon};
use common::{free_port, prefix, Mosquitto, Observer};

const T: Duration = Duration::from_secs(15);

fn embedded_on(port: u16, p: &str) -> Cfg {
    Cfg::broker(port, p)
        .set("mqtt.url", "\"embedded\"")
        .set("mqtt.embedded_listen", &format!("\"127.0.0.1:{port}\""))
}

#[tokio::test]
async fn a_broker_already_on_the_port_is_used() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("local-existing");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let daemon = Daemon::start(&embedded_on(broker.port(), &p).render());
    obs.wait_payload(&format!("{p}/status"), "online", T)
        .await
        .expect("the daemon publishes through the mosquitto on its embedded_listen port");
    // Commands reach it there too.
    obs.publish(&format!("{p}/light/set"), "on", false).await;
    obs.wait_payload(&format!("{p}/light"), "on", T)
        .await
        .expect("command through the existing broker");
    let log = daemon.log();
    assert!(
        log.contains("NOTICE") && log.contains("already answers on"),
        "no notice that the existing broker is used:\n{log}"
    );
    assert!(!log.contains("embedded MQTT broker listening"), "{log}");
}

#[tokio::test]
async fn a_port_held_by_something_else_exits_69_with_the_relay_at_on_stop() {
    // A web server, say: answers anything with an HTTP error and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let cfg = embedded_on(port, &prefix("local-foreign"))
        .set("relay.on_start", "\"on\"")
        .set("relay.on_boot", "\"on\"")
        .set("relay.on_stop", "\"off\"");
    let mut daemon = Daemon::start(&cfg.render());
    let status = daemon.wait_exit(T).expect("exits");
    let log = daemon.log();
    assert_eq!(status.code(), Some(69), "{log}");
    assert!(log.contains("does not answer MQTT"), "{log}");
    assert!(log.contains(&format!("sport = :{port}")), "{log}");
    // Opened on (on_start), left off (on_stop) by the failed start.
    assert!(log.contains("relay opens on"), "{log}");
    assert!(
        log.contains("exit: relay off (relay.on_stop = off)"),
        "the failed start did not apply on_stop:\n{log}"
    );
}

#[tokio::test]
async fn a_free_port_gets_the_embedded_broker() {
    let port = free_port();
    let p = prefix("local-free");
    let daemon = Daemon::start(&embedded_on(port, &p).render());
    assert!(
        common::wait_port_open(port, T),
        "nothing listens on {port}:\n{}",
        daemon.log()
    );
    let mut obs = Observer::connect(port, &p).await;
    obs.wait_payload(&format!("{p}/status"), "online", T)
        .await
        .expect("online on the embedded broker");
    let log = daemon.log();
    assert!(log.contains("embedded MQTT broker listening"), "{log}");
    assert!(!log.contains("already answers"), "{log}");
}
