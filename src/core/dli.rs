//! The daily light integral (DLI) engine: pure (time comes in as [`Now`], nothing here reads a clock or does I/O).
//!
//! - **Accounting** (always on): PPFD = ambient estimate × `sun_umol_per_lux` + (lamp on) × lamp PPFD, integrated
//!   per light-day (from the start of `control.window`, 00:00 when the window is empty), sun and lamp apart.
//!   Sunlight is integrated between consecutive readings (trapezoids: exact for the linearly interpolated light
//!   between them); a gap longer than [`MAX_GAP`] counts as unknown, not as light, and yields a log line. Lamp
//!   time accrues from the confirmed relay state between any two events, priced by `[[dli.tariff]]`.
//! - **Day state** ([`DliState`]): serializable, so the day so far survives restarts ([`DliState::to_json`],
//!   [`DliState::from_json`] validates and rejects torn or tampered files).
//! - **Strategy "dli"** ([`Dli::plan`], in [`plan`]): the lamp demand from the integral so far, the sunlight still
//!   expected, the lamp PPFD, the window time left and the tariff.
//! - **Daily report** ([`DailyReport`], in [`report`]): at each light-day end, with the same day's recorded
//!   sunlight replayed through the plain threshold rule.

use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, NaiveTime, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::config::{ControlSettings, Window};
pub use crate::config::{DliSettings, TariffPeriod};

mod plan;
mod report;

pub use plan::{
    Demand, DliReason, Plan, Status, CAUTIOUS_DISCOUNT, FORECAST_DAYS, RATIO_MAX, RATIO_MIN_MOL,
    START_SLACK_S,
};
pub use report::{parse_target, DailyReport, DliPayload, ThresholdRun, MET_TOLERANCE};

pub use super::Now;

/// A [`Now`] with its local wall time without the UTC offset (light-days, windows and tariffs are local times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Moment {
    at: Instant,
    local: NaiveDateTime,
}

impl Moment {
    fn of(now: &Now) -> Moment {
        Moment {
            at: now.at,
            local: now.local.naive_local(),
        }
    }
}

/// A reading gap longer than this counts as unknown (not as light).
pub const MAX_GAP: Duration = Duration::from_secs(120);
/// Minutes in a light-day (the per-minute sunlight trace).
pub const MINUTES: usize = 1440;
const DAY_S: f64 = 86_400.0;
/// Format of [`DliState`]; a file with another version is ignored.
pub const STATE_VERSION: u32 = 1;
const TIME_FMT: &str = "%Y-%m-%dT%H:%M:%S";

/// The light-day so far: what the shell persists (see [`DliState`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayState {
    /// Local start of the light-day, `YYYY-MM-DDTHH:MM:SS`.
    pub start: String,
    /// Carried in from the day before (added to the target), mol m⁻².
    pub carry_in_mol: f64,
    /// Integrals in µmol m⁻².
    pub sun_umol: f64,
    pub lamp_umol: f64,
    pub lamp_on_s: f64,
    pub lamp_kwh: f64,
    pub cost: f64,
    /// Confirmed relay switches.
    pub switches: u32,
    /// Time without usable readings (gaps > [`MAX_GAP`]).
    pub unknown_s: f64,
    /// Time the sensor was saturated (counted at its ceiling).
    pub saturated_s: f64,
    /// Per minute of the light-day: ambient lux × seconds, and the seconds known.
    pub lux_s: Vec<f32>,
    pub known_s: Vec<f32>,
    /// Lamp-on periods, seconds from the day start, `[from, to]`.
    pub lamp_periods: Vec<[f64; 2]>,
}

impl DayState {
    fn new(start: NaiveDateTime, carry_in_mol: f64) -> Self {
        DayState {
            start: start.format(TIME_FMT).to_string(),
            carry_in_mol,
            sun_umol: 0.0,
            lamp_umol: 0.0,
            lamp_on_s: 0.0,
            lamp_kwh: 0.0,
            cost: 0.0,
            switches: 0,
            unknown_s: 0.0,
            saturated_s: 0.0,
            lux_s: vec![0.0; MINUTES],
            known_s: vec![0.0; MINUTES],
            lamp_periods: Vec::new(),
        }
    }

    /// Mean ambient lux per minute (`None` where nothing was measured).
    pub fn minute_lux(&self) -> Vec<Option<f32>> {
        self.lux_s
            .iter()
            .zip(&self.known_s)
            .map(|(l, k)| (*k > 0.5).then(|| l / k))
            .collect()
    }

