//! The core loop and the task wiring.
//!
//! One task (the core loop) owns all mutable state: the controller, the monitor, the relay and what was last
//! published. Everything else talks to it through channels: the sensor thread sends readings, the MQTT task sends
//! connection events and messages, signal-hook sends signals. The MQTT side never blocks the loop: publishing goes
//! into the client task's bounded outbox.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Timelike;
use futures::StreamExt;
use log::{debug, error, info, warn};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{self, OnStart, OnStop, SensorSource, Settings};
use crate::control::{Command, Controller, Decision, Inputs, Mode, SensorInput};
use crate::hw::mock::{Clock, World};
use crate::hw::{LuxSensor, Measurement, Relay, SensorError};
use crate::monitor::{Alert, AlertEvent, Facts, Monitor, SensorFact};
use crate::mqtt::client::{self, Event};
use crate::mqtt::command::parse_light_set;
use crate::mqtt::outbox::Outbox;
use crate::mqtt::topics::Topics;
use crate::{persist, systemd};

/// How long a stop may wait for the final messages to reach the broker (the stop must finish within 2 s).
const MQTT_SHUTDOWN_LIMIT: Duration = Duration::from_millis(1500);

/// Longest pause between probes of a failing sensor.
const SENSOR_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Opens (and after a failure re-opens) the lux sensor; called from the sensor thread.
pub type SensorFactory = Box<dyn FnMut() -> Result<Box<dyn LuxSensor>, SensorError> + Send>;

/// The hardware the core loop drives, real or simulated.
pub struct Hardware {
    /// Already opened as an output at its start level.
    pub relay: Box<dyn Relay>,
    /// `None` when readings come from MQTT (`sensor.source = "mqtt"`).
    pub sensor: Option<SensorFactory>,
    /// Monotonic and local time: real, or the simulation's (possibly accelerated) clock.
    pub clock: Arc<dyn Clock>,
    /// The simulated world, steerable through `P/mock/set` (only with `--mock-hardware`).
    pub mock: Option<World>,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Broker(#[from] crate::mqtt::broker::BrokerError),
    #[error(transparent)]
    Mqtt(#[from] crate::mqtt::client::ClientError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// The relay level to open the line with, per `relay.on_start` (restore reads the persisted state).
pub fn initial_relay_state(settings: &Settings, state_file: &std::path::Path) -> bool {
    match settings.relay.on_start {
        OnStart::Off => false,
        OnStart::On => true,
        OnStart::Restore => match persist::load(state_file) {
            Ok(Some(on)) => on,
            Ok(None) => {
                info!(
                    "relay.on_start = restore: no saved state in {} yet, starting off",
                    state_file.display()
                );
                false
            }
            Err(e) => {
                warn!("relay.on_start = restore: cannot read the saved state ({e}); starting off");
                false
            }
        },
    }
}

/// Where `relay.on_start = "restore"` keeps its state.
pub fn state_file() -> PathBuf {
    persist::state_file(std::env::var("STATE_DIRECTORY").ok().as_deref())
}

/// What the sensor thread reports.
#[derive(Debug)]
struct SensorEvent {
    result: Result<Measurement, SensorError>,
    /// When the measurement started (the light state at that instant is what the sensor saw).
    at: Instant,
}

/// Run the daemon until SIGTERM/SIGINT. Returns after the relay was put to `relay.on_stop`, the final state was
/// published and every task stopped.
pub fn run(settings: Settings, config_path: Option<PathBuf>, hw: Hardware) -> Result<(), AppError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AppError::Runtime)?;
    runtime.block_on(run_async(settings, config_path, hw))
}

async fn run_async(
    settings: Settings,
    config_path: Option<PathBuf>,
    hw: Hardware,
) -> Result<(), AppError> {
    let cancel = CancellationToken::new();
    let topics = Topics::new(&settings.mqtt.topic_prefix);

    let _broker = match settings.mqtt.url {
        config::BrokerUrl::Embedded => Some(crate::mqtt::broker::start_embedded(
            settings.mqtt.embedded_listen,
        )?),
        config::BrokerUrl::Remote(_) => None,
    };

    let mut subscriptions = vec![topics.light_set.clone()];
    if hw.mock.is_some() {
        subscriptions.push(topics.mock_set.clone());
    }
    if settings.sensor.source == SensorSource::Mqtt {
        subscriptions.push(settings.sensor.topic.clone());
    }
    let (outbox, mut mqtt_events, mqtt_task) = client::spawn(
        settings.mqtt.clone(),
        topics.status.clone(),
        subscriptions,
        cancel.child_token(),
    )?;

    let signals = signal_hook_tokio::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(AppError::Signals)?;
    let signals_handle = signals.handle();
    let mut signals = signals.fuse();

    let (sensor_tx, mut sensor_rx) = mpsc::channel::<SensorEvent>(4);
    let sensor_thread = hw.sensor.map(|factory| {
        spawn_sensor_thread(
            factory,
            hw.clock.clone(),
            settings.sensor.interval,
            sensor_tx,
            cancel.clone(),
        )
    });

    let mut core = Core::new(
        settings,
        config_path,
        hw.relay,
        hw.clock,
        hw.mock,
        topics,
        outbox.clone(),
    );
    let listen = core.settings.http.listen;
    let state_dir = state_file().parent().map(std::path::Path::to_path_buf);
    core.dashboard = Some(crate::http::shell::Dashboard::start(listen, state_dir));
    core.start();

    let mut watchdog = systemd::Watchdog::from_env();
    notify(systemd::ready(&core.status_line()));

    // The loop wakes at least once a second, and often enough to ping the watchdog in time.
    let tick_every = watchdog
        .period()
        .map_or(Duration::from_secs(1), |p| p.min(Duration::from_secs(1)));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wake = core.next_wake();
        tokio::select! {
            Some(ev) = sensor_rx.recv() => core.on_sensor(ev),
            Some(ev) = mqtt_events.recv() => core.on_mqtt(ev),
            Some(sig) = signals.next() => {
                if sig == signal_hook::consts::SIGHUP {
                    core.reload();
                } else {
                    info!("received {}, stopping", if sig == signal_hook::consts::SIGINT { "SIGINT" } else { "SIGTERM" });
                    break;
                }
            }
            _ = tick.tick() => {}
            _ = tokio::time::sleep(wake) => {}
        }
        core.evaluate();
        // Only this loop pings the watchdog: if it hangs, systemd restarts the daemon.
        notify(watchdog.tick(Instant::now()).map(|_| ()));
    }

