//! The core: all decisions of one zone (one sensor, one relay, one rule), with no I/O inside. Time and inputs come
//! in as [`Event`]s, what must happen goes out as [`Effect`]s. The daemon (`app`), the simulator and the tests
//! are shells around it: they own the clock, the hardware and the broker.
//!
//! ```text
//! let mut core = Core::new(settings, Start::new(read_back_at_open), now);
//! loop {
//!     let effects = core.handle(now, event);        // the first call also announces the start
//!     execute(effects);                              // SetRelay → write, read back → handle(Event::Relay{..})
//!     wait for the next event or core.next_wakeup() → Event::Tick
//! }
//! core.handle(now, Event::Stop);                     // relay to on_stop, final P/light, P/status offline
//! ```
//!
//! The contract with the shell:
//! - [`Now`] is the monotonic instant and the local wall time of the same moment, from the shell's clock (real,
//!   the mock's scaled clock, or made up by a simulator or test). `ts` in payloads is `now.local`.
//! - Every [`Effect::SetRelay`] is answered with one [`Event::Relay`] (the write's outcome and the pin read back
//!   after it) before any other event; the core asks again on a later event if the relay did not follow. The
//!   light state the core believes is what the relay read back: a switch counts (dwell timer, lamp learning,
//!   persistence, the monitor's switch checks) only when `Event::Relay` confirms it.
//! - [`Core::next_wakeup`] is when the core wants an [`Event::Tick`] at the latest (dwell end, override expiry,
//!   the next local minute for the window, staleness, a monitor deadline, a relay retry). Ticking more often is
//!   harmless.
//! - Effects are executed in order. [`Effect::Persist`] carries snapshots to save atomically; [`Effect::Notify`]
//!   is the systemd `STATUS=` line (the shell sends READY/RELOADING/STOPPING itself, with [`Core::status_line`]);
//!   [`Effect::Log`] lines are logged by the shell.
//! - MQTT messages on subscribed topics come in as [`Event::Message`]: `P/light/set` (and `sensor.topic` when
//!   `sensor.source = "mqtt"`). Mock steering (`P/mock/set`) is the daemon shell's business, never the core's.
//! - [`Event::Reload`] carries the shell's `config::load` result: live keys (`[control]`, `[monitor]`, `[dli]`)
//!   apply, the rest is logged as needing a restart; the relay is not touched by the reload itself.
//!
//! Seams for what comes next: [`Core::decide`] is the one place the strategy decides (the threshold rule of
//! [`control`] today), [`Persist`] grows a variant per state file, and [`Core::on_minute`] runs once per local
//! minute (aggregates, daily reports).

pub mod control;
pub mod dli;
pub mod history;
pub mod monitor;
pub mod text;

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDateTime, Timelike};
use serde::Serialize;
use serde_json::json;

use crate::config::{self, OnStart, OnStop, SensorSource, Settings, Strategy};
use crate::hw::{Measurement, SensorError};
use crate::logging::Severity;
use crate::mqtt::command::parse_light_set;
use crate::mqtt::discovery::{self, Announcer, DiscoverySettings, StatusMessage};
use crate::mqtt::topics::Topics;
use control::{Command, Controller, Decision, Inputs, Mode, SensorInput};
use dli::{Dli, DliPayload, DliState, Note};
use monitor::{Alert, AlertEvent, Facts, Monitor, SensorFact};
use text::{format_lux, lux_fingerprint, on_off, parse_lux, printable, round2, LogBudget};

/// How soon the core asks again when the relay does not show what the rule demands (a failed or ignored write).
pub const RELAY_RETRY: Duration = Duration::from_secs(1);
/// The DLI day state is saved at most this often (and at each light-day end and at stop).
pub const DLI_SAVE_EVERY: Duration = Duration::from_secs(300);
/// What a saturated BH1750 reading counts as in the DLI (its full scale at the least sensitive setting).
pub const SATURATED_LUX: f64 = 121_557.0;

/// One moment on the shell's clock: the monotonic instant and the local wall time (with its UTC offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub at: Instant,
    pub local: DateTime<FixedOffset>,
}

impl Now {
    /// A moment with local time `local` in UTC+0 (simulations and tests that do not care about the offset).
    pub fn naive(at: Instant, local: NaiveDateTime) -> Now {
        Now {
            at,
            local: local.and_utc().fixed_offset(),
        }
    }

    /// This moment `d` later (both clocks move together).
    pub fn after(&self, d: Duration) -> Now {
        let local = chrono::Duration::from_std(d)
            .ok()
            .and_then(|cd| self.local.checked_add_signed(cd))
            .unwrap_or(self.local);
        Now {
            at: self.at + d,
            local,
        }
    }

    /// Minutes since local midnight (0..1440).
    pub fn minute_of_day(&self) -> u16 {
        (self.local.hour() * 60 + self.local.minute()) as u16
    }

    /// RFC 3339 with milliseconds and the offset: the `ts` of payloads.
    pub fn timestamp(&self) -> String {
        self.local
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
    }
}

