//! The light rule: a pure state machine. Time and inputs come in, a [`Decision`] comes out; no I/O.
//!
//! Precedence, highest first:
//! 1. **Manual mode** (`P/light/set`): the operator's command holds, immediately (no dwell), even outside the
//!    photoperiod window and whatever the sensor does — an explicit "on" at night is what they asked for. It ends
//!    at its expiry (`for_` capped by `override_max`) or on [`Command::Auto`].
//! 2. **Window**: outside the photoperiod window the light is off (`outside_window`). The window closing
//!    switches the light off at once, even inside `min_on`: no lamps at night beats relay protection. `min_off`
//!    still applies when the window opens again.
//! 3. **Sensor failure** ([`SensorInput::Stale`]): the `on_sensor_failure` policy (`sensor_failure`), dwell applies.
//! 4. **Hysteresis** on the ambient estimate (reading minus the lamp's contribution while it is on):
//!    on below `on_below_lux`, off above `off_above_lux` (both strict), unchanged in between (`in_band`).
//!
//! Dwell: a rule change away from the current state waits until `min_on` (light on) / `min_off` (light off) has
//! passed since the last switch (`min_on_hold` / `min_off_hold`). Besides, a reading taken less than
//! [`LAMP_STEP_MARGIN`] after a switch does not yet show the new lamp state, so it never switches the light back
//! (same hold reasons); the next reading decides.
//!
//! No reading yet (`Inputs::sensor == None`, right after start): the light keeps its state with reason `in_band`
//! (the rule has nothing that asks for a change); the window still applies.
//!
//! Lamp compensation ([`LampLux`]): `Fixed(x)` subtracts x while the lamp is on (0 disables). `Auto` learns the
//! contribution from the lux step across each switch, see [`LampLearner`]: until the first step is learned it
//! subtracts 0, which is safe because the first on-switch is followed by `min_on` (or at least the margin hold)
//! during which the step is measured.

use std::time::{Duration, Instant};

use crate::config::{ControlSettings, FailurePolicy, LampLux, Window};

/// A reading must be taken at least this long after a switch to show the new lamp state (covers the BH1750's
/// worst-case auto-ranged conversion of about 0.7 s plus an LED driver's soft start).
pub const LAMP_STEP_MARGIN: Duration = Duration::from_secs(1);
/// The readings on either side of a switch must lie within this of the switch to measure the lamp's step.
pub const LAMP_STEP_MAX_GAP: Duration = Duration::from_secs(30);
/// Weight of a new step in the exponentially smoothed lamp estimate.
pub const LAMP_SMOOTHING: f64 = 0.3;
/// A step is rejected when the ambient trend seen before the switch, extrapolated over the step's readings,
/// would explain more than this fraction of the step (or more than [`LAMP_DRIFT_FLOOR_LUX`], whichever is larger).
pub const LAMP_DRIFT_FRACTION: f64 = 0.25;
/// Drift always tolerated by the step check (sensor resolution and noise), in lux.
pub const LAMP_DRIFT_FLOOR_LUX: f64 = 10.0;

/// Who decides the light: the rule or the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Manual,
}

impl Mode {
    /// The `P/mode` payload.
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
    /// `strategy = "dli"`: lamp time is needed now to reach the day's light target.
    DliNeeded,
    /// `strategy = "dli"`: lamp time is needed later (cheaper or darker hours).
    DliScheduled,
    /// `strategy = "dli"`: the target is reached, or sunlight alone will reach it.
    DliMet,
}

impl Reason {
    /// The contract name (`reason` in `P/state`).
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
            Reason::DliNeeded => "dli_needed",
            Reason::DliScheduled => "dli_scheduled",
            Reason::DliMet => "dli_met",
        }
    }
}

/// A manual command from `P/light/set` after parsing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// `on`/`off`/`toggle` (toggle resolved by the caller is fine too): manual mode, expiring after `for_`
    /// (capped by `control.override_max_s`) or `control.override_max_s`. A zero `for_` counts as not given.
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

/// Whether `local_minute` lies in the photoperiod window (`None` = always). The start minute is inside, the end
/// minute outside; `start > end` wraps midnight.
pub fn window_contains(window: Option<Window>, local_minute: u16) -> bool {
    match window {
        None => true,
        Some(w) if w.start_min <= w.end_min => {
            w.start_min <= local_minute && local_minute < w.end_min
        }
        Some(w) => local_minute >= w.start_min || local_minute < w.end_min,
    }
}

/// One lux reading as the learner keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    lux: f64,
    at: Instant,
}

/// A switch whose lux step has not been measured yet.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PendingStep {
    switched_at: Instant,
    on: bool,
    /// The last reading before the switch.
    before: Sample,
    /// The reading before `before` (same lamp state), for the ambient trend.
    prev: Option<Sample>,
}

/// Learns the lamp's contribution at the sensor from the lux step across each switch.
///
/// For a switch at `t`, the step is the difference between the last reading taken before `t` and the first one
/// taken at or after `t + LAMP_STEP_MARGIN` (on: after − before; off: before − after). A step is ignored when:
/// - it is negative (the lamp cannot darken the sensor: ambient changed, or noise around a dead lamp),
/// - either reading is more than [`LAMP_STEP_MAX_GAP`] away from the switch (ambient may have moved),
/// - the reading before was itself taken within the margin of an earlier switch (ambiguous lamp state),
/// - the ambient was visibly changing: the slope of the two readings before the switch, extrapolated over the
///   time between `before` and `after`, exceeds `max(LAMP_DRIFT_FRACTION · step, LAMP_DRIFT_FLOOR_LUX)`
///   (clouds, sunrise), so the step would be mostly sky.
///
/// Accepted steps are smoothed exponentially ([`LAMP_SMOOTHING`]); the first accepted step is taken as is.
/// Until then the estimate is unknown and [`Controller::lamp_lux`] uses 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LampLearner {
    estimate: Option<f64>,
    /// Newest first.
    history: [Option<Sample>; 2],
    pending: Option<PendingStep>,
}

impl LampLearner {
    /// The learned contribution, if any step was accepted.
    pub fn estimate(&self) -> Option<f64> {
        self.estimate
    }

