//! Strategy "dli": how much lamp time the day still needs, and whether now is the time for it.
//!
//! Two forecasts of the sunlight still to come today (from now to the light-day's end), both learned from the
//! last [`FORECAST_DAYS`] light-days' per-minute profiles and both 0 without history (never hope):
//! - **central**: the mean of those days' remaining sunlight, each scaled by today's ratio (today's sunlight so
//!   far against that day's by the same time, once that day had [`RATIO_MIN_MOL`]; capped at [`RATIO_MAX`]);
//! - **cautious**: the least of them, the ratio only counting when below 1, × [`CAUTIOUS_DISCOUNT`].
//!
//! Lamp time needed = (target − received so far − forecast) ÷ lamp PPFD. The lamp is off (`dli_met`) once the
//! central need is 0: the target is reached or the expected sunlight will reach it. Otherwise the *cautious*
//! need is placed into the window's remaining time (cheapest first, the later first among equal prices, see
//! `schedule`): the lamp starts when waiting longer would miss the target even if the day stays as poor
//! as cautiously expected (`dli_needed`), and waits otherwise (`dli_scheduled`). A running lamp stays on while
//! the current price is no dearer than the plan's dearest minute, so one block is not chopped up. More central
//! need than window left: `short`, and the lamp runs through the window.

use chrono::Timelike;

use super::{secs_between, window_len_s, Dli, Moment, Now, MINUTES};
use crate::core::control::Reason;

/// Days of sunlight profiles the forecast learns from.
pub const FORECAST_DAYS: usize = 3;
/// Cap of today's ratio (its sunlight so far against a recent day's by the same time) in the central forecast.
pub const RATIO_MAX: f64 = 3.0;
/// The cautious forecast: the least sunny recent day, scaled by today's ratio when below 1, times this.
pub const CAUTIOUS_DISCOUNT: f64 = 0.8;
/// Today's ratio counts once a recent day had this much sunlight (mol m⁻²) by the same time.
pub const RATIO_MIN_MOL: f64 = 0.5;
/// The lamp starts when the planned lamp time reaches back to within this of now (decisions come with readings,
/// a second or a few apart: starting up to a minute early never misses the latest start).
pub const START_SLACK_S: f64 = 60.0;

/// Why the DLI strategy wants the lamp as it does (`reason` strings `dli_needed`, `dli_scheduled`, `dli_met`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DliReason {
    Needed,
    Scheduled,
    Met,
}

impl DliReason {
    /// The controller's reason.
    pub fn reason(self) -> Reason {
        match self {
            DliReason::Needed => Reason::DliNeeded,
            DliReason::Scheduled => Reason::DliScheduled,
            DliReason::Met => Reason::DliMet,
        }
    }
}

/// The lamp the strategy asks for (the controller still applies manual mode, window, sensor failure, dwell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub on: bool,
    pub reason: DliReason,
}

impl Demand {
    /// The form [`crate::core::control::Controller::decide_with`] takes.
    pub fn for_controller(self) -> (bool, Reason) {
        (self.on, self.reason.reason())
    }
}

/// `status` of `P/dli`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NoTarget,
    OnTrack,
    Short,
    Met,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NoTarget => "no_target",
            Status::OnTrack => "on_track",
            Status::Short => "short",
            Status::Met => "met",
        }
    }
}

/// One evaluation of the strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// `None`: no DLI decision possible (no target, lamp PPFD unknown, outside the window): the band decides.
    pub demand: Option<Demand>,
    pub status: Status,
    /// Received so far + expected sunlight + the lamp time planned (all of it when short).
    pub projected_mol: f64,
    pub expected_sun_mol: f64,
    /// Lamp seconds still needed (0 when none).
    pub need_s: f64,
}

impl Dli {
    /// Expected sunlight from `now` to the end of the light-day, mol m⁻²: (cautious, central); (0, 0) without
    /// history. See the module documentation.
    pub fn expected_sun_mol(&self, now: &Now) -> (f64, f64) {
        let now = Moment::of(now);
        let offset = secs_between(self.day_start, now.local).max(0.0);
        let first = (offset / 60.0).floor() as usize;
        if first >= MINUTES || self.state.profiles.is_empty() {
            return (0.0, 0.0);
        }
        let part = 1.0 - (offset / 60.0 - first as f64);
        let k = self.settings.sun_umol_per_lux;
        let today = self.state.day.sun_umol / 1e6;
        // Per recent day: its sunlight from now on, and the same scaled by how today compares so far.
        let days: Vec<(f64, f64)> = self
            .sun_suffix
            .iter()
            .zip(&self.state.profiles)
            .map(|(suffix, p)| {
                let lux_s = suffix[first + 1] + f64::from(p[first].unwrap_or(0.0)) * 60.0 * part;
                let rest = lux_s * k / 1e6;
                let so_far = (suffix[0] - lux_s) * k / 1e6;
                let ratio = if so_far >= RATIO_MIN_MOL {
                    Some(today / so_far)
                } else {
                    None
                };
                (rest, ratio.unwrap_or(1.0))
            })
            .collect();
        let n = days.len() as f64;
        let cautious = days
            .iter()
            .map(|(rest, r)| rest * r.min(1.0))
            .fold(f64::INFINITY, f64::min)
            * CAUTIOUS_DISCOUNT;
        let central = days
            .iter()
            .map(|(rest, r)| rest * r.min(RATIO_MAX))
            .sum::<f64>()
            / n;
        (cautious.min(central), central)
    }

