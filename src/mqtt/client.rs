//! The paho-mqtt client task: connects (retrying with backoff for ever), resubscribes and republishes the retained
//! state after every connect, drains the [`Outbox`], forwards incoming messages as [`Event`]s, and on
//! [`Outbox::close`] flushes and disconnects within a bounded time.
//!
//! The core loop only calls [`Outbox::publish`] (never blocks) and reads [`Event`]s; losing the broker never
//! ends the task. Reconnection is our own loop (not paho's automatic reconnect) so each connect and loss is
//! logged exactly once and the retained state is republished every time.
//!
//! Two connections to the broker:
//! - the **publishing** one (client id `mqtt.client_id`, persistent session, the `P/status` will) sends everything
//!   the core loop publishes and subscribes to nothing; the daemon is "connected" when this one is;
//! - the **command** one (client id `<client_id>-cmd`, clean session, no will) subscribes to the commands (and
//!   `sensor.topic`) and publishes nothing.
//!
//! Why two (latency, issue 11): on one connection the broker's PUBACKs for our own QoS 1 publishes sit
//! un-acknowledged by our kernel (delayed ACK, ~40 ms), and a broker with Nagle on (mosquitto's default
//! `set_tcp_nodelay false`, rumqttd always) holds the next segment to us, the user's command, until that ACK comes.
//! On the command connection the broker only ever sends PUBLISHes, and we answer each with a PUBACK (the
//! subscription is at QoS ≥ 1) that carries the ACK at once, so nothing waits behind Nagle whatever the broker's
//! socket options. Incoming messages all come from that one connection, so their order is kept.
//!
//! Why a clean session for commands (issue 11): while we are away the broker queues nothing for it, so a command
//! sent during an outage never switches the lamp hours later when the connection comes back.
//!
//! The bundled Paho C library sets `TCP_NODELAY` on its own sockets (`Socket.c`, unless built with
//! `PAHO_NO_TCP_NODELAY`), so Nagle does not delay our publishes on the client side.

use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use paho_mqtt as paho;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use crate::config::{BrokerUrl, MqttSettings};
use crate::mqtt::broker::connect_addr;
use crate::mqtt::outbox::{Outbox, Outgoing, DEFAULT_CAPACITY};

/// What the MQTT task reports to the core loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The publishing connection is up (again); the retained state is being (re)sent.
    Connected,
    /// The publishing connection was lost; the task keeps reconnecting.
    Disconnected { reason: String },
    /// A message on one of the subscriptions. `retained` = delivered from the broker's retained store.
    Message {
        topic: String,
        payload: Vec<u8>,
        retained: bool,
    },
}

/// Setting up the client failed (before any network activity).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid TLS file path {path:?} in [mqtt]: {source}")]
    TlsPath {
        path: std::path::PathBuf,
        source: paho::Error,
    },
    #[error("cannot create the MQTT client for {url}: {source}")]
    Create { url: String, source: paho::Error },
}

/// Tuning of the task; [`Tuning::default`] is what the daemon uses.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Capacity of the FIFO of non-retained messages kept while offline.
    pub offline_capacity: usize,
    /// First retry delay after a failed connect or a lost connection; doubles up to `backoff_max` (±50 % jitter,
    /// so the gateways of a fleet do not come back to a restarted broker all at once)
    /// and starts again from `backoff_min` only after a connection that held (see `stable_after`).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A connection held if the broker confirmed something on it (a SUBACK or a PUBACK) or it lasted this long.
    /// One that did not counts as a failed attempt, so the backoff keeps growing: a broker that drops us right
    /// after CONNACK (e.g. for a client id in use elsewhere) is not hammered.
    pub stable_after: Duration,
    /// Limit of one connect attempt.
    pub connect_timeout: Duration,
    /// After cancellation, how long to wait for the core loop's [`Outbox::close`] while connected.
    pub close_grace: Duration,
    /// After close: limit for the broker to confirm what is queued (a silent broker never does; then the
    /// DISCONNECT goes out without waiting), then for the DISCONNECT.
    pub flush_timeout: Duration,
    pub disconnect_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            offline_capacity: DEFAULT_CAPACITY,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            close_grace: Duration::from_secs(2),
            // A stop must end within 0.5 s even with a broker gone silent: ≤ 250 ms for the final PUBACKs (a live
            // broker on a LAN answers in a few ms), then a DISCONNECT that does not wait.
            flush_timeout: Duration::from_millis(250),
            disconnect_timeout: Duration::from_millis(100),
        }
    }
}

/// Messages handed to paho but not yet acknowledged, at most (paho's own buffer holds 100).
const WINDOW: usize = 32;
/// Capacity of the channel to the core loop; incoming messages beyond it are dropped with a warning.
const EVENT_CAPACITY: usize = 256;
/// Capacity of paho's incoming event stream per connection. The task drains it at once into the core loop's
/// channel (dropping there when that is full), so it only buffers while the tokio thread is busy. The buffer is
/// allocated and touched in full when the client is created (≈ 180 bytes a slot): 512 slots hold 50 ms of a
/// 10 000 commands/s flood for ≈ 90 KiB, where 4096 cost 0.7 MiB of RSS. The publishing connection subscribes to
/// nothing: its stream carries connect/lost/disconnect events, and at most once an older version's queued backlog,
/// which is ignored anyway (what does not fit is dropped by paho, with a warning each).
fn stream_capacity(role: Role) -> usize {
    match role {
        Role::Publish => 16,
        Role::Commands => 512,
    }
}
/// After a (re)connect the publishing connection holds its messages (the retained state with `P/status online`
/// first) until the command connection is subscribed, at most this long: whoever sees `online` can send commands.
const COMMANDS_GATE: Duration = Duration::from_secs(2);
/// Wait before retrying when paho refuses a publish (its buffer is full).
const PUBLISH_RETRY: Duration = Duration::from_millis(100);