    /// Feed a reading (repeats and out-of-order readings are ignored).
    fn observe(&mut self, sample: Sample) {
        if !sample.lux.is_finite() {
            return;
        }
        if let Some(newest) = self.history[0] {
            if sample.at <= newest.at {
                return;
            }
        }
        if let Some(p) = self.pending {
            if sample.at >= p.switched_at + LAMP_STEP_MARGIN {
                self.pending = None;
                if let Some(step) = Self::step(&p, sample) {
                    let e = match self.estimate {
                        None => step,
                        Some(e) => e + LAMP_SMOOTHING * (step - e),
                    };
                    self.estimate = Some(e.max(0.0));
                }
            }
        }
        self.history = [Some(sample), self.history[0]];
    }

    /// The accepted step for `p` measured by `after`, or `None` when implausible.
    fn step(p: &PendingStep, after: Sample) -> Option<f64> {
        if after.at.duration_since(p.switched_at) > LAMP_STEP_MAX_GAP {
            return None;
        }
        let step = if p.on {
            after.lux - p.before.lux
        } else {
            p.before.lux - after.lux
        };
        if step < 0.0 {
            return None;
        }
        if let Some(prev) = p.prev {
            let dt = p.before.at.duration_since(prev.at).as_secs_f64();
            if dt > 0.0 {
                let rate = (p.before.lux - prev.lux) / dt;
                let drift = rate.abs() * after.at.duration_since(p.before.at).as_secs_f64();
                if drift > (LAMP_DRIFT_FRACTION * step).max(LAMP_DRIFT_FLOOR_LUX) {
                    return None;
                }
            }
        }
        Some(step)
    }

    /// Note a switch at `now` to `on`; `previous_switch` is the switch before it, if any.
    fn on_switch(&mut self, now: Instant, on: bool, previous_switch: Option<Instant>) {
        let settled = |s: &Sample| previous_switch.map_or(true, |ps| s.at >= ps + LAMP_STEP_MARGIN);
        self.pending = match self.history[0] {
            Some(before)
                if before.at <= now
                    && now.duration_since(before.at) <= LAMP_STEP_MAX_GAP
                    && settled(&before) =>
            {
                let prev = self.history[1]
                    .filter(|s| settled(s) && before.at.duration_since(s.at) <= LAMP_STEP_MAX_GAP);
                Some(PendingStep {
                    switched_at: now,
                    on,
                    before,
                    prev,
                })
            }
            _ => None,
        };
    }
}

/// An active manual override.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Override {
    /// The light state the operator asked for.
    on: bool,
    since: Instant,
    /// `None` = until [`Command::Auto`].
    until: Option<Instant>,
}

/// The light rule state machine.
///
/// A decision is a wish: the controller's light state changes only when the caller reports a switch the relay
/// confirmed ([`Controller::switched`], the state read back after the write). Only then do the dwell timer and
/// the lamp learner's step start; a write that failed changes nothing, and the next decision asks again.
#[derive(Debug, Clone)]
pub struct Controller {
    settings: ControlSettings,
    /// The confirmed light state (what the relay read back).
    light_on: bool,
    /// Last switch, or the start (the dwell timer of the initial state).
    since: Instant,
    /// Last switch made by the controller (not the start).
    last_switch: Option<Instant>,
    manual: Option<Override>,
    lamp: LampLearner,
    /// End of the time-based hold of the last decision, if it was one.
    hold_until: Option<Instant>,
}

impl Controller {
    /// `light_on` is the relay state at start; `now` starts the dwell timer for it.
    pub fn new(settings: ControlSettings, light_on: bool, now: Instant) -> Self {
        Controller {
            settings,
            light_on,
            since: now,
            last_switch: None,
            manual: None,
            lamp: LampLearner::default(),
            hold_until: None,
        }
    }

    /// Replace the rule parameters (SIGHUP) without touching the light. Light state, dwell timer, mode and the
    /// learned lamp contribution are kept; a lowered `override_max` also shortens a running override.
    pub fn set_settings(&mut self, settings: ControlSettings) {
        if let (Some(o), Some(max)) = (self.manual.as_mut(), settings.override_max) {
            if let Some(cap) = o.since.checked_add(max) {
                o.until = Some(o.until.map_or(cap, |u| u.min(cap)));
            }
        }
        self.settings = settings;
    }

    /// The current rule parameters.
    pub fn settings(&self) -> &ControlSettings {
        &self.settings
    }

    /// The confirmed light state (the last one reported to [`Controller::switched`], or the start state).
    pub fn light_on(&self) -> bool {
        self.light_on
    }

    /// The current mode (a manual override that has expired counts until the next `decide`).
    pub fn mode(&self) -> Mode {
        if self.manual.is_some() {
            Mode::Manual
        } else {
            Mode::Auto
        }
    }

    /// Whether the photoperiod window is open at `local_minute`.
    pub fn window_open(&self, local_minute: u16) -> bool {
        window_contains(self.settings.window, local_minute)
    }

    /// Apply a manual command; returns the resulting decision (dwell times do not delay it).
    pub fn command(&mut self, inputs: &Inputs, cmd: Command) -> Decision {
        self.observe(inputs);
        let (on, for_) = match cmd {
            Command::Set { on, for_ } => (on, for_),
            Command::Toggle { for_ } => (!self.light_on, for_),
            Command::Auto => {
                self.manual = None;
                return self.decide(inputs);
            }
        };
        let duration = match (for_.filter(|d| !d.is_zero()), self.settings.override_max) {
            (Some(f), Some(max)) => Some(f.min(max)),
            (f, max) => f.or(max),
        };
        self.manual = Some(Override {
            on,
            since: inputs.now,
            until: duration.and_then(|d| inputs.now.checked_add(d)),
        });
        self.hold_until = None;
        let ambient = self.ambient(inputs);
        self.decision(on, Reason::Manual, ambient)
    }

    /// Evaluate the rule. The caller then drives the relay to `light_on` and reports what the relay did through
    /// [`Controller::switched`].
    pub fn decide(&mut self, inputs: &Inputs) -> Decision {
        self.decide_with(inputs, None)
    }

    /// Like [`Controller::decide`], with a demand from another strategy (`strategy = "dli"`: lamp on or off and
    /// why) replacing the lux band. The demand is filtered like the band's verdict: manual mode, the window, the
    /// sensor-failure policy and the dwell times still rule. `None` = the band decides.
    pub fn decide_with(&mut self, inputs: &Inputs, demand: Option<(bool, Reason)>) -> Decision {
        self.observe(inputs);
        if let Some(Override { until: Some(u), .. }) = self.manual {
            if inputs.now >= u {
                self.manual = None;
            }
        }
        self.hold_until = None;
        let ambient = self.ambient(inputs);
        let (on, reason) = if let Some(o) = self.manual {
            (o.on, Reason::Manual)
        } else {
            self.rule(inputs, ambient, demand)
        };
        self.decision(on, reason, ambient)
    }