    /// The strategy's verdict at `now` (the light-day must be current: call after [`Dli::tick`] or a reading).
    pub fn plan(&self, now: &Now) -> Plan {
        let moment = Moment::of(now);
        let mol = self.mol();
        let target = self.target_mol();
        let (cautious, central) = self.expected_sun_mol(now);
        let offset = secs_between(self.day_start, moment.local).max(0.0);
        let window_left = (window_len_s(self.control.window) - offset).max(0.0);
        let ppfd = self.lamp_ppfd();
        let lamp_s = |sun: f64| match ppfd {
            Some(p) if target > 0.0 => (target - mol - sun).max(0.0) * 1e6 / p,
            _ => 0.0,
        };
        // Lamp time still needed if the day goes as expected, and if it goes as badly as cautiously expected.
        let need_s = lamp_s(central);
        let cautious_s = lamp_s(cautious);
        let possible_s = need_s.min(window_left);
        let projected = mol + central + ppfd.map_or(0.0, |p| p * possible_s / 1e6);
        let status = if target <= 0.0 {
            Status::NoTarget
        } else if mol >= target * (1.0 - super::MET_TOLERANCE) {
            Status::Met
        } else if need_s > window_left + 1.0 || (ppfd.is_none() && target > mol + central) {
            Status::Short
        } else {
            Status::OnTrack
        };
        let demand = match ppfd {
            _ if target <= 0.0 || window_left <= 0.0 => None,
            None => None,
            Some(_) if need_s <= 0.0 => Some(Demand {
                on: false,
                reason: DliReason::Met,
            }),
            Some(_) if status == Status::Short => Some(Demand {
                on: true,
                reason: DliReason::Needed,
            }),
            Some(_) => Some(self.schedule(&moment, window_left, cautious_s)),
        };
        Plan {
            demand,
            status,
            projected_mol: projected,
            expected_sun_mol: central,
            need_s,
        }
    }

    /// Place `need_s` of lamp time into the window's remaining time, cheapest first, later first among equals.
    ///
    /// The remaining window is cut into runs of equal price (at the tariff edges); runs are taken by price, the
    /// later run first among equals, and inside a run the lamp time sits at its end. Now is in the plan when the
    /// lamp time placed in the current run reaches back to within [`START_SLACK_S`] of now.
    fn schedule(&self, now: &Moment, window_left: f64, need_s: f64) -> Demand {
        let runs = self.price_runs(now, window_left);
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| runs[a].2.total_cmp(&runs[b].2).then(b.cmp(&a)));
        let mut covered = 0.0;
        let mut now_chosen = false;
        let mut marginal = f64::NEG_INFINITY;
        for &i in &order {
            if covered >= need_s {
                break;
            }
            let (from, to, price) = runs[i];
            let take = (need_s - covered).min(to - from);
            covered += take;
            marginal = marginal.max(price);
            now_chosen |= i == 0 && take >= (to - from) - START_SLACK_S;
        }
        let on = now_chosen || (self.lamp_on && runs.first().is_some_and(|r| r.2 <= marginal));
        Demand {
            on,
            reason: if on {
                DliReason::Needed
            } else {
                DliReason::Scheduled
            },
        }
    }

    /// The remaining window as runs of one price: (from, to) in seconds from now, price.
    fn price_runs(&self, now: &Moment, window_left: f64) -> Vec<(f64, f64, f64)> {
        let sec_of_day = f64::from(now.local.num_seconds_from_midnight())
            + f64::from(now.local.nanosecond().min(999_999_999)) / 1e9;
        let edges: Vec<f64> = self
            .settings
            .tariff
            .iter()
            .flat_map(|p| [p.from, p.to])
            .map(|m| f64::from(m) * 60.0)
            .collect();
        let mut runs = Vec::new();
        let mut t = 0.0;
        while t < window_left - 1e-6 {
            // The next tariff edge strictly after t (seconds from now), or the window's end.
            let next = edges
                .iter()
                .map(|e| {
                    let d = (e - sec_of_day - t).rem_euclid(86_400.0);
                    t + if d < 1e-6 { 86_400.0 } else { d }
                })
                .fold(window_left, f64::min);
            let local_min = (((sec_of_day + t) / 60.0).floor() as i64).rem_euclid(1440) as u16;
            runs.push((t, next, self.settings.price_at(local_min)));
            t = next;
        }
        runs
    }
}
