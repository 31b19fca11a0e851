//! The daemon shell around the [`Core`]: it moves events in and carries effects out, and decides nothing.
//!
//! One task (the shell loop) owns the core, the relay and the persisted state. The sensor thread sends readings,
//! the MQTT task sends connection events and messages, signal-hook sends signals; the loop also ticks at the
//! core's [`Core::next_wakeup`], when the systemd watchdog is due, and after 1.5 s without any of these. Effects
//! go to the relay (write, read back, answer with [`Event::Relay`]), the MQTT outbox (never blocks), the state
//! file, sd_notify and the log. With `--mock-hardware` the shell also handles `P/mock/set` (the simulated world's
//! fault switches and `stall_loop_s`); the core never sees it.
//!
//! Time comes from [`Hardware::clock`]: real time, or the mock's scaled clock, which the sensor thread, the
//! simulated chip, the light world and the core all share.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use log::{debug, info, warn};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{self, SensorSource, Settings};
use crate::core::text::{printable, LogBudget};
use crate::core::{Core, Effect, Event, Now, Persist, Start};
use crate::hw::mock::{Clock, World};
use crate::hw::{LuxSensor, Measurement, Relay, SensorError};
use crate::mqtt::client;
use crate::mqtt::outbox::Outbox;
use crate::mqtt::topics::Topics;
use crate::{logging, persist, systemd};

/// How long a stop may wait for the final messages to reach the broker (the stop must finish within 2 s).
const MQTT_SHUTDOWN_LIMIT: Duration = Duration::from_millis(1500);

/// Longest pause between probes of a failing sensor.
const SENSOR_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// The control loop runs the core at least this often. Above one second so that at `interval_s = 1` the readings
/// (a second apart) always come first and the loop wakes once per reading, not a second time for a tick.
const QUIET_TICK: Duration = Duration::from_millis(1500);

/// Opens (and after a failure re-opens) the lux sensor; called from the sensor thread.
pub type SensorFactory = Box<dyn FnMut() -> Result<Box<dyn LuxSensor>, SensorError> + Send>;

/// The hardware the shell drives, real or simulated.
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

/// Where the relay state (with the boot id) is kept: see [`persist`].
pub fn state_file() -> PathBuf {
    persist::state_file(std::env::var("STATE_DIRECTORY").ok().as_deref())
}

/// Where the DLI day state is kept (beside the relay state).
pub fn dli_state_file() -> PathBuf {
    persist::dli_state_file(std::env::var("STATE_DIRECTORY").ok().as_deref())
}

/// The saved DLI day state; a missing file is a first start, a torn or invalid one is reported and ignored.
fn load_dli_state(path: &std::path::Path) -> Option<crate::core::dli::DliState> {
    match persist::load_text(path) {
        Ok(None) => None,
        Ok(Some(text)) => match crate::core::dli::DliState::from_json(&text) {
            Ok(state) => Some(state),
            Err(e) => {
                warn!(
                    "ignoring the saved DLI day state in {}: {e}; the day's light integral starts from zero",
                    path.display()
                );
                None
            }
        },
        Err(e) => {
            warn!(
                "cannot read the saved DLI day state {}: {e}; the day's light integral starts from zero",
                path.display()
            );
            None
        }
    }
}

/// What the sensor thread reports.
#[derive(Debug)]
struct SensorEvent {
    result: Result<Measurement, SensorError>,
    /// When the measurement started (the light state at that instant is what the sensor saw).
    at: Instant,
    /// When the thread measures next: an accelerated clock is held there once the core has this reading.
    next: Instant,
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

    // `url = "embedded"`: host rumqttd, or use the MQTT broker already answering on embedded_listen (kept alive
    // for the whole run: rumqttd has no stop).
    let local = match settings.mqtt.url {
        config::BrokerUrl::Embedded => Some(crate::mqtt::broker::local_broker(
            settings.mqtt.embedded_listen,
            &settings.mqtt.client_id,
        )?),
        config::BrokerUrl::Remote(_) => None,
    };
    if let Some(crate::mqtt::broker::LocalBroker::Hosted(hosted)) = &local {
        // Our clients connect at once: let rumqttd's listener come up first (milliseconds).
        hosted.wait_ready(Duration::from_secs(5))?;
    }