/// The URL for logs: `mqtt://host:port`, `mqtts://host:port` (never credentials).
/// A failover list is shown whole (`mqtt://a:1883, mqtt://b:1883`).
pub fn display_url(settings: &MqttSettings) -> String {
    match &settings.url {
        // Hosted in-process or a broker found already answering there (see `broker::local_broker`).
        BrokerUrl::Embedded => format!("mqtt://{} (local)", connect_addr(settings.embedded_listen)),
        remote => remote.to_string(),
    }
}

/// The URIs paho wants, in failover order: `tcp://host:port` or `ssl://host:port`.
pub fn paho_uris(settings: &MqttSettings) -> Vec<String> {
    match &settings.url {
        BrokerUrl::Embedded => vec![format!("tcp://{}", connect_addr(settings.embedded_listen))],
        remote => remote.server_uris(),
    }
}

/// The first of [`paho_uris`]: the one the paho client is created with.
pub fn paho_uri(settings: &MqttSettings) -> String {
    paho_uris(settings).swap_remove(0)
}

/// Start the MQTT task (with [`Tuning::default`]). Must be called inside a tokio runtime.
///
/// `will_topic` gets `offline` (retained, QoS 1) from the broker if the process dies; on a graceful stop the core
/// loop publishes `offline` itself and then calls [`Outbox::close`]. `subscriptions` are subscribed at
/// `settings.qos` after every connect. The returned `JoinHandle` ends after `close` (flush + disconnect, bounded)
/// or, when not connected, soon after `cancel`.
pub fn spawn(
    settings: MqttSettings,
    will_topic: String,
    subscriptions: Vec<String>,
    cancel: CancellationToken,
) -> Result<(Outbox, mpsc::Receiver<Event>, JoinHandle<()>), ClientError> {
    spawn_with(
        settings,
        will_topic,
        subscriptions,
        cancel,
        Tuning::default(),
    )
}

/// [`spawn`] with explicit [`Tuning`].
pub fn spawn_with(
    settings: MqttSettings,
    will_topic: String,
    subscriptions: Vec<String>,
    cancel: CancellationToken,
    tuning: Tuning,
) -> Result<(Outbox, mpsc::Receiver<Event>, JoinHandle<()>), ClientError> {
    let outbox = Outbox::new(tuning.offline_capacity);
    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    // The command connection ends on `cancel`, on `Outbox::close`, or when the publishing task has ended.
    let commands_cancel = cancel.child_token();
    let mut publisher = Task::new(
        Role::Publish,
        &settings,
        &will_topic,
        subscriptions.clone(),
        outbox.clone(),
        events_tx.clone(),
        cancel,
        tuning.clone(),
    )?;
    let commands = if subscriptions.is_empty() {
        None
    } else {
        Some(Task::new(
            Role::Commands,
            &settings,
            &will_topic,
            subscriptions,
            outbox.clone(),
            events_tx,
            commands_cancel.clone(),
            tuning,
        )?)
    };
    publisher.gate_commands = commands.is_some();
    let closed = outbox.shared.closed.clone();
    let handle = tokio::spawn(async move {
        let commands = commands.map(|t| tokio::spawn(t.run()));
        // A close ends the command connection at once, while the publishing one flushes the final state.
        let on_close = commands_cancel.clone();
        let closer = tokio::spawn(async move {
            closed.cancelled().await;
            on_close.cancel();
        });
        publisher.run().await;
        closer.abort();
        commands_cancel.cancel();
        if let Some(commands) = commands {
            let _ = commands.await;
        }
    });
    Ok((outbox, events_rx, handle))
}

/// Which of the two connections a [`Task`] runs (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Publishes the outbox; persistent session, with the will; subscribes to nothing.
    Publish,
    /// Subscribes to the commands; clean session, no will; publishes nothing.
    Commands,
}

/// The command connection's client id for `client_id`.
pub fn command_client_id(client_id: &str) -> String {
    format!("{client_id}-cmd")
}

/// The QoS the command connection subscribes at: at least 1, so every command we receive is answered at once
/// with a PUBACK, which carries our TCP ACK to the broker (at QoS 0 our kernel would delay that ACK and a
/// broker with Nagle on would hold the next command behind it).
fn command_qos(qos: i32) -> i32 {
    qos.max(1)
}

/// A paho client (in-memory session state) and its event stream. The stream must exist before the first connect:
/// a persistent session may deliver at once.
fn new_client(
    server_uri: &str,
    client_id: &str,
    role: Role,
) -> Result<(paho::AsyncClient, paho::AsyncReceiver<paho::Event>), paho::Error> {
    let create = paho::CreateOptionsBuilder::new_v3()
        .server_uri(server_uri)
        .client_id(client_id)
        .persistence(paho::PersistenceType::None)
        .finalize();
    let mut client = paho::AsyncClient::new(create)?;
    let stream = client.get_event_stream(stream_capacity(role));
    Ok((client, stream))
}

/// The distributions' CA bundles (Debian, Ubuntu, Raspberry Pi OS; Fedora and friends).
const SYSTEM_CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The CA bundle for `mqtts://` without `mqtt.ca_file`. OpenSSL is built in (Cargo.toml), so its default paths are
/// its build's (/usr/local/ssl), where no distribution keeps certificates: without this, a broker with a public
/// certificate would fail verification. `SSL_CERT_FILE` / `SSL_CERT_DIR` in the environment win (`env_set`:
/// OpenSSL reads them itself).
fn system_trust_store(env_set: bool, exists: impl Fn(&Path) -> bool) -> Option<&'static Path> {
    if env_set {
        return None;
    }
    SYSTEM_CA_BUNDLES.iter().map(Path::new).find(|p| exists(p))
}

