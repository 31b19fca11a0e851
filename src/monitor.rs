//! The monitor: checks that the light really did what the rule demands, and the alert lifecycle. Pure.
//!
//! STUB: interface fixed, implementation pending (see issue 3, item 4).

use std::time::Instant;

use crate::config::MonitorSettings;

/// Alert names of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alert {
    RuleMismatch,
    RelayReadback,
    LampNoEffect,
    SensorError,
    SensorStale,
    SensorSaturated,
    SensorStuck,
}

impl Alert {
    pub const ALL: [Alert; 7] = [
        Alert::RuleMismatch,
        Alert::RelayReadback,
        Alert::LampNoEffect,
        Alert::SensorError,
        Alert::SensorStale,
        Alert::SensorSaturated,
        Alert::SensorStuck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Alert::RuleMismatch => "rule_mismatch",
            Alert::RelayReadback => "relay_readback",
            Alert::LampNoEffect => "lamp_no_effect",
            Alert::SensorError => "sensor_error",
            Alert::SensorStale => "sensor_stale",
            Alert::SensorSaturated => "sensor_saturated",
            Alert::SensorStuck => "sensor_stuck",
        }
    }
}

/// One raise or clear.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub alert: Alert,
    pub active: bool,
    pub detail: String,
}

/// What the sensor path produced in the latest cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SensorFact {
    Reading { lux: f64, raw: u16, at: Instant },
    Saturated { at: Instant },
    Error { at: Instant },
}

/// Facts of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub now: Instant,
    /// What the control state machine demands now.
    pub demanded_on: bool,
    /// What the daemon last wrote to the relay.
    pub commanded_on: bool,
    /// The pin read back (None if the read failed).
    pub readback_on: Option<bool>,
    /// Newest sensor event since the last evaluation, if any.
    pub sensor: Option<SensorFact>,
    /// Whether the latest reading is older than `sensor.stale_after_s`.
    pub stale: bool,
}

#[derive(Debug, Clone)]
pub struct Monitor {
    settings: MonitorSettings,
}

impl Monitor {
    pub fn new(settings: MonitorSettings) -> Self {
        Monitor { settings }
    }

    /// Apply new settings (SIGHUP); active alerts stay until their condition clears.
    pub fn set_settings(&mut self, settings: MonitorSettings) {
        self.settings = settings;
    }

    /// Evaluate the checks; returns each alert raised or cleared by this evaluation (each once).
    pub fn evaluate(&mut self, facts: &Facts) -> Vec<AlertEvent> {
        let _ = facts;
        todo!()
    }

    /// Currently active alerts, in contract order.
    pub fn active(&self) -> Vec<Alert> {
        Vec::new()
    }
}
