//! Payloads (`P/dli`, `P/report/daily`), the threshold-rule replay of a day, and `P/dli/target/set` parsing.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{secs_between, DayState, Dli, Now, Status, MINUTES};
use crate::config::{LampLux, Strategy};
use crate::core::control::{Controller, Inputs, SensorInput};

/// A closed day counts as `met` when it got at least this share below its target (the rest is carried).
pub const MET_TOLERANCE: f64 = 0.02;

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// `P/dli`: the light-day so far (also today's figures on the dashboard and in `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DliPayload {
    pub day: String,
    pub mol: f64,
    pub sun_mol: f64,
    pub lamp_mol: f64,
    pub target_mol: f64,
    pub projected_mol: f64,
    pub lamp_on_s: f64,
    pub lamp_kwh: f64,
    pub cost: f64,
    pub status: &'static str,
}

/// `threshold_rule` of `P/report/daily`: the day's sunlight replayed through the plain threshold rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdRun {
    pub lamp_on_s: f64,
    pub lamp_kwh: f64,
    pub cost: f64,
    pub mol: f64,
}

/// `P/report/daily`: the closed light-day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyReport {
    #[serde(flatten)]
    pub figures: DliPayload,
    pub switches: u32,
    pub longest_dark_h: f64,
    pub threshold_rule: ThresholdRun,
    pub saved_kwh: f64,
    pub saved_cost: f64,
    /// The one notice line for the log (not part of the payload).
    #[serde(skip)]
    pub log_line: String,
}

impl DliPayload {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl DailyReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The one notice line at the day's end.
    fn line(&self, day: &DayState) -> String {
        let f = &self.figures;
        let t = &self.threshold_rule;
        let mut line = format!(
            "dli: light-day {} {}: {:.2} of {:.2} mol/m² (sun {:.2}, lamp {:.2}), lamp {:.2} h, {:.3} kWh, \
             cost {:.2}, {} switches, longest dark {:.1} h; threshold rule: lamp {:.2} h, {:.3} kWh, cost {:.2}, \
             {:.2} mol/m²; saved {:.3} kWh, {:.2}",
            f.day,
            f.status,
            f.mol,
            f.target_mol,
            f.sun_mol,
            f.lamp_mol,
            f.lamp_on_s / 3600.0,
            f.lamp_kwh,
            f.cost,
            self.switches,
            self.longest_dark_h,
            t.lamp_on_s / 3600.0,
            t.lamp_kwh,
            t.cost,
            t.mol,
            self.saved_kwh,
            self.saved_cost
        );
        if day.unknown_s > 0.0 {
            line += &format!("; {:.0} s without readings", day.unknown_s);
        }
        if day.saturated_s > 0.0 {
            line += &format!(
                "; sensor saturated for {:.0} s (counted at its ceiling: sunlight under-counted)",
                day.saturated_s
            );
        }
        line
    }
}