    let mut subscriptions = vec![topics.light_set.clone(), topics.dli_target_set.clone()];
    if hw.mock.is_some() {
        subscriptions.push(topics.mock_set.clone());
    }
    if settings.sensor.source == SensorSource::Mqtt {
        subscriptions.push(settings.sensor.topic.clone());
    }
    if settings.homeassistant.discovery {
        // Home Assistant's birth message: the core re-announces after it.
        subscriptions.push(settings.homeassistant.status_topic.clone());
    }
    let (outbox, mut mqtt_events, mqtt_task) = client::spawn(
        settings.mqtt.clone(),
        topics.status.clone(),
        subscriptions,
        cancel.child_token(),
    )?;
    let broker_name = match &local {
        Some(crate::mqtt::broker::LocalBroker::Existing(addr)) => {
            format!(
                "mqtt://{} (local broker)",
                crate::mqtt::broker::connect_addr(*addr)
            )
        }
        _ => client::display_url(&settings.mqtt),
    };

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

    let mut relay = hw.relay;
    let dli_file = dli_state_file();
    let mut start = Start::new(relay.read_back().map_err(|e| e.to_string()));
    start.dli = load_dli_state(&dli_file);
    let state_file = crate::core::restores(&settings).then(state_file);
    let listen = settings.http.listen;
    let mut core = Core::new(settings, start, hw.clock.moment());
    let state_dir = self::state_file()
        .parent()
        .map(std::path::Path::to_path_buf);
    let (dashboard, history) = crate::http::shell::Dashboard::start(listen, state_dir);
    core.restore_history(history);
    let mut shell = Shell {
        dashboard: Some(dashboard),
        relay,
        clock: hw.clock,
        outbox: outbox.clone(),
        state_file,
        dli_file,
        mock: hw.mock,
        mock_topic: topics.mock_set,
        bad_input_log: LogBudget::default(),
    };
    // The first event announces the start (`P/status online`) and evaluates.
    shell.run(&mut core, Event::Tick);

    let mut watchdog = systemd::Watchdog::from_env();
    notify(systemd::ready(&core.status_line()));

    // Besides events, the loop runs the core at its own deadlines, after QUIET_TICK without any event (at
    // `interval_s = 1` the readings come first, so this costs no wake-up of its own), when the watchdog is due,
    // and each second while the trimmer watches (start-up, a burst); the trimmer is asked once a second.
    let mut next_second = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut trimmer = crate::memory::Trimmer::default();
    loop {
        let now = tokio::time::Instant::now();
        let wake = [
            watchdog.next_due().map(tokio::time::Instant::from_std),
            trimmer.watching().then_some(next_second),
        ]
        .into_iter()
        .flatten()
        .fold(
            now + shell.until(core.next_wakeup()).min(QUIET_TICK),
            tokio::time::Instant::min,
        );
        trimmer.event();
        tokio::select! {
            Some(ev) = sensor_rx.recv() => {
                shell.run(&mut core, Event::Reading { started: ev.at, result: ev.result });
                // An accelerated clock stood still since the measurement; the core has it now, so simulated time
                // may run on to the next one.
                shell.clock.hold_until(ev.next);
            }
            Some(ev) = mqtt_events.recv() => match ev {
                // The broker of a failover list the client task is on now.
                client::Event::Connected => shell.run(
                    &mut core,
                    Event::Broker {
                        connected: true,
                        broker: Some(outbox.broker().unwrap_or_else(|| broker_name.clone())),
                    },
                ),
                client::Event::Disconnected { .. } => {
                    shell.run(&mut core, Event::Broker { connected: false, broker: None });
                }
                client::Event::Message { topic, payload, retained } => {
                    if shell.mock.is_some() && topic == shell.mock_topic {
                        shell.mock_set(&payload);
                        // The world changed: let the core look at once.
                        shell.run(&mut core, Event::Tick);
                    } else {
                        shell.run(&mut core, Event::Message { topic, payload, retained });
                    }
                }
            },
            Some(sig) = signals.next() => {
                if sig == signal_hook::consts::SIGHUP {
                    // RELOADING=1 … READY=1, also when the new file is rejected.
                    notify(systemd::reloading());
                    let loaded = config::load(config_path.as_deref())
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    shell.run(&mut core, Event::Reload(loaded));
                    notify(systemd::ready(&core.status_line()));
                } else {
                    info!("received {}, stopping", if sig == signal_hook::consts::SIGINT { "SIGINT" } else { "SIGTERM" });
                    break;
                }
            }
            _ = tokio::time::sleep_until(wake) => shell.run(&mut core, Event::Tick),
        }
        let now = tokio::time::Instant::now();
        if now >= next_second {
            next_second = now + Duration::from_secs(1);
            if trimmer.second() {
                crate::memory::release_free_memory();
            }
        }
        // Only this loop pings the watchdog: if it hangs, systemd restarts the daemon.
        notify(watchdog.tick(Instant::now()).map(|_| ()));
    }