/// What happens to the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A BH1750 measurement (or failure) that started at `started` (the lamp state then is what it saw).
    Reading {
        started: Instant,
        result: Result<Measurement, SensorError>,
    },
    /// The answer to [`Effect::SetRelay`]: the write's outcome and the line read back after it.
    Relay {
        requested: bool,
        write: Result<(), String>,
        read_back: Result<bool, String>,
    },
    /// An MQTT message on a subscribed topic.
    Message {
        topic: String,
        payload: Vec<u8>,
        retained: bool,
    },
    /// The broker connection came up or went down; `broker` names it (for the status line and the view).
    Broker {
        connected: bool,
        broker: Option<String>,
    },
    /// Time passed (at [`Core::next_wakeup`] or earlier).
    Tick,
    /// SIGHUP: the shell's `config::load` of the file, or why it was rejected.
    Reload(Result<Box<Settings>, String>),
    /// SIGTERM/SIGINT: relay to `relay.on_stop`, final `P/light`, `P/status offline`.
    Stop,
}

/// A state snapshot to save atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    /// The confirmed relay state, for `relay.on_start = "restore"`.
    Relay { on: bool },
    /// History bytes for `history.bin` in the state directory (append, or replace atomically).
    History(history::Write),
    /// The DLI day so far (`DliState::to_json` into the state directory).
    Dli(Box<DliState>),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write the relay, read it back and answer with [`Event::Relay`].
    SetRelay(bool),
    Publish {
        topic: String,
        payload: String,
        retained: bool,
    },
    Persist(Persist),
    /// The systemd `STATUS=` line changed.
    Notify(String),
    /// A log line; `fields` are structured extras for the journal (e.g. `ALERT`).
    Log {
        level: Severity,
        line: String,
        fields: Vec<(&'static str, String)>,
    },
}

/// What the shell found at start. Build it with [`Start::new`] so that fields added later (restored state
/// files) get their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// The relay line read back right after it was opened at its start level.
    pub relay: Result<bool, String>,
    /// The DLI day state saved by the last run, already validated (`DliState::from_json`); `None` when there was
    /// none or it was rejected (the shell logs why).
    pub dli: Option<DliState>,
}

impl Start {
    /// The relay as read back at open; nothing restored.
    pub fn new(relay: Result<bool, String>) -> Start {
        Start { relay, dli: None }
    }
}

/// What the sensor path last produced (`sensor` in `P/state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SensorStatus {
    Ok,
    Error,
    Stale,
    Saturated,
}

impl SensorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorStatus::Ok => "ok",
            SensorStatus::Error => "error",
            SensorStatus::Stale => "stale",
            SensorStatus::Saturated => "saturated",
        }
    }
}

/// A read-only snapshot for the HTTP API, metrics and status lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// The latest valid reading (lamp included).
    pub lux: Option<f64>,
    /// The ambient estimate (reading minus the lamp's contribution while on).
    pub ambient_lux: Option<f64>,
    /// The light as the relay read it back.
    pub light: bool,
    pub mode: &'static str,
    pub reason: &'static str,
    pub sensor: SensorStatus,
    /// Active alerts, in contract order.
    pub alerts: Vec<&'static str>,
    pub broker_connected: bool,
    pub broker: Option<String>,
    pub window_open: bool,
    /// The local time of the last event (RFC 3339).
    pub ts: String,
    /// The lamp contribution learned from switch steps (kept even while `control.lamp_lux` is fixed).
    pub lamp_learned_lux: Option<f64>,
    /// Lamp on-time since the start (confirmed by read-back), seconds.
    pub lamp_on_seconds_total: f64,
    /// Relay switches confirmed by read-back since the start.
    pub lamp_switches_total: u64,
    /// The light-day so far (the `P/dli` payload).
    pub dli: DliPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not yet announced (`P/status online` goes out with the first event).
    New,
    Running,
    /// Waiting for the relay to reach `relay.on_stop`.
    Stopping,
    Stopped,
}

/// A valid reading.
#[derive(Debug, Clone, Copy)]
struct Reading {
    lux: f64,
    at: Instant,
}

/// The core of one zone. See the module documentation for the contract.
pub struct Core {
    settings: Settings,
    topics: Topics,
    controller: Controller,
    monitor: Monitor,
    phase: Phase,
    started: Instant,
    /// The latest `now` seen.
    now: Now,
    /// The light as the relay last showed it: the one truth (read back, or the write's level when the write
    /// succeeded but the read failed).
    light: bool,
    /// The line read back last (None: the read failed), for the monitor.
    readback: Option<bool>,
    /// The level last written successfully, for the monitor's read-back check.
    commanded: bool,
    /// A `SetRelay` waiting for its `Event::Relay`.
    relay_pending: Option<bool>,
    decision: Option<Decision>,
    last_reading: Option<Reading>,
    /// Newest sensor outcome not yet shown to the monitor.
    pending_fact: Option<SensorFact>,
    sensor_status: SensorStatus,
    /// The latest sensor failure, quoted in the `sensor_error` alert.
    last_sensor_error: Option<String>,
    broker_connected: bool,
    broker_name: Option<String>,
    bad_input_log: LogBudget,
    /// The local minute last handled by [`Core::on_minute`] (minutes since the epoch).
    minute: Option<i64>,
    window_open: bool,
    published_light: Option<bool>,
    published_mode: Option<Mode>,
    published_health: Option<Vec<&'static str>>,
    state_dirty: bool,
    notified: Option<String>,
    /// Home Assistant discovery: what to announce, and when to announce it again.
    discovery: DiscoverySettings,
    announcer: Announcer,
    /// Re-announcements scheduled so far (the [`discovery::jitter`] counter).
    reannouncements: u64,
    /// Daily light integral: accounting, the `dli` strategy, the daily report.
    dli: Dli,
    /// A reading not yet counted in the DLI (`Some(saturated)`), counted after the decision gives its ambient.
    dli_reading: Option<bool>,
    dli_saved_at: Instant,
    out: Vec<Effect>,
    /// One-minute and daily aggregates for the dashboard (fed on every evaluation).
    history: history::History,
    /// A valid reading arrived with the current event (the history averages readings, not ticks).
    fresh_reading: bool,
    /// Lamp on-time before `lamp_on_since`, and since when the lamp is on (None: off).
    lamp_on_total: Duration,
    lamp_on_since: Option<Instant>,
    switches: u64,
}