    /// Longest stretch of the light-day with the lamp off, in seconds (up to `until`, seconds from the start).
    pub fn longest_dark_s(&self, until: f64) -> f64 {
        let mut longest: f64 = 0.0;
        let mut dark_from = 0.0;
        for p in &self.lamp_periods {
            longest = longest.max(p[0] - dark_from);
            dark_from = p[1];
        }
        longest.max(until - dark_from)
    }
}

/// What the shell writes to the state directory: the day so far and the recent days' sunlight profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DliState {
    pub version: u32,
    pub day: DayState,
    /// Mean ambient lux per minute of the last light-days, newest last (at most [`FORECAST_DAYS`]).
    pub profiles: Vec<Vec<Option<f32>>>,
}

impl DliState {
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse and validate a saved state; the error says what is wrong (the caller logs it and starts afresh).
    pub fn from_json(text: &str) -> Result<DliState, String> {
        let s: DliState =
            serde_json::from_str(text).map_err(|e| format!("not a DLI state file ({e})"))?;
        if s.version != STATE_VERSION {
            return Err(format!(
                "state version {} (this build reads {STATE_VERSION})",
                s.version
            ));
        }
        let d = &s.day;
        parse_time(&d.start)
            .ok_or_else(|| format!("day start {:?} is not a date-time", d.start))?;
        if d.lux_s.len() != MINUTES || d.known_s.len() != MINUTES {
            return Err(format!(
                "per-minute trace has {}/{} entries, expected {MINUTES}",
                d.lux_s.len(),
                d.known_s.len()
            ));
        }
        let fine = |x: f64| x.is_finite() && x >= 0.0;
        let totals = [
            d.sun_umol,
            d.lamp_umol,
            d.lamp_on_s,
            d.lamp_kwh,
            d.cost,
            d.unknown_s,
            d.saturated_s,
        ];
        if !totals.iter().all(|x| fine(*x)) || !d.carry_in_mol.is_finite() {
            return Err("a day total is negative or not a number".into());
        }
        if d.lamp_on_s > DAY_S + 1.0 || d.unknown_s > DAY_S + 1.0 {
            return Err("a day total exceeds a day".into());
        }
        if !d.lux_s.iter().all(|x| fine(f64::from(*x)))
            || !d.known_s.iter().all(|x| fine(f64::from(*x)) && *x <= 60.5)
        {
            return Err("the per-minute trace holds invalid values".into());
        }
        let mut prev_end = 0.0;
        for p in &d.lamp_periods {
            if !(fine(p[0]) && p[0] >= prev_end && p[1] >= p[0] && p[1] <= DAY_S + 1.0) {
                return Err("lamp periods are out of order or outside the day".into());
            }
            prev_end = p[1];
        }
        if s.profiles.len() > FORECAST_DAYS
            || s.profiles
                .iter()
                .any(|p| p.len() != MINUTES || !p.iter().flatten().all(|x| fine(f64::from(*x))))
        {
            return Err("the sunlight profiles are malformed".into());
        }
        Ok(s)
    }
}

fn parse_time(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, TIME_FMT).ok()
}

/// The start of the light-day containing `local` for a window starting at `start_min`.
pub fn light_day_start(window: Option<Window>, local: NaiveDateTime) -> NaiveDateTime {
    let sm = window.map_or(0, |w| u32::from(w.start_min.min(1439)));
    let t = NaiveTime::from_num_seconds_from_midnight_opt(sm * 60, 0).unwrap_or(NaiveTime::MIN);
    let candidate = local.date().and_time(t);
    if local >= candidate {
        candidate
    } else {
        candidate - TimeDelta::days(1)
    }
}

/// Length of the window from the day start, in seconds (the whole day when there is no window).
pub fn window_len_s(window: Option<Window>) -> f64 {
    match window {
        None => DAY_S,
        Some(w) => match (i32::from(w.end_min) - i32::from(w.start_min)).rem_euclid(1440) {
            0 => DAY_S,
            m => f64::from(m) * 60.0,
        },
    }
}

/// Seconds from `a` to `b` (negative if `b` is earlier).
fn secs_between(a: NaiveDateTime, b: NaiveDateTime) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// Something the engine has to say: a log line or a closed day.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Log { level: log::Level, line: String },
    DayClosed(Box<DailyReport>),
}

/// The last reading: when, and the ambient lux then.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LastSample {
    at: Instant,
    /// Position in local time (advanced with the monotonic clock from the reading's wall time).
    local: NaiveDateTime,
    lux: f64,
    saturated: bool,
}

