//! The monitor: checks that the light really did what the rule demands, and the alert lifecycle. Pure.
//!
//! Call [`Monitor::evaluate`] once per core-loop cycle, and right after every relay write (decide → write →
//! read back → evaluate): a change of `commanded_on` is taken as a switch at `facts.now`, and the lamp and stuck
//! checks compare readings taken before and after that instant.
//!
//! The checks:
//! - `rule_mismatch`: the read-back light state differs from `demanded_on` continuously for at least
//!   `settle` (raised when the difference has lasted exactly `settle`); cleared as soon as they agree. An
//!   unknown read-back (read failed) neither starts, raises nor clears it. `demanded_on` comes from the control
//!   state machine itself, so in-band and dwell periods never look like a mismatch.
//! - `relay_readback`: the pin reads back something else than was commanded, or cannot be read, in
//!   [`READBACK_CONFIRM`] consecutive evaluations (one evaluation of grace); cleared when it reads back equal.
//! - `lamp_no_effect` (only when `lamp_min_rise_lux > 0`): after a commanded off→on switch, the first valid
//!   reading taken at least `settle` after the switch is compared with the last reading before it; a rise below
//!   `lamp_min_rise_lux` raises. It stays active (also while the light is off: the lamp is still not known to
//!   work) until a later switch-on shows the rise, or the check is disabled. Skipped when the relay reads back off
//!   (that is `relay_readback`'s business) or the readings are too far from the switch ([`CHECK_MAX_GAP`]).
//! - `sensor_error`: [`SENSOR_ERROR_CONFIRM`] consecutive failed reads (a single I2C glitch is tolerated);
//!   cleared by the next reading that answers (valid or saturated).
//! - `sensor_stale`: mirrors `Facts::stale`.
//! - `sensor_saturated`: a saturated measurement; cleared by the next valid reading.
//! - `sensor_stuck`: after a switch in either direction, the first valid reading taken at least `settle` later
//!   has exactly the raw count of the last reading before the switch, while the relay did switch and the lamp is
//!   expected to reach the sensor ([`Monitor::set_lamp_expected`]). Raw 0 on both sides is not counted: constant
//!   darkness with a lamp that does not reach the sensor looks the same (`lamp_no_effect` covers a dead lamp).
//!   Cleared by any reading with a different raw count.
//!
//! Every alert is raised once and cleared once: an event is only emitted on a change of the active set.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::config::MonitorSettings;

/// Consecutive evaluations with a wrong or failed read-back before `relay_readback` is raised.
pub const READBACK_CONFIRM: u32 = 2;
/// Consecutive failed reads before `sensor_error` is raised.
pub const SENSOR_ERROR_CONFIRM: u32 = 2;
/// The lamp and stuck checks only compare readings taken at most this long before a switch, and at most this
/// long after `switch + settle`; otherwise the ambient light may have changed and the check is skipped.
pub const CHECK_MAX_GAP: Duration = Duration::from_secs(60);

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

    /// The contract name (`P/alert`, `P/health`).
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
    /// true = raised, false = cleared.
    pub active: bool,
    /// A human sentence with the numbers behind it.
    pub detail: String,
}

/// What the sensor path produced in the latest cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SensorFact {
    Reading { lux: f64, raw: u16, at: Instant },
    Saturated { at: Instant },
    Error { at: Instant },
}

impl SensorFact {
    /// When the sensor event happened (a fact passed again with the same instant is not counted twice).
    pub fn at(&self) -> Instant {
        match *self {
            SensorFact::Reading { at, .. }
            | SensorFact::Saturated { at }
            | SensorFact::Error { at } => at,
        }
    }
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

/// A valid reading as the monitor keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    lux: f64,
    raw: u16,
    at: Instant,
}

/// A switch waiting for its first reading after `settle`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SwitchCheck {
    switched_at: Instant,
    on: bool,
    /// The last valid reading before the switch.
    before: Sample,
}