impl Core {
    /// A core for `settings`, with the relay as the shell found it, at `now`.
    pub fn new(settings: Settings, start: Start, now: Now) -> Core {
        let topics = Topics::new(&settings.mqtt.topic_prefix);
        let readback = start.relay.as_ref().ok().copied();
        let light = readback.unwrap_or(false);
        let mut monitor = Monitor::new(settings.monitor.clone());
        monitor.set_lamp_expected(lamp_expected(&settings.control));
        let controller = Controller::new(settings.control.clone(), light, now.at);
        let window_open = controller.window_open(now.minute_of_day());
        let discovery = DiscoverySettings::from_settings(&settings);
        let announcer = Announcer::new(DiscoverySettings::status_topic(&settings));
        let (dli, dli_notes) = Dli::new(
            settings.dli.clone(),
            settings.control.clone(),
            light,
            start.dli,
            now,
        );
        let mut core = Core {
            settings,
            topics,
            controller,
            monitor,
            phase: Phase::New,
            started: now.at,
            now,
            light,
            readback,
            commanded: light,
            relay_pending: None,
            decision: None,
            last_reading: None,
            pending_fact: None,
            sensor_status: SensorStatus::Ok,
            last_sensor_error: None,
            broker_connected: false,
            broker_name: None,
            bad_input_log: LogBudget::default(),
            minute: None,
            window_open,
            published_light: None,
            published_mode: None,
            published_health: None,
            state_dirty: true,
            notified: None,
            discovery,
            announcer,
            reannouncements: 0,
            dli,
            dli_reading: None,
            dli_saved_at: now.at,
            out: Vec::new(),
            history: history::History::new(),
            fresh_reading: false,
            lamp_on_total: Duration::ZERO,
            lamp_on_since: light.then_some(now.at),
            switches: 0,
        };
        core.dli_notes(dli_notes);
        if let Err(e) = start.relay {
            core.log(
                Severity::Warning,
                format!("cannot read the relay line back at start: {e}"),
            );
        }
        core
    }

    /// Handle one event at `now`; returns what the shell must do, in order.
    pub fn handle(&mut self, now: Now, event: Event) -> Vec<Effect> {
        if now.at >= self.now.at {
            self.now = now;
        }
        let now = self.now;
        if self.phase == Phase::New {
            self.announce();
        }
        match event {
            Event::Relay {
                requested,
                write,
                read_back,
            } => {
                self.on_relay(now, requested, write, read_back);
                match self.phase {
                    Phase::Stopping => self.finish_stop(),
                    Phase::Running => self.evaluate(now, false),
                    Phase::New | Phase::Stopped => {}
                }
            }
            _ if self.phase != Phase::Running => {}
            Event::Reading { started, result } => {
                self.on_reading(started, result);
                self.evaluate(now, true);
            }
            Event::Message {
                topic,
                payload,
                retained,
            } => {
                self.on_message(now, &topic, &payload, retained);
                self.evaluate(now, true);
            }
            Event::Broker { connected, broker } => {
                self.broker_connected = connected;
                if broker.is_some() {
                    self.broker_name = broker;
                }
                // `P/state` names the broker it went through: a fresh one after each (re)connect (a failover
                // list may have moved us to another broker).
                if connected {
                    self.state_dirty = true;
                    self.evaluate(now, true);
                }
                self.notify_status();
            }
            Event::Tick => self.evaluate(now, true),
            Event::Reload(result) => {
                self.reload(result);
                self.evaluate(now, true);
            }
            Event::Stop => self.stop(),
        }
        std::mem::take(&mut self.out)
    }

