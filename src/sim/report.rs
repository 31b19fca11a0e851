//! Day figures from what a run observed, and the three output files: `report.json`, `days.csv`, `chart.svg`.

use std::fmt::Write as _;

use chrono::NaiveDate;
use serde::Serialize;

use super::run::Observed;
use super::weather::Sampler;

const DAY_S: f64 = 86_400.0;

/// The DLI and energy parameters the day figures use (`[dli]`).
#[derive(Debug, Clone, PartialEq)]
pub struct DliParams {
    pub target_mol: f64,
    pub sun_umol_per_lux: f64,
    /// The lamp's PPFD at the canopy, µmol m⁻² s⁻¹ (already estimated from its lux when not configured).
    pub lamp_ppfd: f64,
    pub lamp_watts: f64,
    /// Prices by local time: `(from, to, price)`, minutes of the day, `to` may wrap midnight.
    pub tariff: Vec<(u16, u16, f64)>,
    pub default_price: f64,
}

impl DliParams {
    /// The price at `minute` of the local day.
    fn price_at(&self, minute: u32) -> f64 {
        for &(from, to, price) in &self.tariff {
            let (from, to) = (u32::from(from), u32::from(to));
            let inside = if from < to {
                (from..to).contains(&minute)
            } else {
                minute >= from || minute < to
            };
            if inside {
                return price;
            }
        }
        self.default_price
    }
}

/// Molar DLI parts in mol m⁻² d⁻¹.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct DliMol {
    pub total: f64,
    pub sun: f64,
    pub lamp: f64,
}

/// One light-day's figures (the report.json day object; field order is the spec's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: String,
    pub dli_mol: DliMol,
    pub target_mol: f64,
    pub lamp_on_s: f64,
    pub lamp_kwh: f64,
    pub cost: f64,
    pub switches: u32,
    pub lamp_s_outside_window: f64,
    pub longest_dark_h: f64,
    pub alerts: Vec<String>,
    /// Where the DLI and energy figures come from, and the simulator's own exact figures (not in report.json).
    #[serde(skip)]
    pub check: Check,
}

/// The simulator's own DLI figures next to the ones reported.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Check {
    /// The DLI, target, kWh and cost are the core's `P/report/daily` (else the simulator's own).
    pub from_core: bool,
    /// Sunlight integrated exactly from the weather × `sun_umol_per_lux`.
    pub exact_sun_mol: f64,
    /// Lamp time as the relay read it back × the lamp's PPFD.
    pub exact_lamp_mol: f64,
}

/// Sums over the run (`longest_dark_h` is the longest of any day, `alerts` every name raised).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub days: usize,
    pub dli_mol: DliMol,
    pub target_mol: f64,
    pub lamp_on_s: f64,
    pub lamp_kwh: f64,
    pub cost: f64,
    pub switches: u32,
    pub lamp_s_outside_window: f64,
    pub longest_dark_h: f64,
    pub alerts: Vec<String>,
}

/// One run's days and totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub days: Vec<Day>,
    pub totals: Totals,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub days: Vec<Day>,
    pub totals: Totals,
    pub threshold_rule: RunReport,
}

/// Where a light-day's window is open: the first `window_len_s` seconds of each light-day (light-days start at
/// the window's start), or all of it without a window.
#[derive(Debug, Clone, Copy)]
pub struct DayShape {
    pub first_date: NaiveDate,
    pub days: usize,
    /// Local minute the light-day starts at (the window start, 0 without a window).
    pub start_minute: u32,
    pub window_len_s: f64,
}

fn overlap(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0.0)
}