/// The checks and the set of active alerts.
#[derive(Debug, Clone)]
pub struct Monitor {
    settings: MonitorSettings,
    active: BTreeSet<Alert>,
    lamp_expected: bool,
    /// Since when the read-back has differed from the demand.
    mismatch_since: Option<Instant>,
    readback_bad: u32,
    sensor_errors: u32,
    last_fact_at: Option<Instant>,
    last_reading: Option<Sample>,
    prev_commanded: Option<bool>,
    lamp_check: Option<SwitchCheck>,
    stuck_check: Option<SwitchCheck>,
    /// The raw count the sensor is stuck at, while `sensor_stuck` is active.
    stuck_raw: Option<u16>,
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

impl Monitor {
    /// A monitor with no active alerts; the first evaluation is not taken as a switch.
    pub fn new(settings: MonitorSettings) -> Self {
        Monitor {
            settings,
            active: BTreeSet::new(),
            lamp_expected: true,
            mismatch_since: None,
            readback_bad: 0,
            sensor_errors: 0,
            last_fact_at: None,
            last_reading: None,
            prev_commanded: None,
            lamp_check: None,
            stuck_check: None,
            stuck_raw: None,
        }
    }

    /// Apply new settings (SIGHUP); active alerts stay until their condition clears.
    pub fn set_settings(&mut self, settings: MonitorSettings) {
        self.settings = settings;
    }

    /// The current settings.
    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    /// Whether the lamp is expected to change the reading at all (default true). Pass false when the sensor does
    /// not see the lamp (`control.lamp_lux = 0`): `sensor_stuck` then has nothing to compare and is not checked.
    /// Do not derive it from a learned lamp contribution: a stuck sensor makes that learn 0.
    pub fn set_lamp_expected(&mut self, expected: bool) {
        self.lamp_expected = expected;
        if !expected {
            self.stuck_check = None;
        }
    }

    /// Evaluate the checks; returns each alert raised or cleared by this evaluation (each once), in contract order.
    pub fn evaluate(&mut self, facts: &Facts) -> Vec<AlertEvent> {
        let mut out = Vec::new();
        self.check_rule(facts, &mut out);
        self.check_readback(facts, &mut out);
        if let Some(fact) = facts.sensor.filter(|f| Some(f.at()) != self.last_fact_at) {
            self.last_fact_at = Some(fact.at());
            self.sensor_fact(fact, facts, &mut out);
        }
        if facts.stale {
            self.raise(Alert::SensorStale, &mut out, || {
                "no reading from the light sensor within sensor.stale_after_s".to_string()
            });
        } else {
            self.clear(Alert::SensorStale, &mut out, || {
                "light sensor readings are fresh again".to_string()
            });
        }
        if self
            .prev_commanded
            .is_some_and(|prev| prev != facts.commanded_on)
        {
            self.on_switch(facts);
        }
        self.prev_commanded = Some(facts.commanded_on);
        if self.settings.lamp_min_rise_lux <= 0.0 {
            self.lamp_check = None;
            self.clear(Alert::LampNoEffect, &mut out, || {
                "lamp check disabled (monitor.lamp_min_rise_lux = 0)".to_string()
            });
        }
        out.sort_by_key(|e| e.alert);
        out
    }

    /// Currently active alerts, in contract order.
    pub fn active(&self) -> Vec<Alert> {
        self.active.iter().copied().collect()
    }

    /// Whether `alert` is active.
    pub fn is_active(&self, alert: Alert) -> bool {
        self.active.contains(&alert)
    }

