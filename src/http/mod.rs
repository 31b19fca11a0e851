//! The read-only HTTP server: the dashboard (`/`), `/metrics` (Prometheus), `/api/state`, `/api/history`.
//!
//! Isolation from the control loop: the server runs on its own thread with its own single-threaded tokio runtime
//! and reads only a [`Snapshot`] the shell publishes through a `tokio::sync::watch` channel (the state after each
//! event, the history once a minute). It never locks or calls into the core, so a slow or hostile client can cost
//! this thread CPU but never holds the loop. Each connection is bounded: at most [`MAX_CONNECTIONS`] at once
//! (more are closed at accept), the request head within [`HEADER_TIMEOUT`] and [`MAX_HEADER_BYTES`], the whole
//! connection within [`CONNECTION_LIFETIME`].

mod history_file;
mod metrics;
pub mod shell;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::core::dli::DliPayload;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDateTime;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::core::history::{Day, History, Minute};

pub use history_file::{load_history, write_history, HISTORY_FILE};

/// Connections served at once; further ones are closed right after accept.
pub const MAX_CONNECTIONS: usize = 32;
/// The request line and headers must arrive within this time (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Request head size limit (hyper answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Headers per request.
pub const MAX_HEADERS: usize = 32;
/// A connection (keep-alive included) is closed after this long.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Days in `/api/history` unless `days=N` says otherwise (the dashboard's 30-day chart).
pub const DEFAULT_DAYS: usize = 30;

/// The page, embedded in the binary (no external scripts, fonts or styles).
const DASHBOARD: &str = include_str!("dashboard.html");

/// The daemon's state now: `/api/state`, the dashboard's "now" panel and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StateView {
    /// When this state was taken (RFC 3339, the daemon's clock: simulated time under `--mock-hardware`).
    pub ts: String,
    /// Last valid reading (None: none yet, or the sensor failed since).
    pub lux: Option<f64>,
    /// The reading without the lamp's share.
    pub ambient_lux: Option<f64>,
    /// `on` / `off` (the relay read back), `unknown` when the read-back failed.
    pub light: String,
    /// `auto` / `manual`.
    pub mode: String,
    /// Why the light is as it is (the `reason` of `P/state`).
    pub reason: String,
    /// `ok`, `error`, `stale`, `saturated`.
    pub sensor: String,
    pub window_open: bool,
    /// Active alert names.
    pub alerts: Vec<String>,
    pub broker_connected: bool,
    /// The broker in use (URL), when connected.
    pub broker: Option<String>,
    /// Today's DLI, when the DLI accounting runs.
    pub dli: Option<DliPayload>,
    /// Lamp on-time since the daemon started (counter).
    pub lamp_on_seconds_total: f64,
    /// Confirmed relay switches since the daemon started (counter).
    pub lamp_switches_total: u64,
    /// The daemon's version.
    pub version: String,
}