    notify(systemd::stopping());
    core.stop();
    signals_handle.close();
    // The MQTT task flushes what the core published last (final light, offline) within a bound, then disconnects.
    client::shutdown(&outbox, mqtt_task, MQTT_SHUTDOWN_LIMIT).await;
    cancel.cancel();
    if let Some(handle) = sensor_thread {
        handle.thread().unpark();
        // The thread checks the token between cycles: at most one conversion (< 1 s) to wait for.
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    Ok(())
}

/// The blocking sensor loop: one auto-ranged measurement per interval, re-probing a failing sensor with backoff.
fn spawn_sensor_thread(
    mut factory: SensorFactory,
    clock: Arc<dyn Clock>,
    interval: Duration,
    tx: mpsc::Sender<SensorEvent>,
    cancel: CancellationToken,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("sensor".into())
        .spawn(move || {
            let mut sensor: Option<Box<dyn LuxSensor>> = None;
            let mut failures: u32 = 0;
            let mut next = Instant::now();
            while !cancel.is_cancelled() {
                let at = clock.now();
                let result = match sensor.as_mut() {
                    Some(s) => s.measure(),
                    None => factory().and_then(|mut s| {
                        let r = s.measure();
                        sensor = Some(s);
                        r
                    }),
                };
                failures = if result.is_ok() {
                    0
                } else {
                    failures.saturating_add(1)
                };
                if tx.blocking_send(SensorEvent { result, at }).is_err() {
                    break;
                }
                // Backoff while failing: interval × 2^(failures-1), capped at 5 s (never below the interval): a
                // probe costs one I2C transaction, and a re-plugged sensor is back within seconds.
                let wait = if failures == 0 {
                    interval
                } else {
                    let factor = 1u32 << (failures - 1).min(5);
                    (interval * factor).min(SENSOR_BACKOFF_CAP).max(interval)
                };
                next += wait;
                let now = Instant::now();
                if next < now {
                    next = now;
                }
                wait_or_cancel(&cancel, next - now);
            }
        })
        .expect("spawning a thread only fails when the process is out of resources")
}

/// Sleep up to `d`, returning early when cancelled: the stopper unparks this thread after cancelling, so the
/// wait costs no wake-ups in between.
fn wait_or_cancel(cancel: &CancellationToken, d: Duration) {
    let end = Instant::now() + d;
    while !cancel.is_cancelled() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::park_timeout(end - now);
    }
}