/// Process start-up, before ANY paho client exists in the process: without TLS, tell the Paho C library not to
/// initialise OpenSSL, which only costs memory (≈ 1.1–1.5 MiB RSS, measured with `scripts/bench.sh`); OpenSSL ≥ 1.1
/// initialises itself on first use anyway. `MQTTAsync_global_init` also re-initialises the library's global
/// mutexes, so calling it while a client exists breaks that client: `main` calls this first thing, tests never do.
pub fn init_paho_for(settings: &MqttSettings) {
    if settings.url.tls() {
        return;
    }
    let mut opts = paho_mqtt_sys::MQTTAsync_init_options {
        struct_id: [b'M' as _, b'Q' as _, b'T' as _, b'G' as _],
        struct_version: 0,
        do_openssl_init: 0,
    };
    // SAFETY: `opts` is a valid, initialised MQTTAsync_init_options ("MQTG", version 0) that the library only
    // reads during the call; the caller guarantees no paho client exists yet (see above).
    unsafe { paho_mqtt_sys::MQTTAsync_global_init(&mut opts) };
}

/// Close the outbox and wait for the task to flush and disconnect, at most `limit` (then it is aborted).
pub async fn shutdown(outbox: &Outbox, task: JoinHandle<()>, limit: Duration) {
    outbox.close();
    let abort = task.abort_handle();
    if timeout(limit, task).await.is_err() {
        log::warn!("MQTT task did not finish within {limit:?}; abandoning it");
        abort.abort();
    }
}

/// One broker of `mqtt.url` and the options that connect to it.
struct Target {
    /// The broker for logs.
    url: String,
    opts: paho::ConnectOptions,
}

/// The brokers in failover order. Each connect attempt names exactly one server URI: given the whole list, Paho C
/// would, after losing the connection to broker i, connect to broker i + 1 by itself, behind this task's back (no
/// resubscription, no republished state), and never back to the first ones. This task walks the list instead.
/// Each of the two connections walks it on its own (normally both end on the first broker that answers).
fn targets(
    s: &MqttSettings,
    role: Role,
    will_topic: &str,
    connect_timeout: Duration,
) -> Result<Vec<Target>, ClientError> {
    let uris = paho_uris(s);
    if uris.len() == 1 {
        // The server URI the client was created with.
        return Ok(vec![Target {
            url: display_url(s),
            opts: connect_options(s, role, will_topic, connect_timeout, None)?,
        }]);
    }
    s.url
        .endpoints()
        .iter()
        .zip(&uris)
        .map(|(endpoint, uri)| {
            Ok(Target {
                url: endpoint.to_string(),
                opts: connect_options(s, role, will_topic, connect_timeout, Some(uri))?,
            })
        })
        .collect()
}

fn connect_options(
    s: &MqttSettings,
    role: Role,
    will_topic: &str,
    connect_timeout: Duration,
    server_uri: Option<&str>,
) -> Result<paho::ConnectOptions, ClientError> {
    let mut b = paho::ConnectOptionsBuilder::new_v3();
    b.keep_alive_interval(s.keepalive)
        .connect_timeout(connect_timeout);
    match role {
        Role::Publish => {
            b.clean_session(false)
                .will_message(paho::Message::new_retained(
                    will_topic,
                    "offline",
                    paho::QOS_1,
                ));
        }
        // Nothing is queued for commands while we are away (see the module documentation).
        Role::Commands => {
            b.clean_session(true);
        }
    }
    if let Some(user) = &s.username {
        b.user_name(user);
    }
    if let Some(password) = &s.password {
        b.password(password.as_str());
    }
    // A broker of a failover list (else the URI the client was created with).
    if let Some(uri) = server_uri {
        b.server_uris(&[uri]);
        // Given a server URI list and no TLS options, Paho C prints "checking <uri>" to stdout on every connect
        // attempt (a leftover debug printf in MQTTAsync_connect). Empty TLS options silence it; on a tcp:// URI
        // Paho never uses them.
        if !s.url.tls() {
            b.ssl_options(paho::SslOptions::new());
        }
    }
    if s.url.tls() {
        let mut ssl = paho::SslOptionsBuilder::new();
        let path_err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| ClientError::TlsPath { path, source }
        };
        let env_set = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
            .iter()
            .any(|k| std::env::var_os(k).is_some());
        let system = system_trust_store(env_set, |p| p.is_file());
        if let Some(ca) = s.ca_file.as_deref().or(system) {
            ssl.trust_store(ca).map_err(path_err(ca))?;
        }
        if let Some(cert) = &s.cert_file {
            ssl.key_store(cert).map_err(path_err(cert))?;
        }
        if let Some(key) = &s.key_file {
            ssl.private_key(key).map_err(path_err(key))?;
        }
        b.ssl_options(ssl.finalize());
    }
    Ok(b.finalize())
}

/// How the session loop ended.
enum SessionEnd {
    /// Connection lost: reconnect. `served`: the broker had confirmed something (a SUBACK or a PUBACK) on it.
    Lost { reason: String, served: bool },
    /// Shut down (closed or cancelled): the task ends.
    Stop,
}

/// Every paho client this process created, kept until it exits: a client is never destroyed.
///
/// paho-mqtt 0.14's connect token holds a clone of its client, and the Paho C library runs the token's
/// completion callback on its receive thread while holding the library-wide `mqttasync_mutex`. If the rest of
/// the program has already dropped the client (the task stopped during a connect attempt), that callback drops
/// the last reference, `MQTTAsync_destroy` tries to take the same mutex, and every paho thread and every
/// runtime worker that calls into paho deadlocks for good (seen under load in `tests/mqtt_client.rs`, gdb:
/// `MQTTAsync_receiveThread → nextOrClose → TokenInner::on_failure → drop → MQTTAsync_destroy → lock`).
/// Parking one clone here means no callback can ever drop the last one. The daemon makes one client per run.
static PARKED: Mutex<Vec<paho::AsyncClient>> = Mutex::new(Vec::new());

/// Keep `client` alive until the process exits (see [`PARKED`]). Safe to call more than once per client.
pub fn park(client: &paho::AsyncClient) {
    PARKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(client.clone());
}

