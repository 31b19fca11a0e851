//! The paho client task against a real mosquitto (and a TCP proxy to cut or freeze the path to it).

mod common;

use std::time::{Duration, Instant};

use common::broker::FakeBroker;
use common::{settings, wait_event, Mosquitto, Observer, Proxy};
use greenhoused::config::MqttSettings;
use greenhoused::mqtt::client::{self, spawn_with, Tuning};
use greenhoused::mqtt::topics::Topics;
use greenhoused::mqtt::Event;
use greenhoused::mqtt::Outbox;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

fn fast() -> Tuning {
    Tuning {
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
        ..Tuning::default()
    }
}

/// Start the client task under test: last will on `t.status`, subscribed to `subscriptions`.
fn start_client(
    settings: MqttSettings,
    t: &Topics,
    subscriptions: Vec<String>,
    cancel: &CancellationToken,
    tuning: Tuning,
) -> (Outbox, mpsc::Receiver<Event>, JoinHandle<()>) {
    spawn_with(
        settings,
        t.status.clone(),
        subscriptions,
        cancel.clone(),
        tuning,
    )
    .expect("spawn client")
}

/// Accept `n` connections (hanging each up at once) and return when they came; fewer after `limit`.
fn accept_n(listener: &std::net::TcpListener, n: usize, limit: Duration) -> Vec<Instant> {
    listener.set_nonblocking(true).expect("non-blocking");
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < n && start.elapsed() < limit {
        match listener.accept() {
            Ok(_) => times.push(Instant::now()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    times
}

/// The broker holds each `(topic, payload)` as a retained message. The client's republish can reach a fresh
/// subscriber live (retained flag off) when it races the subscription, so: wait until one observer has seen
/// them all, then check with a second one that they arrive from the retained store. Returns the second.
async fn assert_retained(port: u16, prefix: &str, expected: &[(&String, &str)]) -> Observer {
    let mut first = Observer::connect(port, prefix).await;
    for (topic, payload) in expected {
        first
            .wait_seen(topic, payload, T)
            .await
            .unwrap_or_else(|| panic!("{topic} = {payload} not published: {:?}", first.seen));
    }
    let mut second = Observer::connect(port, prefix).await;
    for (topic, payload) in expected {
        let m = second.wait_seen(topic, payload, T).await;
        assert!(
            m.is_some_and(|m| m.retained),
            "{topic} = {payload} not retained: {:?}",
            second.seen
        );
    }
    second
}

fn is_connected(e: &Event) -> bool {
    matches!(e, Event::Connected)
}

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected { .. })
}

#[tokio::test(flavor = "multi_thread")]
async fn connects_publishes_and_stops_gracefully() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = common::prefix("basic");
    let t = Topics::new(&p);
    let mut obs = Observer::connect(broker.port(), &p).await;
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) =
        start_client(settings(broker.port(), &p), &t, vec![], &cancel, fast());
    outbox.publish(&t.status, "online", true);
    outbox.publish(&t.luminosity, "412.5", false);
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    assert!(outbox.is_connected());
    let m = obs
        .wait_payload(&t.status, "online", T)
        .await
        .expect("status online");
    assert!(!m.retained, "live delivery to an existing subscriber");
    obs.wait_payload(&t.luminosity, "412.5", T)
        .await
        .expect("reading");

    // Graceful stop: the core publishes its final state, closes the outbox; the task flushes and disconnects.
    cancel.cancel();
    outbox.publish(&t.light, "off", true);
    outbox.publish(&t.status, "offline", true);
    let start = Instant::now();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
    obs.wait_payload(&t.light, "off", T)
        .await
        .expect("final light");
    obs.wait_payload(&t.status, "offline", T)
        .await
        .expect("final status");
    // The retained store holds the final values for a newcomer.
    let mut late = Observer::connect(broker.port(), &p).await;
    let m = late
        .wait_payload(&t.status, "offline", T)
        .await
        .expect("retained offline");
    assert!(m.retained);
}