/// At most [`LogBudget::PER_MINUTE`] warnings a minute for rejected input; the rest are counted and reported in
/// one line when the next minute starts. Every rejection is still answered on `P/light/set/error`.
#[derive(Debug, Default)]
struct LogBudget {
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    const PER_MINUTE: u32 = 10;

    /// Whether a warning may be logged now.
    fn allow(&mut self, now: Instant) -> bool {
        let expired = self.window_start.map_or(true, |start| {
            now.saturating_duration_since(start) >= Duration::from_secs(60)
        });
        if expired {
            if self.suppressed > 0 {
                warn!(
                    "{} more rejected MQTT inputs were not logged in the last minute",
                    self.suppressed
                );
            }
            *self = LogBudget {
                window_start: Some(now),
                used: 0,
                suppressed: 0,
            };
        }
        if self.used < Self::PER_MINUTE {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// What the sensor path last produced, for `P/state`'s `sensor` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SensorStatus {
    Ok,
    Error,
    Stale,
    Saturated,
}

impl SensorStatus {
    fn as_str(self) -> &'static str {
        match self {
            SensorStatus::Ok => "ok",
            SensorStatus::Error => "error",
            SensorStatus::Stale => "stale",
            SensorStatus::Saturated => "saturated",
        }
    }
}

/// A valid reading.
#[derive(Debug, Clone, Copy)]
struct Reading {
    lux: f64,
    at: Instant,
}

/// All state of the daemon, owned by the core loop.
struct Core {
    settings: Settings,
    config_path: Option<PathBuf>,
    controller: Controller,
    monitor: Monitor,
    relay: Box<dyn Relay>,
    clock: Arc<dyn Clock>,
    mock: Option<World>,
    topics: Topics,
    outbox: Outbox,
    state_file: Option<PathBuf>,
    started: Instant,
    /// What was last written to the relay.
    commanded_on: bool,
    /// The pin read back after the last write (None: the read failed).
    readback_on: Option<bool>,
    decision: Option<Decision>,
    last_reading: Option<Reading>,
    /// Newest sensor outcome not yet shown to the monitor.
    pending_fact: Option<SensorFact>,
    sensor_status: SensorStatus,
    /// The latest sensor failure, quoted in the `sensor_error` alert.
    last_sensor_error: Option<String>,
    broker_connected: bool,
    /// Keeps a flood of bad MQTT input from flooding the journal.
    bad_input_log: LogBudget,
    published_light: Option<bool>,
    published_mode: Option<Mode>,
    published_health: Option<Vec<&'static str>>,
    state_dirty: bool,
    /// History, dashboard and metrics server (`http.listen`).
    dashboard: Option<crate::http::shell::Dashboard>,
}

impl Core {
    fn new(
        settings: Settings,
        config_path: Option<PathBuf>,
        mut relay: Box<dyn Relay>,
        clock: Arc<dyn Clock>,
        mock: Option<World>,
        topics: Topics,
        outbox: Outbox,
    ) -> Self {
        let now = clock.now();
        let readback_on = relay.read_back().ok();
        let commanded_on = readback_on.unwrap_or(false);
        let state_file = (settings.relay.on_start == OnStart::Restore).then(state_file);
        let mut monitor = Monitor::new(settings.monitor.clone());
        monitor.set_lamp_expected(lamp_expected(&settings.control));
        Core {
            controller: Controller::new(settings.control.clone(), commanded_on, now),
            monitor,
            settings,
            config_path,
            relay,
            clock,
            mock,
            topics,
            outbox,
            state_file,
            started: now,
            commanded_on,
            readback_on,
            decision: None,
            last_reading: None,
            pending_fact: None,
            sensor_status: SensorStatus::Ok,
            last_sensor_error: None,
            broker_connected: false,
            bad_input_log: LogBudget::default(),
            published_light: None,
            published_mode: None,
            published_health: None,
            dashboard: None,
            state_dirty: true,
        }
    }