    notify(systemd::stopping());
    shell.run(&mut core, Event::Stop);
    if let Some(d) = shell.dashboard.take() {
        d.stop();
    }
    signals_handle.close();
    // The MQTT task flushes what the core published last (final light, offline) within a bound, then disconnects.
    client::shutdown(&outbox, mqtt_task, MQTT_SHUTDOWN_LIMIT).await;
    cancel.cancel();
    // A sensor thread blocked on a full channel gets an error instead of waiting forever.
    drop(sensor_rx);
    if let Some(handle) = sensor_thread {
        handle.thread().unpark();
        // The thread checks the token between cycles: at most one conversion (< 1 s) to wait for.
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    Ok(())
}

/// What the shell owns besides the core: where effects go.
struct Shell {
    /// History file and HTTP server.
    dashboard: Option<crate::http::shell::Dashboard>,
    relay: Box<dyn Relay>,
    clock: Arc<dyn Clock>,
    outbox: Outbox,
    /// Where to persist the relay state (`relay.on_start` or `relay.on_boot` = `"restore"` only).
    state_file: Option<PathBuf>,
    /// Where the DLI day state is saved.
    dli_file: PathBuf,
    mock: Option<World>,
    mock_topic: String,
    /// Keeps a flood of bad `P/mock/set` input from flooding the journal.
    bad_input_log: LogBudget,
}

impl Shell {
    fn now(&self) -> Now {
        self.clock.moment()
    }

    /// Real time until the core's wake-up on the shell's clock.
    fn until(&self, wakeup: Option<Instant>) -> Duration {
        match wakeup {
            Some(at) => self
                .clock
                .real_duration(at.saturating_duration_since(self.clock.now())),
            None => Duration::from_secs(3600),
        }
    }