/// Parse a `P/dli/target/set` payload: a number of mol m⁻² d⁻¹ from 0 to 100. The error is the reason to
/// publish on `P/dli/target/set/error`.
pub fn parse_target(payload: &[u8]) -> Result<f64, String> {
    const HOW: &str =
        "send the daily light target in mol/m²/day, a number from 0 (accounting only) to 100";
    let text = std::str::from_utf8(payload)
        .map_err(|_| format!("payload is not UTF-8 text: {HOW}"))?
        .trim();
    if text.is_empty() {
        return Err(format!("empty payload: {HOW}"));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number: {HOW}"))?;
    if !value.is_finite() {
        return Err(format!("{text:?} is not a finite number: {HOW}"));
    }
    if value < 0.0 {
        return Err(format!("{text} is negative: {HOW}"));
    }
    if value > 100.0 {
        return Err(format!(
            "{text} is above 100 mol/m²/day (full summer sun gives about 60): {HOW}"
        ));
    }
    Ok(value)
}

impl Dli {
    /// `P/dli` at `now`.
    pub fn payload(&self, now: &Now) -> DliPayload {
        let plan = self.plan(now);
        self.figures(plan.status, plan.projected_mol)
    }

    fn figures(&self, status: Status, projected_mol: f64) -> DliPayload {
        let d = &self.state.day;
        DliPayload {
            day: self.day_start.date().to_string(),
            mol: round(self.mol(), 3),
            sun_mol: round(d.sun_umol / 1e6, 3),
            lamp_mol: round(d.lamp_umol / 1e6, 3),
            target_mol: round(self.target_mol(), 3),
            projected_mol: round(projected_mol, 3),
            lamp_on_s: round(d.lamp_on_s, 1),
            lamp_kwh: round(d.lamp_kwh, 4),
            cost: round(d.cost, 4),
            status: status.as_str(),
        }
    }

    /// The report of the current light-day as it stands (called at its end). `at` only anchors the replay's
    /// private clock.
    pub(super) fn report(&self, at: Instant) -> DailyReport {
        let target = self.target_mol();
        let mol = self.mol();
        let status = if target <= 0.0 {
            Status::NoTarget
        } else if mol >= target * (1.0 - MET_TOLERANCE) {
            Status::Met
        } else {
            Status::Short
        };
        let figures = self.figures(status, mol);
        let threshold = self.replay_threshold(at);
        let d = &self.state.day;
        let day_len = secs_between(self.day_start, self.day_end()).clamp(0.0, super::DAY_S);
        let mut report = DailyReport {
            saved_kwh: round(threshold.lamp_kwh - d.lamp_kwh, 4),
            saved_cost: round(threshold.cost - d.cost, 4),
            figures,
            switches: d.switches,
            longest_dark_h: round(d.longest_dark_s(day_len) / 3600.0, 2),
            threshold_rule: threshold,
            log_line: String::new(),
        };
        report.log_line = report.line(d);
        report
    }

    /// The day's recorded sunlight (per-minute mean ambient lux) through the plain threshold rule: the real
    /// controller with this day's `control` settings, fed the ambient estimate directly (so no lamp
    /// compensation is needed), one reading per minute; a minute without readings is a stale sensor.
    pub fn replay_threshold(&self, at: Instant) -> ThresholdRun {
        let mut settings = self.control.clone();
        settings.lamp_lux = LampLux::Fixed(0.0);
        settings.strategy = Strategy::Threshold;
        // The replay starts with the lamp off and its `min_off` already served at the first reading.
        let first = at.checked_add(settings.min_off).unwrap_or(at);
        let mut controller = Controller::new(settings, false, at);
        let start_min = self.control.window.map_or(0, |w| usize::from(w.start_min));
        let ppfd = self.lamp_ppfd().unwrap_or(0.0);
        let (mut on_s, mut kwh, mut cost) = (0.0, 0.0, 0.0);
        for (m, lux) in self.state.day.minute_lux().into_iter().enumerate() {
            let now = first + Duration::from_secs(60 * m as u64);
            let local_minute = ((start_min + m) % MINUTES) as u16;
            let sensor = match lux {
                Some(l) => SensorInput::Reading {
                    lux: f64::from(l),
                    at: now,
                },
                None => SensorInput::Stale,
            };
            let decision = controller.decide(&Inputs {
                now,
                local_minute,
                sensor: Some(sensor),
            });
            controller.switched(now, decision.light_on);
            if decision.light_on {
                let k = self.settings.lamp_watts * 60.0 / 3.6e6;
                on_s += 60.0;
                kwh += k;
                cost += k * self.settings.price_at(local_minute);
            }
        }
        ThresholdRun {
            lamp_on_s: on_s,
            lamp_kwh: round(kwh, 4),
            cost: round(cost, 4),
            mol: round(self.state.day.sun_umol / 1e6 + ppfd * on_s / 1e6, 3),
        }
    }
}