    /// The next instant at which `decide` may give another answer without new input
    /// (dwell end, override expiry); `None` when nothing is pending. Window edges are the caller's clock's business.
    ///
    /// In auto mode this is the end of the `min_on`/`min_off` hold of the last decision, if it was held by time
    /// (a hold waiting for a reading after [`LAMP_STEP_MARGIN`] ends with the next reading, not at a time).
    /// In manual mode it is the override's expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.manual {
            Some(o) => o.until,
            None => self.hold_until,
        }
    }

    /// The lamp contribution currently subtracted (learned or fixed), in lux.
    pub fn lamp_lux(&self) -> f64 {
        match self.settings.lamp_lux {
            LampLux::Fixed(x) => x.max(0.0),
            LampLux::Auto => self.lamp.estimate().unwrap_or(0.0),
        }
    }

    /// The lamp learner (its estimate is kept even while `lamp_lux` is fixed).
    pub fn lamp_learner(&self) -> &LampLearner {
        &self.lamp
    }

    fn observe(&mut self, inputs: &Inputs) {
        if let Some(SensorInput::Reading { lux, at }) = inputs.sensor {
            self.lamp.observe(Sample { lux, at });
        }
    }

    /// The ambient estimate for the reading in `inputs`: the lamp is subtracted if it was on when the reading
    /// was taken. Clamped at 0.
    fn ambient(&self, inputs: &Inputs) -> Option<f64> {
        match inputs.sensor {
            Some(SensorInput::Reading { lux, at }) if lux.is_finite() => {
                let lamp_was_on = match self.last_switch {
                    Some(sw) if at < sw => !self.light_on,
                    _ => self.light_on,
                };
                let lamp = if lamp_was_on { self.lamp_lux() } else { 0.0 };
                Some((lux - lamp).max(0.0))
            }
            _ => None,
        }
    }

    /// The auto-mode rule including dwell; records the hold end in `hold_until`.
    fn rule(
        &mut self,
        inputs: &Inputs,
        ambient: Option<f64>,
        demand: Option<(bool, Reason)>,
    ) -> (bool, Reason) {
        if !self.window_open(inputs.local_minute) {
            return (false, Reason::OutsideWindow);
        }
        let (want, reason) = match (inputs.sensor, ambient, demand) {
            (Some(SensorInput::Stale), _, _) => match self.settings.on_sensor_failure {
                FailurePolicy::Off => (false, Reason::SensorFailure),
                FailurePolicy::On => (true, Reason::SensorFailure),
                FailurePolicy::Keep => (self.light_on, Reason::SensorFailure),
            },
            (_, _, Some(d)) => d,
            (_, Some(a), None) if a < self.settings.on_below_lux => (true, Reason::BelowThreshold),
            (_, Some(a), None) if a > self.settings.off_above_lux => {
                (false, Reason::AboveThreshold)
            }
            _ => (self.light_on, Reason::InBand),
        };
        if want == self.light_on {
            return (want, reason);
        }
        let (min, hold) = if self.light_on {
            (self.settings.min_on, Reason::MinOnHold)
        } else {
            (self.settings.min_off, Reason::MinOffHold)
        };
        match self.since.checked_add(min) {
            Some(end) if inputs.now >= end => {}
            end => {
                self.hold_until = end;
                return (self.light_on, hold);
            }
        }
        if let (Some(SensorInput::Reading { at, .. }), Some(sw)) = (inputs.sensor, self.last_switch)
        {
            if at < sw + LAMP_STEP_MARGIN {
                return (self.light_on, hold);
            }
        }
        (want, reason)
    }

    /// The relay confirmed the light is `on` at `now` (read back after a write). A change is a switch: it starts
    /// the dwell timer and the lamp learner's step. Reporting the current state again changes nothing.
    pub fn switched(&mut self, now: Instant, on: bool) {
        if on != self.light_on {
            self.lamp.on_switch(now, on, self.last_switch);
            self.light_on = on;
            self.since = now;
            self.last_switch = Some(now);
        }
    }

    /// Build the decision (what the light should be; [`Controller::switched`] records it once it happened).
    fn decision(&self, on: bool, reason: Reason, ambient: Option<f64>) -> Decision {
        Decision {
            light_on: on,
            reason,
            mode: self.mode(),
            ambient_lux: ambient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON_BELOW: f64 = 450.0;
    const OFF_ABOVE: f64 = 550.0;

    fn settings() -> ControlSettings {
        ControlSettings {
            strategy: crate::config::Strategy::Threshold,
            on_below_lux: ON_BELOW,
            off_above_lux: OFF_ABOVE,
            min_on: Duration::from_secs(60),
            min_off: Duration::from_secs(60),
            window: Some(Window {
                start_min: 6 * 60,
                end_min: 22 * 60,
            }),
            on_sensor_failure: FailurePolicy::Off,
            override_max: None,
            lamp_lux: LampLux::Fixed(0.0),
        }
    }

    /// A controller plus a clock: times are seconds after `t0`, the local time is `minute`.
    struct Rig {
        c: Controller,
        t0: Instant,
        minute: u16,
        last: Option<SensorInput>,
    }

    impl Rig {
        fn new(s: ControlSettings, on: bool) -> Rig {
            let t0 = crate::hw::mock::test_instant();
            Rig {
                c: Controller::new(s, on, t0),
                t0,
                minute: 12 * 60,
                last: None,
            }
        }
        fn t(&self, s: f64) -> Instant {
            self.t0 + Duration::from_secs_f64(s)
        }
        fn inputs(&self, s: f64, sensor: Option<SensorInput>) -> Inputs {
            Inputs {
                now: self.t(s),
                local_minute: self.minute,
                sensor,
            }
        }
        /// A reading taken at `s` and decided on at once.
        fn read(&mut self, s: f64, lux: f64) -> Decision {
            self.last = Some(SensorInput::Reading { lux, at: self.t(s) });
            let d = self.c.decide(&self.inputs(s, self.last));
            self.confirm(s, d)
        }
        /// A decision at `s` on the last reading (a timer tick).
        fn tick(&mut self, s: f64) -> Decision {
            let d = self.c.decide(&self.inputs(s, self.last));
            self.confirm(s, d)
        }
        fn stale(&mut self, s: f64) -> Decision {
            self.last = Some(SensorInput::Stale);
            let d = self.c.decide(&self.inputs(s, self.last));
            self.confirm(s, d)
        }
        fn cmd(&mut self, s: f64, cmd: Command) -> Decision {
            let d = self.c.command(&self.inputs(s, self.last), cmd);
            self.confirm(s, d)
        }
        /// A faithful relay: the decision is applied and read back at once.
        fn confirm(&mut self, s: f64, d: Decision) -> Decision {
            self.c.switched(self.t(s), d.light_on);
            d
        }
        /// Switch the light on at `s` by the rule (the start dwell must be over).
        fn switch_on_by_rule(&mut self, s: f64) {
            let d = self.read(s, 100.0);
            assert_eq!((d.light_on, d.reason), (true, Reason::BelowThreshold));
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// `strategy = "dli"`: the demand replaces the band, and is filtered like it (dwell, window, sensor, manual).
    #[test]
    fn a_dli_demand_replaces_the_band_and_is_filtered_like_it() {
        let mut r = Rig::new(settings(), false);
        let at = |r: &Rig, s: f64| SensorInput::Reading {
            lux: 5000.0,
            at: r.t(s),
        };
        // Bright, but the target needs lamp time now.
        let i = r.inputs(100.0, Some(at(&r, 100.0)));
        let d = r.c.decide_with(&i, Some((true, Reason::DliNeeded)));
        r.c.switched(i.now, d.light_on);
        assert_eq!((d.light_on, d.reason), (true, Reason::DliNeeded));
        // Met 30 s later: min_on holds it.
        let i = r.inputs(130.0, Some(at(&r, 130.0)));
        let d = r.c.decide_with(&i, Some((false, Reason::DliMet)));
        r.c.switched(i.now, d.light_on);
        assert_eq!((d.light_on, d.reason), (true, Reason::MinOnHold));
        assert_eq!(r.c.next_deadline(), Some(r.t(160.0)));
        let i = r.inputs(160.0, Some(at(&r, 160.0)));
        let d = r.c.decide_with(&i, Some((false, Reason::DliScheduled)));
        r.c.switched(i.now, d.light_on);
        assert_eq!((d.light_on, d.reason), (false, Reason::DliScheduled));
        // No demand: the band decides again (5000 lux is above it).
        let i = r.inputs(300.0, Some(at(&r, 300.0)));
        assert_eq!(r.c.decide_with(&i, None).reason, Reason::AboveThreshold);
        // A stale sensor: the failure policy, whatever the demand.
        let i = r.inputs(400.0, Some(SensorInput::Stale));
        let d = r.c.decide_with(&i, Some((true, Reason::DliNeeded)));
        r.c.switched(i.now, d.light_on);
        assert_eq!((d.light_on, d.reason), (false, Reason::SensorFailure));
        // Outside the window: off.
        r.minute = 23 * 60;
        let i = r.inputs(500.0, Some(at(&r, 500.0)));
        let d = r.c.decide_with(&i, Some((true, Reason::DliNeeded)));
        r.c.switched(i.now, d.light_on);
        assert_eq!((d.light_on, d.reason), (false, Reason::OutsideWindow));
        // Manual mode rules over the demand.
        r.minute = 12 * 60;
        r.last = Some(at(&r, 600.0));
        r.cmd(
            600.0,
            Command::Set {
                on: false,
                for_: None,
            },
        );
        let i = r.inputs(700.0, Some(at(&r, 700.0)));
        let d = r.c.decide_with(&i, Some((true, Reason::DliNeeded)));
        r.c.switched(i.now, d.light_on);
        assert_eq!((d.light_on, d.reason), (false, Reason::Manual));
        assert_eq!(Reason::DliNeeded.as_str(), "dli_needed");
        assert_eq!(Reason::DliScheduled.as_str(), "dli_scheduled");
        assert_eq!(Reason::DliMet.as_str(), "dli_met");
    }

    #[test]
    fn exactly_at_on_below_does_not_switch_on() {
        let mut r = Rig::new(settings(), false);
        let d = r.read(100.0, ON_BELOW);
        assert_eq!(
            (d.light_on, d.reason, d.mode),
            (false, Reason::InBand, Mode::Auto)
        );
        assert_eq!(d.ambient_lux, Some(ON_BELOW));
        let d = r.read(101.0, ON_BELOW - 0.1);
        assert_eq!((d.light_on, d.reason), (true, Reason::BelowThreshold));
    }

    #[test]
    fn exactly_at_off_above_does_not_switch_off() {
        let mut r = Rig::new(settings(), true);
        let d = r.read(100.0, OFF_ABOVE);
        assert_eq!((d.light_on, d.reason), (true, Reason::InBand));
        let d = r.read(101.0, OFF_ABOVE + 0.1);
        assert_eq!((d.light_on, d.reason), (false, Reason::AboveThreshold));
    }

    #[test]
    fn in_band_keeps_state_from_both_sides() {
        let mut r = Rig::new(settings(), false);
        r.read(100.0, 1000.0);
        for (i, lux) in [549.0, 500.0, 451.0].into_iter().enumerate() {
            let d = r.read(101.0 + i as f64, lux);
            assert_eq!(
                (d.light_on, d.reason),
                (false, Reason::InBand),
                "from above at {lux}"
            );
        }
        r.read(110.0, 100.0);
        assert!(r.c.light_on());
        for (i, lux) in [451.0, 500.0, 549.0].into_iter().enumerate() {
            let d = r.read(200.0 + i as f64, lux);
            assert_eq!(
                (d.light_on, d.reason),
                (true, Reason::InBand),
                "from below at {lux}"
            );
        }
    }

    #[test]
    fn start_state_is_protected_by_dwell() {
        let mut r = Rig::new(settings(), false);
        let d = r.read(10.0, 100.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::MinOffHold));
        assert_eq!(r.c.next_deadline(), Some(r.t(60.0)));
        let d = r.tick(60.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::BelowThreshold));
    }

    #[test]
    fn min_on_holds_and_releases_exactly_at_deadline() {
        let mut r = Rig::new(settings(), false);
        r.switch_on_by_rule(100.0);
        let d = r.read(159.0, 1000.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::MinOnHold));
        assert_eq!(r.c.next_deadline(), Some(r.t(160.0)));
        let d = r.tick(159.999);
        assert_eq!((d.light_on, d.reason), (true, Reason::MinOnHold));
        let d = r.tick(160.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::AboveThreshold));
        assert_eq!(r.c.next_deadline(), None);
    }

    #[test]
    fn min_off_holds_and_releases_exactly_at_deadline() {
        let mut r = Rig::new(settings(), true);
        let d = r.read(100.0, 1000.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::AboveThreshold));
        let d = r.read(130.0, 100.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::MinOffHold));
        assert_eq!(r.c.next_deadline(), Some(r.t(160.0)));
        let d = r.tick(159.999);
        assert_eq!((d.light_on, d.reason), (false, Reason::MinOffHold));
        let d = r.tick(160.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::BelowThreshold));
        assert_eq!(r.c.next_deadline(), None);
    }

    #[test]
    fn hold_ends_when_rule_agrees_again() {
        let mut r = Rig::new(settings(), false);
        r.switch_on_by_rule(100.0);
        assert_eq!(r.read(120.0, 1000.0).reason, Reason::MinOnHold);
        let d = r.read(121.0, 500.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::InBand));
        assert_eq!(r.c.next_deadline(), None);
    }

    #[test]
    fn reading_within_margin_of_switch_never_switches_back() {
        let mut s = settings();
        s.min_on = Duration::ZERO;
        let mut r = Rig::new(s, false);
        r.switch_on_by_rule(100.0);
        let d = r.read(100.5, 1000.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::MinOnHold));
        assert_eq!(
            r.c.next_deadline(),
            None,
            "ends with the next reading, not at a time"
        );
        let d = r.read(101.0, 1000.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::AboveThreshold));
    }

    #[test]
    fn window_contains_edges_and_wrap() {
        let day = Some(Window {
            start_min: 360,
            end_min: 1320,
        });
        assert!(!window_contains(day, 359));
        assert!(window_contains(day, 360));
        assert!(window_contains(day, 1319));
        assert!(!window_contains(day, 1320));
        assert!(!window_contains(day, 0));
        let night = Some(Window {
            start_min: 1320,
            end_min: 360,
        });
        assert!(window_contains(night, 1320));
        assert!(window_contains(night, 1439));
        assert!(window_contains(night, 0));
        assert!(window_contains(night, 359));
        assert!(!window_contains(night, 360));
        assert!(!window_contains(night, 1319));
        assert!(window_contains(None, 0));
        assert!(window_contains(None, 1439));
    }

    #[test]
    fn outside_window_is_off_even_in_the_dark() {
        let mut r = Rig::new(settings(), false);
        r.minute = 359;
        let d = r.read(100.0, 0.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::OutsideWindow));
        r.minute = 360;
        let d = r.read(101.0, 0.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::BelowThreshold));
    }

    #[test]
    fn wrapping_window_switches_on_after_midnight() {
        let mut s = settings();
        s.window = Some(Window {
            start_min: 1320,
            end_min: 120,
        });
        let mut r = Rig::new(s, false);
        r.minute = 30;
        assert_eq!(r.read(100.0, 0.0).reason, Reason::BelowThreshold);
        r.minute = 120;
        let d = r.read(200.0, 0.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::OutsideWindow));
    }

    #[test]
    fn window_close_ignores_min_on_but_min_off_still_protects() {
        let mut r = Rig::new(settings(), false);
        r.minute = 1319;
        r.switch_on_by_rule(100.0);
        r.minute = 1320;
        let d = r.read(110.0, 0.0);
        assert_eq!(
            (d.light_on, d.reason),
            (false, Reason::OutsideWindow),
            "min_on does not delay the window"
        );
        assert_eq!(r.c.next_deadline(), None);
        // The window opens again right away (reload to "always"): min_off protects the relay.
        let mut s = settings();
        s.window = None;
        r.c.set_settings(s);
        let d = r.read(111.0, 0.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::MinOffHold));
        assert_eq!(r.c.next_deadline(), Some(r.t(170.0)));
        assert!(r.tick(170.0).light_on);
    }

    #[test]
    fn no_reading_yet_keeps_state() {
        for on in [false, true] {
            let mut r = Rig::new(settings(), on);
            let d = r.tick(100.0);
            assert_eq!(
                (d.light_on, d.reason, d.ambient_lux),
                (on, Reason::InBand, None)
            );
            r.minute = 23 * 60;
            let d = r.tick(101.0);
            assert_eq!((d.light_on, d.reason), (false, Reason::OutsideWindow));
        }
    }

    #[test]
    fn sensor_failure_off_switches_off_after_dwell() {
        let mut r = Rig::new(settings(), false);
        r.switch_on_by_rule(100.0);
        let d = r.stale(120.0);
        assert_eq!(
            (d.light_on, d.reason, d.ambient_lux),
            (true, Reason::MinOnHold, None)
        );
        let d = r.stale(160.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::SensorFailure));
    }

    #[test]
    fn sensor_failure_on_switches_on_inside_window_only() {
        let mut s = settings();
        s.on_sensor_failure = FailurePolicy::On;
        let mut r = Rig::new(s, false);
        let d = r.stale(100.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::SensorFailure));
        r.minute = 23 * 60;
        let d = r.stale(101.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::OutsideWindow));
    }

    #[test]
    fn sensor_failure_keep_keeps_either_state() {
        let mut s = settings();
        s.on_sensor_failure = FailurePolicy::Keep;
        for on in [false, true] {
            let mut r = Rig::new(s.clone(), on);
            let d = r.stale(100.0);
            assert_eq!((d.light_on, d.reason), (on, Reason::SensorFailure));
        }
    }

    #[test]
    fn manual_on_is_immediate_despite_dwell_and_window() {
        let mut r = Rig::new(settings(), false);
        r.minute = 23 * 60;
        r.read(1.0, 1000.0);
        let d = r.cmd(
            2.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        assert_eq!(
            (d.light_on, d.reason, d.mode),
            (true, Reason::Manual, Mode::Manual)
        );
        assert_eq!(d.ambient_lux, Some(1000.0));
        let d = r.read(3.0, 1000.0);
        assert_eq!(
            (d.light_on, d.reason, d.mode),
            (true, Reason::Manual, Mode::Manual)
        );
        assert_eq!(
            r.c.next_deadline(),
            None,
            "no expiry configured: until auto"
        );
        let d = r.tick(1_000_000.0);
        assert_eq!((d.light_on, d.mode), (true, Mode::Manual));
    }

    #[test]
    fn manual_off_and_toggle() {
        let mut r = Rig::new(settings(), false);
        r.read(100.0, 100.0);
        assert!(r.c.light_on());
        let d = r.cmd(
            101.0,
            Command::Set {
                on: false,
                for_: None,
            },
        );
        assert_eq!((d.light_on, d.reason), (false, Reason::Manual));
        let d = r.cmd(102.0, Command::Toggle { for_: None });
        assert_eq!((d.light_on, d.reason), (true, Reason::Manual));
        let d = r.cmd(103.0, Command::Toggle { for_: None });
        assert_eq!(
            (d.light_on, d.reason, d.mode),
            (false, Reason::Manual, Mode::Manual)
        );
        assert!(!r.read(104.0, 0.0).light_on, "the rule is suspended");
    }

    #[test]
    fn manual_for_expires_exactly_and_dwell_resumes_from_manual_switch() {
        let mut r = Rig::new(settings(), false);
        r.read(100.0, 1000.0);
        let d = r.cmd(
            100.0,
            Command::Set {
                on: true,
                for_: Some(secs(30)),
            },
        );
        assert!(d.light_on);
        assert_eq!(r.c.next_deadline(), Some(r.t(130.0)));
        let d = r.tick(129.999);
        assert_eq!(d.mode, Mode::Manual);
        let d = r.read(130.0, 1000.0);
        assert_eq!(
            (d.light_on, d.reason, d.mode),
            (true, Reason::MinOnHold, Mode::Auto)
        );
        assert_eq!(r.c.next_deadline(), Some(r.t(160.0)));
        let d = r.read(160.0, 1000.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::AboveThreshold));
    }

    #[test]
    fn override_max_applies_and_caps_for() {
        let mut s = settings();
        s.override_max = Some(secs(60));
        let mut r = Rig::new(s, false);
        r.cmd(
            10.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        assert_eq!(r.c.next_deadline(), Some(r.t(70.0)));
        r.cmd(
            20.0,
            Command::Set {
                on: true,
                for_: Some(secs(3600)),
            },
        );
        assert_eq!(
            r.c.next_deadline(),
            Some(r.t(80.0)),
            "for_ capped by override_max"
        );
        r.cmd(
            30.0,
            Command::Set {
                on: true,
                for_: Some(secs(5)),
            },
        );
        assert_eq!(r.c.next_deadline(), Some(r.t(35.0)));
        r.cmd(
            40.0,
            Command::Set {
                on: true,
                for_: Some(Duration::ZERO),
            },
        );
        assert_eq!(
            r.c.next_deadline(),
            Some(r.t(100.0)),
            "zero for_ counts as not given"
        );
        assert_eq!(r.tick(100.0).mode, Mode::Auto);
    }

    #[test]
    fn auto_command_returns_to_rule_with_dwell() {
        let mut r = Rig::new(settings(), false);
        r.read(100.0, 1000.0);
        r.cmd(
            101.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        let d = r.cmd(110.0, Command::Auto);
        assert_eq!(
            (d.light_on, d.reason, d.mode),
            (true, Reason::MinOnHold, Mode::Auto)
        );
        assert_eq!(r.c.next_deadline(), Some(r.t(161.0)));
        // A reading from before the manual switch never switches back (margin hold); a fresh one does.
        assert_eq!(r.cmd(200.0, Command::Auto).reason, Reason::MinOnHold);
        let d = r.read(201.0, 1000.0);
        assert_eq!((d.light_on, d.reason), (false, Reason::AboveThreshold));
    }

    #[test]
    fn reload_keeps_state_and_applies_new_thresholds() {
        let mut r = Rig::new(settings(), false);
        r.switch_on_by_rule(100.0);
        let mut s = settings();
        s.on_below_lux = 1000.0;
        s.off_above_lux = 2000.0;
        r.c.set_settings(s.clone());
        assert!(r.c.light_on());
        assert_eq!(r.c.settings(), &s);
        let d = r.read(110.0, 1500.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::InBand));
        let d = r.read(120.0, 2500.0);
        assert_eq!(
            (d.light_on, d.reason),
            (true, Reason::MinOnHold),
            "dwell timer survives the reload"
        );
        assert!(!r.tick(160.0).light_on);
    }

    #[test]
    fn reload_with_lower_override_max_shortens_override() {
        let mut r = Rig::new(settings(), false);
        r.cmd(
            10.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        let mut s = settings();
        s.override_max = Some(secs(20));
        r.c.set_settings(s);
        assert_eq!(r.c.next_deadline(), Some(r.t(30.0)));
        assert_eq!(r.c.mode(), Mode::Manual);
    }

    #[test]
    fn fixed_lamp_is_subtracted_while_on_only() {
        let mut s = settings();
        s.lamp_lux = LampLux::Fixed(400.0);
        let mut r = Rig::new(s, false);
        assert_eq!(r.c.lamp_lux(), 400.0);
        let d = r.read(100.0, 420.0);
        assert_eq!(
            (d.light_on, d.ambient_lux),
            (true, Some(420.0)),
            "off: nothing subtracted"
        );
        let d = r.read(200.0, 820.0);
        assert_eq!(
            (d.light_on, d.reason, d.ambient_lux),
            (true, Reason::BelowThreshold, Some(420.0))
        );
        let d = r.read(201.0, 300.0);
        assert_eq!(d.ambient_lux, Some(0.0), "clamped at 0");
        let d = r.read(202.0, 951.0);
        assert_eq!(
            (d.light_on, d.reason, d.ambient_lux),
            (false, Reason::AboveThreshold, Some(551.0))
        );
    }

    #[test]
    fn fixed_zero_disables_compensation() {
        let mut r = Rig::new(settings(), false);
        r.switch_on_by_rule(100.0);
        assert_eq!(r.c.lamp_lux(), 0.0);
        let d = r.read(200.0, 800.0);
        assert_eq!((d.light_on, d.ambient_lux), (false, Some(800.0)));
    }

    #[test]
    fn reading_taken_before_a_switch_uses_the_lamp_state_then() {
        let mut s = settings();
        s.lamp_lux = LampLux::Fixed(400.0);
        let mut r = Rig::new(s, false);
        r.read(9.0, 300.0);
        r.cmd(
            10.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        assert_eq!(r.tick(10.2).ambient_lux, Some(300.0));
        assert_eq!(r.read(11.5, 700.0).ambient_lux, Some(300.0));
    }

    fn auto_settings() -> ControlSettings {
        ControlSettings {
            lamp_lux: LampLux::Auto,
            ..settings()
        }
    }

    /// A sensor that sees the lamp (400 lx at 400 lx ambient) keeps the light on: the key property.
    #[test]
    fn auto_lamp_seen_by_sensor_does_not_flap() {
        let mut r = Rig::new(auto_settings(), false);
        assert_eq!(r.c.lamp_lux(), 0.0, "nothing learned yet");
        r.read(98.0, 460.0);
        r.read(99.0, 460.0);
        let d = r.read(100.0, 400.0);
        assert_eq!((d.light_on, d.reason), (true, Reason::BelowThreshold));
        for s in 101..400 {
            let d = r.read(s as f64, 800.0);
            assert!(d.light_on, "flapped off at {s} s: {d:?}");
        }
        assert_eq!(r.c.lamp_lux(), 400.0);
        assert_eq!(r.read(400.0, 800.0).ambient_lux, Some(400.0));
    }

    /// Manual switches at steady ambient `amb` with a lamp adding `lamp`, measured 1.5 s after each.
    fn switch_cycle(r: &mut Rig, start: f64, amb: f64, lamp: f64) {
        r.read(start, amb);
        r.read(start + 1.0, amb);
        r.cmd(
            start + 1.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(start + 2.5, amb + lamp);
        r.read(start + 3.5, amb + lamp);
        r.cmd(
            start + 3.5,
            Command::Set {
                on: false,
                for_: None,
            },
        );
        r.read(start + 5.0, amb);
    }

    #[test]
    fn auto_learns_and_converges() {
        let mut r = Rig::new(auto_settings(), false);
        switch_cycle(&mut r, 10.0, 200.0, 400.0);
        assert_eq!(
            r.c.lamp_lux(),
            400.0,
            "first step taken as is, then the off step agrees"
        );
        for i in 0..20 {
            switch_cycle(&mut r, 100.0 + 10.0 * i as f64, 200.0, 300.0);
        }
        assert!(
            (r.c.lamp_lux() - 300.0).abs() < 1.0,
            "converged to {}",
            r.c.lamp_lux()
        );
    }

    #[test]
    fn auto_smooths_a_single_different_step() {
        let mut r = Rig::new(auto_settings(), false);
        switch_cycle(&mut r, 10.0, 200.0, 400.0);
        r.read(50.0, 200.0);
        r.cmd(
            50.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(51.5, 700.0);
        let expected = 400.0 + LAMP_SMOOTHING * (500.0 - 400.0);
        assert!(
            (r.c.lamp_lux() - expected).abs() < 1e-9,
            "{}",
            r.c.lamp_lux()
        );
    }

    #[test]
    fn auto_rejects_negative_step() {
        let mut r = Rig::new(auto_settings(), false);
        switch_cycle(&mut r, 10.0, 200.0, 400.0);
        r.read(50.0, 500.0);
        r.cmd(
            50.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(51.5, 450.0);
        assert_eq!(r.c.lamp_lux(), 400.0);
    }

    #[test]
    fn auto_rejects_step_while_ambient_changes_fast() {
        let mut r = Rig::new(auto_settings(), false);
        switch_cycle(&mut r, 10.0, 200.0, 400.0);
        // Ambient climbing 100 lx/s: the step would be mostly sky.
        r.read(49.0, 1000.0);
        r.read(50.0, 1100.0);
        r.cmd(
            50.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(51.5, 1650.0);
        assert_eq!(r.c.lamp_lux(), 400.0);
    }

    #[test]
    fn auto_tolerates_slow_ambient_drift() {
        let mut r = Rig::new(auto_settings(), false);
        switch_cycle(&mut r, 10.0, 200.0, 400.0);
        // A slow drift (2 lx/s) is tolerated.
        r.read(70.0, 1000.0);
        r.read(71.0, 1002.0);
        r.cmd(
            71.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(72.5, 1405.0);
        let expected = 400.0 + LAMP_SMOOTHING * (403.0 - 400.0);
        assert!(
            (r.c.lamp_lux() - expected).abs() < 1e-9,
            "{}",
            r.c.lamp_lux()
        );
    }

    #[test]
    fn auto_rejects_readings_too_far_from_switch() {
        let mut r = Rig::new(auto_settings(), false);
        r.read(10.0, 200.0);
        r.cmd(
            50.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(51.5, 600.0);
        assert_eq!(r.c.lamp_lux(), 0.0, "reading before is 40 s old");
        r.cmd(
            60.0,
            Command::Set {
                on: false,
                for_: None,
            },
        );
        r.read(100.0, 200.0);
        assert_eq!(r.c.lamp_lux(), 0.0, "reading after is 40 s late");
    }

    #[test]
    fn auto_uses_first_reading_after_margin_only() {
        let mut r = Rig::new(auto_settings(), false);
        r.read(10.0, 200.0);
        r.cmd(
            10.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(10.5, 400.0);
        assert_eq!(r.c.lamp_lux(), 0.0, "inside the margin: not used");
        r.read(11.0, 600.0);
        assert_eq!(r.c.lamp_lux(), 400.0);
        r.read(12.0, 700.0);
        assert_eq!(
            r.c.lamp_lux(),
            400.0,
            "only the first reading after the margin counts"
        );
    }

    #[test]
    fn auto_ignores_switch_whose_before_reading_is_ambiguous() {
        let mut r = Rig::new(auto_settings(), false);
        r.read(10.0, 200.0);
        r.cmd(
            10.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        r.read(10.5, 400.0);
        r.cmd(
            10.6,
            Command::Set {
                on: false,
                for_: None,
            },
        );
        r.read(12.0, 200.0);
        assert_eq!(r.c.lamp_lux(), 0.0);
    }

    #[test]
    fn next_deadline_is_the_earliest_pending_event() {
        let mut s = settings();
        s.override_max = Some(secs(90));
        let mut r = Rig::new(s, false);
        assert_eq!(r.c.next_deadline(), None);
        r.read(1.0, 100.0);
        assert_eq!(
            r.c.next_deadline(),
            Some(r.t(60.0)),
            "min_off hold from start"
        );
        r.cmd(
            2.0,
            Command::Set {
                on: true,
                for_: None,
            },
        );
        assert_eq!(r.c.next_deadline(), Some(r.t(92.0)), "override expiry");
        r.cmd(3.0, Command::Auto);
        assert_eq!(r.c.next_deadline(), None, "rule agrees: nothing pending");
        r.read(4.0, 1000.0);
        assert_eq!(
            r.c.next_deadline(),
            Some(r.t(62.0)),
            "min_on from the manual switch"
        );
    }

    // ---- simulated day ----

    const LAMP: f64 = 400.0;

    /// Ambient lux at `sec` after midnight: sun from 06:30 to 20:30 peaking at 60 klx, clouds dipping to 300 lx
    /// around 10:00 and 13:30 and to 500 lx (inside the band) around 16:00, plus small fast fluctuation.
    fn ambient_at(sec: f64) -> f64 {
        let h = sec / 3600.0;
        let (rise, set) = (6.5, 20.5);
        let sun = if h <= rise || h >= set {
            0.0
        } else {
            60_000.0
                * (std::f64::consts::PI * (h - rise) / (set - rise))
                    .sin()
                    .powi(2)
        };
        // Cloud: linear 2-minute ramps to a plateau `floor` lasting `plateau` seconds around `center`.
        let cloud = |lux: f64, center_h: f64, plateau: f64, floor: f64| {
            let d = (sec - center_h * 3600.0).abs();
            let depth = ((plateau / 2.0 + 120.0 - d) / 120.0).clamp(0.0, 1.0);
            lux + (floor - lux) * depth
        };
        let mut a = cloud(sun, 10.0, 600.0, 300.0);
        a = cloud(a, 13.5, 900.0, 300.0);
        a = cloud(a, 16.0, 600.0, 500.0);
        a * (1.0 + 0.003 * (sec * 0.7).sin())
    }

    struct DayRun {
        /// (second, new state, true ambient)
        switches: Vec<(u32, bool, f64)>,
        on_outside_window: u32,
        lamp_lux: f64,
    }

    fn run_day(lamp_lux: LampLux) -> DayRun {
        let t0 = crate::hw::mock::test_instant();
        let s = ControlSettings {
            lamp_lux,
            ..settings()
        };
        let mut c = Controller::new(s.clone(), false, t0);
        let mut on = false;
        let mut run = DayRun {
            switches: Vec::new(),
            on_outside_window: 0,
            lamp_lux: 0.0,
        };
        // Deterministic sensor noise (±0.5 %).
        let mut seed: u32 = 12345;
        for sec in 0..86_400u32 {
            let at = t0 + Duration::from_secs(u64::from(sec));
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = 1.0 + 0.01 * ((seed >> 16) as f64 / 65_535.0 - 0.5);
            let amb = ambient_at(f64::from(sec));
            let lux = (amb + if on { LAMP } else { 0.0 }) * noise;
            let minute = (sec / 60) as u16;
            let d = c.decide(&Inputs {
                now: at,
                local_minute: minute,
                sensor: Some(SensorInput::Reading { lux, at }),
            });
            c.switched(at, d.light_on);
            if d.light_on != on {
                run.switches.push((sec, d.light_on, amb));
                on = d.light_on;
            }
            if on && !window_contains(s.window, minute) {
                run.on_outside_window += 1;
            }
        }
        run.lamp_lux = c.lamp_lux();
        run
    }

    /// The ideal: hysteresis on the TRUE ambient, with the window, no dwell.
    fn oracle_switches() -> Vec<(u32, bool)> {
        let s = settings();
        let mut on = false;
        let mut out = Vec::new();
        for sec in 0..86_400u32 {
            let amb = ambient_at(f64::from(sec));
            let next = if !window_contains(s.window, (sec / 60) as u16) {
                false
            } else if amb < ON_BELOW {
                true
            } else if amb > OFF_ABOVE {
                false
            } else {
                on
            };
            if next != on {
                out.push((sec, next));
                on = next;
            }
        }
        out
    }

    /// Whether each switch was justified by the true ambient (with a tolerance for noise and estimate error) or
    /// by a window edge.
    fn unjustified(run: &DayRun) -> Vec<(u32, bool, f64)> {
        const TOL: f64 = 30.0;
        let s = settings();
        run.switches
            .iter()
            .copied()
            .filter(|&(sec, on, amb)| {
                let minute = (sec / 60) as u16;
                let edge = window_contains(s.window, minute)
                    != window_contains(s.window, minute.saturating_sub(1));
                let ok = if on {
                    amb < ON_BELOW + TOL
                } else {
                    amb > OFF_ABOVE - TOL || !window_contains(s.window, minute)
                };
                !(ok || edge)
            })
            .collect()
    }

    #[test]
    fn simulated_day_with_lamp_learning_never_flaps() {
        let run = run_day(LampLux::Auto);
        let oracle = oracle_switches();
        // Sanity of the scenario: dawn (window open, off), two deep clouds, dusk (on, window close).
        assert_eq!(oracle.len(), 8, "{oracle:?}");
        assert_eq!(run.on_outside_window, 0);
        assert_eq!(
            unjustified(&run),
            Vec::new(),
            "switches: {:?}",
            run.switches
        );
        assert_eq!(
            run.switches.len(),
            oracle.len(),
            "switches: {:?}\noracle: {oracle:?}",
            run.switches
        );
        let min_cycle = (settings().min_on + settings().min_off).as_secs() as u32;
        for w in run.switches.windows(3) {
            if w[0].1 && !w[1].1 && w[2].1 {
                assert!(
                    w[2].0 - w[0].0 >= min_cycle,
                    "on-off-on within {min_cycle} s: {w:?}"
                );
            }
        }
        for (&(sec, on, _), &(osec, oon)) in run.switches.iter().zip(&oracle) {
            assert_eq!(on, oon);
            assert!(
                sec.abs_diff(osec) <= 120,
                "switch at {sec} s, ideal at {osec} s"
            );
        }
        assert!(
            (run.lamp_lux - LAMP).abs() < 0.05 * LAMP,
            "learned {}",
            run.lamp_lux
        );
    }

    /// The same day without compensation flaps: proves the checks above can fail.
    #[test]
    fn simulated_day_without_compensation_flaps() {
        let run = run_day(LampLux::Fixed(0.0));
        assert!(
            !unjustified(&run).is_empty(),
            "switches: {:?}",
            run.switches
        );
        assert!(run.switches.len() > oracle_switches().len());
    }
}
