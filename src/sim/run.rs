//! One simulated run: the production [`Core`], the real BH1750 driver with auto-ranging over the simulated chip, the mock relay
//! and lamp, and sunlight from a [`Sunlight`], on a virtual clock that jumps from one wake-up to the next.
//!
//! Wake-ups are the earliest of: the core's `next_wakeup` (dwell end, override expiry, the next minute for the
//! window, staleness, monitor deadlines), the next sensor
//! measurement (every `sensor.interval_s`, start to start, as the daemon's sensor thread does) and the end of the
//! running measurement's conversion, when its result is handed to the core. The measurement itself runs the real
//! driver code at its start: the driver's conversion wait advances the sensor's clock (not the run's), the
//! simulated chip latches the light of the end of the conversion (sunlight interpolated at that instant, plus the
//! lamp as it is at the start), and the result is delivered when the run's clock reaches that end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use embedded_hal::i2c::{ErrorType, I2c, Operation};

use super::weather::{Sampler, Sunlight};
use crate::config::{Ambient, MockSettings, Settings};
use crate::core::{Core, Effect, Event, Now, Start};
use crate::hw::bh1750::AutoRanging;
use crate::hw::mock::{Clock, ClockDelay, MockRelay, SimBh1750, World};
use crate::hw::{LuxSensor, Measurement, Relay, SensorError};
use crate::logging::Severity;

/// The clock of the simulated hardware: it stands still until the run moves it or the driver's conversion wait
/// sleeps on it. Nanoseconds since `base` in an atomic, so reading it costs no lock.
pub struct SimClock {
    base: Instant,
    start_local: NaiveDateTime,
    nanos: AtomicU64,
}

impl SimClock {
    fn new(base: Instant, start_local: NaiveDateTime) -> Self {
        SimClock {
            base,
            start_local,
            nanos: AtomicU64::new(0),
        }
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn set(&self, since_base: Duration) {
        self.nanos
            .store(duration_nanos(since_base), Ordering::Relaxed);
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        self.base + self.elapsed()
    }
    fn local_now(&self) -> DateTime<FixedOffset> {
        let e = chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::zero());
        (self.start_local + e).and_utc().fixed_offset()
    }
    fn sleep(&self, d: Duration) {
        self.nanos.fetch_add(duration_nanos(d), Ordering::Relaxed);
    }
}

/// The simulated I2C bus with the sunlight of the weather: before each transaction the world's ambient light is
/// set to the sunlight at the clock's now, so the chip latches the light of the moment it completes a conversion.
struct SunlitBus<'a> {
    chip: SimBh1750,
    world: World,
    clock: Arc<SimClock>,
    sun: Sampler<'a>,
    /// The clock reading the world's light was last set for (the clock only moves in the conversion wait, so
    /// most transactions of a measurement reuse it).
    lit_at: Option<Duration>,
}

impl ErrorType for SunlitBus<'_> {
    type Error = <SimBh1750 as ErrorType>::Error;
}

impl I2c for SunlitBus<'_> {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let now = self.clock.elapsed();
        if self.lit_at != Some(now) {
            self.lit_at = Some(now);
            self.world
                .set_ambient_lux(Some(self.sun.lux(now.as_secs_f64())));
        }
        self.chip.transaction(address, operations)
    }
}

/// What a run observed, for the report.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Lamp-on periods `[from, to)` in seconds since the run's start, as the relay read them back.
    pub lamp_on: Vec<(f64, f64)>,
    /// Confirmed switches (seconds since the start, new state).
    pub switches: Vec<(f64, bool)>,
    /// Alerts raised (seconds since the start, name).
    pub alerts: Vec<(f64, String)>,
    /// Messages the core published on the topics the report reads (seconds since the start, topic, payload).
    pub published: Vec<(f64, String, String)>,
    /// Log lines by severity (error, warning, notice, info, debug, trace).
    pub log_counts: [u64; 6],
    /// Sensor measurements taken.
    pub measurements: u64,
    /// Events handled by the core.
    pub steps: u64,
    /// Run length in simulated seconds.
    pub seconds: f64,
}

/// Progress shared with whoever prints it: simulated seconds done.
#[derive(Debug, Default)]
pub struct Progress {
    pub done_s: AtomicU64,
}

/// Everything one run needs.
pub struct RunSpec<'a> {
    pub settings: &'a Settings,
    pub sunlight: &'a Sunlight,
    /// Local time of the run's start.
    pub start: NaiveDateTime,
    pub length: Duration,
    /// Topics (full names) whose publications are kept in [`Observed::published`].
    pub keep_topics: Vec<String>,
    /// Print the core's log lines to stderr.
    pub verbose: bool,
    pub progress: &'a Progress,
}