    /// Publish the retained start state (the MQTT task republishes retained topics on every reconnect).
    fn start(&mut self) {
        self.outbox.publish(&self.topics.status, "online", true);
        info!(
            "started: relay {} (relay.on_start = {:?}), broker {}",
            on_off(self.commanded_on),
            self.settings.relay.on_start,
            broker_display(&self.settings)
        );
        self.evaluate();
    }

    fn inputs(&self, now: Instant) -> Inputs {
        let stale_after = self.settings.sensor.stale_after;
        let sensor = match self.last_reading {
            Some(r) if now.saturating_duration_since(r.at) < stale_after => {
                Some(SensorInput::Reading {
                    lux: r.lux,
                    at: r.at,
                })
            }
            Some(_) => Some(SensorInput::Stale),
            None if now.saturating_duration_since(self.started) >= stale_after => {
                Some(SensorInput::Stale)
            }
            None => None,
        };
        Inputs {
            now,
            local_minute: local_minute(self.clock.as_ref()),
            sensor,
        }
    }

    fn stale(&self, now: Instant) -> bool {
        matches!(self.inputs(now).sensor, Some(SensorInput::Stale))
    }

    /// How long the loop may sleep before the rule could change its mind without new input.
    fn next_wake(&self) -> Duration {
        let now = self.clock.now();
        let scale = self.time_scale();
        self.controller
            .next_deadline()
            .map(|d| d.saturating_duration_since(now).div_f64(scale))
            .unwrap_or(Duration::from_secs(3600))
    }

    fn time_scale(&self) -> f64 {
        if self.mock.is_some() && self.settings.mock.time_scale > 0.0 {
            self.settings.mock.time_scale
        } else {
            1.0
        }
    }

    fn on_sensor(&mut self, ev: SensorEvent) {
        match ev.result {
            Ok(Measurement::Lux { lux, raw }) => {
                self.accept_reading(lux, ev.at);
                self.pending_fact = Some(SensorFact::Reading {
                    lux,
                    raw,
                    at: ev.at,
                });
            }
            Ok(Measurement::Saturated) => {
                self.set_sensor_status(SensorStatus::Saturated);
                self.pending_fact = Some(SensorFact::Saturated { at: ev.at });
            }
            Err(e) => {
                debug!("sensor read failed: {e}");
                self.set_sensor_status(SensorStatus::Error);
                self.pending_fact = Some(SensorFact::Error { at: ev.at });
                self.last_sensor_error = Some(e.to_string());
            }
        }
    }

    /// A valid lux value, from the BH1750 or from `sensor.topic`.
    fn accept_reading(&mut self, lux: f64, at: Instant) {
        self.last_reading = Some(Reading { lux, at });
        self.set_sensor_status(SensorStatus::Ok);
        // With `sensor.source = "mqtt"` on `P/luminosity` itself the reading is already there: echoing it would
        // feed it back to us.
        if !(self.settings.sensor.source == SensorSource::Mqtt
            && self.settings.sensor.topic == self.topics.luminosity)
        {
            self.outbox
                .publish(&self.topics.luminosity, format_lux(lux), false);
        }
        self.state_dirty = true;
    }

    fn set_sensor_status(&mut self, status: SensorStatus) {
        if self.sensor_status != status {
            self.sensor_status = status;
            self.state_dirty = true;
        }
    }

