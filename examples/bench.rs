//! Benchmark of the running daemon, as users feel it. Prints numbers; it is not a test.
//!
//! Everything runs on loopback against the release binary (`target/release/greenhoused --mock-hardware`):
//! mosquitto brokers on free ports (temp configs, `set_tcp_nodelay` false and true), the embedded rumqttd broker,
//! paho clients on the bench side. Every wait is bounded.
//!
//! ```text
//! cargo build --release --bin greenhoused && cargo build --release --example bench && target/release/examples/bench [--quick] [--commands N]
//! ```
//! See docs/PERFORMANCE.md for what each figure means and the last results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paho_mqtt as paho;
use rand::Rng;

type Rx = paho::AsyncReceiver<Option<paho::Message>>;
type BoxError = Box<dyn std::error::Error>;

/// Targets from the issue ("Benchmarks").
const TARGET_RSS_KIB: u64 = 8 * 1024;
const TARGET_IDLE_CPU_PCT: f64 = 0.03;
const TARGET_START: Duration = Duration::from_millis(300);
const TARGET_ECHO_RATIO: f64 = 2.0;
const TARGET_ECHO_P99: Duration = Duration::from_millis(2);
/// Limit for one expected message.
const MSG_TIMEOUT: Duration = Duration::from_secs(2);
/// Wait after a switch before moving the simulated light again (see `reaction`).
const SETTLE_AFTER_SWITCH: Duration = Duration::from_millis(1700);

struct Opts {
    quick: bool,
    daemon: PathBuf,
    commands: usize,
    /// Phases to run (all when empty): binary, echo, embedded, reaction, start, idle (idle includes the flood).
    only: Vec<String>,
}

const PHASES: [&str; 7] = [
    "binary", "spaced", "echo", "embedded", "reaction", "start", "idle",
];

impl Opts {
    /// Time limit of one latency loop: rows that hit Nagle's 40 ms stalls stop here instead of taking minutes.
    fn cap(&self) -> Duration {
        Duration::from_millis(if self.quick { 500 } else { 8000 })
    }

    fn runs(&self, phase: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == phase)
    }
}