/// Round to `digits` decimals for the report (the JSON stays readable; the sums are taken before rounding).
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Compute the light-days of a run from what it observed and the sunlight's exact integral.
pub fn days(obs: &Observed, shape: &DayShape, dli: &DliParams, sun: &mut Sampler<'_>) -> Vec<Day> {
    // Dark stretches: the complement of the lamp-on periods over the run.
    let mut dark = Vec::new();
    let mut from = 0.0;
    for &(a, b) in &obs.lamp_on {
        if a > from {
            dark.push((from, a));
        }
        from = b;
    }
    if from < obs.seconds {
        dark.push((from, obs.seconds));
    }
    (0..shape.days)
        .map(|d| {
            let day = (d as f64 * DAY_S, (d as f64 + 1.0) * DAY_S);
            let closed = (day.0 + shape.window_len_s, day.1);
            let mut lamp_on_s = 0.0;
            let mut outside = 0.0;
            let mut cost_wh = 0.0;
            for &p in &obs.lamp_on {
                let on = overlap(p, day);
                if on <= 0.0 {
                    continue;
                }
                lamp_on_s += on;
                outside += overlap(p, closed);
                // Energy cost: split the period at minute boundaries of the local day.
                let (mut x, end) = (p.0.max(day.0), p.1.min(day.1));
                while x < end {
                    let minute_of_day = ((x - day.0) / 60.0).floor() as u32 + shape.start_minute;
                    let next = (day.0 + ((x - day.0) / 60.0).floor() * 60.0 + 60.0).min(end);
                    cost_wh +=
                        dli.lamp_watts * (next - x) / 3600.0 * dli.price_at(minute_of_day % 1440);
                    x = next;
                }
            }
            let longest_dark_s = dark
                .iter()
                .filter(|s| overlap(**s, day) > 0.0)
                .map(|s| s.1 - s.0)
                .fold(0.0, f64::max);
            let sun_mol = sun.integral(day.0, day.1) * dli.sun_umol_per_lux / 1e6;
            let lamp_mol = lamp_on_s * dli.lamp_ppfd / 1e6;
            let switches = obs
                .switches
                .iter()
                .filter(|(t, _)| (day.0..day.1).contains(t))
                .count() as u32;
            let mut alerts: Vec<String> = Vec::new();
            for (_, name) in obs
                .alerts
                .iter()
                .filter(|(t, _)| (day.0..day.1).contains(t))
            {
                if !alerts.contains(name) {
                    alerts.push(name.clone());
                }
            }
            Day {
                date: (shape.first_date + chrono::Days::new(d as u64)).to_string(),
                dli_mol: DliMol {
                    total: sun_mol + lamp_mol,
                    sun: sun_mol,
                    lamp: lamp_mol,
                },
                target_mol: dli.target_mol,
                lamp_on_s,
                lamp_kwh: lamp_on_s * dli.lamp_watts / 3.6e6,
                cost: cost_wh / 1000.0,
                switches,
                lamp_s_outside_window: outside,
                longest_dark_h: longest_dark_s / 3600.0,
                alerts,
                check: Check {
                    from_core: false,
                    exact_sun_mol: sun_mol,
                    exact_lamp_mol: lamp_mol,
                },
            }
        })
        .collect()
}

/// Take the DLI, target, kWh and cost of each day from the core's daily reports (`P/report/daily` payloads,
/// matched by their `day`), so the report shows what the daemon would have reported. Returns how many days matched.
pub fn apply_core_reports(days: &mut [Day], payloads: &[&str]) -> usize {
    let mut matched = 0;
    for payload in payloads {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
            continue;
        };
        let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        let Some(day) = days
            .iter_mut()
            .find(|d| v.get("day").and_then(|x| x.as_str()) == Some(d.date.as_str()))
        else {
            continue;
        };
        let (Some(mol), Some(sun), Some(lamp)) = (num("mol"), num("sun_mol"), num("lamp_mol"))
        else {
            continue;
        };
        day.dli_mol = DliMol {
            total: mol,
            sun,
            lamp,
        };
        day.target_mol = num("target_mol").unwrap_or(day.target_mol);
        day.lamp_kwh = num("lamp_kwh").unwrap_or(day.lamp_kwh);
        day.cost = num("cost").unwrap_or(day.cost);
        day.check.from_core = true;
        matched += 1;
    }
    matched
}

/// Totals over days (unrounded inputs).
pub fn totals(days: &[Day]) -> Totals {
    let mut t = Totals {
        days: days.len(),
        dli_mol: DliMol::default(),
        target_mol: 0.0,
        lamp_on_s: 0.0,
        lamp_kwh: 0.0,
        cost: 0.0,
        switches: 0,
        lamp_s_outside_window: 0.0,
        longest_dark_h: 0.0,
        alerts: Vec::new(),
    };
    for d in days {
        t.dli_mol.total += d.dli_mol.total;
        t.dli_mol.sun += d.dli_mol.sun;
        t.dli_mol.lamp += d.dli_mol.lamp;
        t.target_mol += d.target_mol;
        t.lamp_on_s += d.lamp_on_s;
        t.lamp_kwh += d.lamp_kwh;
        t.cost += d.cost;
        t.switches += d.switches;
        t.lamp_s_outside_window += d.lamp_s_outside_window;
        t.longest_dark_h = t.longest_dark_h.max(d.longest_dark_h);
        for a in &d.alerts {
            if !t.alerts.contains(a) {
                t.alerts.push(a.clone());
            }
        }
    }
    t
}

