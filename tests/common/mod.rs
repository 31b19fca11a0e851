//! Shared helpers for the integration tests: a real mosquitto on a free loopback port, a TCP proxy that can cut
//! or freeze the path to the broker, an MQTT observer client, and settings builders.
#![allow(dead_code)]

pub mod broker;
pub mod collector;
pub mod daemon;
pub mod http;
pub mod observe;
pub mod procfs;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhoused::config::{BrokerUrl, Endpoint, MqttSettings};
use paho_mqtt as paho;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

/// Wait until something accepts TCP connections on `port` (bounded).
pub fn wait_port_open(port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// `GREENHOUSED_FULL` set: the fault suites run their long variants.
pub fn full() -> bool {
    std::env::var_os("GREENHOUSED_FULL").is_some()
}

/// A unique topic prefix per test.
pub fn prefix(name: &str) -> String {
    format!("test/{name}/{}", rand_suffix())
}

fn rand_suffix() -> String {
    use rand::Rng;
    format!("{:08x}", rand::thread_rng().gen::<u32>())
}

/// `MqttSettings` for a plain-TCP broker on loopback `port`.
pub fn settings(port: u16, prefix: &str) -> MqttSettings {
    MqttSettings {
        url: BrokerUrl::Remote(vec![Endpoint {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        }]),
        embedded_listen: "127.0.0.1:1883".parse().expect("literal address"),
        client_id: format!("greenhoused-test-{}", rand_suffix()),
        topic_prefix: prefix.to_string(),
        username: None,
        password_file: None,
        password: None,
        ca_file: None,
        cert_file: None,
        key_file: None,
        keepalive: Duration::from_secs(5),
        qos: 1,
    }
}

/// True when mosquitto can be run; when it cannot: panics under `CI`, otherwise prints why the test is skipped.
fn mosquitto_available() -> bool {
    match Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("mosquitto is required for this test under CI but cannot be run: {e} (install the mosquitto package)");
            }
            eprintln!("SKIPPED: mosquitto not available ({e}); install the mosquitto package to run this test");
            false
        }
    }
}

/// A real mosquitto broker on a loopback port, killed on drop: [`broker::Broker`] under its everyday names.
pub struct Mosquitto(broker::Broker);

impl Mosquitto {
    /// Anonymous broker on a free port. `None` (test skipped) when mosquitto is not installed.
    pub fn start() -> Option<Mosquitto> {
        broker::Broker::anonymous().map(Mosquitto)
    }

    /// Anonymous broker on a given port.
    pub fn start_on(port: u16) -> Option<Mosquitto> {
        broker::Broker::anonymous_on(port).map(Mosquitto)
    }

    /// Broker that requires `user`/`password` (password file made with `mosquitto_passwd -b -c`).
    pub fn start_with_password(user: &str, password: &str) -> Option<Mosquitto> {
        broker::Broker::with_password(user, password).map(Mosquitto)
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Kill the broker (SIGKILL) and wait for it to exit.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// (Re)start the broker on the same port and wait until it accepts connections.
    pub fn restart(&mut self) {
        self.0.start_again();
    }
}

/// A received message as the observer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub retained: bool,
}

/// An MQTT client subscribed to `prefix/#` that records what it sees.
pub struct Observer {
    client: paho::AsyncClient,
    stream: paho::AsyncReceiver<Option<paho::Message>>,
    /// Everything received so far, in order.
    pub seen: Vec<Msg>,
}

impl Observer {
    /// Connect to `127.0.0.1:port` and subscribe to `prefix/#` at QoS 1 (bounded in time).
    pub async fn connect(port: u16, prefix: &str) -> Observer {
        let mut client = paho::CreateOptionsBuilder::new_v3()
            .server_uri(format!("tcp://127.0.0.1:{port}"))
            .client_id(format!("observer-{}", rand_suffix()))
            .persistence(paho::PersistenceType::None)
            .create_client()
            .expect("create observer client");
        // Never destroyed: see greenhoused::mqtt::client::park.
        greenhoused::mqtt::client::park(&client);
        let stream = client.get_stream(10_000);
        let opts = paho::ConnectOptionsBuilder::new_v3()
            .clean_session(true)
            .connect_timeout(Duration::from_secs(5))
            .finalize();
        tokio::time::timeout(Duration::from_secs(10), client.connect(opts))
            .await
            .expect("observer connect timed out")
            .expect("observer connect");
        tokio::time::timeout(
            Duration::from_secs(5),
            client.subscribe(format!("{prefix}/#"), 1),
        )
        .await
        .expect("observer subscribe timed out")
        .expect("observer subscribe");
        Observer {
            client,
            stream,
            seen: Vec::new(),
        }
    }