impl StateView {
    /// The core's view as the server shows it.
    pub fn from_view(v: &crate::core::View) -> StateView {
        StateView {
            ts: v.ts.clone(),
            lux: v.lux,
            ambient_lux: v.ambient_lux,
            light: if v.light { "on" } else { "off" }.into(),
            mode: v.mode.into(),
            reason: v.reason.into(),
            sensor: v.sensor.as_str().into(),
            window_open: v.window_open,
            alerts: v.alerts.iter().map(|a| a.to_string()).collect(),
            broker_connected: v.broker_connected,
            broker: v.broker.clone(),
            dli: Some(v.dli.clone()),
            lamp_on_seconds_total: v.lamp_on_seconds_total,
            lamp_switches_total: v.lamp_switches_total,
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// History as the server serves it: a copy the shell refreshes once a minute.
#[derive(Debug, Default)]
pub struct HistoryView {
    /// The local time of the copy (`hours=N` counts back from it).
    pub local: NaiveDateTime,
    pub minutes: Vec<Minute>,
    pub days: Vec<Day>,
    /// The answer to the dashboard's own query (`hours=48`, 30 days), encoded once per copy.
    default_json: std::sync::OnceLock<axum::body::Bytes>,
}

impl HistoryView {
    /// Copy what the server needs out of the history.
    pub fn from_history(history: &History, local: NaiveDateTime) -> HistoryView {
        HistoryView {
            local,
            minutes: history.minutes().iter().copied().collect(),
            days: history.days().iter().copied().collect(),
            default_json: std::sync::OnceLock::new(),
        }
    }
}

/// What the server reads: replaced as a whole by the shell, never locked against the core.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub state: StateView,
    pub history: Arc<HistoryView>,
}

/// The running server; [`Server::stop`] ends it.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Bind `addr` now (so a taken port is reported to the caller at once) and serve `snapshots` on a thread of
    /// its own.
    pub fn start(
        addr: SocketAddr,
        snapshots: watch::Receiver<Snapshot>,
    ) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                lower_priority();
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            tokio::select! {
                                _ = serve(listener, snapshots) => {}
                                _ = stop_rx => {}
                            }
                        }
                        Err(e) => log::warn!("HTTP server: cannot use the listening socket: {e}"),
                    }
                });
                // Dropping the runtime here cancels the connection tasks still running.
            })?;
        Ok(Server {
            addr: bound,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, drop open connections, join the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Run this thread at nice 10: under CPU contention the control loop (nice 0) is scheduled first, so serving
/// pages can slow down the pages but not the loop. Failure (e.g. a seccomp filter) only costs that preference.
fn lower_priority() {
    // SAFETY: gettid and setpriority take no pointers; on Linux PRIO_PROCESS with a thread id sets that thread's
    // nice value only.
    let r = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10)
    };
    if r != 0 {
        log::debug!(
            "cannot lower the HTTP thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The accept loop.
async fn serve(listener: tokio::net::TcpListener, snapshots: watch::Receiver<Snapshot>) {
    let app = router(snapshots);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                log::debug!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Full: close at once rather than queue (a flood must not pile up sockets).
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req)
                });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            // Errors here are the client's (reset, timeout, oversized head): nothing to log above debug.
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                log::debug!("HTTP connection: {e}");
            }
            drop(permit);
        });
    }
}

/// The routes. `get` answers GET (and HEAD, which HTTP requires of every GET resource) and 405 with an `Allow`
/// header for any other method; unknown paths get 404.
pub fn router(snapshots: watch::Receiver<Snapshot>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/metrics", get(metrics_text))
        .route("/api/state", get(api_state))
        .route("/api/history", get(api_history))
        .fallback(not_found)
        .with_state(snapshots)
}

type Snapshots = State<watch::Receiver<Snapshot>>;

fn current(snapshots: &watch::Receiver<Snapshot>) -> Snapshot {
    snapshots.borrow().clone()
}

async fn dashboard() -> Response {
    let mut r = Html(DASHBOARD).into_response();
    // Everything inline, nothing from elsewhere: the browser enforces "offline".
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:",
        ),
    );
    r
}

async fn metrics_text(State(s): Snapshots) -> Response {
    let snap = current(&s);
    match metrics::encode_state(&snap.state) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the metrics failed: {e}\n"),
        )
            .into_response(),
    }
}

fn json_bytes(body: axum::body::Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(body.into()),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding JSON failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn api_state(State(s): Snapshots) -> Response {
    json(&current(&s).state)
}

/// One minute of `/api/history`.
#[derive(Serialize)]
struct MinuteJson {
    /// Local start of the minute, `YYYY-MM-DDTHH:MM` (formatted straight into the output).
    #[serde(serialize_with = "minute_start")]
    t: i32,
    lux: Option<f32>,
    ambient_lux: Option<f32>,
    lamp_on_s: u8,
    window_open: bool,
}

fn minute_start<S: serde::Serializer>(t: &i32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::core::history::minute_start(*t).format("%Y-%m-%dT%H:%M"))
}

/// The minutes of `/api/history`, encoded one by one as they are written (no intermediate copy: the 48 h answer
/// is ~270 kB, and memory on a Pi is the budget that matters).
struct MinutesJson<'a>(&'a [Minute]);