/// The days rounded for presentation: mol to 3 decimals, seconds to 1, kWh and cost to 4, hours to 2.
pub fn rounded(days: &[Day]) -> Vec<Day> {
    days.iter()
        .map(|d| Day {
            dli_mol: rounded_mol(d.dli_mol),
            target_mol: round(d.target_mol, 3),
            lamp_on_s: round(d.lamp_on_s, 1),
            lamp_kwh: round(d.lamp_kwh, 4),
            cost: round(d.cost, 4),
            lamp_s_outside_window: round(d.lamp_s_outside_window, 1),
            longest_dark_h: round(d.longest_dark_h, 2),
            ..d.clone()
        })
        .collect()
}

fn rounded_mol(m: DliMol) -> DliMol {
    DliMol {
        total: round(m.total, 3),
        sun: round(m.sun, 3),
        lamp: round(m.lamp, 3),
    }
}

/// A run's report: rounded days and totals.
pub fn run_report(days: &[Day]) -> RunReport {
    let t = totals(days);
    RunReport {
        days: rounded(days),
        totals: Totals {
            dli_mol: rounded_mol(t.dli_mol),
            target_mol: round(t.target_mol, 3),
            lamp_on_s: round(t.lamp_on_s, 1),
            lamp_kwh: round(t.lamp_kwh, 4),
            cost: round(t.cost, 4),
            lamp_s_outside_window: round(t.lamp_s_outside_window, 1),
            longest_dark_h: round(t.longest_dark_h, 2),
            ..t
        },
    }
}

/// `days.csv`: one row per day and run (`run` = `strategy name` or `threshold_rule`).
pub fn csv(runs: &[(&str, &RunReport)]) -> String {
    let mut s = String::from(
        "run,date,dli_mol,sun_mol,lamp_mol,target_mol,lamp_on_s,lamp_kwh,cost,switches,lamp_s_outside_window,\
         longest_dark_h,alerts,figures_from,exact_sun_mol,exact_lamp_mol\n",
    );
    for (name, r) in runs {
        for d in &r.days {
            let _ = writeln!(
                s,
                "{name},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                d.date,
                d.dli_mol.total,
                d.dli_mol.sun,
                d.dli_mol.lamp,
                d.target_mol,
                d.lamp_on_s,
                d.lamp_kwh,
                d.cost,
                d.switches,
                d.lamp_s_outside_window,
                d.longest_dark_h,
                d.alerts.join(";"),
                if d.check.from_core {
                    "core"
                } else {
                    "simulator"
                },
                round(d.check.exact_sun_mol, 3),
                round(d.check.exact_lamp_mol, 3),
            );
        }
    }
    s
}

