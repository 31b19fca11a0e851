//! The paho-mqtt client task: connects (retrying with backoff for ever), resubscribes and republishes the retained
//! state after every connect, drains the [`Outbox`], forwards incoming messages as [`Event`]s, and on
//! [`Outbox::close`] flushes and disconnects within a bounded time.
//!
//! The core loop only calls [`Outbox::publish`] (never blocks) and reads [`Event`]s; losing the broker never
//! ends the task. Reconnection is our own loop (not paho's automatic reconnect) so each connect and loss is
//! logged exactly once and the retained state is republished every time.
//!
//! Latency: the bundled Paho C library sets `TCP_NODELAY` on its sockets (`Socket.c`, unless built with
//! `PAHO_NO_TCP_NODELAY`), so Nagle does not delay our publishes on the client side.

use std::collections::VecDeque;
use std::future::Future;
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
    /// Connected (or reconnected) to the broker; subscriptions and retained state are being (re)sent.
    Connected,
    /// The connection was lost; the task keeps reconnecting.
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
    /// First retry delay after a failed connect or a lost connection; doubles up to `backoff_max` (±25 % jitter)
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
    /// After close: limit for sending what is queued, then for the DISCONNECT.
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
            flush_timeout: Duration::from_millis(600),
            disconnect_timeout: Duration::from_millis(250),
        }
    }
}

/// Messages handed to paho but not yet acknowledged, at most (paho's own buffer holds 100).
const WINDOW: usize = 32;
/// Capacity of the channel to the core loop; incoming messages beyond it are dropped with a warning.
const EVENT_CAPACITY: usize = 256;
/// Capacity of paho's incoming event stream.
const PAHO_STREAM_CAPACITY: usize = 4096;
/// Wait before retrying when paho refuses a publish (its buffer is full).
const PUBLISH_RETRY: Duration = Duration::from_millis(100);

