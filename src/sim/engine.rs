//! What the simulator drives: the control logic behind a small event/output interface, so the loop in
//! [`super::run`] does not care which implementation it runs.
//!
//! [`RuleEngine`] is the daemon's own control state machine and monitor ([`crate::control::Controller`],
//! [`crate::monitor::Monitor`]) wired the way `app` wires them: a reading or a tick runs the rule, a changed
//! decision becomes a relay write, the monitor sees the facts after each evaluation. A switch counts once the relay
//! read it back.

use std::time::Instant;

use chrono::{NaiveDateTime, Timelike};

use crate::config::{LampLux, Settings};
use crate::control::{Controller, Inputs, SensorInput};
use crate::hw::{Measurement, SensorError};
use crate::monitor::{Facts, Monitor, SensorFact};

/// The same moment as a monotonic instant and as local wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub at: Instant,
    pub local: NaiveDateTime,
}

/// What happens to the engine.
#[derive(Debug)]
pub enum Input {
    /// A measurement that started at `started` and completed now.
    Reading {
        started: Instant,
        result: Result<Measurement, SensorError>,
    },
    /// The outcome of an [`Output::SetRelay`]: the write and the pin read back after it.
    Relay {
        requested: bool,
        write: Result<(), String>,
        read_back: Result<bool, String>,
    },
    /// Nothing new; the engine's own deadline (`next_wakeup`) came.
    Tick,
}

/// What the engine asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    SetRelay(bool),
    /// An alert raised (`true`) or cleared.
    Alert {
        name: String,
        active: bool,
    },
    /// A message the daemon would publish (only those the simulator looks at).
    Publish {
        topic: String,
        payload: String,
    },
    /// A log line (counted, shown with `-v`).
    Log {
        level: log::Level,
        line: String,
    },
}

/// The control logic under simulation.
pub trait Engine {
    /// Feed one input; outputs are appended to `out`.
    fn handle(&mut self, now: Now, input: Input, out: &mut Vec<Output>);
    /// The latest instant at which the engine wants an [`Input::Tick`] if nothing else happens.
    fn next_wakeup(&self) -> Option<Instant>;
}

/// The daemon's control state machine and monitor.
pub struct RuleEngine {
    stale_after: std::time::Duration,
    controller: Controller,
    monitor: Monitor,
    started: Instant,
    commanded_on: bool,
    readback_on: Option<bool>,
    last_reading: Option<(f64, Instant)>,
    pending_fact: Option<SensorFact>,
    window: Option<crate::config::Window>,
    /// The latest `now` handled: window edges are computed from it.
    last_now: Now,
}

impl RuleEngine {
    /// The engine for `settings`, the relay read back as `light_on` at `now`.
    pub fn new(settings: &Settings, light_on: bool, now: Now) -> Self {
        let mut monitor = Monitor::new(settings.monitor.clone());
        monitor
            .set_lamp_expected(!matches!(settings.control.lamp_lux, LampLux::Fixed(x) if x <= 0.0));
        RuleEngine {
            stale_after: settings.sensor.stale_after,
            controller: Controller::new(settings.control.clone(), light_on, now.at),
            monitor,
            started: now.at,
            commanded_on: light_on,
            readback_on: Some(light_on),
            last_reading: None,
            pending_fact: None,
            window: settings.control.window,
            last_now: now,
        }
    }

    /// The next start or end of `control.window` after the last handled moment: the rule must act on the edge
    /// itself, not at the next reading after it.
    fn next_window_edge(&self) -> Option<Instant> {
        let w = self.window?;
        let t = self.last_now.local.time();
        let now_s = i64::from(t.num_seconds_from_midnight());
        let until = [w.start_min, w.end_min]
            .iter()
            .map(|m| (i64::from(*m) * 60 - now_s).rem_euclid(86_400))
            .map(|d| if d == 0 { 86_400 } else { d })
            .min()?;
        // Whole seconds from a moment that may have a fraction: the edge is at the next whole minute boundary.
        let frac = std::time::Duration::from_nanos(u64::from(t.nanosecond()));
        Some(self.last_now.at - frac + std::time::Duration::from_secs(until as u64))
    }

    fn inputs(&self, now: Now) -> Inputs {
        let at = now.at;
        let sensor = match self.last_reading {
            Some((lux, t)) if at.saturating_duration_since(t) < self.stale_after => {
                Some(SensorInput::Reading { lux, at: t })
            }
            Some(_) => Some(SensorInput::Stale),
            None if at.saturating_duration_since(self.started) >= self.stale_after => {
                Some(SensorInput::Stale)
            }
            None => None,
        };
        let t = now.local.time();
        Inputs {
            now: at,
            local_minute: (t.hour() * 60 + t.minute()) as u16,
            sensor,
        }
    }

    fn evaluate(&mut self, now: Now, out: &mut Vec<Output>) {
        let inputs = self.inputs(now);
        let decision = self.controller.decide(&inputs);
        if decision.light_on != self.commanded_on {
            out.push(Output::SetRelay(decision.light_on));
        }
        let facts = Facts {
            now: now.at,
            demanded_on: decision.light_on,
            commanded_on: self.commanded_on,
            readback_on: self.readback_on,
            sensor: self.pending_fact.take(),
            stale: matches!(inputs.sensor, Some(SensorInput::Stale)),
        };
        for ev in self.monitor.evaluate(&facts) {
            out.push(Output::Alert {
                name: ev.alert.as_str().to_owned(),
                active: ev.active,
            });
        }
    }
}

impl Engine for RuleEngine {
    fn handle(&mut self, now: Now, input: Input, out: &mut Vec<Output>) {
        self.last_now = now;
        match input {
            Input::Reading { started, result } => {
                self.pending_fact = Some(match result {
                    Ok(Measurement::Lux { lux, raw }) => {
                        self.last_reading = Some((lux, started));
                        SensorFact::Reading {
                            lux,
                            raw,
                            at: started,
                        }
                    }
                    Ok(Measurement::Saturated) => SensorFact::Saturated { at: started },
                    Err(e) => {
                        out.push(Output::Log {
                            level: log::Level::Debug,
                            line: format!("sensor read failed: {e}"),
                        });
                        SensorFact::Error { at: started }
                    }
                });
                self.evaluate(now, out);
            }
            Input::Relay {
                requested,
                write,
                read_back,
            } => {
                if write.is_ok() {
                    self.commanded_on = requested;
                }
                self.readback_on = read_back.ok();
            }
            Input::Tick => self.evaluate(now, out),
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        match (self.controller.next_deadline(), self.next_window_edge()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