    /// Wait for a message on `topic` whose payload satisfies `pred`; `None` after `limit`.
    pub async fn wait_for(
        &mut self,
        topic: &str,
        pred: impl Fn(&Msg) -> bool,
        limit: Duration,
    ) -> Option<Msg> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.recv()).await;
            match next {
                Ok(Ok(Some(m))) => {
                    let msg = Msg {
                        topic: m.topic().to_string(),
                        payload: m.payload_str().into_owned(),
                        retained: m.retained(),
                    };
                    self.seen.push(msg.clone());
                    if msg.topic == topic && pred(&msg) {
                        return Some(msg);
                    }
                }
                Ok(Ok(None)) => continue, // connection lost notice; paho keeps the stream
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Wait for `topic` with exactly `payload`.
    pub async fn wait_payload(
        &mut self,
        topic: &str,
        payload: &str,
        limit: Duration,
    ) -> Option<Msg> {
        self.wait_for(topic, |m| m.payload == payload, limit).await
    }

    /// Like [`Observer::wait_payload`], but also satisfied by a message already seen (any arrival order).
    pub async fn wait_seen(&mut self, topic: &str, payload: &str, limit: Duration) -> Option<Msg> {
        if let Some(m) = self
            .seen
            .iter()
            .find(|m| m.topic == topic && m.payload == payload)
        {
            return Some(m.clone());
        }
        self.wait_payload(topic, payload, limit).await
    }

    /// Where the record of seen messages ends now: pass it to [`Observer::wait_after`] to wait for what an action
    /// causes, in whatever order it arrives relative to other waits.
    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    /// A message on `topic` satisfying `pred` that arrived after `mark` (already seen, or waited for).
    pub async fn wait_after(
        &mut self,
        mark: usize,
        topic: &str,
        pred: impl Fn(&Msg) -> bool,
        limit: Duration,
    ) -> Option<Msg> {
        if let Some(m) = self.seen[mark.min(self.seen.len())..]
            .iter()
            .find(|m| m.topic == topic && pred(m))
        {
            return Some(m.clone());
        }
        self.wait_for(topic, pred, limit).await
    }

    /// Payloads seen so far on `topic`, in order.
    pub fn payloads(&self, topic: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| m.payload.clone())
            .collect()
    }

    /// Publish arbitrary bytes at QoS 1 and wait for the broker's acknowledgement.
    pub async fn publish_bytes(&self, topic: &str, payload: &[u8], retain: bool) {
        let msg = paho::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(1)
            .retained(retain)
            .finalize();
        tokio::time::timeout(Duration::from_secs(5), self.client.publish(msg))
            .await
            .expect("observer publish timed out")
            .expect("observer publish");
    }

    /// Publish at QoS 1 and wait for the broker's acknowledgement.
    pub async fn publish(&self, topic: &str, payload: &str, retain: bool) {
        self.publish_bytes(topic, payload.as_bytes(), retain).await;
    }
}

/// A TCP proxy in front of a broker: counts connections, and can cut (close and refuse) or freeze (keep the
/// sockets open but forward nothing) the path, to simulate a lost or hung broker without touching it.
pub struct Proxy {
    port: u16,
    target: u16,
    accepts: Arc<AtomicUsize>,
    frozen: watch::Sender<bool>,
    generation: CancellationToken,
}

impl Proxy {
    /// Start forwarding a free loopback port to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Proxy {
        let (frozen, _) = watch::channel(false);
        let mut p = Proxy {
            port: free_port(),
            target,
            accepts: Arc::new(AtomicUsize::new(0)),
            frozen,
            generation: CancellationToken::new(),
        };
        p.restore().await;
        p
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Close every proxied connection and stop listening.
    pub fn cut(&mut self) {
        self.generation.cancel();
    }

    /// Keep connections open but stop forwarding data (a hung broker / black-holed network).
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Listen again on the same port and forward.
    pub async fn restore(&mut self) {
        self.generation.cancel();
        self.frozen.send_replace(false);
        let generation = CancellationToken::new();
        self.generation = generation.clone();
        let listener = {
            let start = Instant::now();
            loop {
                match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                    Ok(l) => break l,
                    Err(e) if start.elapsed() < Duration::from_secs(5) => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("proxy cannot listen on port {}: {e}", self.port),
                }
            }
        };
        let target = self.target;
        let accepts = self.accepts.clone();
        let frozen = self.frozen.subscribe();
        tokio::spawn(async move {
            loop {
                // Biased: after `cut` no connection that is already waiting may slip through.
                let accepted = tokio::select! {
                    biased;
                    _ = generation.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((inbound, _)) = accepted else { continue };
                if generation.is_cancelled() {
                    return;
                }
                accepts.fetch_add(1, Ordering::SeqCst);
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let generation = generation.clone();
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                let up = pipe(ri, wo, frozen.clone());
                let down = pipe(ro, wi, frozen.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = generation.cancelled() => {},
                        _ = async { tokio::join!(up, down) } => {},
                    }
                });
            }
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.generation.cancel();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !*f).await.is_err() {
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Wait for an event matching `pred` from the client task (bounded); returns it.
pub async fn wait_event(
    events: &mut tokio::sync::mpsc::Receiver<greenhoused::mqtt::Event>,
    pred: impl Fn(&greenhoused::mqtt::Event) -> bool,
    limit: Duration,
) -> Option<greenhoused::mqtt::Event> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return Some(ev),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}