/// The DLI engine: accounting, forecast, plan and the day's report.
#[derive(Debug, Clone)]
pub struct Dli {
    settings: DliSettings,
    control: ControlSettings,
    /// From `P/dli/target/set` (kept until the next restart or reload).
    target_override: Option<f64>,
    state: DliState,
    day_start: NaiveDateTime,
    lamp_on: bool,
    learned_lamp_lux: Option<f64>,
    last: Option<LastSample>,
    /// Where lamp accounting stands.
    accrued: Moment,
    /// Per profile: lux·s from each minute to the day's end (suffix sums, rebuilt when the profiles change).
    sun_suffix: Vec<Vec<f64>>,
}

impl Dli {
    /// Start at `now` with the lamp as the relay reads back. A restored state of the current light-day is resumed;
    /// one of the day before is closed (its report comes back as a note); an older one only gives its profiles.
    pub fn new(
        settings: DliSettings,
        control: ControlSettings,
        lamp_on: bool,
        restored: Option<DliState>,
        now: Now,
    ) -> (Dli, Vec<Note>) {
        let now = Moment::of(&now);
        let day_start = light_day_start(control.window, now.local);
        let mut notes = Vec::new();
        let mut dli = Dli {
            settings,
            control,
            target_override: None,
            state: DliState {
                version: STATE_VERSION,
                day: DayState::new(day_start, 0.0),
                profiles: Vec::new(),
            },
            day_start,
            lamp_on,
            learned_lamp_lux: None,
            last: None,
            accrued: now,
            sun_suffix: Vec::new(),
        };
        if let Some(saved) = restored {
            let saved_start = parse_time(&saved.day.start).unwrap_or(day_start);
            if saved_start == day_start {
                dli.state = saved;
                notes.push(Note::Log {
                    level: log::Level::Info,
                    line: format!(
                        "dli: resumed light-day {} at {:.2} mol/m²",
                        day_start.date(),
                        dli.mol()
                    ),
                });
            } else if saved_start < day_start && day_start - saved_start <= TimeDelta::hours(36) {
                // The saved day ended while we were down: close it as it stands, then start today.
                dli.state = saved;
                dli.day_start = saved_start;
                let end = dli.day_end();
                dli.close_day(end, now.at, &mut notes);
                dli.day_start = day_start;
                dli.state.day = DayState::new(day_start, dli.state.day.carry_in_mol);
            } else {
                dli.state.profiles = saved.profiles;
                notes.push(Note::Log {
                    level: log::Level::Info,
                    line: format!(
                        "dli: saved light-day {} is not today's; starting afresh",
                        saved.day.start
                    ),
                });
            }
        }
        if lamp_on {
            let s = dli.offset_s(now.local);
            dli.state.day.lamp_periods.push([s, s]);
        }
        dli.rebuild_forecast();
        (dli, notes)
    }

    fn rebuild_forecast(&mut self) {
        self.sun_suffix = self
            .state
            .profiles
            .iter()
            .map(|p| {
                let mut acc = vec![0.0; MINUTES + 1];
                for m in (0..MINUTES).rev() {
                    acc[m] = acc[m + 1] + f64::from(p[m].unwrap_or(0.0)) * 60.0;
                }
                acc
            })
            .collect();
    }

    /// Replace the settings (SIGHUP). The day so far is kept; a live target from `P/dli/target/set` is dropped.
    pub fn set_settings(&mut self, settings: DliSettings, control: ControlSettings) {
        self.settings = settings;
        self.control = control;
        self.target_override = None;
    }

    pub fn settings(&self) -> &DliSettings {
        &self.settings
    }

    /// Set the target live (`P/dli/target/set`, already parsed with [`parse_target`]).
    pub fn set_target(&mut self, mol: f64) {
        self.target_override = Some(mol);
    }

    /// The lamp's contribution at the sensor as the controller learned it (for the PPFD estimate).
    pub fn set_learned_lamp_lux(&mut self, lux: Option<f64>) {
        self.learned_lamp_lux = lux.filter(|x| x.is_finite() && *x > 0.0);
    }

    /// The lamp PPFD: `lamp_ppfd`, else the learned lamp lux × `lamp_umol_per_lux`; `None` while unknown.
    pub fn lamp_ppfd(&self) -> Option<f64> {
        if self.settings.lamp_ppfd > 0.0 {
            Some(self.settings.lamp_ppfd)
        } else {
            self.learned_lamp_lux
                .map(|l| l * self.settings.lamp_umol_per_lux)
        }
    }