impl Opts {
    fn parse() -> Result<Opts, BoxError> {
        let mut quick = false;
        let mut daemon = None;
        let mut commands = None;
        let mut only = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--daemon" => {
                    daemon = Some(PathBuf::from(args.next().ok_or("--daemon needs a path")?))
                }
                "--commands" => {
                    commands = Some(args.next().ok_or("--commands needs a number")?.parse()?)
                }
                "--only" => {
                    for p in args.next().ok_or("--only needs a list")?.split(',') {
                        if !PHASES.contains(&p) {
                            return Err(format!(
                                "unknown phase {p:?}; phases: {}",
                                PHASES.join(",")
                            )
                            .into());
                        }
                        only.push(p.to_string());
                    }
                }
                "-h" | "--help" => {
                    println!(
                        "usage: bench [--quick] [--commands N] [--only {}] [--daemon PATH-TO-RELEASE-greenhoused]\n\
                         BENCH_DAEMON_PRELOAD=lib.so sets LD_PRELOAD for the daemon processes only;\n\
                         BENCH_DAEMON_ENV=\"K=V ...\" adds environment variables to them",
                        PHASES.join(",")
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?} (try --help)").into()),
            }
        }
        let daemon = match daemon {
            Some(d) => d,
            // target/release/examples/bench → target/release/greenhoused
            None => std::env::current_exe()?
                .parent()
                .and_then(Path::parent)
                .map(|d| d.join("greenhoused"))
                .ok_or("cannot locate target/release/greenhoused; pass --daemon PATH")?,
        };
        if !daemon.is_file() {
            return Err(format!(
                "{} does not exist: run `cargo build --release --bin greenhoused && cargo build --release --example bench` first (or pass --daemon PATH)",
                daemon.display()
            )
            .into());
        }
        let commands = commands.unwrap_or(if quick { 200 } else { 1000 });
        Ok(Opts {
            quick,
            daemon,
            commands,
            only,
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics

#[derive(Clone, Debug, Default)]
struct Lat {
    samples: Vec<Duration>,
    timeouts: usize,
    /// The loop stopped at its time limit before reaching the requested count.
    capped: bool,
}

impl Lat {
    fn sorted(&self) -> Vec<Duration> {
        let mut s = self.samples.clone();
        s.sort();
        s
    }
    fn pct(&self, p: f64) -> Duration {
        let s = self.sorted();
        if s.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
        s[rank.clamp(1, s.len()) - 1]
    }
    fn p50(&self) -> Duration {
        self.pct(50.0)
    }
    fn p99(&self) -> Duration {
        self.pct(99.0)
    }
    fn max(&self) -> Duration {
        self.samples.iter().copied().max().unwrap_or_default()
    }
    fn min(&self) -> Duration {
        self.samples.iter().copied().min().unwrap_or_default()
    }
    fn over(&self, d: Duration) -> usize {
        self.samples.iter().filter(|&&s| s > d).count()
    }
    fn line(&self) -> String {
        format!(
            "n={:<5}{} min {:>8} p50 {:>8} p90 {:>8} p99 {:>8} max {:>8}  >10ms: {:<4} lost: {}",
            self.samples.len(),
            if self.capped { "(time-capped)" } else { "" },
            ms(self.min()),
            ms(self.p50()),
            ms(self.pct(90.0)),
            ms(self.p99()),
            ms(self.max()),
            self.over(Duration::from_millis(10)),
            self.timeouts
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Processes: mosquitto and the daemon

fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(port: u16, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// A mosquitto on a free loopback port; killed on drop.
struct Mosquitto {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start(nodelay: bool) -> Result<Mosquitto, BoxError> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n\
                 set_tcp_nodelay {nodelay}\n"
            ),
        )?;
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run mosquitto ({e}): install the mosquitto package"))?;
        let m = Mosquitto {
            port,
            child,
            _dir: dir,
        };
        if !wait_port(port, Duration::from_secs(5)) {
            return Err(format!("mosquitto did not listen on 127.0.0.1:{port} within 5 s").into());
        }
        Ok(m)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `greenhoused --mock-hardware -c <temp config>`; SIGTERM (then SIGKILL) on drop.
struct Daemon {
    /// `None` once handed to [`STOPPING`].
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// Daemons sent SIGTERM on drop; they finish stopping (up to one sensor conversion, < 1 s) while the next phase
/// runs, and are reaped by [`reap_stopped`] at the end.
static STOPPING: std::sync::Mutex<Vec<Child>> = std::sync::Mutex::new(Vec::new());

/// Wait for the daemons still stopping (bounded), then kill what is left.
fn reap_stopped() {
    let children = std::mem::take(&mut *STOPPING.lock().unwrap_or_else(|e| e.into_inner()));
    let end = Instant::now() + Duration::from_secs(3);
    for mut c in children {
        while Instant::now() < end && matches!(c.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Daemon {
    fn start(bin: &Path, config: &str) -> Result<Daemon, BoxError> {
        let dir = tempfile::tempdir()?;
        let conf = dir.path().join("greenhoused.toml");
        std::fs::write(&conf, config)?;
        let log = std::fs::File::create(dir.path().join("stderr.log"))?;
        let mut cmd = Command::new(bin);
        if let Some(lib) = std::env::var_os("BENCH_DAEMON_PRELOAD") {
            cmd.env("LD_PRELOAD", lib);
        }
        // Experiments: extra environment for the daemon only, e.g. BENCH_DAEMON_ENV="MALLOC_ARENA_MAX=1".
        if let Ok(extra) = std::env::var("BENCH_DAEMON_ENV") {
            for kv in extra.split_whitespace() {
                if let Some((k, v)) = kv.split_once('=') {
                    cmd.env(k, v);
                }
            }
        }
        let child = cmd
            .arg("--mock-hardware")
            .arg("-c")
            .arg(&conf)
            .arg("--log-target")
            .arg("stderr")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("STATE_DIRECTORY", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        Ok(Daemon {
            child: Some(child),
            dir,
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM and wait (bounded); `Some(exit code)` when it exited in time.
    fn term(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
    }

    fn stop(&mut self, limit: Duration) -> Option<i32> {
        self.term();
        let child = self.child.as_mut()?;
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.running() {
            self.term();
        }
        if let Some(c) = self.child.take() {
            STOPPING.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        }
    }
}

enum Broker {
    Mosquitto(u16),
    Embedded(u16),
}

/// A daemon config: commands switch at once (no dwell, no window), steady simulated light.
fn daemon_config(broker: &Broker, prefix: &str, qos: i32, extra: &str) -> String {
    let url = match broker {
        Broker::Mosquitto(port) => format!("url = \"mqtt://127.0.0.1:{port}\""),
        Broker::Embedded(port) => {
            format!("url = \"embedded\"\nembedded_listen = \"127.0.0.1:{port}\"")
        }
    };
    format!(
        "[device]\nid = \"bench\"\n\n[mqtt]\n{url}\ntopic_prefix = \"{prefix}\"\nqos = {qos}\n\
         client_id = \"gh-{}\"\n\n[control]\nwindow = \"\"\nmin_on_s = 0\nmin_off_s = 0\n{extra}",
        prefix.replace('/', "-")
    )
}

fn unique_prefix(name: &str) -> String {
    format!("bench/{name}/{:08x}", rand::thread_rng().gen::<u32>())
}

// ---------------------------------------------------------------------------------------------------------------
// /proc

#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    threads: u64,
}

fn mem(pid: u32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        anon_kib: field("RssAnon:"),
        file_kib: field("RssFile:"),
        threads: field("Threads:"),
    }
}

impl Mem {
    fn line(&self) -> String {
        format!(
            "VmRSS {:>6} KiB ({:.2} MiB)  VmHWM {:>6} KiB  RssAnon {:>6} KiB  RssFile {:>6} KiB  threads {}",
            self.rss_kib,
            self.rss_kib as f64 / 1024.0,
            self.hwm_kib,
            self.anon_kib,
            self.file_kib,
            self.threads
        )
    }
}

/// Per-thread CPU (ns, from schedstat) and context switches.
#[derive(Debug, Clone, Default)]
struct ThreadStat {
    name: String,
    cpu_ns: u64,
    ticks: u64,
    switches: u64,
}

fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime of the whole process, in clock ticks.
fn proc_ticks(pid: u32) -> u64 {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

fn stat_ticks(path: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let Some(rest) = text.rsplit_once(") ").map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after "comm)": state(3) … utime(14) stime(15), 1-based in proc(5).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

fn threads(pid: u32) -> BTreeMap<String, ThreadStat> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let tid = entry.file_name().to_string_lossy().into_owned();
        let base = format!("/proc/{pid}/task/{tid}");
        let name = std::fs::read_to_string(format!("{base}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let cpu_ns = std::fs::read_to_string(format!("{base}/schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let status = std::fs::read_to_string(format!("{base}/status")).unwrap_or_default();
        let switches: u64 = status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches")
                    || l.starts_with("nonvoluntary_ctxt_switches")
            })
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum();
        out.insert(
            format!("{name}/{tid}"),
            ThreadStat {
                name,
                cpu_ns,
                ticks: stat_ticks(&format!("{base}/stat")),
                switches,
            },
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// MQTT clients

async fn client(port: u16, name: &str) -> Result<(paho::AsyncClient, Rx), BoxError> {
    let mut cli = paho::CreateOptionsBuilder::new_v3()
        .server_uri(format!("tcp://127.0.0.1:{port}"))
        .client_id(format!(
            "bench-{name}-{:08x}",
            rand::thread_rng().gen::<u32>()
        ))
        .persistence(paho::PersistenceType::None)
        .create_client()?;
    // paho-mqtt 0.14: a connect callback may hold the last handle of a dropped client and destroy it under
    // Paho C's global mutex, deadlocking every paho thread (eclipse-paho/paho.mqtt.rust#239): never destroy one.
    greenhoused::mqtt::client::park(&cli);
    let rx = cli.get_stream(100_000);
    let opts = paho::ConnectOptionsBuilder::new_v3()
        .clean_session(true)
        .keep_alive_interval(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .finalize();
    match tokio::time::timeout(Duration::from_secs(10), cli.connect(opts)).await {
        Ok(Ok(_)) => Ok((cli, rx)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err("MQTT connect timed out".into()),
    }
}

/// Connect, retrying while the broker is not up yet (the embedded one starts with the daemon).
async fn client_retry(
    port: u16,
    name: &str,
    limit: Duration,
) -> Result<(paho::AsyncClient, Rx), BoxError> {
    // Wait for the listener first, so paho rarely sees a refused connect (see `client`).
    if !wait_port(port, limit) {
        return Err(format!("nothing listens on 127.0.0.1:{port} after {limit:?}").into());
    }
    let end = Instant::now() + limit;
    loop {
        match client(port, name).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn subscribe(cli: &paho::AsyncClient, topic: &str, qos: i32) -> Result<(), BoxError> {
    tokio::time::timeout(Duration::from_secs(5), cli.subscribe(topic, qos)).await??;
    Ok(())
}

fn publish(cli: &paho::AsyncClient, topic: &str, payload: impl Into<Vec<u8>>, qos: i32) {
    let msg = paho::MessageBuilder::new()
        .topic(topic)
        .payload(payload)
        .qos(qos)
        .finalize();
    // The token is not awaited: latency is taken to the matching reply, not to the PUBACK.
    drop(cli.publish(msg));
}

/// Next message matching `pred` within `limit`; other messages are passed to `seen`.
async fn wait_msg(
    rx: &Rx,
    limit: Duration,
    mut pred: impl FnMut(&paho::Message) -> bool,
) -> Option<(paho::Message, Instant)> {
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Ok(Some(m))) => {
                let at = Instant::now();
                if pred(&m) {
                    return Some((m, at));
                }
            }
            Ok(Ok(None)) => continue,
            Ok(Err(_)) | Err(_) => return None,
        }
    }
}

/// The one-hop echo responder for the transport floor: a second paho client that republishes every message on
/// `x` to `y` from its message callback (the least work a paho client can do per message).
async fn responder(port: u16, x: &str, y: &str, qos: i32) -> Result<paho::AsyncClient, BoxError> {
    let (cli, _rx) = client(port, "echo").await?;
    // Drop the stream and use a callback instead (set after the stream: the callback replaces it).
    let y = y.to_string();
    cli.set_message_callback(move |c, m| {
        if let Some(m) = m {
            let out = paho::MessageBuilder::new()
                .topic(y.as_str())
                .payload(m.payload())
                .qos(qos)
                .finalize();
            drop(c.publish(out));
        }
    });
    subscribe(&cli, x, qos).await?;
    Ok(cli)
}

/// Transport floor: A publishes a sequence number on `x`, the responder echoes it on `y`, A times the round.
async fn floor(port: u16, n: usize, qos: i32, cap: Duration) -> Result<Lat, BoxError> {
    let tag = format!("bench/floor/{:08x}", rand::thread_rng().gen::<u32>());
    let (x, y) = (format!("{tag}/x"), format!("{tag}/y"));
    let echo = responder(port, &x, &y, qos).await?;
    let (cli, rx) = client(port, "floor").await?;
    subscribe(&cli, &y, qos).await?;
    let mut lat = Lat::default();
    let stop_at = Instant::now() + cap;
    for i in 0..(n + n / 10) {
        if Instant::now() >= stop_at {
            lat.capped = true;
            break;
        }
        let payload = i.to_string();
        let t0 = Instant::now();
        publish(&cli, &x, payload.as_bytes(), qos);
        match wait_msg(&rx, MSG_TIMEOUT, |m| {
            m.topic() == y && m.payload() == payload.as_bytes()
        })
        .await
        {
            // The first 10 % warm up the connections and are not counted.
            Some((_, at)) if i >= n / 10 => lat.samples.push(at - t0),
            Some(_) => {}
            None => lat.timeouts += 1,
        }
    }
    let _ = cli.disconnect(None).await;
    let _ = echo.disconnect(None).await;
    Ok(lat)
}

/// Broker round trip with no second client: A publishes on a topic it is itself subscribed to.
async fn broker_rtt(port: u16, n: usize, qos: i32, cap: Duration) -> Result<Lat, BoxError> {
    let t = format!("bench/rtt/{:08x}", rand::thread_rng().gen::<u32>());
    let (cli, rx) = client(port, "rtt").await?;
    subscribe(&cli, &t, qos).await?;
    let mut lat = Lat::default();
    let stop_at = Instant::now() + cap;
    for i in 0..(n + n / 10) {
        if Instant::now() >= stop_at {
            lat.capped = true;
            break;
        }
        let payload = i.to_string();
        let t0 = Instant::now();
        publish(&cli, &t, payload.as_bytes(), qos);
        match wait_msg(&rx, MSG_TIMEOUT, |m| m.payload() == payload.as_bytes()).await {
            Some((_, at)) if i >= n / 10 => lat.samples.push(at - t0),
            Some(_) => {}
            None => lat.timeouts += 1,
        }
    }
    let _ = cli.disconnect(None).await;
    Ok(lat)
}

/// Command → `P/light` echo through the daemon: alternate on/off on `P/light/set`, time to the matching
/// `P/light`. The next command is always the opposite of the last `P/light` seen, so a lost message resyncs.
async fn daemon_echo(
    port: u16,
    prefix: &str,
    n: usize,
    qos: i32,
    cap: Duration,
) -> Result<Lat, BoxError> {
    let (cli, rx) = client(port, "cmd").await?;
    let light_topic = format!("{prefix}/light");
    let mode_topic = format!("{prefix}/mode");
    let set_topic = format!("{prefix}/light/set");
    let status_topic = format!("{prefix}/status");
    subscribe(&cli, &status_topic, qos).await?;
    // `online` (retained) is published after the daemon's SUBSCRIBE on the same connection: commands reach it now.
    wait_msg(&rx, Duration::from_secs(10), |m| {
        m.topic() == status_topic && m.payload() == b"online"
    })
    .await
    .ok_or("the daemon did not publish P/status online within 10 s")?;
    subscribe(&cli, &light_topic, qos).await?;
    subscribe(&cli, &mode_topic, qos).await?;
    // Into manual mode with the light on: once P/mode says manual, the P/light of that command came before it.
    publish(&cli, &set_topic, "on", qos);
    wait_msg(&rx, Duration::from_secs(10), |m| {
        m.topic() == mode_topic && m.payload() == b"manual"
    })
    .await
    .ok_or("the daemon did not go to manual mode after an \"on\" command within 10 s")?;
    let mut light_on = true;
    let mut lat = Lat::default();
    let stop_at = Instant::now() + cap;
    for i in 0..(n + n / 10) {
        if Instant::now() >= stop_at {
            lat.capped = true;
            break;
        }
        let want: &[u8] = if light_on { b"off" } else { b"on" };
        let t0 = Instant::now();
        publish(&cli, &set_topic, want, qos);
        match wait_msg(&rx, MSG_TIMEOUT, |m| {
            m.topic() == light_topic && m.payload() == want
        })
        .await
        {
            Some((_, at)) => {
                light_on = want == b"on";
                if i >= n / 10 {
                    lat.samples.push(at - t0);
                }
            }
            None => {
                lat.timeouts += 1;
                light_on = !light_on; // maybe applied late; the next P/light seen tells, this is a best guess
            }
        }
    }
    let _ = cli.disconnect(None).await;
    Ok(lat)
}

/// Commands in an open loop, `spacing` apart, from a publish-only client; a separate subscribe-only client times
/// each answer (both paho, so both sockets have TCP_NODELAY). `relay`: the C relay floor (`mosquitto_sub -t in |
/// mosquitto_pub -l -t out`, answers carry the sequence number) instead of the daemon (answers are its `P/light`
/// changes; commands alternate off/on starting from the light's level, so the i-th change answers the i-th
/// command). Readings keep flowing meanwhile (the daemon's sensor every `interval_s`, two QoS 1 publishes each).
async fn spaced(
    port: u16,
    target: &Spaced,
    spacing: Duration,
    n: usize,
    qos: i32,
) -> Result<Lat, BoxError> {
    let (sender, _srx) = client(port, "sender").await?;
    let (receiver, rrx) = client(port, "receiver").await?;
    let (cmd_topic, answer_topic) = match target {
        Spaced::Relay { input, output, .. } => (input.clone(), output.clone()),
        Spaced::Daemon { prefix } => (format!("{prefix}/light/set"), format!("{prefix}/light")),
    };
    subscribe(&receiver, &answer_topic, qos).await?;
    // Where the daemon's light is now (retained P/light), and manual mode at that level.
    let mut on = false;
    if let Spaced::Daemon { .. } = target {
        let (m, _) = wait_msg(&rrx, Duration::from_secs(10), |m| m.topic() == answer_topic)
            .await
            .ok_or("no retained P/light from the daemon within 10 s")?;
        on = m.payload() == b"on";
        publish(&sender, &cmd_topic, if on { "on" } else { "off" }, qos);
        tokio::time::sleep(Duration::from_millis(200)).await;
        while rrx.try_recv().is_ok() {}
    } else {
        // The relay is up once an answer comes back.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            publish(&sender, &cmd_topic, "ping", qos);
            if wait_msg(&rrx, Duration::from_millis(200), |m| m.payload() == b"ping")
                .await
                .is_some()
            {
                break;
            }
            if Instant::now() >= end {
                return Err("the C relay did not answer within 10 s".into());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        while rrx.try_recv().is_ok() {}
    }
    let sent: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let received: Arc<std::sync::Mutex<Answers>> = Arc::default();
    let total = n + n / 10;
    let collector = {
        let received = received.clone();
        let rrx = rrx.clone();
        let answer_topic = answer_topic.clone();
        tokio::spawn(async move {
            let end = tokio::time::Instant::now() + Duration::from_secs(120);
            loop {
                match tokio::time::timeout_at(end, rrx.recv()).await {
                    Ok(Ok(Some(m))) if m.topic() == answer_topic => {
                        let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
                        r.push((m.payload().to_vec(), Instant::now()));
                        if r.len() >= total {
                            break;
                        }
                    }
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
        })
    };
    let t0 = tokio::time::Instant::now() + Duration::from_millis(10);
    let first_on = !on;
    for i in 0..total {
        tokio::time::sleep_until(t0 + spacing * i as u32).await;
        let payload = match target {
            Spaced::Relay { .. } => i.to_string(),
            Spaced::Daemon { .. } => {
                on = !on;
                (if on { "on" } else { "off" }).to_string()
            }
        };
        sent.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Instant::now());
        publish(&sender, &cmd_topic, payload.into_bytes(), qos);
    }
    let _ = tokio::time::timeout(MSG_TIMEOUT, collector).await;
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let received = received.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut lat = Lat::default();
    match target {
        Spaced::Relay { .. } => {
            let mut at = vec![None; total];
            for (payload, t) in &received {
                if let Some(i) = std::str::from_utf8(payload)
                    .ok()
                    .and_then(|p| p.trim().parse::<usize>().ok())
                {
                    if i < total && at[i].is_none() {
                        at[i] = Some(*t);
                    }
                }
            }
            for (i, t) in at.iter().enumerate() {
                match t {
                    Some(t) if i >= n / 10 => {
                        lat.samples.push(t.saturating_duration_since(sent[i]))
                    }
                    Some(_) => {}
                    None => lat.timeouts += 1,
                }
            }
        }
        Spaced::Daemon { .. } => {
            // Commands alternate, so an answer `X` at `t` answers the latest command asking for `X` sent before
            // `t` and after the previously answered one (the outbox keeps only the newest value of a retained
            // topic, so a burst may be answered once). Commands never answered count as lost.
            let wanted = |i: usize| -> &[u8] {
                if (i % 2 == 0) == first_on {
                    b"on"
                } else {
                    b"off"
                }
            };
            let mut next = 0usize;
            let mut answered = 0usize;
            for (payload, t) in &received {
                let hit = (next..total)
                    .take_while(|&i| sent[i] <= *t)
                    .filter(|&i| wanted(i) == payload.as_slice())
                    .last();
                if let Some(i) = hit {
                    if i >= n / 10 {
                        lat.samples.push(t.saturating_duration_since(sent[i]));
                    }
                    answered += 1;
                    next = i + 1;
                }
            }
            lat.timeouts = total.saturating_sub(answered);
        }
    }
    let _ = sender.disconnect(None).await;
    let _ = receiver.disconnect(None).await;
    Ok(lat)
}

/// Answers as received: payload and arrival time.
type Answers = Vec<(Vec<u8>, Instant)>;

/// What [`spaced`] commands.
enum Spaced {
    /// The C relay: `mosquitto_sub -t input | mosquitto_pub -l -t output` (its process, killed on drop).
    Relay {
        input: String,
        output: String,
        _child: KillOnDrop,
    },
    Daemon {
        prefix: String,
    },
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // The shell's process group: the pipeline's two clients.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.0.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the C relay on the broker at `port` (QoS `qos` both ways).
fn c_relay(port: u16, qos: i32) -> Result<Spaced, BoxError> {
    use std::os::unix::process::CommandExt;
    let tag = format!("bench/relay/{:08x}", rand::thread_rng().gen::<u32>());
    let (input, output) = (format!("{tag}/in"), format!("{tag}/out"));
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mosquitto_sub -h 127.0.0.1 -p {port} -q {qos} -t '{input}' | \
             mosquitto_pub -h 127.0.0.1 -p {port} -q {qos} -l -t '{output}'"
        ))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run the mosquitto_sub | mosquitto_pub relay ({e}): install mosquitto-clients"))?;
    Ok(Spaced::Relay {
        input,
        output,
        _child: KillOnDrop(child),
    })
}

/// Phase "spaced" (issue 11): per broker, the C relay floor and the daemon at 5, 20 and 60 ms between commands.
async fn spaced_phase(opts: &Opts, out: &mut Summary) -> Result<(), BoxError> {
    let spacings = [5u64, 20, 60];
    let n_for = |ms: u64| -> usize {
        let base = if opts.quick { 60 } else { 400 };
        if ms >= 60 {
            base / 2
        } else {
            base
        }
    };
    out.say("  | broker, QoS 1 | spacing | C relay p50 / p99 | daemon p50 / p90 / p99 / max | p50 ratio | lost |");
    out.say("  |---|---|---|---|---|---|");
    for broker in [
        "mosquitto (set_tcp_nodelay false, default)",
        "embedded rumqttd",
    ] {
        let embedded = broker.starts_with("embedded");
        let (m, port) = if embedded {
            (None, free_port()?)
        } else {
            let m = Mosquitto::start(false)?;
            let port = m.port;
            (Some(m), port)
        };
        let prefix = unique_prefix("spaced");
        let bk = if embedded {
            Broker::Embedded(port)
        } else {
            Broker::Mosquitto(port)
        };
        let mut d = Daemon::start(
            &opts.daemon,
            &daemon_config(
                &bk,
                &prefix,
                1,
                "[sensor]\ninterval_s = 1.0\n\n[mock]\nambient = \"300\"\n",
            ),
        )?;
        if embedded {
            let (probe, _) = client_retry(port, "probe", Duration::from_secs(10)).await?;
            let _ = probe.disconnect(None).await;
        }
        for ms in spacings {
            let n = n_for(ms);
            let spacing = Duration::from_millis(ms);
            let relay = c_relay(port, 1)?;
            let floor = spaced(port, &relay, spacing, n, 1).await?;
            drop(relay);
            let daemon = spaced(
                port,
                &Spaced::Daemon {
                    prefix: prefix.clone(),
                },
                spacing,
                n,
                1,
            )
            .await?;
            let ratio = daemon.p50().as_secs_f64() / floor.p50().as_secs_f64().max(1e-9);
            out.say(format!(
                "  | {broker} | {ms} ms | {} / {} | {} / {} / {} / {} | {ratio:.2}× | {} + {} |",
                ms_(floor.p50()),
                ms_(floor.p99()),
                ms_(daemon.p50()),
                ms_(daemon.pct(90.0)),
                ms_(daemon.p99()),
                ms_(daemon.max()),
                floor.timeouts,
                daemon.timeouts,
            ));
            let label = format!("{broker}, {ms} ms spacing");
            out.target(
                format!("spaced echo p50 ≤ 2× C relay [{label}]"),
                format!("{ratio:.2}×"),
                ratio <= TARGET_ECHO_RATIO,
            );
            out.target(
                format!("spaced echo p99 ≤ 2 ms      [{label}]"),
                ms_(daemon.p99()),
                daemon.p99() <= TARGET_ECHO_P99,
            );
        }
        if embedded {
            out.say(format!(
                "    RSS of the embedded-broker daemon after the run: {}",
                mem(d.pid()).line()
            ));
        }
        if !d.running() {
            return Err(format!("the daemon exited during the spaced run:\n{}", d.log()).into());
        }
        drop(d);
        drop(m);
    }
    Ok(())
}

fn ms_(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------------------------------
// Phases

#[derive(Default)]
struct Summary {
    lines: Vec<String>,
    targets: Vec<(String, String, bool)>,
}

impl Summary {
    fn say(&mut self, s: impl Into<String>) {
        let s = s.into();
        println!("{s}");
        self.lines.push(s);
    }
    fn target(&mut self, what: impl Into<String>, value: impl Into<String>, ok: bool) {
        self.targets.push((what.into(), value.into(), ok));
    }
}

struct EchoRow {
    label: String,

    floor: Lat,
    daemon: Lat,
}

async fn echo_on_mosquitto(
    opts: &Opts,
    nodelay: bool,
    qos: i32,
    out: &mut Summary,
) -> Result<EchoRow, BoxError> {
    let m = Mosquitto::start(nodelay)?;
    let prefix = unique_prefix("echo");
    let d = Daemon::start(
        &opts.daemon,
        &daemon_config(
            &Broker::Mosquitto(m.port),
            &prefix,
            qos,
            "[mock]\nambient = \"300\"\n",
        ),
    )?;
    let rtt = broker_rtt(m.port, opts.commands, qos, opts.cap()).await?;
    let floor = floor(m.port, opts.commands, qos, opts.cap()).await?;
    let daemon = daemon_echo(m.port, &prefix, opts.commands, qos, opts.cap()).await?;
    let label = format!("mosquitto set_tcp_nodelay={nodelay:<5} QoS {qos}");
    report_echo(out, &label, &rtt, &floor, &daemon);
    drop(d);
    Ok(EchoRow {
        label,
        floor,
        daemon,
    })
}

async fn echo_on_embedded(
    opts: &Opts,
    qos: i32,
    out: &mut Summary,
) -> Result<(EchoRow, Mem), BoxError> {
    let port = free_port()?;
    let prefix = unique_prefix("echo-embedded");
    let mut d = Daemon::start(
        &opts.daemon,
        &daemon_config(
            &Broker::Embedded(port),
            &prefix,
            qos,
            "[mock]\nambient = \"300\"\n",
        ),
    )?;
    let (probe, _) = client_retry(port, "probe", Duration::from_secs(10)).await?;
    let _ = probe.disconnect(None).await;
    let rtt = broker_rtt(port, opts.commands, qos, opts.cap()).await?;
    let floor = floor(port, opts.commands, qos, opts.cap()).await?;
    let daemon = daemon_echo(port, &prefix, opts.commands, qos, opts.cap()).await?;
    let label = format!("embedded rumqttd (in daemon)     QoS {qos}");
    report_echo(out, &label, &rtt, &floor, &daemon);
    let m = mem(d.pid());
    if !d.running() {
        return Err("the daemon with the embedded broker exited during the echo run".into());
    }
    Ok((
        EchoRow {
            label,
            floor,
            daemon,
        },
        m,
    ))
}

fn report_echo(out: &mut Summary, label: &str, rtt: &Lat, floor: &Lat, daemon: &Lat) {
    out.say(format!("  [{label}]"));
    out.say(format!("    broker RTT (self-subscribe) {}", rtt.line()));
    out.say(format!("    floor (paho 1-hop echo)     {}", floor.line()));
    out.say(format!("    daemon cmd → P/light        {}", daemon.line()));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    out.say(format!(
        "    ratio daemon/floor: p50 {:.2}×  p99 {:.2}×",
        ratio(daemon.p50(), floor.p50()),
        ratio(daemon.p99(), floor.p99())
    ));
}

/// Reading → `P/light`: move the simulated ambient across the band and time to the `P/light` change; also to
/// the first `P/luminosity` showing the new light (the sensor cadence part).
async fn reaction(opts: &Opts, out: &mut Summary) -> Result<(), BoxError> {
    let m = Mosquitto::start(true)?;
    let prefix = unique_prefix("reaction");
    let interval = 1.0;
    let cfg = daemon_config(
        &Broker::Mosquitto(m.port),
        &prefix,
        1,
        &format!("lamp_lux = 0\n\n[sensor]\ninterval_s = {interval}\n\n[mock]\nambient = \"2000\"\nlamp_lux = 0\n"),
    );
    let _d = Daemon::start(&opts.daemon, &cfg)?;
    let (cli, rx) = client(m.port, "reaction").await?;
    let (light, lum, mock) = (
        format!("{prefix}/light"),
        format!("{prefix}/luminosity"),
        format!("{prefix}/mock/set"),
    );
    subscribe(&cli, &light, 1).await?;
    subscribe(&cli, &lum, 1).await?;
    // Settle: first reading at 2000 lx, light off.
    wait_msg(&rx, Duration::from_secs(10), |m| m.topic() == lum)
        .await
        .ok_or("no P/luminosity within 10 s")?;
    let crossings = if opts.quick { 2 } else { 20 };
    let (mut total, mut cadence, mut inside) = (Lat::default(), Lat::default(), Lat::default());
    let mut light_on = false;
    for i in 0..crossings {
        // The rule ignores readings started less than LAMP_STEP_MARGIN (1 s) after a switch (they may not show
        // the new lamp state yet): wait that out plus one worst-case conversion (0.66 s), then a random phase
        // against the sensor's cadence so the distribution covers all of it.
        let wait = SETTLE_AFTER_SWITCH
            + Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..interval));
        tokio::time::sleep(wait).await;
        let (ambient, want, lo, hi) = if light_on {
            (2000.0, "off", 1900.0, 2100.0)
        } else {
            (100.0, "on", 95.0, 105.0)
        };
        let t0 = Instant::now();
        publish(&cli, &mock, format!("{{\"ambient_lux\": {ambient}}}"), 1);
        let mut t_lum = None;
        let got = wait_msg(&rx, Duration::from_secs(5), |msg| {
            if msg.topic() == lum {
                let now = Instant::now();
                let v: f64 = msg.payload_str().trim().parse().unwrap_or(-1.0);
                if t_lum.is_none() && (lo..=hi).contains(&v) {
                    t_lum = Some(now);
                }
                false
            } else {
                msg.topic() == light && msg.payload() == want.as_bytes()
            }
        })
        .await;
        match got {
            Some((_, at)) => {
                light_on = !light_on;
                total.samples.push(at - t0);
                if let Some(tl) = t_lum {
                    cadence.samples.push(tl - t0);
                    inside.samples.push(at.saturating_duration_since(tl));
                }
            }
            None => {
                total.timeouts += 1;
                let _ = i;
            }
        }
    }
    let _ = cli.disconnect(None).await;
    out.say(format!(
        "  sensor.interval_s = {interval}; {crossings} crossings (100 ↔ 2000 lx, band 450/550), each {:.1} s + random \
         phase after the previous switch",
        SETTLE_AFTER_SWITCH.as_secs_f64()
    ));
    out.say(format!(
        "    mock/set → P/light (total)          {}",
        total.line()
    ));
    out.say(format!(
        "    mock/set → new P/luminosity         {}",
        cadence.line()
    ));
    out.say(format!(
        "    P/luminosity → P/light (in daemon)  {}",
        inside.line()
    ));
    Ok(())
}

/// Start → first `P/luminosity` and first `P/status online`, fresh process each time (mosquitto already up).
async fn startup(opts: &Opts, out: &mut Summary) -> Result<Duration, BoxError> {
    let m = Mosquitto::start(true)?;
    let runs = if opts.quick { 2 } else { 10 };
    let (mut first_lum, mut first_status) = (Lat::default(), Lat::default());
    for _ in 0..runs {
        let prefix = unique_prefix("start");
        let (cli, rx) = client(m.port, "start").await?;
        subscribe(&cli, &format!("{prefix}/#"), 1).await?;
        let cfg = daemon_config(
            &Broker::Mosquitto(m.port),
            &prefix,
            1,
            "[mock]\nambient = \"300\"\n",
        );
        let (status, lum) = (format!("{prefix}/status"), format!("{prefix}/luminosity"));
        let t0 = Instant::now();
        let mut d = Daemon::start(&opts.daemon, &cfg)?;
        let mut t_status = None;
        let got = wait_msg(&rx, Duration::from_secs(10), |msg| {
            if msg.topic() == status && t_status.is_none() {
                t_status = Some(Instant::now());
            }
            msg.topic() == lum
        })
        .await;
        match got {
            Some((_, at)) => first_lum.samples.push(at - t0),
            None => first_lum.timeouts += 1,
        }
        if let Some(ts) = t_status {
            first_status.samples.push(ts - t0);
        }
        if d.stop(Duration::from_secs(3)) != Some(0) {
            out.say("    WARNING: the daemon did not exit 0 within 3 s of SIGTERM");
        }
        let _ = cli.disconnect(None).await;
    }
    out.say(format!(
        "  {runs} fresh starts against a running mosquitto (sensor.interval_s = 1)"
    ));
    out.say(format!(
        "    spawn → first P/status online  {}",
        first_status.line()
    ));
    out.say(format!(
        "    spawn → first P/luminosity     {}",
        first_lum.line()
    ));
    Ok(first_lum.p50())
}

struct Idle {
    daemon: Daemon,
    _broker: Option<Mosquitto>,
    port: u16,
    prefix: String,
    label: &'static str,
    t0: Instant,
    ticks0: u64,
    threads0: BTreeMap<String, ThreadStat>,
    mem_start: Mem,
}

/// Start an idle daemon (default sensor interval 1 s) on its own broker; the CPU window starts after warm-up.
async fn idle_start(opts: &Opts, embedded: bool) -> Result<Idle, BoxError> {
    let prefix = unique_prefix("idle");
    let (broker, port, cfg) = if embedded {
        let port = free_port()?;
        (
            None,
            port,
            daemon_config(
                &Broker::Embedded(port),
                &prefix,
                1,
                "[mock]\nambient = \"300\"\n",
            ),
        )
    } else {
        // nodelay on, so the echo after the flood is comparable with the reference row.
        let m = Mosquitto::start(true)?;
        let port = m.port;
        (
            Some(m),
            port,
            daemon_config(
                &Broker::Mosquitto(port),
                &prefix,
                1,
                "[mock]\nambient = \"300\"\n",
            ),
        )
    };
    let daemon = Daemon::start(&opts.daemon, &cfg)?;
    let (cli, rx) = client_retry(port, "idle", Duration::from_secs(10)).await?;
    subscribe(&cli, &format!("{prefix}/luminosity"), 1).await?;
    // Warm-up: two readings published, then the window starts.
    for _ in 0..2 {
        wait_msg(&rx, Duration::from_secs(5), |_| true)
            .await
            .ok_or("idle daemon published no readings")?;
    }
    let _ = cli.disconnect(None).await;
    let pid = daemon.pid();
    Ok(Idle {
        mem_start: mem(pid),
        ticks0: proc_ticks(pid),
        threads0: threads(pid),
        t0: Instant::now(),
        daemon,
        _broker: broker,
        port,
        prefix,
        label: if embedded {
            "embedded broker"
        } else {
            "mosquitto"
        },
    })
}

fn idle_report(idle: &Idle, out: &mut Summary) -> (f64, Mem) {
    let pid = idle.daemon.pid();
    let elapsed = idle.t0.elapsed().as_secs_f64();
    let ticks = proc_ticks(pid).saturating_sub(idle.ticks0);
    let hz = clk_tck() as f64;
    let pct_ticks = ticks as f64 / hz / elapsed * 100.0;
    let now = threads(pid);
    let mut cpu_ns = 0u64;
    let mut per_thread = Vec::new();
    let mut switches = 0u64;
    for (k, t) in &now {
        let before = idle.threads0.get(k).cloned().unwrap_or_default();
        let d_ns = t.cpu_ns.saturating_sub(before.cpu_ns);
        let d_sw = t.switches.saturating_sub(before.switches);
        let d_ticks = t.ticks.saturating_sub(before.ticks);
        cpu_ns += d_ns;
        switches += d_sw;
        per_thread.push((t.name.clone(), d_ns, d_sw, d_ticks));
    }
    let pct_ns = cpu_ns as f64 / 1e9 / elapsed * 100.0;
    let m = mem(pid);
    out.say(format!("  [{}] idle window {elapsed:.1} s (other phases ran meanwhile on other processes), sensor every 1 s", idle.label));
    out.say(format!(
        "    RSS after start (2 readings)  {}",
        idle.mem_start.line()
    ));
    out.say(format!("    RSS steady (end of window)    {}", m.line()));
    out.say(format!(
        "    CPU: utime+stime {ticks} ticks = {pct_ticks:.4} % of a core; schedstat {:.1} ms = {pct_ns:.4} % of a core; \
         {:.1} wakeups/s",
        cpu_ns as f64 / 1e6,
        switches as f64 / elapsed
    ));
    per_thread.sort_by_key(|t| std::cmp::Reverse(t.1));
    for (name, ns, sw, ticks) in per_thread {
        out.say(format!(
            "      thread {name:<16} cpu {:>8.2} ms ({ticks} ticks)  switches/s {:>6.1}",
            ns as f64 / 1e6,
            sw as f64 / elapsed
        ));
    }
    (pct_ns, m)
}

/// 10 000 commands/s for 10 s (quick: 2 s), mixed valid/invalid, QoS 0, on the idle mosquitto daemon.
async fn flood(opts: &Opts, idle: &mut Idle, out: &mut Summary) -> Result<(Mem, Mem), BoxError> {
    let pid = idle.daemon.pid();
    let before = mem(pid);
    let secs = if opts.quick { 2 } else { 10 };
    let rate = 10_000u64;
    let set = format!("{}/light/set", idle.prefix);
    // Counting what came back (errors and light changes) on its own connection.
    let counted = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let (watch, _wrx) = client(idle.port, "flood-watch").await?;
    {
        let counted = counted.clone();
        let err_topic = format!("{}/light/set/error", idle.prefix);
        watch.set_message_callback(move |_, m| {
            if let Some(m) = m {
                if m.topic() == err_topic {
                    counted.0.fetch_add(1, Ordering::Relaxed);
                } else {
                    counted.1.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    subscribe(&watch, &format!("{}/light/set/error", idle.prefix), 0).await?;
    subscribe(&watch, &format!("{}/light", idle.prefix), 0).await?;
    let (cli, _rx) = client(idle.port, "flood").await?;
    let payloads: Vec<Vec<u8>> = vec![
        b"on".to_vec(),
        b"bogus".to_vec(),
        b"OFF".to_vec(),
        br#"{"state": "purple"}"#.to_vec(),
        b"toggle".to_vec(),
        vec![0xff, 0xfe, 0x00],
        br#"{"state": "on", "for_s": 60}"#.to_vec(),
        vec![b'x'; 2000],
        b"auto".to_vec(),
        Vec::new(),
    ];
    let total = rate * secs;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut refused = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while sent < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let p = &payloads[(sent % payloads.len() as u64) as usize];
            let msg = paho::MessageBuilder::new()
                .topic(set.as_str())
                .payload(p.as_slice())
                .qos(0)
                .finalize();
            if cli.try_publish(msg).is_err() {
                refused += 1;
            }
            sent += 1;
        }
    }
    let send_time = start.elapsed();
    let peak_during = mem(pid);
    // Wait until the daemon's replies stop (quiet for one check interval, at most 20 s).
    let check = Duration::from_millis(if opts.quick { 300 } else { 1000 });
    let drain_end = Instant::now() + Duration::from_secs(20);
    let mut last = (u64::MAX, u64::MAX);
    while Instant::now() < drain_end {
        let now = (
            counted.0.load(Ordering::Relaxed),
            counted.1.load(Ordering::Relaxed),
        );
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(check).await;
    }
    let after = mem(pid);
    let alive = idle.daemon.running();
    let invalid_sent = total / 10 * 5;
    out.say(format!(
        "  sent {sent} commands in {:.2} s ({:.0}/s, 50 % invalid, QoS 0; {refused} refused by the local paho client)",
        send_time.as_secs_f64(),
        sent as f64 / send_time.as_secs_f64()
    ));
    out.say(format!(
        "    daemon replies seen: {} P/light/set/error (of {invalid_sent} invalid sent), {} P/light changes",
        counted.0.load(Ordering::Relaxed),
        counted.1.load(Ordering::Relaxed)
    ));
    let log = idle.daemon.log();
    let dropped: u64 = log
        .lines()
        .filter_map(|l| l.split("MQTT: ").nth(1))
        .filter(|l| l.contains("incoming messages were dropped"))
        .filter_map(|l| {
            l.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum();
    out.say(format!(
        "    daemon log: {dropped} incoming messages reported dropped (core loop channel full)"
    ));
    out.say(format!("    RSS before flood  {}", before.line()));
    out.say(format!("    RSS end of flood  {}", peak_during.line()));
    out.say(format!("    RSS after drain   {}", after.line()));
    out.say(format!(
        "    growth VmRSS {:+} KiB, VmHWM {:+} KiB; daemon {}",
        after.rss_kib as i64 - before.rss_kib as i64,
        after.hwm_kib as i64 - before.hwm_kib as i64,
        if alive { "still running" } else { "EXITED" }
    ));
    let _ = cli.disconnect(None).await;
    let _ = watch.disconnect(None).await;
    // Responsive afterwards?
    let lat = daemon_echo(idle.port, &idle.prefix, 100, 1, opts.cap()).await?;
    out.say(format!("    echo after flood (QoS 1)  {}", lat.line()));
    Ok((before, after))
}

fn binary_size(opts: &Opts, out: &mut Summary) -> u64 {
    let size = std::fs::metadata(&opts.daemon)
        .map(|m| m.len())
        .unwrap_or(0);
    let file = Command::new("file")
        .arg("-b")
        .arg(&opts.daemon)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    out.say(format!(
        "  {}: {size} bytes ({:.2} MiB){}",
        opts.daemon.display(),
        size as f64 / 1048576.0,
        if file.is_empty() {
            String::new()
        } else {
            format!("\n    {file}")
        }
    ));
    size
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mosq = Command::new("mosquitto")
        .arg("-h")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    format!(
        "nproc {}, CPU {cpu}, kernel {}, loadavg {}, {mosq}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let result = run().await;
    reap_stopped();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let opts = Opts::parse()?;
    let began = Instant::now();
    let mut out = Summary::default();
    out.say(format!(
        "greenhoused bench{} — {}",
        if opts.quick { " (quick)" } else { "" },
        machine()
    ));

    // The idle daemons run in the background (their own brokers) while the other phases run.
    let mut idle = None;
    if opts.runs("idle") {
        let (m, e) = tokio::join!(idle_start(&opts, false), idle_start(&opts, true));
        idle = Some((m?, e?));
    }
    let idle_secs = if opts.quick { 10 } else { 60 };

    if opts.runs("binary") {
        out.say("\n== 1. binary");
        let size = binary_size(&opts, &mut out);
        out.target(
            "binary size (information, no target)",
            format!("{size} bytes"),
            true,
        );
    }

    if opts.runs("spaced") {
        out.say(format!(
            "\n== 2a. open-loop commands at 5/20/60 ms spacing, separate sender and receiver, C relay floor  [t={:.0} s]",
            began.elapsed().as_secs_f64()
        ));
        spaced_phase(&opts, &mut out).await?;
    }

    let mut rows = Vec::new();
    if opts.runs("echo") || opts.runs("embedded") {
        out.say(format!(
            "\n== 2. command → P/light echo ({} commands per row, after 10 % warm-up)  [t={:.0} s]",
            opts.commands,
            began.elapsed().as_secs_f64()
        ));
    }
    if opts.runs("echo") {
        let rows_wanted: &[(bool, i32)] = if opts.quick {
            &[(false, 1), (true, 1), (true, 0)]
        } else {
            &[(false, 1), (true, 1), (false, 0), (true, 0)]
        };
        for &(nodelay, qos) in rows_wanted {
            rows.push(echo_on_mosquitto(&opts, nodelay, qos, &mut out).await?);
        }
    }
    if opts.runs("embedded") {
        let (row, busy) = echo_on_embedded(&opts, 1, &mut out).await?;
        out.say(format!(
            "    RSS of that daemon after the run: {}",
            busy.line()
        ));
        rows.push(row);
        if !opts.quick {
            rows.push(echo_on_embedded(&opts, 0, &mut out).await?.0);
        }
    }
    for r in &rows {
        let ratio = r.daemon.p50().as_secs_f64() / r.floor.p50().as_secs_f64().max(1e-9);
        out.target(
            format!("echo p50 ≤ 2× floor [{}]", r.label),
            format!("{ratio:.2}×"),
            ratio <= TARGET_ECHO_RATIO,
        );
        out.target(
            format!("echo p99 ≤ 2 ms     [{}]", r.label),
            ms(r.daemon.p99()),
            r.daemon.p99() <= TARGET_ECHO_P99,
        );
    }

    if opts.runs("reaction") {
        out.say(format!(
            "\n== 3. reading → P/light reaction (mock sensor crossing the band)  [t={:.0} s]",
            began.elapsed().as_secs_f64()
        ));
        reaction(&opts, &mut out).await?;
    }

    if opts.runs("start") {
        out.say(format!(
            "\n== 4. start → first reading  [t={:.0} s]",
            began.elapsed().as_secs_f64()
        ));
        let p50 = startup(&opts, &mut out).await?;
        out.target(
            "start → first P/luminosity ≤ 0.3 s (median)",
            ms(p50),
            p50 <= TARGET_START,
        );
    }

    if let Some((mut idle_m, idle_e)) = idle {
        // Idle window: wait for what is left of it.
        let left = Duration::from_secs(idle_secs).saturating_sub(idle_m.t0.elapsed());
        if !left.is_zero() {
            println!(
                "\n  (waiting {:.0} s for the idle window to end)",
                left.as_secs_f64()
            );
            tokio::time::sleep(left).await;
        }
        out.say(format!(
            "\n== 5. idle (RSS, CPU)  [t={:.0} s]",
            began.elapsed().as_secs_f64()
        ));
        let (cpu_m, mem_m) = idle_report(&idle_m, &mut out);
        let (cpu_e, mem_e) = idle_report(&idle_e, &mut out);
        drop(idle_e);

        out.say(format!(
            "\n== 6. command flood on the idle mosquitto daemon  [t={:.0} s]",
            began.elapsed().as_secs_f64()
        ));
        let (_, fa) = flood(&opts, &mut idle_m, &mut out).await?;
        let growth = fa.rss_kib as i64 - mem_m.rss_kib as i64;
        drop(idle_m);

        let kib = |k: u64| format!("{k} KiB");
        out.target(
            "RSS steady ≤ 8 MiB (mosquitto)",
            kib(mem_m.rss_kib),
            mem_m.rss_kib <= TARGET_RSS_KIB,
        );
        out.target(
            "RSS steady ≤ 8 MiB (embedded broker)",
            kib(mem_e.rss_kib),
            mem_e.rss_kib <= TARGET_RSS_KIB,
        );
        out.target(
            "RSS after flood ≤ 8 MiB",
            kib(fa.rss_kib),
            fa.rss_kib <= TARGET_RSS_KIB,
        );
        out.target(
            "RSS growth by the flood ≤ 1 MiB (issue 5 fault suite)",
            format!("{growth:+} KiB"),
            growth <= 1024,
        );
        out.target(
            "idle CPU ≤ 0.03 % of a core (mosquitto)",
            format!("{cpu_m:.4} %"),
            cpu_m <= TARGET_IDLE_CPU_PCT,
        );
        out.target(
            "idle CPU ≤ 0.03 % of a core (embedded broker)",
            format!("{cpu_e:.4} %"),
            cpu_e <= TARGET_IDLE_CPU_PCT,
        );
    }

    reap_stopped();
    println!("\n== targets");
    let mut table = String::new();
    for (what, value, ok) in &out.targets {
        let _ = writeln!(table, "  {:<6} {what:<70} {value}", met(*ok));
    }
    print!("{table}");
    println!("\nbench finished in {:.1} s", began.elapsed().as_secs_f64());
    Ok(())
}
