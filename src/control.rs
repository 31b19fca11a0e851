//! The light rule: a pure state machine. Time and inputs come in, a [`Decision`] comes out; no I/O.
//!
//! STUB: interface fixed, implementation pending (see issue 2, item 6).

use std::time::{Duration, Instant};

use crate::config::ControlSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Manual,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Manual => "manual",
        }
    }
}

/// Why the light is as it is (the `reason` field of `P/state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BelowThreshold,
    AboveThreshold,
    InBand,
    OutsideWindow,
    Manual,
    MinOnHold,
    MinOffHold,
    SensorFailure,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BelowThreshold => "below_threshold",
            Reason::AboveThreshold => "above_threshold",
            Reason::InBand => "in_band",
            Reason::OutsideWindow => "outside_window",
            Reason::Manual => "manual",
            Reason::MinOnHold => "min_on_hold",
            Reason::MinOffHold => "min_off_hold",
            Reason::SensorFailure => "sensor_failure",
        }
    }
}

/// A manual command from `P/light/set` after parsing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// `on`/`off`/`toggle` (toggle resolved by the caller is fine too): manual mode, expiring after `for_`
    /// or `control.override_max_s`.
    Set {
        on: bool,
        for_: Option<Duration>,
    },
    Toggle {
        for_: Option<Duration>,
    },
    /// Back to the rule.
    Auto,
}

/// What the controller knows about the sensor at decision time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SensorInput {
    /// A fresh reading (lux as measured, lamp included), taken at `at`.
    Reading { lux: f64, at: Instant },
    /// No usable reading for `sensor.stale_after_s`: the failure policy applies.
    Stale,
}

/// Inputs of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// Monotonic now.
    pub now: Instant,
    /// Local wall-clock time of day, minutes since midnight (0..1440).
    pub local_minute: u16,
    /// `None` before the first reading (nothing to act on yet; the light keeps its state).
    pub sensor: Option<SensorInput>,
}

/// The controller's verdict: what the light must be and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub light_on: bool,
    pub reason: Reason,
    pub mode: Mode,
    /// Ambient estimate (reading minus the lamp's contribution while on), when a reading exists.
    pub ambient_lux: Option<f64>,
}

/// The light rule state machine.
#[derive(Debug, Clone)]
pub struct Controller {
    settings: ControlSettings,
}

impl Controller {
    /// `light_on` is the relay state at start; `now` starts the dwell timer for it.
    pub fn new(settings: ControlSettings, light_on: bool, now: Instant) -> Self {
        let _ = (light_on, now);
        Controller { settings }
    }

    /// Replace the rule parameters (SIGHUP) without touching the light.
    pub fn set_settings(&mut self, settings: ControlSettings) {
        self.settings = settings;
    }

    /// Apply a manual command; returns the resulting decision (dwell times do not delay it).
    pub fn command(&mut self, inputs: &Inputs, cmd: Command) -> Decision {
        let _ = (inputs, cmd);
        todo!()
    }

    /// Evaluate the rule. The caller then drives the relay to `light_on`; the controller records the switch itself.
    pub fn decide(&mut self, inputs: &Inputs) -> Decision {
        let _ = inputs;
        todo!()
    }

    /// The next instant at which `decide` may give another answer without new input
    /// (dwell end, override expiry); `None` when nothing is pending. Window edges are the caller's clock's business.
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// The lamp contribution currently subtracted (learned or fixed), in lux.
    pub fn lamp_lux(&self) -> f64 {
        0.0
    }
}