#[tokio::test(flavor = "multi_thread")]
async fn retained_state_republished_after_broker_restart() {
    let Some(mut broker) = Mosquitto::start() else {
        return;
    };
    let p = common::prefix("restart");
    let t = Topics::new(&p);
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) =
        start_client(settings(broker.port(), &p), &t, vec![], &cancel, fast());
    outbox.publish(&t.status, "online", true);
    outbox.publish(&t.light, "on", true);
    outbox.publish(&t.mode, "manual", true);
    outbox.publish(&t.light, "off", true); // only the latest value counts
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    let mut obs = Observer::connect(broker.port(), &p).await;
    obs.wait_payload(&t.light, "off", T)
        .await
        .expect("light before restart");

    // mosquitto runs without persistence: after the restart it knows nothing; the client republishes.
    broker.kill();
    assert!(wait_event(&mut events, is_disconnected, T).await.is_some());
    assert!(!outbox.is_connected());
    broker.restart();
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    let late = assert_retained(
        broker.port(),
        &p,
        &[
            (&t.status, "online"),
            (&t.light, "off"),
            (&t.mode, "manual"),
        ],
    )
    .await;
    assert_eq!(
        late.payloads(&t.light),
        vec!["off"],
        "only the latest light value"
    );
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_absent_at_start_then_appearing() {
    // Something that accepts and hangs up stands in for the port before the broker exists: it lets the test
    // see the client's attempts (and their spacing) instead of sleeping.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = fake.local_addr().expect("local addr").port();
    let p = common::prefix("absent");
    let t = Topics::new(&p);
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) = start_client(settings(port, &p), &t, vec![], &cancel, fast());
    outbox.publish(&t.status, "online", true);
    let first = Instant::now();
    let attempts = tokio::task::spawn_blocking(move || accept_n(&fake, 3, T))
        .await
        .expect("join");
    assert_eq!(attempts.len(), 3, "the client stopped trying: {attempts:?}");
    // Backoff: 100 ms then 200 ms (±50 %): the 3rd attempt comes at least 150 ms after the 1st.
    let spread = attempts[2] - attempts[0];
    assert!(
        spread >= Duration::from_millis(140),
        "attempts too close: {spread:?}"
    );
    assert!(!outbox.is_connected());
    assert!(!task.is_finished(), "the task must keep trying");

    let Some(broker) = Mosquitto::start_on(port) else {
        return;
    };
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    assert!(first.elapsed() < T);
    assert_retained(broker.port(), &p, &[(&t.status, "online")]).await;
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_buffer_is_bounded_and_flushed_in_order() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let mut proxy = Proxy::start(broker.port()).await;
    let p = common::prefix("buffer");
    let t = Topics::new(&p);
    let mut obs = Observer::connect(broker.port(), &p).await;
    let cancel = CancellationToken::new();
    let tuning = Tuning {
        offline_capacity: 5,
        ..fast()
    };
    let (outbox, mut events, task) =
        start_client(settings(proxy.port(), &p), &t, vec![], &cancel, tuning);
    outbox.publish(&t.status, "online", true);
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    obs.wait_payload(&t.status, "online", T)
        .await
        .expect("online");

    proxy.cut();
    assert!(wait_event(&mut events, is_disconnected, T).await.is_some());
    // The broker saw the connection die: the last will says offline.
    obs.wait_payload(&t.status, "offline", T)
        .await
        .expect("last will");
    let after_will = obs.mark();
    for i in 0..8 {
        outbox.publish(&t.luminosity, i.to_string(), false);
    }
    outbox.publish(&t.light, "on", true);
    proxy.restore().await;
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    obs.wait_payload(&t.luminosity, "7", T)
        .await
        .expect("last reading");
    // Retained and queued messages travel in separate batches: wait for both before comparing.
    obs.wait_seen(&t.light, "on", T)
        .await
        .expect("retained light");
    obs.wait_after(after_will, &t.status, |m| m.payload == "online", T)
        .await
        .expect("online again");
    assert_eq!(obs.payloads(&t.luminosity), vec!["3", "4", "5", "6", "7"]);
    let mut statuses = obs.payloads(&t.status);
    statuses.dedup(); // a reconnect attempt that dies on the way sends the will again: that is not a reorder
    assert_eq!(statuses, vec!["online", "offline", "online"]);
    assert_eq!(obs.payloads(&t.light), vec!["on"]);
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn incoming_messages_are_delivered_with_retained_flag() {
    let Some(mut broker) = Mosquitto::start() else {
        return;
    };
    let p = common::prefix("incoming");
    let t = Topics::new(&p);
    let obs = Observer::connect(broker.port(), &p).await;
    // A retained command left on the broker before the daemon starts.
    obs.publish(&t.light_set, "on", true).await;
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) = start_client(
        settings(broker.port(), &p),
        &t,
        vec![t.light_set.clone()],
        &cancel,
        fast(),
    );
    let is_msg = |payload: &'static str| {
        let topic = t.light_set.clone();
        move |e: &Event| matches!(e, Event::Message { topic: tp, payload: pl, .. } if *tp == topic && pl == payload.as_bytes())
    };
    let ev = wait_event(&mut events, is_msg("on"), T)
        .await
        .expect("retained command");
    assert!(
        matches!(ev, Event::Message { retained: true, .. }),
        "{ev:?}"
    );
    obs.publish(&t.light_set, "", true).await; // clear it
    obs.publish(&t.light_set, "toggle", false).await;
    let ev = wait_event(&mut events, is_msg("toggle"), T)
        .await
        .expect("live command");
    assert!(
        matches!(
            ev,
            Event::Message {
                retained: false,
                ..
            }
        ),
        "{ev:?}"
    );

    // Subscriptions survive a broker restart (resubscribed after reconnect).
    broker.kill();
    assert!(wait_event(&mut events, is_disconnected, T).await.is_some());
    broker.restart();
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    let obs = Observer::connect(broker.port(), &p).await;
    // The resubscription races the observer's publish: retry a few times until the client sees one.
    let mut got = None;
    for _ in 0..20 {
        obs.publish(&t.light_set, "auto", false).await;
        got = wait_event(&mut events, is_msg("auto"), Duration::from_millis(500)).await;
        if got.is_some() {
            break;
        }
    }
    assert!(
        got.is_some(),
        "no command received after the broker restart"
    );
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_back_off_and_keep_running() {
    let Some(broker) = Mosquitto::start_with_password("greenhouse", "right") else {
        return;
    };
    let proxy = Proxy::start(broker.port()).await;
    let p = common::prefix("auth");
    let t = Topics::new(&p);
    let mut s = settings(proxy.port(), &p);
    s.username = Some("greenhouse".into());
    s.password = Some("wrong".into());
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) = start_client(s.clone(), &t, vec![], &cancel, fast());
    outbox.publish(&t.status, "online", true);
    // Wait for 4 attempts: 100 + 200 + 400 ms of backoff (±50 %) must separate them — no busy loop.
    let start = Instant::now();
    while proxy.accepts() < 4 {
        assert!(
            start.elapsed() < T,
            "client stopped retrying after {} attempts",
            proxy.accepts()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spread = start.elapsed();
    assert!(
        spread >= Duration::from_millis(340),
        "4 attempts within {spread:?}: busy loop"
    );
    assert!(!task.is_finished());
    assert!(!outbox.is_connected());
    assert!(
        events.try_recv().is_err(),
        "no Connected event with bad credentials"
    );
    // Stopping while disconnected is immediate.
    cancel.cancel();
    let stop = Instant::now();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
    assert!(
        stop.elapsed() < Duration::from_millis(500),
        "{:?}",
        stop.elapsed()
    );

    // The right password connects.
    s.password = Some("right".into());
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) = start_client(s, &t, vec![], &cancel, fast());
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}