    /// When an evaluation without new facts could raise an alert: the end of the `settle` time of a running
    /// light/rule mismatch (not yet raised). `None` when no such deadline is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.active.contains(&Alert::RuleMismatch) {
            return None;
        }
        self.mismatch_since
            .and_then(|since| since.checked_add(self.settings.settle))
    }

    fn raise(&mut self, alert: Alert, out: &mut Vec<AlertEvent>, detail: impl FnOnce() -> String) {
        if self.active.insert(alert) {
            out.push(AlertEvent {
                alert,
                active: true,
                detail: detail(),
            });
        }
    }

    fn clear(&mut self, alert: Alert, out: &mut Vec<AlertEvent>, detail: impl FnOnce() -> String) {
        if self.active.remove(&alert) {
            out.push(AlertEvent {
                alert,
                active: false,
                detail: detail(),
            });
        }
    }

    fn check_rule(&mut self, facts: &Facts, out: &mut Vec<AlertEvent>) {
        match facts.readback_on {
            Some(light) if light != facts.demanded_on => {
                let since = *self.mismatch_since.get_or_insert(facts.now);
                let lasted = facts.now.saturating_duration_since(since);
                let settle = self.settings.settle;
                if lasted >= settle {
                    self.raise(Alert::RuleMismatch, out, || {
                        format!(
                            "light is {} but the rule demands {} for {:.1} s (settle {} s)",
                            on_off(light),
                            on_off(facts.demanded_on),
                            lasted.as_secs_f64(),
                            settle.as_secs_f64()
                        )
                    });
                }
            }
            Some(light) => {
                self.mismatch_since = None;
                self.clear(Alert::RuleMismatch, out, || {
                    format!("light is {} as the rule demands", on_off(light))
                });
            }
            None => {}
        }
    }

    fn check_readback(&mut self, facts: &Facts, out: &mut Vec<AlertEvent>) {
        match facts.readback_on {
            Some(pin) if pin == facts.commanded_on => {
                self.readback_bad = 0;
                self.clear(Alert::RelayReadback, out, || {
                    format!("relay pin reads back {} as commanded", on_off(pin))
                });
            }
            readback => {
                self.readback_bad = self.readback_bad.saturating_add(1);
                let n = self.readback_bad;
                if n >= READBACK_CONFIRM {
                    self.raise(Alert::RelayReadback, out, || match readback {
                        Some(pin) => format!(
                            "relay pin reads back {} but {} was commanded ({n} checks in a row); check the relay \
                             board and relay.gpio / relay.active_low",
                            on_off(pin),
                            on_off(facts.commanded_on)
                        ),
                        None => format!("reading back the relay pin failed ({n} checks in a row)"),
                    });
                }
            }
        }
    }

    fn sensor_fact(&mut self, fact: SensorFact, facts: &Facts, out: &mut Vec<AlertEvent>) {
        match fact {
            SensorFact::Reading { lux, raw, at } => {
                self.sensor_errors = 0;
                self.clear(Alert::SensorError, out, || {
                    format!("light sensor answers again ({lux:.1} lx)")
                });
                self.clear(Alert::SensorSaturated, out, || {
                    format!("light sensor back in range ({lux:.1} lx)")
                });
                if let Some(stuck) = self.stuck_raw.filter(|&s| s != raw) {
                    self.stuck_raw = None;
                    self.clear(Alert::SensorStuck, out, || {
                        format!("light sensor raw count changed from {stuck} to {raw}")
                    });
                }
                let sample = Sample { lux, raw, at };
                self.finish_lamp_check(sample, facts, out);
                self.finish_stuck_check(sample, facts, out);
                self.last_reading = Some(sample);
            }
            SensorFact::Saturated { .. } => {
                self.sensor_errors = 0;
                self.clear(Alert::SensorError, out, || {
                    "light sensor answers again (saturated)".to_string()
                });
                self.raise(Alert::SensorSaturated, out, || {
                    "light sensor saturated: above its range even at its least sensitive setting"
                        .to_string()
                });
            }
            SensorFact::Error { .. } => {
                self.sensor_errors = self.sensor_errors.saturating_add(1);
                let n = self.sensor_errors;
                if n >= SENSOR_ERROR_CONFIRM {
                    self.raise(Alert::SensorError, out, || {
                        format!("light sensor read failed {n} times in a row")
                    });
                }
            }
        }
    }

    /// Takes the pending check if `after` is the reading that decides it; `None` to keep waiting. A check whose
    /// reading comes too late is dropped.
    fn due(
        check: &mut Option<SwitchCheck>,
        after: Sample,
        settle: Duration,
    ) -> Option<SwitchCheck> {
        let c = (*check)?;
        if after.at < c.switched_at + settle || after.at <= c.before.at {
            return None;
        }
        *check = None;
        (after.at.saturating_duration_since(c.switched_at) <= settle + CHECK_MAX_GAP).then_some(c)
    }

    fn finish_lamp_check(&mut self, after: Sample, facts: &Facts, out: &mut Vec<AlertEvent>) {
        let settle = self.settings.settle;
        let Some(c) = Self::due(&mut self.lamp_check, after, settle) else {
            return;
        };
        if facts.readback_on == Some(false) {
            return;
        }
        let rise = after.lux - c.before.lux;
        let min = self.settings.lamp_min_rise_lux;
        if rise < min {
            self.raise(Alert::LampNoEffect, out, || {
                format!(
                    "light switched on but lux rose only {rise:.1} lx ({:.1} → {:.1} lx after {:.1} s); expected at \
                     least {min} lx",
                    c.before.lux,
                    after.lux,
                    after.at.saturating_duration_since(c.switched_at).as_secs_f64()
                )
            });
        } else {
            self.clear(Alert::LampNoEffect, out, || {
                format!("lamp raised lux by {rise:.1} lx after switching on (at least {min} lx expected)")
            });
        }
    }

    fn finish_stuck_check(&mut self, after: Sample, facts: &Facts, out: &mut Vec<AlertEvent>) {
        let settle = self.settings.settle;
        let Some(c) = Self::due(&mut self.stuck_check, after, settle) else {
            return;
        };
        let relay_switched = facts
            .readback_on
            .map_or(facts.commanded_on == c.on, |pin| pin == c.on);
        if !self.lamp_expected || !relay_switched || after.raw != c.before.raw || after.raw == 0 {
            return;
        }
        self.stuck_raw = Some(after.raw);
        self.raise(Alert::SensorStuck, out, || {
            format!(
                "light sensor raw count stayed at {} ({:.1} lx) while the light switched {} {:.1} s earlier",
                after.raw,
                after.lux,
                on_off(c.on),
                after.at.saturating_duration_since(c.switched_at).as_secs_f64()
            )
        });
    }

    /// A commanded switch at `facts.now`: arm the lamp and stuck checks with the last reading before it.
    fn on_switch(&mut self, facts: &Facts) {
        let now = facts.now;
        let before = self
            .last_reading
            .filter(|r| r.at <= now && now.saturating_duration_since(r.at) <= CHECK_MAX_GAP);
        let check = before.map(|before| SwitchCheck {
            switched_at: now,
            on: facts.commanded_on,
            before,
        });
        self.stuck_check = check.filter(|_| self.lamp_expected);
        self.lamp_check = check.filter(|c| c.on && self.settings.lamp_min_rise_lux > 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ControlSettings, FailurePolicy, LampLux};
    use crate::core::control::{Controller, Inputs, SensorInput};

    fn settings(min_rise: f64) -> MonitorSettings {
        MonitorSettings {
            settle: Duration::from_secs(5),
            lamp_min_rise_lux: min_rise,
        }
    }

    /// A monitor plus the facts of a faithful core loop: times are seconds after `t0`.
    struct Rig {
        m: Monitor,
        t0: Instant,
        demanded: bool,
        commanded: bool,
        readback: Option<bool>,
        stale: bool,
    }

    impl Rig {
        fn new(min_rise: f64) -> Rig {
            Rig {
                m: Monitor::new(settings(min_rise)),
                t0: crate::hw::mock::test_instant(),
                demanded: false,
                commanded: false,
                readback: Some(false),
                stale: false,
            }
        }
        fn t(&self, s: f64) -> Instant {
            self.t0 + Duration::from_secs_f64(s)
        }
        fn eval(&mut self, s: f64, sensor: Option<SensorFact>) -> Vec<AlertEvent> {
            let facts = Facts {
                now: self.t(s),
                demanded_on: self.demanded,
                commanded_on: self.commanded,
                readback_on: self.readback,
                sensor,
                stale: self.stale,
            };
            self.m.evaluate(&facts)
        }
        fn tick(&mut self, s: f64) -> Vec<AlertEvent> {
            self.eval(s, None)
        }
        fn reading(&mut self, s: f64, lux: f64, raw: u16) -> Vec<AlertEvent> {
            let at = self.t(s);
            self.eval(s, Some(SensorFact::Reading { lux, raw, at }))
        }
        /// A working relay switched by the rule at `s`.
        fn switch(&mut self, s: f64, on: bool) -> Vec<AlertEvent> {
            (self.demanded, self.commanded, self.readback) = (on, on, Some(on));
            self.tick(s)
        }
    }

    /// The (alert, active) pairs of `events`.
    fn names(events: &[AlertEvent]) -> Vec<(Alert, bool)> {
        events.iter().map(|e| (e.alert, e.active)).collect()
    }

    #[test]
    fn rule_mismatch_raises_at_settle_and_clears_once() {
        let mut r = Rig::new(0.0);
        r.demanded = true;
        r.commanded = true;
        r.readback = Some(false);
        assert!(names(&r.tick(10.0)).is_empty());
        let ev = r.tick(14.999);
        assert!(!names(&ev).contains(&(Alert::RuleMismatch, true)));
        let ev = r.tick(15.0);
        let raise = ev
            .iter()
            .find(|e| e.alert == Alert::RuleMismatch)
            .expect("raised at exactly settle");
        assert!(raise.active);
        assert_eq!(
            raise.detail,
            "light is off but the rule demands on for 5.0 s (settle 5 s)"
        );
        assert!(r.tick(17.0).is_empty(), "no duplicate raise");
        r.readback = Some(true);
        let ev = r.tick(18.0);
        assert_eq!(
            names(&ev),
            vec![(Alert::RuleMismatch, false), (Alert::RelayReadback, false)]
        );
        assert_eq!(ev[0].detail, "light is on as the rule demands");
        assert!(r.tick(19.0).is_empty(), "no duplicate clear");
        assert!(r.m.active().is_empty());
    }

    #[test]
    fn rule_mismatch_timer_restarts_after_agreement() {
        let mut r = Rig::new(0.0);
        r.demanded = true;
        r.tick(0.0);
        r.tick(3.0);
        r.demanded = false;
        r.tick(4.0);
        r.demanded = true;
        r.tick(5.0);
        assert!(!r.m.is_active(Alert::RuleMismatch));
        r.tick(9.999);
        assert!(
            !r.m.is_active(Alert::RuleMismatch),
            "continuous since 5 s only"
        );
        r.tick(10.0);
        assert!(r.m.is_active(Alert::RuleMismatch));
    }

    #[test]
    fn rule_mismatch_unknown_readback_neither_raises_nor_clears() {
        let mut r = Rig::new(0.0);
        r.demanded = true;
        r.commanded = true;
        r.readback = None;
        for s in 0..20 {
            r.tick(f64::from(s));
        }
        assert!(!r.m.is_active(Alert::RuleMismatch));
        r.readback = Some(false);
        r.tick(20.0);
        r.tick(25.0);
        assert!(r.m.is_active(Alert::RuleMismatch));
        r.readback = None;
        r.tick(26.0);
        assert!(r.m.is_active(Alert::RuleMismatch));
    }

    #[test]
    fn settle_change_applies_to_running_mismatch() {
        let mut r = Rig::new(0.0);
        r.demanded = true;
        r.readback = Some(false);
        r.tick(0.0);
        r.m.set_settings(MonitorSettings {
            settle: Duration::from_secs(2),
            lamp_min_rise_lux: 0.0,
        });
        r.tick(2.0);
        assert!(r.m.is_active(Alert::RuleMismatch));
        assert_eq!(r.m.settings().settle, Duration::from_secs(2));
    }

    #[test]
    fn relay_readback_after_one_evaluation_of_grace() {
        let mut r = Rig::new(0.0);
        r.commanded = true;
        r.demanded = true;
        assert!(
            !names(&r.tick(0.0)).contains(&(Alert::RelayReadback, true)),
            "grace"
        );
        let ev = r.tick(1.0);
        let e = ev
            .iter()
            .find(|e| e.alert == Alert::RelayReadback)
            .expect("raised on the second check");
        assert!(e.active);
        assert!(
            e.detail
                .starts_with("relay pin reads back off but on was commanded (2 checks in a row)"),
            "{}",
            e.detail
        );
        assert!(!names(&r.tick(2.0))
            .iter()
            .any(|n| n.0 == Alert::RelayReadback));
        r.readback = Some(true);
        assert_eq!(names(&r.tick(3.0)), vec![(Alert::RelayReadback, false)]);
        assert!(r.tick(4.0).is_empty());
    }

    #[test]
    fn relay_readback_single_glitch_is_tolerated() {
        let mut r = Rig::new(0.0);
        r.readback = Some(true);
        r.tick(0.0);
        r.readback = Some(false);
        r.tick(1.0);
        r.readback = None;
        r.tick(2.0);
        r.readback = Some(false);
        r.tick(3.0);
        assert!(r.m.active().is_empty());
    }

    #[test]
    fn relay_readback_failure_raises() {
        let mut r = Rig::new(0.0);
        r.readback = None;
        r.tick(0.0);
        let ev = r.tick(1.0);
        assert_eq!(names(&ev), vec![(Alert::RelayReadback, true)]);
        assert_eq!(
            ev[0].detail,
            "reading back the relay pin failed (2 checks in a row)"
        );
    }

    /// A real controller in in-band and dwell periods with a faithful relay: the monitor stays silent.
    #[test]
    fn no_false_alarm_during_in_band_and_dwell() {
        let control = ControlSettings {
            strategy: crate::config::Strategy::Threshold,
            on_below_lux: 450.0,
            off_above_lux: 550.0,
            min_on: Duration::from_secs(60),
            min_off: Duration::from_secs(60),
            window: None,
            on_sensor_failure: FailurePolicy::Off,
            override_max: None,
            lamp_lux: LampLux::Fixed(0.0),
        };
        let mut r = Rig::new(0.0);
        let mut c = Controller::new(control, false, r.t0);
        let mut holds = 0;
        for s in 0..600u32 {
            // Ambient swings through the band and past both thresholds every 40 s: the rule wants changes
            // more often than dwell allows.
            let lux = if (s / 40) % 2 == 0 { 300.0 } else { 700.0 } + f64::from(s % 7);
            let now = r.t(f64::from(s));
            let d = c.decide(&Inputs {
                now,
                local_minute: 600,
                sensor: Some(SensorInput::Reading { lux, at: now }),
            });
            holds += usize::from(matches!(
                d.reason,
                crate::core::control::Reason::MinOnHold | crate::core::control::Reason::MinOffHold
            ));
            c.switched(now, d.light_on);
            (r.demanded, r.commanded, r.readback) = (d.light_on, d.light_on, Some(d.light_on));
            let ev = r.reading(f64::from(s), lux, (lux * 1.2) as u16);
            assert!(ev.is_empty(), "at {s} s: {ev:?}");
        }
        assert!(holds > 100, "the scenario exercises dwell holds ({holds})");
    }

    #[test]
    fn lamp_no_effect_raises_and_clears_on_a_working_switch_on() {
        let mut r = Rig::new(100.0);
        r.reading(0.0, 200.0, 240);
        r.switch(1.0, true);
        assert!(
            r.reading(5.9, 205.0, 246).is_empty(),
            "before settle: not judged"
        );
        let ev = r.reading(6.0, 210.0, 252);
        assert_eq!(names(&ev), vec![(Alert::LampNoEffect, true)]);
        assert_eq!(
            ev[0].detail,
            "light switched on but lux rose only 10.0 lx (200.0 → 210.0 lx after 5.0 s); expected at least 100 lx"
        );
        assert!(
            r.reading(7.0, 212.0, 254).is_empty(),
            "judged once per switch"
        );
        r.switch(70.0, false);
        assert!(
            r.reading(80.0, 200.0, 240).is_empty(),
            "stays active while off"
        );
        r.switch(81.0, true);
        let ev = r.reading(86.0, 600.0, 720);
        assert_eq!(names(&ev), vec![(Alert::LampNoEffect, false)]);
        assert_eq!(
            ev[0].detail,
            "lamp raised lux by 400.0 lx after switching on (at least 100 lx expected)"
        );
    }

    #[test]
    fn lamp_no_effect_exact_rise_passes() {
        let mut r = Rig::new(100.0);
        r.reading(0.0, 200.0, 240);
        r.switch(1.0, true);
        assert!(r.reading(6.0, 300.0, 360).is_empty());
        assert!(r.m.active().is_empty());
    }

    #[test]
    fn lamp_no_effect_disabled_by_zero() {
        let mut r = Rig::new(0.0);
        r.reading(0.0, 200.0, 240);
        r.switch(1.0, true);
        r.reading(6.0, 200.0, 241);
        assert!(r.m.active().is_empty());
    }

    #[test]
    fn lamp_no_effect_clears_when_disabled_by_reload() {
        let mut r = Rig::new(100.0);
        r.reading(0.0, 200.0, 240);
        r.switch(1.0, true);
        r.reading(6.0, 200.0, 241);
        assert!(r.m.is_active(Alert::LampNoEffect));
        r.m.set_settings(settings(0.0));
        assert_eq!(names(&r.tick(7.0)), vec![(Alert::LampNoEffect, false)]);
        assert!(r.tick(8.0).is_empty());
    }

    #[test]
    fn lamp_no_effect_skipped_when_relay_did_not_switch_or_switched_back() {
        let mut r = Rig::new(100.0);
        r.reading(0.0, 200.0, 240);
        r.switch(1.0, true);
        r.readback = Some(false);
        r.reading(6.0, 200.0, 241);
        assert!(
            !r.m.is_active(Alert::LampNoEffect),
            "relay_readback's business"
        );
        r.switch(10.0, false);
        r.reading(11.0, 200.0, 240);
        r.switch(12.0, true);
        r.switch(13.0, false);
        r.reading(20.0, 200.0, 242);
        assert!(
            !r.m.is_active(Alert::LampNoEffect),
            "switched off before the check"
        );
    }

    #[test]
    fn lamp_no_effect_skipped_without_a_recent_reading_before() {
        let mut r = Rig::new(100.0);
        r.reading(0.0, 200.0, 240);
        r.switch(61.0, true);
        r.reading(66.0, 200.0, 241);
        assert!(r.m.active().is_empty());
    }

    #[test]
    fn sensor_error_needs_two_failures_and_clears_on_reading() {
        let mut r = Rig::new(0.0);
        let e1 = SensorFact::Error { at: r.t(1.0) };
        assert!(r.eval(1.0, Some(e1)).is_empty());
        assert!(
            r.eval(1.5, Some(e1)).is_empty(),
            "the same failure is not counted twice"
        );
        let ev = r.eval(2.0, Some(SensorFact::Error { at: r.t(2.0) }));
        assert_eq!(names(&ev), vec![(Alert::SensorError, true)]);
        assert_eq!(ev[0].detail, "light sensor read failed 2 times in a row");
        assert!(r
            .eval(3.0, Some(SensorFact::Error { at: r.t(3.0) }))
            .is_empty());
        assert!(r.tick(3.5).is_empty(), "no event without a new fact");
        let ev = r.reading(4.0, 321.0, 385);
        assert_eq!(names(&ev), vec![(Alert::SensorError, false)]);
        assert_eq!(ev[0].detail, "light sensor answers again (321.0 lx)");
        assert!(r.reading(5.0, 321.0, 385).is_empty());
    }

    #[test]
    fn sensor_error_count_resets_on_a_good_reading() {
        let mut r = Rig::new(0.0);
        r.eval(1.0, Some(SensorFact::Error { at: r.t(1.0) }));
        r.reading(2.0, 100.0, 120);
        r.eval(3.0, Some(SensorFact::Error { at: r.t(3.0) }));
        assert!(r.m.active().is_empty());
    }

    #[test]
    fn sensor_stale_mirrors_the_fact() {
        let mut r = Rig::new(0.0);
        r.stale = true;
        assert_eq!(names(&r.tick(1.0)), vec![(Alert::SensorStale, true)]);
        assert!(r.tick(2.0).is_empty());
        r.stale = false;
        assert_eq!(names(&r.tick(3.0)), vec![(Alert::SensorStale, false)]);
        assert!(r.tick(4.0).is_empty());
    }

    #[test]
    fn sensor_saturated_raises_once_and_clears_on_valid_reading() {
        let mut r = Rig::new(0.0);
        let ev = r.eval(1.0, Some(SensorFact::Saturated { at: r.t(1.0) }));
        assert_eq!(names(&ev), vec![(Alert::SensorSaturated, true)]);
        assert!(r
            .eval(2.0, Some(SensorFact::Saturated { at: r.t(2.0) }))
            .is_empty());
        assert!(
            r.eval(3.0, Some(SensorFact::Error { at: r.t(3.0) }))
                .is_empty(),
            "an error does not clear"
        );
        assert_eq!(
            names(&r.reading(4.0, 50_000.0, 60_000)),
            vec![(Alert::SensorSaturated, false)]
        );
    }

    #[test]
    fn saturated_answer_clears_sensor_error() {
        let mut r = Rig::new(0.0);
        r.eval(1.0, Some(SensorFact::Error { at: r.t(1.0) }));
        r.eval(2.0, Some(SensorFact::Error { at: r.t(2.0) }));
        let ev = r.eval(3.0, Some(SensorFact::Saturated { at: r.t(3.0) }));
        assert_eq!(
            names(&ev),
            vec![(Alert::SensorError, false), (Alert::SensorSaturated, true)]
        );
    }

    #[test]
    fn sensor_stuck_raises_on_identical_raw_across_a_switch_and_clears_on_change() {
        let mut r = Rig::new(0.0);
        r.reading(0.0, 300.0, 360);
        r.switch(1.0, true);
        assert!(r.reading(5.0, 300.0, 360).is_empty(), "before settle");
        let ev = r.reading(6.0, 300.0, 360);
        assert_eq!(names(&ev), vec![(Alert::SensorStuck, true)]);
        assert_eq!(ev[0].detail, "light sensor raw count stayed at 360 (300.0 lx) while the light switched on 5.0 s earlier");
        assert!(r.reading(7.0, 300.0, 360).is_empty());
        let ev = r.reading(8.0, 301.0, 361);
        assert_eq!(names(&ev), vec![(Alert::SensorStuck, false)]);
        assert_eq!(
            ev[0].detail,
            "light sensor raw count changed from 360 to 361"
        );
    }

    #[test]
    fn sensor_stuck_detected_on_switch_off_too() {
        let mut r = Rig::new(0.0);
        r.switch(0.0, true);
        r.reading(100.0, 700.0, 840);
        r.switch(101.0, false);
        r.reading(106.0, 700.0, 840);
        assert!(r.m.is_active(Alert::SensorStuck));
    }

    #[test]
    fn sensor_stuck_not_raised_for_working_sensor_darkness_or_no_lamp() {
        // Raw changes: fine.
        let mut r = Rig::new(0.0);
        r.reading(0.0, 300.0, 360);
        r.switch(1.0, true);
        r.reading(6.0, 700.0, 840);
        assert!(r.m.active().is_empty());
        // Constant darkness (raw 0 both sides): not a stuck sensor.
        let mut r = Rig::new(0.0);
        r.reading(0.0, 0.0, 0);
        r.switch(1.0, true);
        r.reading(6.0, 0.0, 0);
        assert!(r.m.active().is_empty());
        // The sensor does not see the lamp.
        let mut r = Rig::new(0.0);
        r.m.set_lamp_expected(false);
        r.reading(0.0, 300.0, 360);
        r.switch(1.0, true);
        r.reading(6.0, 300.0, 360);
        assert!(r.m.active().is_empty());
        // The relay did not switch.
        let mut r = Rig::new(0.0);
        r.reading(0.0, 300.0, 360);
        r.commanded = true;
        r.demanded = true;
        r.tick(1.0);
        r.reading(6.0, 300.0, 360);
        assert!(!r.m.is_active(Alert::SensorStuck));
    }

    #[test]
    fn active_is_in_contract_order() {
        let mut r = Rig::new(0.0);
        r.stale = true;
        r.readback = None;
        r.tick(0.0);
        r.eval(1.0, Some(SensorFact::Saturated { at: r.t(1.0) }));
        assert_eq!(
            r.m.active(),
            vec![
                Alert::RelayReadback,
                Alert::SensorStale,
                Alert::SensorSaturated
            ]
        );
        let names: Vec<&str> = Alert::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "rule_mismatch",
                "relay_readback",
                "lamp_no_effect",
                "sensor_error",
                "sensor_stale",
                "sensor_saturated",
                "sensor_stuck"
            ]
        );
    }

    /// Every raise is matched by exactly one clear across a long faulty run: no duplicates.
    #[test]
    fn each_alert_raised_once_and_cleared_once() {
        let mut r = Rig::new(100.0);
        let mut events = Vec::new();
        r.reading(0.0, 200.0, 240);
        for s in 1..200u32 {
            let t = f64::from(s);
            // Phases: lamp broken until 140 (on at 10, off at 110, on at 150), relay stuck 20..40, sensor failing
            // 60..80, stale 70..90, raw stuck 100..130, saturated at 180.
            match s {
                10 | 150 => events.extend(r.switch(t, true)),
                110 => events.extend(r.switch(t, false)),
                _ => {}
            }
            let stuck_relay = (20..40).contains(&s);
            r.readback = Some(if stuck_relay {
                !r.commanded
            } else {
                r.commanded
            });
            r.stale = (70..90).contains(&s);
            let lamp = if r.commanded && s >= 140 { 400.0 } else { 0.0 };
            let at = r.t(t);
            let fact = match s {
                60..=79 => SensorFact::Error { at },
                100..=129 => SensorFact::Reading {
                    lux: 600.0,
                    raw: 720,
                    at,
                },
                180 => SensorFact::Saturated { at },
                _ => SensorFact::Reading {
                    lux: 600.0 + t + lamp,
                    raw: 720 + s as u16 + lamp as u16,
                    at,
                },
            };
            events.extend(r.eval(t, Some(fact)));
        }
        for alert in Alert::ALL {
            let seq: Vec<bool> = events
                .iter()
                .filter(|e| e.alert == alert)
                .map(|e| e.active)
                .collect();
            assert_eq!(seq, vec![true, false], "{alert:?}: {events:?}");
        }
        assert!(r.m.active().is_empty(), "{:?}", r.m.active());
    }
}