    /// The base target (setting or live value), without carry.
    pub fn base_target_mol(&self) -> f64 {
        self.target_override.unwrap_or(self.settings.target_mol)
    }

    /// Today's target: base + carry (0 when the base is 0: accounting only).
    pub fn target_mol(&self) -> f64 {
        let base = self.base_target_mol();
        if base <= 0.0 {
            0.0
        } else {
            (base + self.state.day.carry_in_mol).max(0.0)
        }
    }

    /// Light received so far today, mol m⁻².
    pub fn mol(&self) -> f64 {
        (self.state.day.sun_umol + self.state.day.lamp_umol) / 1e6
    }

    pub fn day(&self) -> &DayState {
        &self.state.day
    }

    pub fn day_start(&self) -> NaiveDateTime {
        self.day_start
    }

    /// The state to persist.
    pub fn state(&self) -> &DliState {
        &self.state
    }

    /// End of the current light-day: the next window start at least 12 h after this day's start (so a window
    /// moved by a reload gives one longer or shorter day, never a tiny one).
    pub fn day_end(&self) -> NaiveDateTime {
        let next = light_day_start(self.control.window, self.day_start + TimeDelta::days(1));
        if next - self.day_start < TimeDelta::hours(12) {
            next + TimeDelta::days(1)
        } else {
            next
        }
    }

    fn offset_s(&self, local: NaiveDateTime) -> f64 {
        secs_between(self.day_start, local).clamp(0.0, DAY_S * 2.0)
    }

    /// A reading: `ambient_lux` is the ambient estimate (lamp subtracted); `saturated` marks a reading at the
    /// sensor's ceiling (then `ambient_lux` should be that ceiling). Sunlight since the previous reading is
    /// integrated, or counted as unknown after a gap.
    pub fn reading(&mut self, now: Now, ambient_lux: f64, saturated: bool) -> Vec<Note> {
        let now = Moment::of(&now);
        let mut notes = Vec::new();
        self.advance(now, &mut notes);
        let lux = if ambient_lux.is_finite() {
            ambient_lux.max(0.0)
        } else {
            0.0
        };
        if let Some(last) = self.last {
            let gap = now.at.saturating_duration_since(last.at);
            let from = last.local;
            if gap > MAX_GAP {
                let secs = secs_between(from, now.local).max(0.0);
                self.state.day.unknown_s += secs.min(DAY_S);
                notes.push(Note::Log {
                    level: log::Level::Warn,
                    line: format!(
                        "dli: no reading for {:.0} s ({} to {}): counted as unknown, not as light",
                        gap.as_secs_f64(),
                        from.format("%H:%M:%S"),
                        now.local.format("%H:%M:%S")
                    ),
                });
            } else {
                let secs = gap.as_secs_f64();
                self.integrate_sun(from, secs, last.lux, lux, saturated || last.saturated);
            }
        }
        self.last = Some(LastSample {
            at: now.at,
            local: now.local,
            lux,
            saturated,
        });
        notes
    }

    /// The relay read back `on` (a confirmed switch when it differs).
    pub fn relay(&mut self, now: Now, on: bool) -> Vec<Note> {
        let now = Moment::of(&now);
        let mut notes = Vec::new();
        self.advance(now, &mut notes);
        if on != self.lamp_on {
            self.lamp_on = on;
            let s = self.offset_s(now.local);
            let day = &mut self.state.day;
            day.switches += 1;
            if on {
                day.lamp_periods.push([s, s]);
            }
        }
        notes
    }

    /// Time passes (lamp accounting, day end).
    pub fn tick(&mut self, now: Now) -> Vec<Note> {
        let mut notes = Vec::new();
        self.advance(Moment::of(&now), &mut notes);
        notes
    }

    /// Bring lamp accounting to `now`, closing every light-day that ended before it.
    fn advance(&mut self, now: Moment, notes: &mut Vec<Note>) {
        let mut elapsed = now
            .at
            .saturating_duration_since(self.accrued.at)
            .as_secs_f64();
        let mut from = self.accrued.local;
        // Nothing more than a day's worth of days is closed one by one after a long stop.
        let mut guard = 0;
        loop {
            let end = self.day_end();
            let to_end = secs_between(from, end);
            if to_end > elapsed || guard > 2 {
                break;
            }
            guard += 1;
            let to_end = to_end.max(0.0);
            self.accrue_lamp(from, to_end);
            // Sunlight up to the boundary: the last reading held, if recent enough.
            if let Some(last) = self.last {
                let held = secs_between(last.local, end).max(0.0);
                if held <= MAX_GAP.as_secs_f64() {
                    self.integrate_sun(last.local, held, last.lux, last.lux, last.saturated);
                    self.last = Some(LastSample {
                        at: last.at + Duration::from_secs_f64(held),
                        local: end,
                        ..last
                    });
                }
            }
            self.close_day(end, now.at, notes);
            elapsed -= to_end;
            from = end;
        }
        if guard > 2 {
            // Out for days: start at today's light-day.
            self.day_start = light_day_start(self.control.window, now.local);
            self.state.day = DayState::new(self.day_start, 0.0);
            self.last = None;
            if self.lamp_on {
                let s = self.offset_s(now.local);
                self.state.day.lamp_periods.push([s, s]);
            }
        } else {
            self.accrue_lamp(from, elapsed);
        }
        self.accrued = now;
    }