    /// When the core wants an [`Event::Tick`] at the latest; `None` once stopped.
    pub fn next_wakeup(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Stopping | Phase::Stopped) {
            return None;
        }
        let now = self.now;
        let into_minute = Duration::from_secs(u64::from(now.local.second()))
            + Duration::from_nanos(u64::from(now.local.nanosecond() % 1_000_000_000));
        let next_minute = now.at + (Duration::from_secs(60) - into_minute);
        let stale_at = if self.is_stale(now.at) {
            None
        } else {
            self.last_reading
                .map_or(self.started, |r| r.at)
                .checked_add(self.settings.sensor.stale_after)
        };
        let unsettled = self.relay_pending.is_none()
            && self.decision.is_some_and(|d| {
                self.relay_disagrees(d.light_on) || self.readback != Some(self.commanded)
            });
        let retry = unsettled.then(|| now.at + RELAY_RETRY);
        // Deadlines already reached were handled by the evaluation at `now`.
        [
            Some(next_minute),
            self.controller.next_deadline(),
            self.monitor.next_deadline(),
            stale_at,
            retry,
            self.announcer.next_wakeup(),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > now.at)
        .min()
    }

    /// A read-only snapshot of the current state.
    pub fn view(&self) -> View {
        let d = self.decision;
        View {
            lux: self.last_reading.map(|r| round2(r.lux)),
            ambient_lux: d.and_then(|d| d.ambient_lux).map(round2),
            light: self.light,
            mode: d.map_or(self.controller.mode(), |d| d.mode).as_str(),
            reason: d.map_or("starting", |d| d.reason.as_str()),
            sensor: self.sensor_status,
            alerts: self.alert_names(),
            broker_connected: self.broker_connected,
            broker: self.broker_name.clone(),
            window_open: self.window_open,
            ts: self.now.timestamp(),
            lamp_learned_lux: self.controller.lamp_learner().estimate(),
            lamp_on_seconds_total: self.lamp_on_time(self.now.at).as_secs_f64(),
            lamp_switches_total: self.switches,
            dli: self.dli.payload(&self.now),
        }
    }

    /// Take over the history the shell loaded from the state directory (before the first event).
    pub fn restore_history(&mut self, history: history::History) {
        self.history = history;
    }

    /// The shell could not execute the last `Persist::History`: the next one rewrites the whole file.
    pub fn history_write_failed(&mut self) {
        self.history.write_failed();
    }

    /// The aggregates so far (the shell hands a copy to the HTTP server once a minute).
    pub fn history(&self) -> &history::History {
        &self.history
    }

    /// Lamp on-time since the start, up to `at`.
    fn lamp_on_time(&self, at: Instant) -> Duration {
        self.lamp_on_total
            + self
                .lamp_on_since
                .map_or(Duration::ZERO, |since| at.saturating_duration_since(since))
    }

    /// One line for `systemctl status`: lux, light, mode, broker.
    pub fn status_line(&self) -> String {
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
            on_off(self.light),
            match (self.broker_connected, &self.broker_name) {
                (true, Some(name)) => format!("connected to {name}"),
                (true, None) => "connected".to_string(),
                (false, _) => "disconnected".to_string(),
            }
        )
    }

    /// The running settings (live keys replaced by reloads).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The contract topics of this zone.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The light rule (read-only), e.g. for the learned lamp contribution.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The DLI engine (read-only): the day so far, its state for persistence.
    pub fn dli(&self) -> &Dli {
        &self.dli
    }

    // ----- events -----

    /// The retained start state (the MQTT task republishes retained topics on every reconnect).
    fn announce(&mut self) {
        self.phase = Phase::Running;
        self.publish(self.topics.status.clone(), "online".into(), true);
        // Retained, so the shell's outbox sends it again after every (re)connect. With `discovery = false` it
        // removes every entity, and so the device, from Home Assistant.
        let a = discovery::announcement(&self.discovery);
        self.publish(a.topic, a.payload, true);
        self.log(
            Severity::Info,
            format!(
                "started: relay {}, broker {}",
                on_off(self.light),
                broker_display(&self.settings)
            ),
        );
    }

    fn on_relay(
        &mut self,
        now: Now,
        requested: bool,
        write: Result<(), String>,
        read_back: Result<bool, String>,
    ) {
        self.relay_pending = None;
        let written = match write {
            Ok(()) => {
                self.commanded = requested;
                true
            }
            Err(e) => {
                let line = if self.phase == Phase::Stopping {
                    format!("cannot put the light {} on stop: {e}", on_off(requested))
                } else {
                    format!("cannot switch the light {}: {e}", on_off(requested))
                };
                self.log(Severity::Error, line);
                false
            }
        };
        let seen = match read_back {
            Ok(on) => {
                self.readback = Some(on);
                Some(on)
            }
            Err(e) => {
                self.log(
                    Severity::Warning,
                    format!("cannot read the relay line back: {e}"),
                );
                self.readback = None;
                // Without a read-back the successful write is the only evidence of the line's level.
                written.then_some(requested)
            }
        };
        if let Some(on) = seen {
            if on != self.light {
                self.switched(now, on);
            }
        }
    }

    /// The relay confirmed a new light state.
    fn switched(&mut self, now: Now, on: bool) {
        self.lamp_on_total = self.lamp_on_time(now.at);
        self.lamp_on_since = on.then_some(now.at);
        self.switches += 1;
        self.light = on;
        self.controller.switched(now.at, on);
        if let Some(d) = self.decision {
            self.out.push(Effect::Log {
                level: Severity::Info,
                line: format!(
                    "light {} (reason {}, mode {}, lux {}, ambient {})",
                    on_off(on),
                    d.reason.as_str(),
                    d.mode.as_str(),
                    self.last_reading
                        .map(|r| format_lux(r.lux))
                        .unwrap_or_else(|| "-".into()),
                    d.ambient_lux.map(format_lux).unwrap_or_else(|| "-".into()),
                ),
                // `journalctl REASON=below_threshold`
                fields: vec![("REASON", d.reason.as_str().to_string())],
            });
        }
        if restores(&self.settings) {
            self.out.push(Effect::Persist(Persist::Relay { on }));
        }
        self.state_dirty = true;
        let notes = self.dli.relay(now, on);
        self.dli_notes(notes);
        self.publish_dli(now);
    }

    fn on_reading(&mut self, started: Instant, result: Result<Measurement, SensorError>) {
        match result {
            Ok(Measurement::Lux { lux, raw }) => {
                self.accept_reading(lux, started);
                self.dli_reading = Some(false);
                self.pending_fact = Some(SensorFact::Reading {
                    lux,
                    raw,
                    at: started,
                });
            }
            Ok(Measurement::Saturated) => {
                self.set_sensor_status(SensorStatus::Saturated);
                self.dli_reading = Some(true);
                self.pending_fact = Some(SensorFact::Saturated { at: started });
            }
            Err(e) => {
                self.log(Severity::Debug, format!("sensor read failed: {e}"));
                self.set_sensor_status(SensorStatus::Error);
                self.pending_fact = Some(SensorFact::Error { at: started });
                self.last_sensor_error = Some(e.to_string());
            }
        }
    }

    /// A valid lux value, from the BH1750 or from `sensor.topic`.
    fn accept_reading(&mut self, lux: f64, at: Instant) {
        self.last_reading = Some(Reading { lux, at });
        self.fresh_reading = true;
        self.set_sensor_status(SensorStatus::Ok);
        // With `sensor.source = "mqtt"` on `P/luminosity` itself the reading is already there: echoing it would
        // feed it back to us.
        if !(self.settings.sensor.source == SensorSource::Mqtt
            && self.settings.sensor.topic == self.topics.luminosity)
        {
            self.publish(self.topics.luminosity.clone(), format_lux(lux), false);
        }
        self.state_dirty = true;
    }

    fn set_sensor_status(&mut self, status: SensorStatus) {
        if self.sensor_status != status {
            self.sensor_status = status;
            self.state_dirty = true;
        }
    }

    fn on_message(&mut self, now: Now, topic: &str, payload: &[u8], retained: bool) {
        if self.discovery.enabled && topic == self.announcer.status_topic() {
            let delay = discovery::jitter(&self.discovery.device_id, self.reannouncements);
            let status = self
                .announcer
                .on_message(now.at, topic, payload, retained, delay);
            if let StatusMessage::Scheduled(at) = status {
                self.reannouncements += 1;
                self.log(
                    Severity::Info,
                    format!(
                        "Home Assistant is online ({topic}): announcing again in {:.1} s",
                        at.saturating_duration_since(now.at).as_secs_f64()
                    ),
                );
            }
            return;
        }
        if topic == self.topics.light_set {
            if retained {
                self.log(
                    Severity::Warning,
                    format!(
                        "ignoring a retained command on {topic} ({}): commands must not be retained; clear it \
                         with `mosquitto_pub -r -n -t {topic}`",
                        printable(payload)
                    ),
                );
                return;
            }
            match parse_light_set(payload) {
                Ok(cmd) => self.on_command(now, cmd),
                Err(e) => {
                    self.reject(
                        now,
                        format!("rejected command on {topic} ({}): {e}", printable(payload)),
                    );
                    self.publish(self.topics.light_set_error.clone(), e.to_string(), false);
                }
            }
        } else if topic == self.topics.dli_target_set {
            self.on_dli_target(now, topic, payload, retained);
        } else if self.settings.sensor.source == SensorSource::Mqtt
            && topic == self.settings.sensor.topic
        {
            match parse_lux(payload) {
                Some(lux) => {
                    self.accept_reading(lux, now.at);
                    self.dli_reading = Some(false);
                    // No raw count from a remote sensor: stuck detection works on the lux value's bits.
                    self.pending_fact = Some(SensorFact::Reading {
                        lux,
                        raw: lux_fingerprint(lux),
                        at: now.at,
                    });
                }
                None => self.reject(
                    now,
                    format!(
                        "rejected reading on {topic} ({}): not a non-negative number",
                        printable(payload)
                    ),
                ),
            }
        }
    }

    /// Log a rejected input within the budget.
    fn reject(&mut self, now: Now, line: String) {
        let allowance = self.bad_input_log.allow(now.at);
        if let Some(n) = allowance.suppressed_before {
            self.log(
                Severity::Warning,
                format!("{n} more rejected MQTT inputs were not logged in the last minute"),
            );
        }
        if allowance.log {
            self.log(Severity::Warning, line);
        }
    }

    /// `P/dli/target/set`: a new target, applied live until the next restart or reload; bad values are rejected
    /// like bad light commands (a warning, the reason on `P/dli/target/set/error`).
    fn on_dli_target(&mut self, now: Now, topic: &str, payload: &[u8], retained: bool) {
        if retained {
            self.log(
                Severity::Warning,
                format!(
                    "ignoring a retained DLI target on {topic} ({}): commands must not be retained; clear it \
                     with `mosquitto_pub -r -n -t {topic}`",
                    printable(payload)
                ),
            );
            return;
        }
        match dli::parse_target(payload) {
            Ok(mol) => {
                self.dli.set_target(mol);
                self.log(
                    Severity::Info,
                    format!(
                        "DLI target set to {mol} mol/m²/day by {topic} (until the next restart or reload)"
                    ),
                );
                self.publish_dli(now);
            }
            Err(e) => {
                self.reject(
                    now,
                    format!(
                        "rejected DLI target on {topic} ({}): {e}",
                        printable(payload)
                    ),
                );
                self.publish(self.topics.dli_target_set_error.clone(), e, false);
            }
        }
    }

    fn on_command(&mut self, now: Now, cmd: Command) {
        let inputs = self.inputs(now);
        let decision = self.controller.command(&inputs, cmd);
        self.log(Severity::Debug, format!("command {cmd:?} accepted"));
        self.apply(decision, true);
    }

    /// SIGHUP: the live keys (`[control]`, `[monitor]`, `[dli]`) apply, the rest needs a restart.
    fn reload(&mut self, result: Result<Box<Settings>, String>) {
        match result {
            Ok(new) => {
                let live = config::reload::live_changes(&self.settings, &new);
                // dli.lamp_watts is live: it decides whether Home Assistant gets an energy entity.
                let discovery = DiscoverySettings {
                    lamp_watts: new.dli.lamp_watts,
                    ..self.discovery.clone()
                };
                if discovery != self.discovery {
                    self.discovery = discovery;
                    let a = discovery::announcement(&self.discovery);
                    self.publish(a.topic, a.payload, true);
                }
                for key in config::restart_required_changes(&self.settings, &new) {
                    self.log(
                        Severity::Warning,
                        format!(
                            "configuration reload: {key} changed; restart greenhoused to apply it"
                        ),
                    );
                }
                self.controller.set_settings(new.control.clone());
                self.monitor.set_settings(new.monitor.clone());
                self.monitor.set_lamp_expected(lamp_expected(&new.control));
                self.dli.set_settings(new.dli.clone(), new.control.clone());
                self.settings.control = new.control;
                self.settings.monitor = new.monitor;
                self.settings.dli = new.dli;
                self.state_dirty = true;
                let changed = if live.is_empty() {
                    "no live key changed".to_string()
                } else {
                    format!("changed: {}", live.join(", "))
                };
                self.log(
                    Severity::Info,
                    format!("configuration reloaded: [control], [monitor] and [dli] applied ({changed})"),
                );
            }
            Err(e) => self.log(
                Severity::Error,
                format!("configuration reload rejected, keeping the running configuration:\n{e}"),
            ),
        }
    }

    /// Stop: relay to `relay.on_stop` (through the shell), then the final state.
    fn stop(&mut self) {
        let notes = self.dli.tick(self.now);
        self.dli_notes(notes);
        self.save_dli();
        let target = match self.settings.relay.on_stop {
            OnStop::Off => Some(false),
            OnStop::On => Some(true),
            OnStop::Keep => None,
        };
        self.phase = Phase::Stopping;
        match target {
            Some(on) if on != self.light || self.readback != Some(on) => {
                self.relay_pending = Some(on);
                self.out.push(Effect::SetRelay(on));
            }
            _ => self.finish_stop(),
        }
    }

    /// After the stop's relay write (or none): final `P/light`, then `P/status offline`.
    fn finish_stop(&mut self) {
        self.phase = Phase::Stopped;
        // The last minutes of history go to disk at stop (the periodic flush is at most every 10 minutes).
        if let Some(w) = self.history.flush(self.now.local.naive_local()) {
            self.out.push(Effect::Persist(Persist::History(w)));
        }
        self.publish_light_and_mode();
        self.publish(self.topics.status.clone(), "offline".into(), true);
        self.log(
            Severity::Info,
            format!(
                "stopped: light {} (relay.on_stop = {})",
                on_off(self.light),
                format!("{:?}", self.settings.relay.on_stop).to_lowercase()
            ),
        );
    }

    // ----- evaluation -----

    fn inputs(&self, now: Now) -> Inputs {
        let stale_after = self.settings.sensor.stale_after;
        let sensor = match self.last_reading {
            Some(r) if now.at.saturating_duration_since(r.at) < stale_after => {
                Some(SensorInput::Reading {
                    lux: r.lux,
                    at: r.at,
                })
            }
            Some(_) => Some(SensorInput::Stale),
            None if now.at.saturating_duration_since(self.started) >= stale_after => {
                Some(SensorInput::Stale)
            }
            None => None,
        };
        Inputs {
            now: now.at,
            local_minute: now.minute_of_day(),
            sensor,
        }
    }

    fn is_stale(&self, at: Instant) -> bool {
        let stale_after = self.settings.sensor.stale_after;
        let since = self.last_reading.map_or(self.started, |r| r.at);
        at.saturating_duration_since(since) >= stale_after
    }

    /// Run the rule and the monitor, drive the relay (`drive`: not while answering a relay event, so a relay
    /// that does not follow is asked again on the next event, not in a loop), publish what changed.
    fn evaluate(&mut self, now: Now, drive: bool) {
        if self.announcer.poll(now.at) {
            self.reannounce(now);
        }
        let minute = now.local.timestamp().div_euclid(60);
        if self.minute != Some(minute) {
            self.minute = Some(minute);
            self.on_minute(now);
        }
        if self.is_stale(now.at) && self.sensor_status == SensorStatus::Ok {
            self.set_sensor_status(SensorStatus::Stale);
        }
        self.dli
            .set_learned_lamp_lux(self.controller.lamp_learner().estimate());
        let notes = self.dli.tick(now);
        self.dli_notes(notes);
        let decision = self.decide(now);
        self.apply(decision, drive);
        self.record_history(now, decision);
        if let Some(saturated) = self.dli_reading.take() {
            let ambient = if saturated {
                Some(SATURATED_LUX)
            } else {
                decision.ambient_lux
            };
            if let Some(lux) = ambient {
                let notes = self.dli.reading(now, lux, saturated);
                self.dli_notes(notes);
            }
        }

        let facts = Facts {
            now: now.at,
            demanded_on: decision.light_on,
            commanded_on: self.commanded,
            readback_on: self.readback,
            sensor: self.pending_fact.take(),
            stale: self.is_stale(now.at),
        };
        for ev in self.monitor.evaluate(&facts) {
            self.publish_alert(now, &ev);
        }
        // While a relay write is out, the retained state waits for its answer: `P/light`, `P/mode` and `P/state`
        // then go out once, showing what the relay did.
        if self.relay_pending.is_none() {
            self.publish_light_and_mode();
            self.publish_health();
            if self.state_dirty {
                self.publish_state(now);
            }
        }
    }

    /// Feed the history with this evaluation; hand out its bytes when a flush is due (at most every 10 minutes).
    fn record_history(&mut self, now: Now, decision: Decision) {
        let local = now.local.naive_local();
        let fresh =
            std::mem::take(&mut self.fresh_reading) && self.sensor_status == SensorStatus::Ok;
        let reading = self.last_reading.filter(|_| fresh);
        self.history.update(
            local,
            history::Sample {
                lux: reading.map(|r| r.lux),
                ambient_lux: reading.and(decision.ambient_lux),
                light_on: self.light,
                window_open: self.window_open,
            },
        );
        if self.history.flush_due(local) {
            if let Some(w) = self.history.flush(local) {
                self.out.push(Effect::Persist(Persist::History(w)));
            }
        }
    }

    /// Home Assistant came (back) online: the discovery config again, then every retained state (forgetting what
    /// was published makes this evaluation publish it all again), so its entities have values at once.
    fn reannounce(&mut self, now: Now) {
        let a = discovery::announcement(&self.discovery);
        self.publish(a.topic, a.payload, true);
        self.publish(self.topics.status.clone(), "online".into(), true);
        self.published_light = None;
        self.published_mode = None;
        self.published_health = None;
        self.state_dirty = true;
        self.publish_dli(now);
    }

    /// Once per local minute (the first evaluation in it): the window edge. The place for per-minute work
    /// (aggregates, daily reports).
    fn on_minute(&mut self, now: Now) {
        let open = self.controller.window_open(now.minute_of_day());
        if open != self.window_open {
            self.window_open = open;
            self.state_dirty = true;
        }
        self.publish_dli(now);
        // Today's running figures, so the 30-day chart includes today.
        if let Some(day) = history_day(&self.dli.payload(&now)) {
            self.history.set_day(day);
        }
        if now.at.saturating_duration_since(self.dli_saved_at) >= DLI_SAVE_EVERY {
            self.save_dli();
        }
    }

    /// The strategy's decision for `now`: the threshold rule, or with `strategy = "dli"` the DLI plan's demand
    /// (the band while no DLI decision is possible); dwell, window, sensor failure and overrides apply to both.
    fn decide(&mut self, now: Now) -> Decision {
        let inputs = self.inputs(now);
        let demand = match self.settings.control.strategy {
            Strategy::Dli => self.dli.plan(&now).demand.map(|d| d.for_controller()),
            Strategy::Threshold => None,
        };
        self.controller.decide_with(&inputs, demand)
    }

    /// What the DLI engine said: log lines, and at a light-day's end the retained `P/report/daily`, its notice
    /// line, and the state saved.
    fn dli_notes(&mut self, notes: Vec<Note>) {
        for note in notes {
            match note {
                Note::Log { level, line } => self.log(severity(level), line),
                Note::DayClosed(report) => {
                    // The closed day's final figures for the dashboard's daily history.
                    if let Some(day) = history_day(&report.figures) {
                        self.history.set_day(day);
                    }
                    self.publish(self.topics.report_daily.clone(), report.to_json(), true);
                    self.log(Severity::Notice, report.log_line.clone());
                    self.save_dli();
                }
            }
        }
    }

    /// Retained `P/dli` (not while stopping: the final state is `P/light` and `P/status`).
    fn publish_dli(&mut self, now: Now) {
        if self.phase != Phase::Running {
            return;
        }
        let payload = self.dli.payload(&now).to_json();
        self.publish(self.topics.dli.clone(), payload, true);
    }

    fn save_dli(&mut self) {
        self.dli_saved_at = self.now.at;
        self.out.push(Effect::Persist(Persist::Dli(Box::new(
            self.dli.state().clone(),
        ))));
    }

    /// Take the decision; ask the relay for it (unless already asked).
    fn apply(&mut self, decision: Decision, drive: bool) {
        let previous = self.decision.replace(decision);
        if drive && self.relay_pending.is_none() && self.relay_disagrees(decision.light_on) {
            // A new switch, or the line does not show what was written (stuck or disturbed): write again,
            // idempotently.
            self.relay_pending = Some(decision.light_on);
            self.out.push(Effect::SetRelay(decision.light_on));
        }
        if previous.map(|p| (p.reason, p.mode)) != Some((decision.reason, decision.mode)) {
            self.state_dirty = true;
        }
    }

    /// Whether the relay must be written to show `want`: a switch, or a line that did not read back as the light
    /// the core believes in (a failed read, a disturbed line).
    fn relay_disagrees(&self, want: bool) -> bool {
        want != self.light || self.readback != Some(self.light)
    }

    // ----- output -----

    fn publish(&mut self, topic: String, payload: String, retained: bool) {
        self.out.push(Effect::Publish {
            topic,
            payload,
            retained,
        });
    }

    fn log(&mut self, level: Severity, line: String) {
        self.out.push(Effect::Log {
            level,
            line,
            fields: Vec::new(),
        });
    }

    fn notify_status(&mut self) {
        let line = self.status_line();
        if self.notified.as_ref() != Some(&line) {
            self.notified = Some(line.clone());
            self.out.push(Effect::Notify(line));
        }
    }

    fn publish_light_and_mode(&mut self) {
        // `P/light` is what the pin says, not what was asked for.
        if self.published_light != Some(self.light) {
            self.published_light = Some(self.light);
            self.publish(self.topics.light.clone(), on_off(self.light).into(), true);
            self.state_dirty = true;
            self.notify_status();
        }
        if let Some(d) = self.decision {
            if self.published_mode != Some(d.mode) {
                self.published_mode = Some(d.mode);
                self.publish(self.topics.mode.clone(), d.mode.as_str().into(), true);
                self.state_dirty = true;
            }
        }
    }

    fn publish_alert(&mut self, now: Now, ev: &AlertEvent) {
        let detail = match (&self.last_sensor_error, ev.alert, ev.active) {
            (Some(cause), Alert::SensorError, true) => format!("{} ({cause})", ev.detail),
            _ => ev.detail.clone(),
        };
        let (level, verb) = if ev.active {
            (Severity::Warning, "raised")
        } else {
            (Severity::Notice, "cleared")
        };
        self.out.push(Effect::Log {
            level,
            line: format!("alert {} {verb}: {detail}", ev.alert.as_str()),
            fields: vec![("ALERT", ev.alert.as_str().to_string())],
        });
        let payload = json!({
            "alert": ev.alert.as_str(),
            "active": ev.active,
            "detail": detail,
            "ts": now.timestamp(),
        });
        self.publish(self.topics.alert.clone(), payload.to_string(), false);
    }

    fn alert_names(&self) -> Vec<&'static str> {
        self.monitor
            .active()
            .into_iter()
            .map(|a| a.as_str())
            .collect()
    }

    fn publish_health(&mut self) {
        let alerts = self.alert_names();
        if self.published_health.as_ref() != Some(&alerts) {
            let payload = json!({ "ok": alerts.is_empty(), "alerts": alerts });
            self.publish(self.topics.health.clone(), payload.to_string(), true);
            self.published_health = Some(alerts);
            self.state_dirty = true;
        }
    }

    fn publish_state(&mut self, now: Now) {
        self.state_dirty = false;
        let Some(d) = self.decision else { return };
        let payload = json!({
            "lux": self.last_reading.map(|r| round2(r.lux)),
            "ambient_lux": d.ambient_lux.map(round2),
            "light": on_off(self.light),
            "mode": d.mode.as_str(),
            "reason": d.reason.as_str(),
            "sensor": self.sensor_status.as_str(),
            "window_open": self.window_open,
            // The broker this gateway is connected to (one of a failover list), null while offline.
            "broker": self.broker_connected.then_some(self.broker_name.as_deref()).flatten(),
            "ts": now.timestamp(),
        });
        self.publish(self.topics.state.clone(), payload.to_string(), true);
        self.notify_status();
    }
}