/// Run the simulation: the production [`Core`] on the simulated hardware.
pub fn run(spec: &RunSpec<'_>) -> Observed {
    let s = spec.settings;
    let base = Instant::now();
    let clock = Arc::new(SimClock::new(base, spec.start));
    let hw_clock: Arc<dyn Clock> = clock.clone();
    // The ambient light comes from the weather through `SunlitBus`; the constant is overwritten before every read.
    let mock = MockSettings {
        ambient: Ambient::Constant(0.0),
        ..s.mock.clone()
    };
    let world = World::new(&mock, s.relay.active_low, false, Arc::clone(&hw_clock));
    let bus = SunlitBus {
        chip: SimBh1750::new(world.clone(), s.sensor.address),
        world: world.clone(),
        clock: Arc::clone(&clock),
        sun: spec.sunlight.sampler(spec.start),
        lit_at: None,
    };
    let mut sensor = AutoRanging::new(bus, ClockDelay(hw_clock), s.sensor.address);
    let mut relay = MockRelay::new(world.clone());

    let now_at = |t: Duration| {
        let local = spec.start + chrono::Duration::from_std(t).unwrap_or(chrono::Duration::zero());
        Now::naive(base + t, local)
    };
    let start_relay = relay.read_back().map_err(|e| e.to_string());
    let mut light = start_relay.as_ref().is_ok_and(|on| *on);
    let mut core = Core::new(s.clone(), Start::new(start_relay), now_at(Duration::ZERO));
    let mut obs = Observed {
        seconds: spec.length.as_secs_f64(),
        ..Observed::default()
    };
    let mut on_since: Option<f64> = light.then_some(0.0);

    let interval = s.sensor.interval;
    let mut next_measure = Duration::ZERO;
    let mut pending: Option<(Duration, Instant, Result<Measurement, SensorError>)> = None;
    let mut t = Duration::ZERO;
    let mut last_progress = 0u64;
    // The first event also makes the core announce its start.
    let mut event = Some(Event::Tick);

    loop {
        if let Some(ev) = event.take() {
            let now = now_at(t);
            obs.steps += 1;
            let mut effects = core.handle(now, ev);
            // Effects in order; a relay write is answered with its read-back at once (the core's contract), and
            // what the core says to that is executed next.
            while !effects.is_empty() {
                let mut next = Vec::new();
                for effect in effects {
                    match effect {
                        Effect::SetRelay(on) => {
                            let write = relay.set(on).map_err(|e| e.to_string());
                            let read_back = relay.read_back().map_err(|e| e.to_string());
                            if let Ok(now_on) = read_back {
                                let secs = t.as_secs_f64();
                                if now_on != light {
                                    light = now_on;
                                    obs.switches.push((secs, now_on));
                                    if now_on {
                                        on_since = Some(secs);
                                    } else if let Some(from) = on_since.take() {
                                        obs.lamp_on.push((from, secs));
                                    }
                                }
                            }
                            obs.steps += 1;
                            next.extend(core.handle(
                                now,
                                Event::Relay {
                                    requested: on,
                                    write,
                                    read_back,
                                },
                            ));
                        }
                        Effect::Publish { topic, payload, .. } => {
                            if spec.keep_topics.contains(&topic) {
                                obs.published.push((t.as_secs_f64(), topic, payload));
                            }
                        }
                        Effect::Log {
                            level,
                            line,
                            fields,
                        } => {
                            obs.log_counts[level as usize] += 1;
                            if level == Severity::Warning {
                                if let Some((_, name)) =
                                    fields.into_iter().find(|(k, _)| *k == "ALERT")
                                {
                                    obs.alerts.push((t.as_secs_f64(), name));
                                }
                            }
                            if spec.verbose {
                                eprintln!(
                                    "{} {level:?}: {line}",
                                    now.local.format("%Y-%m-%d %H:%M:%S%.3f")
                                );
                            }
                        }
                        Effect::Persist(_) | Effect::Notify(_) => {}
                    }
                }
                effects = next;
            }
            let secs = t.as_secs();
            if secs >= last_progress + 600 {
                last_progress = secs;
                spec.progress.done_s.store(secs, Ordering::Relaxed);
            }
        }
        // The next wake-up: a measurement result, the next measurement, or the core's deadline.
        let mut wake = next_measure;
        if let Some((end, ..)) = pending {
            wake = wake.min(end);
        }
        if let Some(d) = core.next_wakeup() {
            wake = wake.min(d.saturating_duration_since(base).max(t));
        }
        if wake >= spec.length {
            // One last tick at the end: the core closes the last light-day (its daily report) at that instant.
            if t < spec.length {
                t = spec.length;
                event = Some(Event::Tick);
                continue;
            }
            break;
        }
        t = wake;
        if pending.as_ref().is_some_and(|(end, ..)| *end == t) {
            if let Some((_, started, result)) = pending.take() {
                event = Some(Event::Reading { started, result });
            }
        } else if next_measure == t {
            // The real driver code runs now; its conversion wait moves the sensor's clock, and the result is
            // handed to the core when the run's clock reaches the conversion's end.
            clock.set(t);
            let result = sensor.measure();
            obs.measurements += 1;
            pending = Some((clock.elapsed().max(t), base + t, result));
            next_measure = t + interval;
        } else {
            event = Some(Event::Tick);
        }
    }
    // A lamp still on at the end (not one switched on by the last tick: that belongs to the next light-day).
    if let Some(from) = on_since.filter(|from| *from < obs.seconds) {
        obs.lamp_on.push((from, obs.seconds));
    }
    spec.progress
        .done_s
        .store(spec.length.as_secs(), Ordering::Relaxed);
    obs
}