/// How much longer than paho's own connect timeout we wait for an attempt before giving up on it.
const CONNECT_MARGIN: Duration = Duration::from_secs(2);

/// After this many connections in a row did not hold (see [`Tuning::stable_after`]), start over with a fresh paho
/// client ([`Task::renew_client`]) ...
const RENEW_AFTER: u32 = 2;
/// ... and after this many, say what the likely cause is.
const FLAP_HINT_AFTER: u32 = 3;

struct Task {
    role: Role,
    client: paho::AsyncClient,
    /// The connect attempt in progress, if any: paho cannot abort one, so a task stopped during it leaves it
    /// to a reaper thread (see `Drop`).
    pending_connect: Option<paho::Token>,
    stream: paho::AsyncReceiver<paho::Event>,
    /// The brokers of `mqtt.url`, tried in this order on every (re)connect.
    targets: Vec<Target>,
    /// All of them, for logs.
    url: String,
    server_uri: String,
    client_id: String,
    qos: i32,
    subscriptions: Vec<String>,
    outbox: Outbox,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
    tuning: Tuning,
    /// The next retry delay (before jitter); see [`Tuning::stable_after`].
    backoff: Duration,
    /// Connections in a row that did not hold (see [`Tuning::stable_after`]).
    dropped_in_a_row: u32,
    /// Messages handed to paho and not confirmed yet, oldest first.
    inflight: VecDeque<(paho::DeliveryToken, Outgoing)>,
    /// Messages that were in flight when a connection was lost and that paho resends itself on the next one;
    /// forgotten once a connection holds, queued again if the client is replaced ([`Task::renew_client`]).
    unconfirmed: Vec<Outgoing>,
    /// Incoming messages dropped because the core loop's channel was full (since the last warning).
    dropped_in: u64,
    /// Publishing connection: the command subscriptions an older version made on its persistent session were
    /// removed (once per run).
    unsubscribed_old: bool,
    /// Publishing connection: there is a command connection to wait for after a connect ([`COMMANDS_GATE`]).
    gate_commands: bool,
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    fn new(
        role: Role,
        settings: &MqttSettings,
        will_topic: &str,
        subscriptions: Vec<String>,
        outbox: Outbox,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
        tuning: Tuning,
    ) -> Result<Task, ClientError> {
        let url = display_url(settings);
        let server_uri = paho_uri(settings);
        let client_id = match role {
            Role::Publish => settings.client_id.clone(),
            Role::Commands => command_client_id(&settings.client_id),
        };
        let (client, stream) =
            new_client(&server_uri, &client_id, role).map_err(|source| ClientError::Create {
                url: url.clone(),
                source,
            })?;
        let targets = targets(settings, role, will_topic, tuning.connect_timeout)?;
        let qos = match role {
            Role::Publish => settings.qos,
            Role::Commands => command_qos(settings.qos),
        };
        Ok(Task {
            role,
            client,
            stream,
            targets,
            url,
            server_uri,
            client_id,
            qos,
            subscriptions,
            outbox,
            events,
            cancel,
            pending_connect: None,
            backoff: tuning.backoff_min,
            dropped_in_a_row: 0,
            tuning,
            inflight: VecDeque::new(),
            unconfirmed: Vec::new(),
            dropped_in: 0,
            unsubscribed_old: false,
            gate_commands: false,
        })
    }