/// One run's picture in the chart.
pub struct ChartRun<'a> {
    pub title: String,
    pub days: &'a [Day],
    pub observed: &'a Observed,
}

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL_H: f64 = 360.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `chart.svg`: one panel per run. Top: the sunlight over the whole run (the highest value of each pixel
/// column) with the lamp-on periods shaded beneath. Bottom: per day the DLI as stacked bars (sun, lamp) against the
/// target line. Plain SVG, no external assets.
pub fn svg(runs: &[ChartRun<'_>], sun: &mut Sampler<'_>, seconds: f64) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let height = PANEL_H * runs.len() as f64 + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    // The sunlight curve is the same for every run: sample it once, the maximum per pixel column.
    let columns = plot_w as usize;
    let per_col = seconds / columns as f64;
    let samples_per_col = (per_col / 60.0).ceil().clamp(1.0, 60.0) as usize;
    let sun_cols: Vec<f64> = (0..columns)
        .map(|c| {
            (0..samples_per_col)
                .map(|k| sun.lux((c as f64 + (k as f64 + 0.5) / samples_per_col as f64) * per_col))
                .fold(0.0, f64::max)
        })
        .collect();
    let max_lux = sun_cols.iter().copied().fold(1.0, f64::max);
    for (i, run) in runs.iter().enumerate() {
        let top = 10.0 + i as f64 * PANEL_H;
        let (lux_top, lux_h) = (top + 30.0, 150.0);
        let (bar_top, bar_h) = (top + 220.0, 110.0);
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
            top + 16.0,
            esc(&run.title)
        );
        // Lamp-on periods.
        for &(a, b) in &run.observed.lamp_on {
            let x = LEFT + a / seconds * plot_w;
            let w = ((b - a) / seconds * plot_w).max(0.5);
            let _ = writeln!(
                s,
                r##"<rect x="{x:.2}" y="{lux_top}" width="{w:.2}" height="{lux_h}" fill="#f4b400" fill-opacity="0.35"/>"##
            );
        }
        // Light-day boundaries.
        let days_n = (seconds / DAY_S).round() as usize;
        if days_n <= 62 {
            for k in 1..days_n {
                let x = LEFT + k as f64 * DAY_S / seconds * plot_w;
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.2}" y1="{lux_top}" x2="{x:.2}" y2="{}" stroke="#ccc" stroke-dasharray="3,3"/>"##,
                    lux_top + lux_h
                );
            }
        }
        // Sunlight.
        let mut path = String::new();
        for (c, lux) in sun_cols.iter().enumerate() {
            let x = LEFT + c as f64 + 0.5;
            let y = lux_top + lux_h - lux / max_lux * lux_h;
            let _ = write!(path, "{}{x:.1},{y:.1}", if c == 0 { "M" } else { " L" });
        }
        let _ = writeln!(
            s,
            r##"<path d="{path}" fill="none" stroke="#1a73e8" stroke-width="1"/>"##
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{lux_top}" width="{plot_w}" height="{lux_h}" fill="none" stroke="#888"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{:.0} lx</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
            LEFT - 4.0,
            lux_top + 10.0,
            max_lux,
            LEFT - 4.0,
            lux_top + lux_h
        );
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" fill="#1a73e8">sunlight</text><text x="{}" y="{}" fill="#c58f00">lamp on</text>"##,
            LEFT + plot_w - 130.0,
            top + 16.0,
            LEFT + plot_w - 60.0,
            top + 16.0
        );
        // DLI bars against the target.
        let n = run.days.len().max(1) as f64;
        let max_mol = run
            .days
            .iter()
            .map(|d| d.dli_mol.total.max(d.target_mol))
            .fold(1.0, f64::max)
            * 1.1;
        let slot = plot_w / n;
        let bar_w = (slot * 0.7).max(0.5);
        for (k, d) in run.days.iter().enumerate() {
            let x = LEFT + k as f64 * slot + (slot - bar_w) / 2.0;
            let sun_h = d.dli_mol.sun / max_mol * bar_h;
            let lamp_h = d.dli_mol.lamp / max_mol * bar_h;
            let base = bar_top + bar_h;
            let _ = writeln!(
                s,
                r##"<rect x="{x:.2}" y="{:.2}" width="{bar_w:.2}" height="{sun_h:.2}" fill="#1a73e8"><title>{} sun {:.2} mol</title></rect>"##,
                base - sun_h,
                d.date,
                d.dli_mol.sun
            );
            let _ = writeln!(
                s,
                r##"<rect x="{x:.2}" y="{:.2}" width="{bar_w:.2}" height="{lamp_h:.2}" fill="#f4b400"><title>{} lamp {:.2} mol</title></rect>"##,
                base - sun_h - lamp_h,
                d.date,
                d.dli_mol.lamp
            );
            if d.target_mol > 0.0 {
                let y = base - d.target_mol / max_mol * bar_h;
                let _ = writeln!(
                    s,
                    r##"<line x1="{:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="#d93025" stroke-width="2"/>"##,
                    LEFT + k as f64 * slot,
                    LEFT + (k as f64 + 1.0) * slot
                );
            }
            if run.days.len() <= 31 {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.2}" y="{}" text-anchor="middle" font-size="10">{}</text>"#,
                    x + bar_w / 2.0,
                    base + 12.0,
                    d.date.get(5..).unwrap_or(&d.date)
                );
            }
        }
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{bar_top}" width="{plot_w}" height="{bar_h}" fill="none" stroke="#888"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{:.1} mol</text><text x="{}" y="{}" text-anchor="end">DLI</text><text x="{}" y="{}" fill="#1a73e8">sun</text><text x="{}" y="{}" fill="#c58f00">lamp</text>"##,
            LEFT - 4.0,
            bar_top + 10.0,
            max_mol,
            LEFT - 4.0,
            bar_top + bar_h / 2.0,
            LEFT + plot_w - 150.0,
            bar_top - 6.0,
            LEFT + plot_w - 110.0,
            bar_top - 6.0
        );
        if run.days.iter().any(|d| d.target_mol > 0.0) {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" fill="#d93025">target</text>"##,
                LEFT + plot_w - 60.0,
                bar_top - 6.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::weather::{Sunlight, Trace};

    fn params() -> DliParams {
        DliParams {
            target_mol: 10.0,
            sun_umol_per_lux: 0.02,
            lamp_ppfd: 100.0,
            lamp_watts: 1000.0,
            tariff: vec![(22 * 60, 6 * 60, 0.1)],
            default_price: 0.3,
        }
    }

    #[test]
    fn day_figures_from_periods() {
        // Two days from 06:00, window 06:00-22:00 (16 h open).
        let shape = DayShape {
            first_date: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
            days: 2,
            start_minute: 360,
            window_len_s: 16.0 * 3600.0,
        };
        let obs = Observed {
            // Day 1: 06:00-07:00 on, 21:00-23:00 on (1 h outside). Day 2: nothing.
            lamp_on: vec![(0.0, 3600.0), (15.0 * 3600.0, 17.0 * 3600.0)],
            switches: vec![
                (0.0, true),
                (3600.0, false),
                (15.0 * 3600.0, true),
                (17.0 * 3600.0, false),
            ],
            alerts: vec![
                (100.0, "rule_mismatch".into()),
                (200.0, "rule_mismatch".into()),
            ],
            seconds: 2.0 * DAY_S,
            ..Observed::default()
        };
        // Constant 1000 lx for both days.
        let sun = Sunlight::Trace(
            Trace::parse("time,lux\n2024-06-01T00:00:00,1000\n2024-06-04T00:00:00,1000\n").unwrap(),
        );
        let start = NaiveDate::from_ymd_opt(2024, 6, 1)
            .unwrap()
            .and_hms_opt(6, 0, 0)
            .unwrap();
        let d = days(&obs, &shape, &params(), &mut sun.sampler(start));
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].date, "2024-06-01");
        assert_eq!(d[0].lamp_on_s, 3.0 * 3600.0);
        assert_eq!(d[0].switches, 4);
        assert_eq!(d[0].lamp_s_outside_window, 3600.0);
        assert_eq!(d[0].alerts, vec!["rule_mismatch".to_owned()]);
        assert!((d[0].dli_mol.sun - 1000.0 * 0.02 * DAY_S / 1e6).abs() < 1e-9);
        assert!((d[0].dli_mol.lamp - 3.0 * 3600.0 * 100.0 / 1e6).abs() < 1e-9);
        assert!((d[0].lamp_kwh - 3.0).abs() < 1e-9);
        // 06:00-07:00 and 21:00-22:00 at 0.3, 22:00-23:00 at 0.1.
        assert!((d[0].cost - 0.7).abs() < 1e-9, "{}", d[0].cost);
        // Dark: 07:00-21:00 (14 h) on day 1; day 2 is dark from 23:00 on day 1 to the end: 31 h.
        assert!((d[0].longest_dark_h - 31.0).abs() < 1e-9);
        assert!((d[1].longest_dark_h - 31.0).abs() < 1e-9);
        assert_eq!(d[1].switches, 0);
        assert_eq!(d[1].lamp_on_s, 0.0);
        let t = totals(&d);
        assert_eq!(t.days, 2);
        assert_eq!(t.switches, 4);
        assert_eq!(t.target_mol, 20.0);
        let csv = csv(&[("dli", &run_report(&d))]);
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(1).unwrap().starts_with("dli,2024-06-01,"));
        assert!(csv
            .lines()
            .nth(1)
            .unwrap()
            .contains(",rule_mismatch,simulator,1.728,1.08"));
        // The core's daily report replaces the DLI and energy figures of its day; the exact ones stay as the check.
        let mut with_core = d.clone();
        let n = apply_core_reports(
            &mut with_core,
            &[
                r#"{"day":"2024-06-02","mol":2.0,"sun_mol":1.7,"lamp_mol":0.3,"target_mol":12.0,"lamp_kwh":0.5,"cost":0.1,"status":"short"}"#,
                r#"{"day":"2024-07-01","mol":9.0,"sun_mol":9.0,"lamp_mol":0.0}"#,
                "not json",
            ],
        );
        assert_eq!(n, 1);
        assert_eq!(with_core[0], d[0]);
        let day2 = &with_core[1];
        assert!(day2.check.from_core);
        assert_eq!(
            day2.dli_mol,
            DliMol {
                total: 2.0,
                sun: 1.7,
                lamp: 0.3
            }
        );
        assert_eq!(
            (day2.target_mol, day2.lamp_kwh, day2.cost),
            (12.0, 0.5, 0.1)
        );
        assert_eq!(day2.check.exact_sun_mol, d[1].dli_mol.sun);
        assert_eq!(day2.lamp_on_s, d[1].lamp_on_s);
        let chart = svg(
            &[ChartRun {
                title: "a <b>".into(),
                days: &d,
                observed: &obs,
            }],
            &mut sun.sampler(start),
            obs.seconds,
        );
        assert!(chart.starts_with("<svg") && chart.ends_with("</svg>\n"));
        assert!(chart.contains("a &lt;b&gt;"));
        assert_eq!(chart.matches(r##"fill="#f4b400" fill-opacity"##).count(), 2);
    }
}