    /// Hand `event` to the core and execute its effects in order (a relay write is answered at once).
    fn run(&mut self, core: &mut Core, event: Event) {
        let mut effects: VecDeque<Effect> = core.handle(self.now(), event).into();
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::SetRelay(on) => {
                    let write = self.relay.set(on).map_err(|e| e.to_string());
                    let read_back = self.relay.read_back().map_err(|e| e.to_string());
                    let answer = Event::Relay {
                        requested: on,
                        write,
                        read_back,
                    };
                    effects.extend(core.handle(self.now(), answer));
                }
                Effect::Publish {
                    topic,
                    payload,
                    retained,
                } => self.outbox.publish(topic, payload, retained),
                Effect::Persist(Persist::Relay { on }) => self.persist_relay(on),
                Effect::Persist(Persist::History(w)) => {
                    if self.dashboard.as_ref().is_some_and(|d| !d.write(&w)) {
                        core.history_write_failed();
                    }
                }
                Effect::Persist(Persist::Dli(state)) => self.persist_dli(&state),
                Effect::Notify(line) => notify(systemd::status(&line)),
                Effect::Log {
                    level,
                    line,
                    fields,
                } => {
                    let fields: Vec<(&str, &str)> =
                        fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    logging::log_severity(level, &line, &fields, file!(), line!());
                }
            }
        }
        let local = self.now().local.naive_local();
        if let Some(d) = self.dashboard.as_mut() {
            d.publish(&core.view(), core.history(), local);
        }
    }

    fn persist_dli(&self, state: &crate::core::dli::DliState) {
        if let Err(e) = persist::save_bytes(&self.dli_file, state.to_json().as_bytes()) {
            warn!(
                "cannot save the DLI day state to {}: {e} (the day so far would be lost at a restart)",
                self.dli_file.display()
            );
        }
    }

    fn persist_relay(&self, on: bool) {
        if let Some(path) = &self.state_file {
            if let Err(e) = persist::save(path, on) {
                warn!(
                    "cannot save the relay state to {} for relay.on_start/on_boot = restore: {e}",
                    path.display()
                );
            }
        }
    }

    /// `P/mock/set`: steer the simulated world (only with `--mock-hardware`).
    fn mock_set(&mut self, payload: &[u8]) {
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
                let allowance = self.bad_input_log.allow(Instant::now());
                if let Some(n) = allowance.suppressed_before {
                    warn!("{n} more rejected MQTT inputs were not logged in the last minute");
                }
                if allowance.log {
                    warn!("rejected {} ({}): {e}", self.mock_topic, printable(payload));
                }
            }
        }
    }
}

/// The blocking sensor loop: one auto-ranged measurement per interval on the shell's clock, re-probing a failing
/// sensor with backoff. An accelerated clock ([`Clock::hold_until`]) stands still from each measurement until the
/// core has handled it, so the simulated world never runs ahead of the readings the core has seen (a late
/// thread or a busy core slows simulated time down instead of making readings stale).
fn spawn_sensor_thread(
    mut factory: SensorFactory,
    clock: Arc<dyn Clock>,
    interval: Duration,
    tx: mpsc::Sender<SensorEvent>,
    cancel: CancellationToken,
) -> std::thread::JoinHandle<()> {
    // Hold an accelerated clock from now on: the thread may take a while to get going.
    let mut next = clock.now();
    clock.hold_until(next);
    std::thread::Builder::new()
        .name("sensor".into())
        .spawn(move || {
            let mut sensor: Option<Box<dyn LuxSensor>> = None;
            let mut failures: u32 = 0;
            while !cancel.is_cancelled() {
                let at = clock.now();
                // The conversion waits run on the clock (and move its hold along).
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
                // Backoff while failing: interval × 2^(failures-1), capped at 5 s (never below the interval): a
                // probe costs one I2C transaction, and a re-plugged sensor is back within seconds.
                let wait = if failures == 0 {
                    interval
                } else {
                    let factor = 1u32 << (failures - 1).min(5);
                    (interval * factor).min(SENSOR_BACKOFF_CAP).max(interval)
                };
                next += wait;
                let now = clock.now();
                if next < now {
                    next = now;
                }
                if tx.blocking_send(SensorEvent { result, at, next }).is_err() {
                    break;
                }
                wait_or_cancel(&cancel, clock.as_ref(), next);
            }
        })
        .expect("spawning a thread only fails when the process is out of resources")
}

/// Wait until `until` on `clock`, returning early when cancelled: the stopper unparks this thread after
/// cancelling, so the wait costs no wake-ups in between.
fn wait_or_cancel(cancel: &CancellationToken, clock: &dyn Clock, until: Instant) {
    while !cancel.is_cancelled() {
        let left = until.saturating_duration_since(clock.now());
        if left.is_zero() {
            break;
        }
        // At least a microsecond, so an accelerated clock's rounding cannot make this spin.
        std::thread::park_timeout(clock.real_duration(left).max(Duration::from_micros(1)));
    }
}

/// sd_notify failures are worth a debug line, never more: the daemon runs fine without a supervisor.
fn notify(result: Result<(), systemd::NotifyError>) {
    if let Err(e) = result {
        debug!("sd_notify: {e}");
    }
}