/// The URL for logs: `mqtt://host:port`, `mqtts://host:port` (never credentials).
/// A failover list is shown whole (`mqtt://a:1883, mqtt://b:1883`).
pub fn display_url(settings: &MqttSettings) -> String {
    match &settings.url {
        BrokerUrl::Embedded => format!(
            "mqtt://{} (embedded)",
            connect_addr(settings.embedded_listen)
        ),
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
    let url = display_url(&settings);
    let server_uri = paho_uri(&settings);
    let (client, stream) =
        new_client(&server_uri, &settings.client_id).map_err(|source| ClientError::Create {
            url: url.clone(),
            source,
        })?;
    let targets = targets(&settings, &will_topic, tuning.connect_timeout)?;
    let outbox = Outbox::new(tuning.offline_capacity);
    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    let task = Task {
        client,
        stream,
        targets,
        url,
        server_uri,
        client_id: settings.client_id.clone(),
        qos: settings.qos,
        subscriptions,
        outbox: outbox.clone(),
        events: events_tx,
        cancel,
        pending_connect: None,
        backoff: tuning.backoff_min,
        dropped_in_a_row: 0,
        tuning,
        inflight: VecDeque::new(),
        unconfirmed: Vec::new(),
        dropped_in: 0,
    };
    let handle = tokio::spawn(task.run());
    Ok((outbox, events_rx, handle))
}

/// A paho client (in-memory session state) and its event stream. The stream must exist before the first connect:
/// a persistent session may deliver at once.
fn new_client(
    server_uri: &str,
    client_id: &str,
) -> Result<(paho::AsyncClient, paho::AsyncReceiver<paho::Event>), paho::Error> {
    let create = paho::CreateOptionsBuilder::new_v3()
        .server_uri(server_uri)
        .client_id(client_id)
        .persistence(paho::PersistenceType::None)
        .finalize();
    let mut client = paho::AsyncClient::new(create)?;
    let stream = client.get_event_stream(PAHO_STREAM_CAPACITY);
    Ok((client, stream))
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
fn targets(
    s: &MqttSettings,
    will_topic: &str,
    connect_timeout: Duration,
) -> Result<Vec<Target>, ClientError> {
    let uris = paho_uris(s);
    if uris.len() == 1 {
        // The server URI the client was created with.
        return Ok(vec![Target {
            url: display_url(s),
            opts: connect_options(s, will_topic, connect_timeout, None)?,
        }]);
    }
    s.url
        .endpoints()
        .iter()
        .zip(&uris)
        .map(|(endpoint, uri)| {
            Ok(Target {
                url: endpoint.to_string(),
                opts: connect_options(s, will_topic, connect_timeout, Some(uri))?,
            })
        })
        .collect()
}

fn connect_options(
    s: &MqttSettings,
    will_topic: &str,
    connect_timeout: Duration,
    server_uri: Option<&str>,
) -> Result<paho::ConnectOptions, ClientError> {
    let mut b = paho::ConnectOptionsBuilder::new_v3();
    b.keep_alive_interval(s.keepalive)
        .clean_session(false)
        .connect_timeout(connect_timeout)
        .will_message(paho::Message::new_retained(
            will_topic,
            "offline",
            paho::QOS_1,
        ));
    if let Some(user) = &s.username {
        b.user_name(user);
    }
    if let Some(password) = &s.password {
        b.password(password.as_str());
    }
    // A broker of a failover list (else the URI the client was created with).
    if let Some(uri) = server_uri {
        b.server_uris(&[uri]);
    }
    if s.url.tls() {
        let mut ssl = paho::SslOptionsBuilder::new();
        let path_err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| ClientError::TlsPath { path, source }
        };
        if let Some(ca) = &s.ca_file {
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
}

impl Task {
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
        self.outbox.shared.connected.store(false, Ordering::Relaxed);
        let dropped = self.outbox.queue().take_dropped();
        if dropped > 0 {
            log::warn!(
                "MQTT: {dropped} queued readings/alerts were never sent (broker unreachable)"
            );
        }
        log::debug!("MQTT task ended");
    }

    fn stopping(&self) -> bool {
        self.cancel.is_cancelled() || self.outbox.queue().is_closed()
    }

    /// Connect, retrying with exponential backoff; `false` when stopped before connecting. Each round tries the
    /// brokers of `mqtt.url` in order, so the first one that answers is used.
    async fn connect(&mut self) -> bool {
        let mut last_failure = String::new();
        loop {
            let mut failures = Vec::new();
            for i in 0..self.targets.len() {
                if self.stopping() {
                    return false;
                }
                match self.attempt(i).await {
                    Some(Ok(())) => {
                        self.on_connected(i);
                        return true;
                    }
                    Some(Err(failure)) => failures.push(failure),
                    None => return false,
                }
            }
            let failure = match failures.as_slice() {
                [one] => one.clone(),
                several => self
                    .targets
                    .iter()
                    .zip(several)
                    .map(|(t, f)| format!("{}: {f}", t.url))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            // Log a failure once; repeats of the same failure only at debug level.
            if failure != last_failure {
                if failure.contains("refused") {
                    log::error!("MQTT broker {} {failure}", self.url);
                } else {
                    log::warn!("MQTT: cannot connect to {}: {failure}; retrying", self.url);
                }
                last_failure = failure;
            } else {
                log::debug!("MQTT: still cannot connect to {}: {failure}", self.url);
            }
            let wait = self.next_backoff();
            if !self.wait_or_stop(wait).await {
                return false;
            }
        }
    }

    /// One connect attempt to broker `i`: `None` when stopped meanwhile, else the outcome (failure described).
    async fn attempt(&mut self, i: usize) -> Option<Result<(), String>> {
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
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(describe_connect_error(&e, self.tuning.connect_timeout)),
            // Our safety net behind paho's own connect timeout: the same failure, said the same way.
            Err(_) => Err(describe_connect_error(
                &paho::Error::TcpConnectTimeout,
                self.tuning.connect_timeout,
            )),
        })
    }

    /// The next retry delay (±25 % jitter); doubles the one after it, up to `backoff_max`.
    fn next_backoff(&mut self) -> Duration {
        let wait = self
            .backoff
            .mul_f64(rand::thread_rng().gen_range(0.75..1.25));
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
                // Publishes wake us too; only a close matters here.
                _ = self.outbox.shared.notify.notified() => {
                    if self.stopping() {
                        return false;
                    }
                }
            }
        }
    }

    /// Connected to broker `i` of the list.
    fn on_connected(&mut self, i: usize) {
        log::info!("MQTT connected to {}", self.targets[i].url);
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
        if self.dropped_in_a_row == 0 {
            log::warn!(
                "MQTT connection to {} lost: {reason}; reconnecting in {wait:.1?}",
                self.url
            );
        } else {
            log::warn!(
                "MQTT connection to {} lost {lasted:.1?} after it was made: {reason}; reconnecting in {wait:.1?}",
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
        let (client, stream) = match new_client(&self.server_uri, &self.client_id) {
            Ok(fresh) => fresh,
            Err(e) => {
                log::warn!("MQTT: cannot create a fresh client: {e}");
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
        log::warn!(
            "MQTT: starting over with a fresh client for {} ({requeued} unconfirmed messages queued again)",
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
        if self.subscriptions.is_empty() {
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
        loop {
            if retry_at.map_or(true, |t| t <= Instant::now()) {
                retry_at = self.pump();
            }
            if self.outbox.queue().is_closed() {
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
                        Ok(_) => served = true,
                        // The connection is gone: its loss is what gets reported.
                        Err(e) if !self.client.is_connected() => {
                            log::debug!("MQTT: subscribing to {:?} failed: {e}", self.subscriptions);
                        }
                        Err(e) => log::warn!("MQTT: subscribing to {:?} failed: {e}", self.subscriptions),
                    }
                },
                r = front(&mut self.inflight) => {
                    self.inflight.pop_front();
                    match r {
                        // At QoS 0 "confirmed" only means written.
                        Ok(_) if self.qos > 0 => served = true,
                        Ok(_) => {}
                        Err(e) => log::debug!("MQTT: publish not confirmed: {e}"),
                    }
                },
                _ = self.outbox.shared.notify.notified() => {},
                _ = self.cancel.cancelled(), if grace_end.is_none() => {
                    grace_end = Some(Instant::now() + self.tuning.close_grace);
                },
                _ = sleep_until(grace_end.unwrap_or_else(Instant::now)), if grace_end.is_some() => {},
                _ = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {},
            }
        }
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
        loop {
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
            Ok(Ok(_)) => log::info!("MQTT disconnected from {}", self.url),
            Ok(Err(e)) => log::warn!("MQTT: disconnecting from {} failed: {e}", self.url),
            Err(_) => log::warn!("MQTT: disconnecting from {} timed out", self.url),
        }
        self.outbox.shared.connected.store(false, Ordering::Relaxed);
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