    /// "MQTT" or "MQTT command connection": how this connection is named in log lines.
    fn name(&self) -> &'static str {
        match self.role {
            Role::Publish => "MQTT",
            Role::Commands => "MQTT command connection",
        }
    }

    async fn run(mut self) {
        loop {
            if !self.connect().await {
                break;
            }
            let connected_at = Instant::now();
            let (reason, served) = match self.session().await {
                SessionEnd::Lost { reason, served } => (reason, served),
                SessionEnd::Stop => break,
            };
            // Never straight back: the jittered pause spreads the reconnects of many clients after a broker
            // restart, and lets paho finish tearing down the old connection (in Paho C 1.3.16 a publish that failed
            // on the dead socket queues an internal disconnect, which could otherwise hit the new connection).
            let held = served || connected_at.elapsed() >= self.tuning.stable_after;
            let wait = self.on_lost(reason, connected_at.elapsed(), held);
            if !self.wait_or_stop(wait).await {
                break;
            }
        }
        if self.role == Role::Publish {
            self.outbox.shared.connected.store(false, Ordering::Relaxed);
            let dropped = self.outbox.queue().take_dropped();
            if dropped > 0 {
                log::warn!(
                    "MQTT: {dropped} queued readings/alerts were never sent (broker unreachable)"
                );
            }
        }
        log::debug!("{} task ended", self.name());
    }

    /// The level of this connection's connect/loss lines: the command connection only warns while the
    /// publishing one is up (when both go down, the publishing one's lines say it; no doubled warnings).
    fn loud(&self) -> log::Level {
        if self.role == Role::Publish || self.outbox.is_connected() {
            log::Level::Warn
        } else {
            log::Level::Debug
        }
    }

    fn stopping(&self) -> bool {
        self.cancel.is_cancelled() || self.outbox.queue().is_closed()
    }

    /// The order to try the brokers of `mqtt.url` in: the list's, except that the command connection tries the
    /// broker the publishing connection is on first, so commands come from the broker the state goes to (after a
    /// failover the publishing connection stays on a later broker until that one fails; see docs/FLEET.md).
    fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.targets.len()).collect();
        if self.role == Role::Commands && self.outbox.is_connected() {
            let on = self.outbox.broker();
            if let Some(j) = self
                .targets
                .iter()
                .position(|t| Some(&t.url) == on.as_ref())
            {
                order.remove(j);
                order.insert(0, j);
            }
        }
        order
    }

    /// Connect, retrying with exponential backoff; `false` when stopped before connecting. Each round tries the
    /// brokers of `mqtt.url` in [`Task::order`], so the first one that answers is used.
    async fn connect(&mut self) -> bool {
        let mut last_failure = String::new();
        loop {
            let mut failures = Vec::new();
            let order = self.order();
            for &i in &order {
                if self.stopping() {
                    return false;
                }
                match self.attempt(i).await {
                    Some(Ok(session_present)) => {
                        self.on_connected(i, session_present);
                        return true;
                    }
                    Some(Err(failure)) => failures.push(failure),
                    None => return false,
                }
            }
            let failure = match failures.as_slice() {
                [one] => one.clone(),
                several => order
                    .iter()
                    .zip(several)
                    .map(|(i, f)| format!("{}: {f}", self.targets[*i].url))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            // Log a failure once; repeats of the same failure only at debug level.
            if failure != last_failure {
                if failure.contains("refused") {
                    let level = if self.role == Role::Publish {
                        log::Level::Error
                    } else {
                        self.loud()
                    };
                    log::log!(level, "{} to broker {} {failure}", self.name(), self.url);
                } else {
                    log::log!(
                        self.loud(),
                        "{}: cannot connect to {}: {failure}; retrying",
                        self.name(),
                        self.url
                    );
                }
                last_failure = failure;
            } else {
                log::debug!(
                    "{}: still cannot connect to {}: {failure}",
                    self.name(),
                    self.url
                );
            }
            let wait = self.next_backoff();
            if !self.wait_or_stop(wait).await {
                return false;
            }
        }
    }

    /// One connect attempt to broker `i`: `None` when stopped meanwhile, else whether the broker had a session for
    /// us (CONNACK's session-present flag), or the failure described.
    async fn attempt(&mut self, i: usize) -> Option<Result<bool, String>> {
        let token = self
            .pending_connect
            .insert(self.client.connect(self.targets[i].opts.clone()));
        let attempt = timeout(self.tuning.connect_timeout + CONNECT_MARGIN, token);
        let result = tokio::select! {
            r = attempt => r,
            _ = self.cancel.cancelled() => return None,
        };
        self.pending_connect = None;
        Some(match result {
            Ok(Ok(rsp)) => Ok(rsp.connect_response().is_some_and(|c| c.session_present)),
            Ok(Err(e)) => Err(describe_connect_error(&e, self.tuning.connect_timeout)),
            // Our safety net behind paho's own connect timeout: the same failure, said the same way.
            Err(_) => Err(describe_connect_error(
                &paho::Error::TcpConnectTimeout,
                self.tuning.connect_timeout,
            )),
        })
    }

    /// The next retry delay (±50 % jitter: spreads a fleet's reconnects after a broker restart over the whole
    /// backoff step); doubles the one after it, up to `backoff_max`.
    fn next_backoff(&mut self) -> Duration {
        let wait = self.backoff.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
        self.backoff = (self.backoff * 2).min(self.tuning.backoff_max);
        wait
    }

    /// Sleep `d` unless stopped first; `false` when stopped.
    async fn wait_or_stop(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return !self.stopping(),
                _ = self.cancel.cancelled() => return false,
                // Publishes wake us too; only a close matters here. The command connection never waits on the
                // outbox (its `Notify` wakes one waiter: that must be the publishing task).
                _ = self.outbox.shared.notify.notified(), if self.role == Role::Publish => {
                    if self.stopping() {
                        return false;
                    }
                }
                // The broker is back for the publishing connection: no reason to wait out our backoff.
                _ = self.outbox.shared.publisher_up.notified(), if self.role == Role::Commands => {
                    return !self.stopping();
                }
            }
        }
    }

    /// Connected to broker `i` of the list.
    fn on_connected(&mut self, i: usize, session_present: bool) {
        if self.role == Role::Commands {
            log::debug!("MQTT command connection to {} up", self.targets[i].url);
            return;
        }
        // An older greenhoused subscribed on this persistent session: drop those subscriptions, or the broker
        // would deliver (and queue during outages) every command here too. Once per run, fire and forget.
        if session_present && !self.unsubscribed_old && !self.subscriptions.is_empty() {
            self.unsubscribed_old = true;
            drop(self.client.unsubscribe_many(&self.subscriptions));
        }
        log::info!("MQTT connected to {}", self.targets[i].url);
        *self
            .outbox
            .shared
            .broker
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(self.targets[i].url.clone());
        self.outbox.shared.publisher_up.notify_one();
        self.outbox.shared.connected.store(true, Ordering::Relaxed);
        let dropped = {
            let mut q = self.outbox.queue();
            q.republish_retained();
            q.take_dropped()
        };
        if dropped > 0 {
            log::warn!(
                "MQTT: {dropped} readings/alerts were dropped while the broker was unreachable \
                 (the offline buffer keeps the latest {})",
                self.tuning.offline_capacity
            );
        }
        self.send_event(Event::Connected);
    }

    /// The connection (made `lasted` ago; `held`: see [`Tuning::stable_after`]) is gone: report it and return how
    /// long to wait before reconnecting.
    fn on_lost(&mut self, reason: String, lasted: Duration, held: bool) -> Duration {
        if held {
            self.backoff = self.tuning.backoff_min;
            self.dropped_in_a_row = 0;
            // The broker confirmed something: paho has resent what was unconfirmed before this connection.
            self.unconfirmed.clear();
        } else {
            self.dropped_in_a_row += 1;
        }
        let wait = self.next_backoff();
        let name = match self.role {
            Role::Publish => "MQTT connection",
            Role::Commands => "MQTT command connection",
        };
        if self.dropped_in_a_row == 0 {
            log::log!(
                self.loud(),
                "{name} to {} lost: {reason}; reconnecting in {wait:.1?}",
                self.url
            );
        } else {
            log::log!(
                self.loud(),
                "{name} to {} lost {lasted:.1?} after it was made: {reason}; reconnecting in {wait:.1?}",
                self.url
            );
        }
        if self.dropped_in_a_row == FLAP_HINT_AFTER {
            log::warn!(
                "MQTT: {} dropped the last {FLAP_HINT_AFTER} connections right after accepting them; is another \
                 client connected with client_id \"{}\"? (a broker keeps one connection per client id) Retrying \
                 with a growing delay, up to {:?}",
                self.url,
                self.client_id,
                self.tuning.backoff_max
            );
        }
        if self.role == Role::Commands {
            self.outbox
                .shared
                .commands_ready
                .store(false, Ordering::Relaxed);
            if self.dropped_in_a_row == RENEW_AFTER {
                self.renew_client();
            }
            return wait;
        }
        self.outbox.shared.connected.store(false, Ordering::Relaxed);
        // Paho keeps unacknowledged QoS>0 messages of the persistent session and resends them itself.
        let lost = self.inflight.drain(..).map(|(_, msg)| msg);
        self.unconfirmed.extend(lost);
        // Once per run of drops: each replaced client stays parked for the life of the process.
        if self.dropped_in_a_row == RENEW_AFTER {
            self.renew_client();
        }
        self.send_event(Event::Disconnected { reason });
        wait
    }

    /// Replace the paho client by a fresh one (same client id, so the broker's session carries on), after
    /// connections kept being dropped right after CONNACK. Seen with mosquitto ("disconnected due to malformed
    /// packet") after broker restarts under load: paho's in-memory session state resent something broken on
    /// every reconnect, for ever. The messages it had not got confirmed are queued again (QoS 1 is
    /// at-least-once anyway); the old client is parked, never destroyed ([`PARKED`]).
    fn renew_client(&mut self) {
        let (client, stream) = match new_client(&self.server_uri, &self.client_id, self.role) {
            Ok(fresh) => fresh,
            Err(e) => {
                log::warn!("{}: cannot create a fresh client: {e}", self.name());
                return;
            }
        };
        park(&self.client);
        self.client = client;
        self.stream = stream;
        let requeued = self.unconfirmed.len();
        {
            let mut q = self.outbox.queue();
            for msg in self.unconfirmed.drain(..).rev() {
                q.unpop(msg);
            }
        }
        log::log!(
            self.loud(),
            "{}: starting over with a fresh client for {} ({requeued} unconfirmed messages queued again)",
            self.name(),
            self.url
        );
    }

    fn send_event(&mut self, ev: Event) {
        match self.events.try_send(ev) {
            Ok(()) => {
                if self.dropped_in > 0 {
                    log::warn!(
                        "MQTT: {} incoming messages were dropped (core loop busy)",
                        self.dropped_in
                    );
                    self.dropped_in = 0;
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.dropped_in += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn subscribe(&self) -> Option<paho::Token> {
        if self.role == Role::Publish || self.subscriptions.is_empty() {
            return None;
        }
        let qos = vec![self.qos; self.subscriptions.len()];
        Some(self.client.subscribe_many(&self.subscriptions, &qos))
    }

    /// Connected: pump the outbox, forward incoming messages, watch for loss, cancellation and close.
    async fn session(&mut self) -> SessionEnd {
        let mut subscribing = self.subscribe();
        let mut retry_at: Option<Instant> = None;
        let mut grace_end: Option<Instant> = None;
        let mut served = false;
        let publishing = self.role == Role::Publish;
        let mut gate_end =
            (publishing && self.gate_commands).then(|| Instant::now() + COMMANDS_GATE);
        loop {
            if let Some(end) = gate_end {
                if self.outbox.shared.commands_ready.load(Ordering::Relaxed) {
                    gate_end = None;
                } else if end <= Instant::now() {
                    log::warn!(
                        "MQTT: the command connection is not subscribed {COMMANDS_GATE:?} after connecting to {}; \
                         publishing anyway (commands are not received until it is)",
                        self.url
                    );
                    gate_end = None;
                }
            }
            if publishing && gate_end.is_none() && retry_at.map_or(true, |t| t <= Instant::now()) {
                served |= self.reap();
                retry_at = self.pump();
            }
            if publishing && self.outbox.queue().is_closed() {
                return self.finish().await;
            }
            if !publishing && self.cancel.is_cancelled() {
                return self.finish().await;
            }
            if grace_end.is_some_and(|t| t <= Instant::now()) {
                log::debug!("MQTT: outbox not closed after cancellation; finishing anyway");
                return self.finish().await;
            }
            tokio::select! {
                ev = self.stream.recv() => match ev {
                    Ok(ev) => {
                        if let Some(reason) = self.handle(ev) {
                            if self.client.is_connected() {
                                // Paho clears its connected flag before it reports a loss, and only this task
                                // reconnects: a loss reported while connected is about an earlier connection.
                                log::debug!("MQTT: ignoring a stale loss event ({reason})");
                                continue;
                            }
                            served |= self.reap();
                            return SessionEnd::Lost { reason, served };
                        }
                    }
                    Err(_) => {
                        log::error!("MQTT client event stream ended unexpectedly");
                        return SessionEnd::Stop;
                    }
                },
                r = OptionFuture(subscribing.as_mut()) => {
                    subscribing = None;
                    match r {
                        Ok(_) => {
                            served = true;
                            if !publishing {
                                self.outbox.shared.commands_ready.store(true, Ordering::Relaxed);
                                // Wakes the publishing task if it holds its messages for us.
                                self.outbox.shared.notify.notify_one();
                            }
                        }
                        // The connection is gone: its loss is what gets reported.
                        Err(e) if !self.client.is_connected() => {
                            log::debug!("MQTT: subscribing to {:?} failed: {e}", self.subscriptions);
                        }
                        Err(e) => log::warn!("MQTT: subscribing to {:?} failed: {e}", self.subscriptions),
                    }
                },
                // Only a full window waits for a confirmation; otherwise finished tokens are reaped when pumping,
                // so PUBACKs do not wake this task (two per reading at QoS 1).
                r = front(&mut self.inflight), if self.inflight.len() >= WINDOW => {
                    self.inflight.pop_front();
                    served |= self.confirmed(r);
                },
                _ = self.outbox.shared.notify.notified(), if publishing => {},
                _ = self.cancel.cancelled(), if grace_end.is_none() => {
                    grace_end = Some(Instant::now() + self.tuning.close_grace);
                },
                _ = sleep_until(grace_end.unwrap_or_else(Instant::now)), if grace_end.is_some() => {},
                _ = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {},
                _ = sleep_until(gate_end.unwrap_or_else(Instant::now)), if gate_end.is_some() => {},
            }
        }
    }

    /// Whether a finished publish counts as confirmed by the broker (at QoS 0 "finished" only means written).
    fn confirmed(&self, r: paho::Result<()>) -> bool {
        match r {
            Ok(()) => self.qos > 0,
            Err(e) => {
                log::debug!("MQTT: publish not confirmed: {e}");
                false
            }
        }
    }

    /// Drop the in-flight messages paho has finished with, oldest first, without registering a waker (the next
    /// pump or the loss looks again). Returns whether the broker confirmed one.
    fn reap(&mut self) -> bool {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut served = false;
        while let Some((token, _)) = self.inflight.front_mut() {
            let Poll::Ready(r) = Pin::new(token).poll(&mut cx) else {
                break;
            };
            self.inflight.pop_front();
            served |= self.confirmed(r);
        }
        served
    }

    /// Hand queued messages to paho while the window allows. Returns when to retry if paho refused one.
    fn pump(&mut self) -> Option<Instant> {
        while self.inflight.len() < WINDOW {
            let out = self.outbox.queue().pop()?;
            let msg = paho::MessageBuilder::new()
                .topic(out.topic.as_str())
                .payload(out.payload.as_slice())
                .qos(self.qos)
                .retained(out.retain)
                .finalize();
            match self.client.try_publish(msg) {
                Ok(token) => self.inflight.push_back((token, out)),
                Err(e) => {
                    log::debug!("MQTT: publish to {} deferred: {e}", out.topic);
                    self.outbox.queue().unpop(out);
                    return Some(Instant::now() + PUBLISH_RETRY);
                }
            }
        }
        None
    }

    /// A paho event; `Some(reason)` when the connection is gone.
    fn handle(&mut self, ev: paho::Event) -> Option<String> {
        match ev {
            // The publishing connection subscribes to nothing: a message here comes from an older greenhoused's
            // persistent session on this client id (dropped on connect, see `on_connected`) and was queued while
            // nobody listened, as stale as the commands of an outage that the clean command session never gets.
            paho::Event::Message(m) if self.role == Role::Publish => {
                log::debug!(
                    "MQTT: ignoring {} queued for an older session on the publishing connection",
                    m.topic()
                );
                None
            }
            paho::Event::Message(m) => {
                self.send_event(Event::Message {
                    topic: m.topic().to_string(),
                    payload: m.payload().to_vec(),
                    retained: m.retained(),
                });
                None
            }
            paho::Event::Connected => None,
            paho::Event::ConnectionLost => Some("connection lost".to_string()),
            paho::Event::Disconnected { reason_code, .. } => {
                Some(format!("broker disconnected us ({reason_code})"))
            }
            paho::Event::Shutdown => Some("client shut down".to_string()),
        }
    }

    /// Send what is queued (bounded by `flush_timeout`), then DISCONNECT (bounded), and end.
    async fn finish(&mut self) -> SessionEnd {
        let deadline = Instant::now() + self.tuning.flush_timeout;
        let mut retry_at: Option<Instant> = None;
        let mut flushed = true;
        // The command connection has nothing to send: straight to the DISCONNECT, without waiting.
        if self.role == Role::Commands {
            flushed = false;
        }
        while self.role == Role::Publish {
            if retry_at.map_or(true, |t| t <= Instant::now()) {
                retry_at = self.pump();
            }
            if self.inflight.is_empty() && self.outbox.queue().is_empty() {
                break;
            }
            tokio::select! {
                r = front(&mut self.inflight) => {
                    self.inflight.pop_front();
                    if let Err(e) = r {
                        log::debug!("MQTT: final publish not confirmed: {e}");
                    }
                },
                ev = self.stream.recv() => match ev {
                    Ok(paho::Event::Message(_) | paho::Event::Connected) => {}
                    _ => {
                        log::warn!("MQTT connection to {} lost while sending the final state", self.url);
                        return SessionEnd::Stop;
                    }
                },
                _ = sleep_until(deadline) => {
                    log::warn!(
                        "MQTT: final messages not confirmed by {} within {:?}",
                        self.url, self.tuning.flush_timeout
                    );
                    flushed = false;
                    break;
                },
                _ = sleep_until(retry_at.unwrap_or(deadline)), if retry_at.is_some() => {},
            }
        }
        // A broker that did not confirm the final messages will not confirm more: do not wait for them again.
        let grace = if flushed {
            self.tuning.disconnect_timeout
        } else {
            Duration::ZERO
        };
        let opts = paho::DisconnectOptionsBuilder::new()
            .timeout(grace)
            .finalize();
        match timeout(self.tuning.disconnect_timeout, self.client.disconnect(opts)).await {
            Ok(Ok(_)) if self.role == Role::Commands => {
                log::debug!("MQTT command connection closed")
            }
            Ok(Ok(_)) => log::info!("MQTT disconnected from {}", self.url),
            Ok(Err(e)) => log::warn!(
                "{}: disconnecting from {} failed: {e}",
                self.name(),
                self.url
            ),
            Err(_) => log::warn!("{}: disconnecting from {} timed out", self.name(), self.url),
        }
        if self.role == Role::Publish {
            self.outbox.shared.connected.store(false, Ordering::Relaxed);
        }
        SessionEnd::Stop
    }
}

impl Drop for Task {
    /// However the task ends (finished, aborted, or dropped with its runtime) its client is parked, never
    /// destroyed ([`PARKED`]). A connect attempt still in flight cannot be aborted in paho: a reaper thread
    /// waits for its outcome and disconnects if it succeeded, so no stale session lingers on the broker.
    fn drop(&mut self) {
        park(&self.client);
        if let Some(token) = self.pending_connect.take() {
            let client = self.client.clone();
            let limit = self.tuning.connect_timeout + CONNECT_MARGIN;
            let reaper = std::thread::Builder::new()
                .name("mqtt-reaper".into())
                .spawn(move || {
                    if token.wait_for(limit).is_ok() {
                        let _ = client.disconnect(None).wait_for(Duration::from_secs(1));
                    }
                });
            if let Err(e) = reaper {
                log::debug!("MQTT: no reaper thread for the pending connect: {e}");
            }
        }
    }
}

/// Paho's display of a refused CONNACK is unhelpful; say what it means and what to check.
fn describe_connect_error(e: &paho::Error, limit: Duration) -> String {
    use paho::ConnectReturnCode as Rc;
    match e {
        // Paho calls it "TCP connect timeout" whether the TCP connect or the broker's CONNACK did not come.
        paho::Error::TcpConnectTimeout => format!(
            "no answer within {limit:?} (no TCP connection, or the broker accepted it and never sent CONNACK)"
        ),
        paho::Error::ConnectReturn(Rc::BadUserNameOrPassword) => {
            "refused the connection: bad user name or password; check mqtt.username and the password \
             (mqtt.password_file)"
                .to_string()
        }
        paho::Error::ConnectReturn(Rc::NotAuthorized) => {
            "refused the connection: not authorized; check mqtt.username, the password and the broker's ACL"
                .to_string()
        }
        paho::Error::ConnectReturn(Rc::IdentifierRejected) => {
            "refused the connection: client id rejected; check mqtt.client_id".to_string()
        }
        paho::Error::ConnectReturn(rc) => format!("refused the connection: {rc}"),
        other => other.to_string(),
    }
}

/// Resolves with the oldest in-flight token's result; pending for ever when there is none.
fn front(
    inflight: &mut VecDeque<(paho::DeliveryToken, Outgoing)>,
) -> OptionFuture<'_, paho::DeliveryToken> {
    OptionFuture(inflight.front_mut().map(|(token, _)| token))
}

/// A future over an optional borrowed future: pending for ever when `None`.
struct OptionFuture<'a, F>(Option<&'a mut F>);

impl<F: Future + Unpin> Future for OptionFuture<'_, F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.0.as_mut() {
            Some(f) => Pin::new(&mut **f).poll(cx),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn tls_without_ca_file_trusts_the_distributions_bundle_unless_the_environment_names_one() {
        let debian = |p: &Path| p == Path::new("/etc/ssl/certs/ca-certificates.crt");
        let fedora = |p: &Path| p == Path::new("/etc/pki/tls/certs/ca-bundle.crt");
        assert_eq!(
            system_trust_store(false, debian),
            Some(Path::new("/etc/ssl/certs/ca-certificates.crt"))
        );
        assert_eq!(
            system_trust_store(false, fedora),
            Some(Path::new("/etc/pki/tls/certs/ca-bundle.crt"))
        );
        assert_eq!(
            system_trust_store(true, debian),
            None,
            "SSL_CERT_FILE/DIR win"
        );
        assert_eq!(
            system_trust_store(false, |_| false),
            None,
            "no bundle: OpenSSL's defaults"
        );
    }

    fn settings(url: BrokerUrl) -> MqttSettings {
        MqttSettings {
            url,
            embedded_listen: "0.0.0.0:1883".parse::<SocketAddr>().unwrap(),
            client_id: "greenhoused-test".into(),
            topic_prefix: "p".into(),
            username: Some("u".into()),
            password_file: None,
            password: Some("hunter2".into()),
            ca_file: None,
            cert_file: None,
            key_file: None,
            keepalive: Duration::from_secs(30),
            qos: 1,
        }
    }

    #[test]
    fn urls_map_to_paho_schemes_without_secrets() {
        let endpoint = |host: &str, port, tls| crate::config::Endpoint {
            host: host.into(),
            port,
            tls,
        };
        let s = settings(BrokerUrl::Remote(vec![endpoint("broker.lan", 1883, false)]));
        assert_eq!(paho_uri(&s), "tcp://broker.lan:1883");
        assert_eq!(display_url(&s), "mqtt://broker.lan:1883");
        let s = settings(BrokerUrl::Remote(vec![endpoint("::1", 8883, true)]));
        assert_eq!(paho_uri(&s), "ssl://[::1]:8883");
        assert_eq!(display_url(&s), "mqtts://[::1]:8883");
        let s = settings(BrokerUrl::Remote(vec![
            endpoint("a", 1883, false),
            endpoint("b", 1884, false),
        ]));
        assert_eq!(paho_uris(&s), vec!["tcp://a:1883", "tcp://b:1884"]);
        assert_eq!(paho_uri(&s), "tcp://a:1883");
        assert_eq!(display_url(&s), "mqtt://a:1883, mqtt://b:1884");
        let s = settings(BrokerUrl::Embedded);
        assert_eq!(paho_uri(&s), "tcp://127.0.0.1:1883");
        assert!(!display_url(&s).contains("hunter2"));
    }

    #[test]
    fn refused_connack_is_explained() {
        let e = paho::Error::ConnectReturn(paho::ConnectReturnCode::BadUserNameOrPassword);
        let msg = describe_connect_error(&e, Duration::from_secs(10));
        assert!(msg.contains("refused"), "{msg}");
        assert!(msg.contains("mqtt.username"), "{msg}");
        let msg = describe_connect_error(&paho::Error::TcpConnectTimeout, Duration::from_secs(10));
        assert!(msg.starts_with("no answer within 10s"), "{msg}");
        assert!(msg.contains("CONNACK"), "{msg}");
    }
}