    /// Split `secs` from local `from` into pieces inside one minute of the light-day: (minute index, seconds).
    fn pieces(&self, from: NaiveDateTime, secs: f64) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        let mut s = secs_between(self.day_start, from).max(0.0);
        let end = (s + secs.max(0.0)).min(DAY_S * 2.0);
        while s < end - 1e-9 {
            let m = (s / 60.0).floor();
            let next = ((m + 1.0) * 60.0).min(end);
            out.push(((m as usize).min(MINUTES - 1), next - s));
            s = next;
        }
        out
    }

    fn accrue_lamp(&mut self, from: NaiveDateTime, secs: f64) {
        if !self.lamp_on || secs <= 0.0 {
            return;
        }
        let ppfd = self.lamp_ppfd().unwrap_or(0.0);
        let start_min = self.control.window.map_or(0, |w| w.start_min);
        let pieces = self.pieces(from, secs);
        let day = &mut self.state.day;
        for (m, len) in pieces {
            let kwh = self.settings.lamp_watts * len / 3.6e6;
            let minute_of_day = ((usize::from(start_min) + m) % MINUTES) as u16;
            day.lamp_on_s += len;
            day.lamp_umol += ppfd * len;
            day.lamp_kwh += kwh;
            day.cost += kwh * self.settings.price_at(minute_of_day);
        }
        let end = (secs_between(self.day_start, from) + secs).clamp(0.0, DAY_S);
        if let Some(p) = day.lamp_periods.last_mut() {
            p[1] = p[1].max(end);
        }
    }

    /// Sunlight from `from` for `secs`, lux going linearly from `lux0` to `lux1`.
    fn integrate_sun(
        &mut self,
        from: NaiveDateTime,
        secs: f64,
        lux0: f64,
        lux1: f64,
        saturated: bool,
    ) {
        if secs <= 0.0 {
            return;
        }
        let k = self.settings.sun_umol_per_lux;
        let pieces = self.pieces(from, secs);
        let day = &mut self.state.day;
        let mut t = 0.0;
        for (m, len) in pieces {
            let mid = (t + len / 2.0) / secs;
            let lux = lux0 + (lux1 - lux0) * mid;
            day.sun_umol += lux * k * len;
            day.lux_s[m] += (lux * len) as f32;
            day.known_s[m] += len as f32;
            t += len;
        }
        if saturated {
            day.saturated_s += secs;
        }
    }

    /// Close the light-day ending at `end`: report, profile for the forecast, carry; start the next day.
    fn close_day(&mut self, end: NaiveDateTime, at: Instant, notes: &mut Vec<Note>) {
        let report = self.report(at);
        // The day's sunlight becomes a forecast profile when at least half of the window was measured.
        let profile = self.state.day.minute_lux();
        let window_minutes = (window_len_s(self.control.window) / 60.0) as usize;
        let known = profile[..window_minutes.min(MINUTES)]
            .iter()
            .filter(|x| x.is_some())
            .count();
        if known * 2 >= window_minutes {
            self.state.profiles.push(profile);
            let excess = self.state.profiles.len().saturating_sub(FORECAST_DAYS);
            self.state.profiles.drain(..excess);
            self.rebuild_forecast();
        }
        let target = self.target_mol();
        let carry = if target > 0.0 {
            let max = self.settings.carry_max_mol.max(0.0);
            (target - self.mol()).clamp(-max, max)
        } else {
            0.0
        };
        notes.push(Note::DayClosed(Box::new(report)));
        self.day_start = end;
        self.state.day = DayState::new(end, carry);
        if self.lamp_on {
            self.state.day.lamp_periods.push([0.0, 0.0]);
        }
    }
}

#[cfg(test)]
mod tests;