/// A broker that accepts every connection and drops it at once (what mosquitto does to a client when another
/// one connects with the same client id): no tight reconnect loop. A connection on which the broker confirmed
/// nothing counts as a failed attempt, so the pause before the next one keeps doubling (100, 200, 400, 800,
/// 800 ms here, ±50 %); before this, each reconnect followed the loss within a millisecond.
#[tokio::test(flavor = "multi_thread")]
async fn connections_dropped_at_once_are_retried_with_growing_delays() {
    let fake = FakeBroker::dropping_after_connack();
    let p = common::prefix("flap");
    let t = Topics::new(&p);
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) =
        start_client(settings(fake.port(), &p), &t, vec![], &cancel, fast());
    assert!(
        wait_event(&mut events, is_connected, T).await.is_some(),
        "the fake broker's CONNACK was not taken"
    );
    assert!(
        wait_event(&mut events, is_disconnected, T).await.is_some(),
        "the drop was not reported"
    );
    assert!(
        tokio::task::block_in_place(|| fake.wait_accepts(6, T)),
        "the client stopped reconnecting after {} connections",
        fake.accepts()
    );
    let times = fake.accept_times();
    let least_ms = [100u64, 200, 400, 800, 800].map(|ms| ms / 2);
    for (i, (pair, least)) in times.windows(2).zip(least_ms).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(least),
            "connection {} came {gap:?} after the one before it (at least {least} ms expected): {:?}",
            i + 2,
            times.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        );
    }
    assert!(!task.is_finished(), "the task gave up");
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_is_bounded_when_the_broker_hangs() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let proxy = Proxy::start(broker.port()).await;
    let p = common::prefix("hang");
    let t = Topics::new(&p);
    let cancel = CancellationToken::new();
    let (outbox, mut events, task) =
        start_client(settings(proxy.port(), &p), &t, vec![], &cancel, fast());
    outbox.publish(&t.status, "online", true);
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    proxy.freeze();
    cancel.cancel();
    outbox.publish(&t.light, "off", true);
    outbox.publish(&t.status, "offline", true);
    let start = Instant::now();
    client::shutdown(&outbox, task, Duration::from_secs(5)).await;
    let took = start.elapsed();
    // Measured ~0.95 s (600 ms flush limit + 250 ms disconnect limit + client teardown); margin for loaded CI.
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
    eprintln!("shutdown with a hung broker took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_without_close_still_ends_the_task() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = common::prefix("cancel");
    let t = Topics::new(&p);
    let cancel = CancellationToken::new();
    let tuning = Tuning {
        close_grace: Duration::from_millis(200),
        ..fast()
    };
    let (outbox, mut events, task) =
        start_client(settings(broker.port(), &p), &t, vec![], &cancel, tuning);
    assert!(wait_event(&mut events, is_connected, T).await.is_some());
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("task ended after the close grace")
        .expect("task did not panic");
    drop(outbox);
}