    fn on_mqtt(&mut self, ev: Event) {
        match ev {
            Event::Connected => {
                if !self.broker_connected {
                    self.broker_connected = true;
                    notify(systemd::status(&self.status_line()));
                }
            }
            Event::Disconnected { .. } => {
                if self.broker_connected {
                    self.broker_connected = false;
                    notify(systemd::status(&self.status_line()));
                }
            }
            Event::Message {
                topic,
                payload,
                retained,
            } => self.on_message(&topic, &payload, retained),
        }
    }

    fn on_message(&mut self, topic: &str, payload: &[u8], retained: bool) {
        if topic == self.topics.light_set {
            if retained {
                warn!(
                    "ignoring a retained command on {topic} ({}): commands must not be retained; clear it with \
                     `mosquitto_pub -r -n -t {topic}`",
                    printable(payload)
                );
                return;
            }
            match parse_light_set(payload) {
                Ok(cmd) => self.on_command(cmd),
                Err(e) => {
                    if self.bad_input_log.allow(Instant::now()) {
                        warn!("rejected command on {topic} ({}): {e}", printable(payload));
                    }
                    self.outbox
                        .publish(&self.topics.light_set_error, e.to_string(), false);
                }
            }
        } else if topic == self.topics.mock_set {
            let Some(world) = &self.mock else { return };
            match crate::hw::mock::parse_mock_set(payload) {
                Ok(set) => {
                    info!("mock hardware: applying {}", printable(payload));
                    world.apply(&set);
                    if let Some(s) = set.stall_loop_s {
                        warn!("mock hardware: stalling the control loop for {s} s (a hung daemon, for watchdog tests)");
                        std::thread::sleep(Duration::from_secs_f64(s));
                    }
                }
                Err(e) => {
                    if self.bad_input_log.allow(Instant::now()) {
                        warn!("rejected {topic} ({}): {e}", printable(payload));
                    }
                }
            }
        } else if self.settings.sensor.source == SensorSource::Mqtt
            && topic == self.settings.sensor.topic
        {
            match parse_lux(payload) {
                Some(lux) => {
                    let at = self.clock.now();
                    self.accept_reading(lux, at);
                    // No raw count from a remote sensor: stuck detection works on the lux value's bits.
                    self.pending_fact = Some(SensorFact::Reading {
                        lux,
                        raw: lux_fingerprint(lux),
                        at,
                    });
                }
                None => {
                    if self.bad_input_log.allow(Instant::now()) {
                        warn!(
                            "rejected reading on {topic} ({}): not a non-negative number",
                            printable(payload)
                        );
                    }
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = self.clock.now();
        let inputs = self.inputs(now);
        let decision = self.controller.command(&inputs, cmd);
        debug!("command {cmd:?} accepted");
        self.apply(decision);
    }

    /// Run the rule and the monitor, drive the relay, publish what changed.
    fn evaluate(&mut self) {
        let now = self.clock.now();
        let inputs = self.inputs(now);
        if matches!(inputs.sensor, Some(SensorInput::Stale))
            && self.sensor_status == SensorStatus::Ok
        {
            self.set_sensor_status(SensorStatus::Stale);
        }
        let decision = self.controller.decide(&inputs);
        self.apply(decision);

        let facts = Facts {
            now,
            demanded_on: decision.light_on,
            commanded_on: self.commanded_on,
            readback_on: self.readback_on,
            sensor: self.pending_fact.take(),
            stale: self.stale(now),
        };
        let events = self.monitor.evaluate(&facts);
        for ev in &events {
            self.publish_alert(ev);
        }
        self.publish_health();
        if self.state_dirty {
            self.publish_state();
        }
        self.update_dashboard(facts.sensor.is_some());
    }

    /// Feed the history and hand the server a fresh state.
    fn update_dashboard(&mut self, reading: bool) {
        let Some(d) = self.decision else { return };
        let light = self.readback_on.unwrap_or(self.commanded_on);
        let window_open = self
            .controller
            .window_open(local_minute(self.clock.as_ref()));
        let fresh = reading && self.sensor_status == SensorStatus::Ok;
        let sample = crate::history::Sample {
            lux: self.last_reading.filter(|_| fresh).map(|r| r.lux),
            ambient_lux: d.ambient_lux.filter(|_| fresh),
            light_on: light,
            window_open,
        };
        let state = crate::http::StateView {
            ts: timestamp(),
            lux: self.last_reading.map(|r| round2(r.lux)),
            ambient_lux: d.ambient_lux.map(round2),
            light: on_off(light).into(),
            mode: d.mode.as_str().into(),
            reason: d.reason.as_str().into(),
            sensor: self.sensor_status.as_str().into(),
            window_open,
            alerts: self
                .monitor
                .active()
                .iter()
                .map(|a| a.as_str().to_string())
                .collect(),
            broker_connected: self.broker_connected,
            broker: self
                .broker_connected
                .then(|| broker_display(&self.settings)),
            dli: None,
            lamp_on_seconds_total: 0.0,
            lamp_switches_total: 0,
            version: env!("CARGO_PKG_VERSION").into(),
        };
        if let Some(dash) = self.dashboard.as_mut() {
            dash.update(chrono::Local::now().naive_local(), sample, state);
        }
    }

    /// Drive the relay to the decision (only on change), read it back, publish light/mode.
    fn apply(&mut self, decision: Decision) {
        let previous = self.decision.replace(decision);
        if decision.light_on == self.commanded_on
            && self.readback_on.is_some_and(|r| r != self.commanded_on)
        {
            // The line does not show what was written (stuck or disturbed): write it again, idempotently.
            if let Err(e) = self.relay.set(self.commanded_on) {
                debug!("re-asserting the relay failed: {e}");
            }
            self.read_back();
        }
        if decision.light_on != self.commanded_on {
            match self.relay.set(decision.light_on) {
                Ok(()) => {
                    info!(
                        "light {} (reason {}, mode {}, lux {}, ambient {})",
                        on_off(decision.light_on),
                        decision.reason.as_str(),
                        decision.mode.as_str(),
                        self.last_reading
                            .map(|r| format_lux(r.lux))
                            .unwrap_or_else(|| "-".into()),
                        decision
                            .ambient_lux
                            .map(format_lux)
                            .unwrap_or_else(|| "-".into()),
                    );
                    self.commanded_on = decision.light_on;
                    self.persist();
                }
                Err(e) => error!("cannot switch the light {}: {e}", on_off(decision.light_on)),
            }
            self.read_back();
        }
        if previous.map(|p| (p.reason, p.mode)) != Some((decision.reason, decision.mode)) {
            self.state_dirty = true;
        }
        self.publish_light_and_mode();
    }

    fn read_back(&mut self) {
        self.readback_on = match self.relay.read_back() {
            Ok(on) => Some(on),
            Err(e) => {
                warn!("cannot read the relay line back: {e}");
                None
            }
        };
    }

    fn persist(&self) {
        if let Some(path) = &self.state_file {
            if let Err(e) = persist::save(path, self.commanded_on) {
                warn!(
                    "cannot save the relay state to {} for relay.on_start = restore: {e}",
                    path.display()
                );
            }
        }
    }

    fn publish_light_and_mode(&mut self) {
        // `P/light` is what the pin says, not what was asked for.
        let light = self.readback_on.unwrap_or(self.commanded_on);
        if self.published_light != Some(light) {
            self.published_light = Some(light);
            self.outbox.publish(&self.topics.light, on_off(light), true);
            self.state_dirty = true;
            notify(systemd::status(&self.status_line()));
        }
        if let Some(d) = self.decision {
            if self.published_mode != Some(d.mode) {
                self.published_mode = Some(d.mode);
                self.outbox
                    .publish(&self.topics.mode, d.mode.as_str(), true);
                self.state_dirty = true;
            }
        }
    }

    fn publish_alert(&mut self, ev: &AlertEvent) {
        let detail = match (&self.last_sensor_error, ev.alert, ev.active) {
            (Some(cause), Alert::SensorError, true) => format!("{} ({cause})", ev.detail),
            _ => ev.detail.clone(),
        };
        if ev.active {
            warn!("alert {} raised: {detail}", ev.alert.as_str());
        } else {
            crate::notice!("alert {} cleared: {detail}", ev.alert.as_str());
        }
        let payload = json!({
            "alert": ev.alert.as_str(),
            "active": ev.active,
            "detail": detail,
            "ts": timestamp(),
        });
        self.outbox
            .publish(&self.topics.alert, payload.to_string(), false);
    }

    fn publish_health(&mut self) {
        let alerts: Vec<&'static str> = self
            .monitor
            .active()
            .into_iter()
            .map(|a| a.as_str())
            .collect();
        if self.published_health.as_ref() != Some(&alerts) {
            let payload = json!({ "ok": alerts.is_empty(), "alerts": alerts });
            self.outbox
                .publish(&self.topics.health, payload.to_string(), true);
            self.published_health = Some(alerts);
            self.state_dirty = true;
        }
    }

    fn publish_state(&mut self) {
        self.state_dirty = false;
        let Some(d) = self.decision else { return };
        let light = self.readback_on.unwrap_or(self.commanded_on);
        let payload = json!({
            "lux": self.last_reading.map(|r| round2(r.lux)),
            "ambient_lux": d.ambient_lux.map(round2),
            "light": on_off(light),
            "mode": d.mode.as_str(),
            "reason": d.reason.as_str(),
            "sensor": self.sensor_status.as_str(),
            "window_open": self.controller.window_open(local_minute(self.clock.as_ref())),
            "ts": timestamp(),
        });
        self.outbox
            .publish(&self.topics.state, payload.to_string(), true);
        notify(systemd::status(&self.status_line()));
    }

    /// One line for `systemctl status`: lux, light, mode, broker.
    fn status_line(&self) -> String {
        let lux = match (self.sensor_status, self.last_reading) {
            (SensorStatus::Ok, Some(r)) => format!("{} lx", format_lux(r.lux)),
            (status, _) => format!("sensor {}", status.as_str()),
        };
        let (reason, mode) = self
            .decision
            .map(|d| (d.reason.as_str(), d.mode.as_str()))
            .unwrap_or(("starting", "auto"));
        format!(
            "{lux}, light {} ({reason}), mode {mode}, broker {}",
            on_off(self.readback_on.unwrap_or(self.commanded_on)),
            if self.broker_connected {
                "connected"
            } else {
                "disconnected"
            }
        )
    }

    /// SIGHUP: re-read the file; control and monitor apply live, the rest needs a restart (told to systemd as
    /// RELOADING=1 … READY=1, also when the new file is rejected).
    fn reload(&mut self) {
        notify(systemd::reloading());
        self.reload_file();
        notify(systemd::ready(&self.status_line()));
    }

    fn reload_file(&mut self) {
        let path = self.config_path.clone();
        match config::load(path.as_deref()) {
            Ok(new) => {
                for key in config::restart_required_changes(&self.settings, &new) {
                    warn!("configuration reload: {key} changed; restart greenhoused to apply it");
                }
                self.controller.set_settings(new.control.clone());
                self.monitor.set_settings(new.monitor.clone());
                self.monitor.set_lamp_expected(lamp_expected(&new.control));
                self.settings.control = new.control;
                self.settings.monitor = new.monitor;
                info!("configuration reloaded: [control] and [monitor] applied");
            }
            Err(e) => {
                error!("configuration reload rejected, keeping the running configuration:\n{e}")
            }
        }
    }

    /// Stop: relay to `relay.on_stop`, final `P/light`, then `P/status offline`.
    fn stop(&mut self) {
        let target = match self.settings.relay.on_stop {
            OnStop::Off => Some(false),
            OnStop::On => Some(true),
            OnStop::Keep => None,
        };
        if let Some(on) = target {
            if on != self.commanded_on {
                match self.relay.set(on) {
                    Ok(()) => {
                        self.commanded_on = on;
                        self.persist();
                    }
                    Err(e) => error!("cannot put the light {} on stop: {e}", on_off(on)),
                }
            }
        }
        self.read_back();
        self.publish_light_and_mode();
        self.outbox.publish(&self.topics.status, "offline", true);
        if let Some(d) = self.dashboard.take() {
            d.stop(chrono::Local::now().naive_local());
        }
        info!(
            "stopped: light {} (relay.on_stop = {:?})",
            on_off(self.readback_on.unwrap_or(self.commanded_on)),
            self.settings.relay.on_stop
        );
    }
}

/// Whether switching the lamp should change the reading (the stuck-sensor check needs it); not taken from the
/// learned value, since a stuck sensor teaches the learner 0.
fn lamp_expected(control: &config::ControlSettings) -> bool {
    !matches!(control.lamp_lux, config::LampLux::Fixed(x) if x <= 0.0)
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn broker_display(settings: &Settings) -> String {
    match &settings.mqtt.url {
        config::BrokerUrl::Embedded => format!("embedded on {}", settings.mqtt.embedded_listen),
        remote => remote.to_string(),
    }
}

/// sd_notify failures are worth a debug line, never more: the daemon runs fine without a supervisor.
fn notify(result: Result<(), systemd::NotifyError>) {
    if let Err(e) = result {
        debug!("sd_notify: {e}");
    }
}

/// Lux as the seed's scripts parse it: a plain decimal number, at most two decimals (`412.5`, `0.11`, `90000`).
pub fn format_lux(lux: f64) -> String {
    format!("{}", round2(lux))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A reading from `sensor.topic`: a plain non-negative finite number, as the seed photosensor publishes.
pub fn parse_lux(payload: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    let lux: f64 = text.parse().ok()?;
    (lux.is_finite() && lux >= 0.0).then_some(lux)
}

/// A 16-bit stand-in for a raw count when readings come over MQTT (identical values give identical prints).
fn lux_fingerprint(lux: f64) -> u16 {
    let bits = lux.to_bits();
    (bits ^ (bits >> 16) ^ (bits >> 32) ^ (bits >> 48)) as u16
}

fn printable(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(64)]);
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if payload.len() > 64 {
        s.push('…');
    }
    format!("{s:?}")
}

fn local_minute(clock: &dyn Clock) -> u16 {
    let t = clock.local_time();
    (t.hour() * 60 + t.minute()) as u16
}

fn timestamp() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lux_is_formatted_as_a_plain_number_python_float_accepts() {
        assert_eq!(format_lux(412.5), "412.5");
        assert_eq!(format_lux(90000.0), "90000");
        assert_eq!(format_lux(0.114), "0.11");
        assert_eq!(format_lux(3.0), "3");
    }

    #[test]
    fn remote_readings_must_be_plain_non_negative_numbers() {
        assert_eq!(parse_lux(b"412.5"), Some(412.5));
        assert_eq!(parse_lux(b" 12\n"), Some(12.0));
        assert_eq!(parse_lux(b"-1"), None);
        assert_eq!(parse_lux(b"NaN"), None);
        assert_eq!(parse_lux(b"inf"), None);
        assert_eq!(parse_lux(b"bright"), None);
        assert_eq!(parse_lux(&[0xff, 0xfe]), None);
    }

    #[test]
    fn log_budget_allows_ten_a_minute_then_counts() {
        let mut b = LogBudget::default();
        let t0 = Instant::now();
        let allowed = (0..25)
            .filter(|i| b.allow(t0 + Duration::from_millis(*i)))
            .count();
        assert_eq!(allowed, LogBudget::PER_MINUTE as usize);
        assert_eq!(b.suppressed, 15);
        assert!(
            b.allow(t0 + Duration::from_secs(61)),
            "a new minute starts a new budget"
        );
        assert_eq!(b.suppressed, 0);
    }

    #[test]
    fn printable_truncates_and_masks_control_characters() {
        assert_eq!(printable(b"on"), "\"on\"");
        assert_eq!(printable(b"a\nb"), "\"a?b\"");
        assert!(printable(&[b'x'; 100]).ends_with("…\""));
    }
}
