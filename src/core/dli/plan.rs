//! Strategy "dli": how much lamp time the day still needs, and whether now is the time for it.
//!
//! need = target − received so far − sunlight still expected today. The expected sunlight comes from the last
//! [`FORECAST_DAYS`] light-days' per-minute profiles: from now to the day's end, the smallest of those days'
//! sums, × [`FORECAST_DISCOUNT`]; with no history it is 0 (never hope). Lamp time = need ÷ lamp PPFD. The
//! window's remaining minutes are ranked by price, and among equal prices the later first (more of the real sun
//! is known by then); the cheapest minutes that cover the lamp time are the plan. The lamp is on now when the
//! current minute is in the plan, or when it already runs and the current price is no dearer than the plan's
//! dearest minute (so one block is not chopped by a forecast that improves by a minute). It is off once the
//! need is covered. More need than window left: `short`, and the lamp runs through the window.

use chrono::Timelike;

use super::{secs_between, window_len_s, Dli, Now, MINUTES};
use crate::control::Reason;

/// Days of sunlight profiles the forecast learns from.
pub const FORECAST_DAYS: usize = 3;
/// Share of the least sunny recent day's remaining sunlight that is expected.
pub const FORECAST_DISCOUNT: f64 = 0.8;

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
    /// The form [`crate::control::Controller::decide_with`] takes.
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
    /// Expected sunlight from `now` to the end of the light-day, mol m⁻² (0 without history).
    pub fn expected_sun_mol(&self, now: &Now) -> f64 {
        let offset = secs_between(self.day_start, now.local).max(0.0);
        let first = (offset / 60.0).floor() as usize;
        if first >= MINUTES {
            return 0.0;
        }
        let part = 1.0 - (offset / 60.0 - first as f64);
        let k = self.settings.sun_umol_per_lux;
        self.state
            .profiles
            .iter()
            .map(|p| {
                let lux_s: f64 = p[first..]
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let share = if i == 0 { part } else { 1.0 };
                        f64::from(l.unwrap_or(0.0)) * 60.0 * share
                    })
                    .sum();
                lux_s * k / 1e6
            })
            .fold(None, |acc: Option<f64>, x| {
                Some(acc.map_or(x, |a| a.min(x)))
            })
            .map_or(0.0, |m| m * FORECAST_DISCOUNT)
    }

    /// The strategy's verdict at `now` (the light-day must be current: call after [`Dli::tick`] or a reading).
    pub fn plan(&self, now: &Now) -> Plan {
        let mol = self.mol();
        let target = self.target_mol();
        let sun = self.expected_sun_mol(now);
        let offset = secs_between(self.day_start, now.local).max(0.0);
        let window_left = (window_len_s(self.control.window) - offset).max(0.0);
        let ppfd = self.lamp_ppfd();
        let need_mol = (target - mol - sun).max(0.0);
        let need_s = match ppfd {
            Some(p) if target > 0.0 => need_mol * 1e6 / p,
            _ => 0.0,
        };
        let possible_s = need_s.min(window_left);
        let projected = mol + sun + ppfd.map_or(0.0, |p| p * possible_s / 1e6);
        let status = if target <= 0.0 {
            Status::NoTarget
        } else if mol >= target * (1.0 - super::MET_TOLERANCE) {
            Status::Met
        } else if need_s > window_left + 1.0 || (ppfd.is_none() && need_mol > 0.0) {
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
            Some(_) => Some(self.schedule(now, window_left, need_s)),
        };
        Plan {
            demand,
            status,
            projected_mol: projected,
            expected_sun_mol: sun,
            need_s,
        }
    }

    /// Place `need_s` of lamp time into the window's remaining minutes, cheapest first, later first among equals.
    fn schedule(&self, now: &Now, window_left: f64, need_s: f64) -> Demand {
        // Slot 0 runs from now to the next minute of the clock, the others are whole minutes.
        let first_len =
            (60.0 - f64::from(now.local.second()) - f64::from(now.local.nanosecond()) / 1e9)
                .clamp(0.0, 60.0)
                .min(window_left);
        let first_len = if first_len > 0.0 { first_len } else { 60.0 };
        let mut slots: Vec<(f64, f64, u16)> = Vec::new(); // (start offset from now, length, minute of day)
        let mut t = 0.0;
        let mut len = first_len;
        while t < window_left - 1e-9 {
            let local = now.local + chrono::TimeDelta::milliseconds((t * 1000.0) as i64);
            let minute = (local.hour() * 60 + local.minute()) as u16;
            let l = len.min(window_left - t);
            slots.push((t, l, minute));
            t += l;
            len = 60.0;
        }
        let price = |m: u16| self.settings.price_at(m);
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by(|&a, &b| {
            price(slots[a].2)
                .total_cmp(&price(slots[b].2))
                .then(slots[b].0.total_cmp(&slots[a].0))
        });
        let mut covered = 0.0;
        let mut now_chosen = false;
        let mut marginal = f64::NEG_INFINITY;
        for &i in &order {
            if covered >= need_s {
                break;
            }
            covered += slots[i].1;
            marginal = marginal.max(price(slots[i].2));
            now_chosen |= i == 0;
        }
        let on =
            now_chosen || (self.lamp_on && slots.first().is_some_and(|s| price(s.2) <= marginal));
        Demand {
            on,
            reason: if on {
                DliReason::Needed
            } else {
                DliReason::Scheduled
            },
        }
    }
}