/// Regression: the task stopped while paho still waits for a CONNACK. When the refusal arrives, paho's connect
/// callback runs on its receive thread under the library-wide mutex; if it held the last handle of the client
/// it would destroy the client under that same mutex and deadlock every paho call in the process (seen in CI).
#[tokio::test(flavor = "multi_thread")]
async fn stopping_during_a_connect_attempt_leaves_paho_usable() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let (refuse_tx, refuse_rx) = std::sync::mpsc::channel::<()>();
    let (got_connect_tx, got_connect_rx) = std::sync::mpsc::channel::<()>();
    // A broker that reads the CONNECT, then answers "not authorized" only when told to.
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(T)).expect("timeout");
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).expect("read CONNECT");
        assert!(
            n > 0 && buf[0] == 0x10,
            "expected CONNECT, got {:02x?}",
            &buf[..n]
        );
        got_connect_tx.send(()).expect("test alive");
        refuse_rx.recv_timeout(T).expect("told to refuse");
        conn.write_all(&[0x20, 0x02, 0x00, 0x05])
            .expect("write CONNACK");
        // Keep the socket until paho has read the refusal and closed its side.
        let _ = conn.read(&mut buf);
    });
    let p = common::prefix("stopconnect");
    let t = Topics::new(&p);
    let cancel = CancellationToken::new();
    let (outbox, _events, task) = start_client(settings(port, &p), &t, vec![], &cancel, fast());
    // Stop the task while its first connect waits for the CONNACK (the server holds it back).
    tokio::task::spawn_blocking(move || got_connect_rx.recv_timeout(T))
        .await
        .expect("join")
        .expect("the client sent its CONNECT");
    cancel.cancel();
    client::shutdown(&outbox, task, Duration::from_secs(3)).await;
    drop(outbox);
    refuse_tx.send(()).expect("server alive");
    tokio::task::spawn_blocking(move || server.join().expect("server thread"))
        .await
        .expect("join");
    // paho has handled the refusal: every call that takes its global mutex must still return.
    for _ in 0..20 {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let probe = paho_mqtt::CreateOptionsBuilder::new_v3()
                .server_uri("tcp://127.0.0.1:1")
                .client_id(format!("probe-{}", rand::random::<u32>()))
                .persistence(paho_mqtt::PersistenceType::None)
                .create_client()
                .expect("create probe client");
            client::park(&probe);
            let _ = tx.send(probe.is_connected());
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Ok(false),
            "paho's global mutex is held for good: a connect callback destroyed its client"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