/// A light-day's DLI figures as a daily history entry (None if the day is not a `YYYY-MM-DD` date).
fn history_day(p: &DliPayload) -> Option<history::Day> {
    let date = chrono::NaiveDate::parse_from_str(&p.day, "%Y-%m-%d").ok()?;
    Some(history::Day {
        day: history::Day::day_number(date),
        sun_mol: p.sun_mol as f32,
        lamp_mol: p.lamp_mol as f32,
        target_mol: p.target_mol as f32,
        lamp_on_s: p.lamp_on_s.max(0.0).round() as u32,
        lamp_kwh: p.lamp_kwh as f32,
        cost: p.cost as f32,
    })
}

/// The core's severity for a log line of the DLI engine.
fn severity(level: log::Level) -> Severity {
    match level {
        log::Level::Error => Severity::Error,
        log::Level::Warn => Severity::Warning,
        log::Level::Info => Severity::Info,
        log::Level::Debug => Severity::Debug,
        log::Level::Trace => Severity::Trace,
    }
}

/// Whether `relay.on_start` or `relay.on_boot` restores the saved relay state (then every switch is saved).
pub fn restores(settings: &Settings) -> bool {
    settings.relay.on_start == OnStart::Restore || settings.relay.on_boot == OnStart::Restore
}

/// Whether switching the lamp should change the reading (the stuck-sensor check needs it); not taken from the
/// learned value, since a stuck sensor teaches the learner 0.
fn lamp_expected(control: &config::ControlSettings) -> bool {
    !matches!(control.lamp_lux, config::LampLux::Fixed(x) if x <= 0.0)
}

/// The broker as the start line names it.
pub fn broker_display(settings: &Settings) -> String {
    match &settings.mqtt.url {
        config::BrokerUrl::Embedded => format!("embedded on {}", settings.mqtt.embedded_listen),
        remote => remote.to_string(),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod dli_tests;