impl Serialize for MinutesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| MinuteJson {
            t: m.t,
            lux: m.lux,
            ambient_lux: m.ambient_lux,
            lamp_on_s: m.lamp_on_s,
            window_open: m.window_open,
        }))
    }
}

/// One day of `/api/history`.
#[derive(Serialize)]
struct DayJson {
    date: String,
    sun_mol: f32,
    lamp_mol: f32,
    total_mol: f32,
    target_mol: f32,
    lamp_on_s: u32,
    lamp_hours: f32,
    lamp_kwh: f32,
    cost: f32,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    /// The local time the history runs up to.
    now: String,
    hours: u32,
    step_s: u32,
    minutes: MinutesJson<'a>,
    days: Vec<DayJson>,
}

fn bad_request(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
}

/// A whole number in `lo..=hi` from the query, or the reason why not.
fn number_param(
    q: &HashMap<String, String>,
    name: &str,
    default: u32,
    lo: u32,
    hi: u32,
) -> Result<u32, String> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(format!(
                "{name} must be a whole number from {lo} to {hi}, got {v:?} (e.g. /api/history?{name}={default})"
            )),
        },
    }
}

async fn api_history(
    State(s): Snapshots,
    query: Option<Query<HashMap<String, String>>>,
) -> Response {
    let Some(Query(q)) = query else {
        return bad_request("the query string is not valid URL encoding".into());
    };
    if let Some(unknown) = q.keys().find(|k| *k != "hours" && *k != "days") {
        return bad_request(format!(
            "unknown parameter {unknown:?}; /api/history takes hours=1..48 and days=0..{}",
            crate::core::history::DAYS_KEPT
        ));
    }
    let hours = match number_param(&q, "hours", 48, 1, 48) {
        Ok(h) => h,
        Err(reason) => return bad_request(reason),
    };
    let days = match number_param(
        &q,
        "days",
        DEFAULT_DAYS as u32,
        0,
        crate::core::history::DAYS_KEPT as u32,
    ) {
        Ok(d) => d as usize,
        Err(reason) => return bad_request(reason),
    };
    let snap = current(&s);
    let h = &snap.history;
    let default = hours == 48 && days == DEFAULT_DAYS;
    if let Some(body) = default.then(|| h.default_json.get()).flatten() {
        return json_bytes(body.clone());
    }
    let from = crate::core::history::minute_of(h.local) - (hours as i32) * 60;
    let first = h.minutes.partition_point(|m| m.t < from);
    let minutes = MinutesJson(&h.minutes[first..]);
    let skip = h.days.len().saturating_sub(days);
    let days: Vec<DayJson> = h.days[skip..]
        .iter()
        .map(|d| DayJson {
            date: d.date().to_string(),
            sun_mol: d.sun_mol,
            lamp_mol: d.lamp_mol,
            total_mol: d.total_mol(),
            target_mol: d.target_mol,
            lamp_on_s: d.lamp_on_s,
            lamp_hours: d.lamp_on_s as f32 / 3600.0,
            lamp_kwh: d.lamp_kwh,
            cost: d.cost,
        })
        .collect();
    // Sized for the full answer (about 95 bytes a minute) so the buffer is allocated once.
    let mut out = Vec::with_capacity(256 + 96 * (h.minutes.len() - first) + 200 * days.len());
    let body = match serde_json::to_writer(
        &mut out,
        &HistoryJson {
            now: h.local.format("%Y-%m-%dT%H:%M:%S").to_string(),
            hours,
            step_s: 60,
            minutes,
            days,
        },
    ) {
        Ok(()) => axum::body::Bytes::from(out),
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding JSON failed: {e}\n"),
            )
                .into_response()
        }
    };
    if default {
        let _ = h.default_json.set(body.clone());
    }
    json_bytes(body)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "nothing at {}; this server has /, /metrics, /api/state and /api/history?hours=N\n",
            uri.path()
        ),
    )
        .into_response()
}
