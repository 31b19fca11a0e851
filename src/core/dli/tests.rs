//! The DLI engine on chosen times: accounting accuracy, gaps, saturation, lamp energy and tariffs, day ends,
//! persisted state, the strategy's plan, the threshold replay and the payload shapes.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};

use super::*;
use crate::config::{ControlSettings, FailurePolicy, LampLux, Strategy, Window};

fn control(window: Option<(u16, u16)>) -> ControlSettings {
    ControlSettings {
        strategy: Strategy::Dli,
        on_below_lux: 450.0,
        off_above_lux: 550.0,
        min_on: Duration::from_secs(60),
        min_off: Duration::from_secs(60),
        window: window.map(|(s, e)| Window {
            start_min: s,
            end_min: e,
        }),
        on_sensor_failure: FailurePolicy::Off,
        override_max: None,
        lamp_lux: LampLux::Fixed(0.0),
    }
}

/// The spec's `[dli]` defaults.
fn defaults() -> DliSettings {
    DliSettings {
        target_mol: 0.0,
        sun_umol_per_lux: 0.0185,
        lamp_ppfd: 0.0,
        lamp_umol_per_lux: 0.0135,
        lamp_watts: 0.0,
        carry_max_mol: 0.0,
        tariff: Vec::new(),
        default_price: 0.0,
    }
}

fn dli_settings() -> DliSettings {
    DliSettings {
        target_mol: 17.0,
        lamp_ppfd: 200.0,
        lamp_watts: 400.0,
        default_price: 0.2,
        ..defaults()
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A clock for tests: `t(s)` is `s` seconds after `origin` (a local wall time).
struct Clock {
    base: Instant,
    origin: NaiveDateTime,
}

impl Clock {
    fn new(origin: NaiveDateTime) -> Self {
        Clock {
            base: crate::hw::mock::test_instant(),
            origin,
        }
    }
    fn t(&self, secs: f64) -> Now {
        Now::naive(
            self.base + Duration::from_secs_f64(secs),
            self.origin + TimeDelta::milliseconds((secs * 1000.0).round() as i64),
        )
    }
}

fn six_am(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(6, 0, 0).unwrap()
}

fn engine(settings: DliSettings, window: Option<(u16, u16)>, clock: &Clock) -> Dli {
    Dli::new(settings, control(window), false, None, clock.t(0.0)).0
}

const WINDOW: Option<(u16, u16)> = Some((360, 1320)); // 06:00-22:00

fn closed(notes: &[Note]) -> Vec<DailyReport> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::DayClosed(r) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}

// ---------- accounting ----------

/// A clear day: 50 klux × sin over 06:00-18:00 with a fast ripple; exact integral known in closed form.
fn sun(secs_from_six: f64) -> f64 {
    let day = 12.0 * 3600.0;
    if !(0.0..=day).contains(&secs_from_six) {
        return 0.0;
    }
    let x = std::f64::consts::PI * secs_from_six / day;
    50_000.0 * x.sin() * (1.0 + 0.3 * (secs_from_six / 97.0).sin())
}

fn exact_sun_mol(k: f64) -> f64 {
    // ∫ sin(πt/D)(1 + 0.3 sin(t/97)) dt over [0, D], numerically with a fine Simpson rule (10 ms steps).
    let day = 12.0 * 3600.0;
    let n = 4_320_000usize;
    let h = day / n as f64;
    let mut s = sun(0.0) + sun(day);
    for i in 1..n {
        s += sun(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0 * k / 1e6
}

#[test]
fn sun_dli_of_a_sampled_day_is_within_one_percent_of_the_exact_integral() {
    let exact = exact_sun_mol(0.0185);
    for interval in [1.0, 2.5, 10.0, 60.0, 110.0] {
        let clock = Clock::new(six_am(date(2025, 6, 1)));
        let mut d = engine(dli_settings(), WINDOW, &clock);
        let mut t = 0.0;
        while t < 86_400.0 - interval {
            d.reading(clock.t(t), sun(t), false);
            t += interval;
        }
        let got = d.day().sun_umol / 1e6;
        let err = (got - exact).abs() / exact;
        println!(
            "interval {interval} s: {got:.4} mol vs exact {exact:.4} ({:+.4} %)",
            (got / exact - 1.0) * 100.0
        );
        assert!(
            err < 0.01,
            "interval {interval}s: {got} vs exact {exact} ({:.3} %)",
            err * 100.0
        );
        assert_eq!(d.day().unknown_s, 0.0);
    }
}

/// The committed winter trace (1-minute rows, linear in between): read every 2 s for one light-day, the sun DLI
/// matches the trace's exact integral (trapezoids of its rows) within 1 %.
#[test]
fn sun_dli_of_the_winter_trace_matches_its_exact_integral() {
    // Compiled in, so the core's tests read no files.
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/weather/winter.csv"
    ));
    let rows: Vec<(NaiveDateTime, f64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let (t, v) = l.split_once(',').unwrap();
            (
                NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").unwrap(),
                v.parse().unwrap(),
            )
        })
        .collect();
    // Light-day from the second morning 06:00: rows 1800..=1800+1440.
    let first = rows
        .iter()
        .position(|r| r.0 == six_am(date(2025, 1, 14)))
        .unwrap();
    let day = &rows[first..=first + 1440];
    let exact: f64 = day
        .windows(2)
        .map(|w| (w[0].1 + w[1].1) / 2.0 * 60.0)
        .sum::<f64>()
        * 0.0185
        / 1e6;
    let clock = Clock::new(day[0].0);
    let mut d = engine(dli_settings(), WINDOW, &clock);
    let mut t = 0.0;
    while t < 86_400.0 - 1.0 {
        let i = (t / 60.0) as usize;
        let f = t / 60.0 - i as f64;
        d.reading(clock.t(t), day[i].1 + (day[i + 1].1 - day[i].1) * f, false);
        t += 2.0;
    }
    let got = d.day().sun_umol / 1e6;
    println!(
        "winter trace 2025-01-14: {got:.4} mol vs exact {exact:.4} ({:+.4} %)",
        (got / exact - 1.0) * 100.0
    );
    assert!(exact > 3.0, "the trace has a real winter day: {exact}");
    assert!((got - exact).abs() / exact < 0.01, "{got} vs exact {exact}");
}

#[test]
fn a_gap_longer_than_two_minutes_counts_as_unknown_and_is_logged() {
    let clock = Clock::new(six_am(date(2025, 6, 1)) + TimeDelta::hours(4));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    d.reading(clock.t(0.0), 1000.0, false);
    d.reading(clock.t(60.0), 1000.0, false);
    let notes = d.reading(clock.t(60.0 + 300.0), 1000.0, false);
    assert_eq!(d.day().unknown_s, 300.0);
    // Only the first minute counts: 1000 lux × 0.0185 × 60 s.
    assert!((d.day().sun_umol - 1000.0 * 0.0185 * 60.0).abs() < 1e-6);
    assert!(
        matches!(&notes[..], [Note::Log { level: log::Level::Warn, line }] if line.contains("no reading for 300 s")),
        "{notes:?}"
    );
    // Exactly two minutes is still light.
    d.reading(clock.t(480.0), 1000.0, false);
    assert_eq!(d.day().unknown_s, 300.0);
    assert!((d.day().sun_umol - 1000.0 * 0.0185 * 180.0).abs() < 1e-6);
}

#[test]
fn a_saturated_sensor_is_counted_at_its_ceiling_and_flagged() {
    let clock = Clock::new(six_am(date(2025, 6, 1)) + TimeDelta::hours(6));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    let ceiling = 54_612.0;
    d.reading(clock.t(0.0), ceiling, true);
    d.reading(clock.t(10.0), ceiling, true);
    d.reading(clock.t(20.0), 30_000.0, false);
    assert_eq!(d.day().saturated_s, 20.0);
    let expected = (ceiling * 10.0 + (ceiling + 30_000.0) / 2.0 * 10.0) * 0.0185;
    assert!((d.day().sun_umol - expected).abs() < 1e-3);
    let line = d.report(clock.t(20.0).at).log_line;
    assert!(line.contains("saturated for 20 s"), "{line}");
}

#[test]
fn lamp_time_energy_and_cost_follow_the_relay_and_the_tariff() {
    let mut s = dli_settings();
    // 07:00-07:30 cheap, rest default 0.2.
    s.tariff = vec![TariffPeriod {
        from: 7 * 60,
        to: 7 * 60 + 30,
        price: 0.05,
    }];
    let clock = Clock::new(six_am(date(2025, 1, 10)) + TimeDelta::hours(1));
    let mut d = engine(s, WINDOW, &clock);
    d.relay(clock.t(0.0), true);
    d.tick(clock.t(1800.0));
    d.relay(clock.t(3600.0), false);
    d.tick(clock.t(7200.0));
    let day = d.day();
    assert_eq!(day.lamp_on_s, 3600.0);
    assert!((day.lamp_umol - 200.0 * 3600.0).abs() < 1e-6);
    assert!((day.lamp_kwh - 0.4).abs() < 1e-9);
    assert!(
        (day.cost - (0.2 * 0.05 + 0.2 * 0.2)).abs() < 1e-9,
        "{}",
        day.cost
    );
    assert_eq!(day.switches, 2);
    assert_eq!(day.lamp_periods, vec![[3600.0, 7200.0]]);
}

#[test]
fn tariff_periods_wrap_midnight_and_default_elsewhere() {
    let s = DliSettings {
        tariff: vec![
            TariffPeriod {
                from: 23 * 60,
                to: 7 * 60,
                price: 0.1,
            },
            TariffPeriod {
                from: 17 * 60,
                to: 20 * 60,
                price: 0.5,
            },
        ],
        default_price: 0.3,
        ..defaults()
    };
    assert_eq!(s.price_at(0), 0.1);
    assert_eq!(s.price_at(23 * 60), 0.1);
    assert_eq!(s.price_at(7 * 60), 0.3);
    assert_eq!(s.price_at(17 * 60), 0.5);
    assert_eq!(s.price_at(20 * 60), 0.3);
}

#[test]
fn without_lamp_ppfd_the_learned_lamp_lux_gives_the_estimate() {
    let s = DliSettings {
        lamp_ppfd: 0.0,
        ..dli_settings()
    };
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(s, WINDOW, &clock);
    assert_eq!(d.lamp_ppfd(), None);
    d.set_learned_lamp_lux(Some(10_000.0));
    assert!((d.lamp_ppfd().unwrap() - 135.0).abs() < 1e-9);
    d.set_learned_lamp_lux(None);
    assert_eq!(d.lamp_ppfd(), None);
}

#[test]
fn the_light_day_starts_at_the_window_start_or_midnight() {
    let w = Some(Window {
        start_min: 360,
        end_min: 1320,
    });
    let d = date(2025, 3, 2);
    assert_eq!(
        light_day_start(w, d.and_hms_opt(5, 59, 0).unwrap()),
        six_am(date(2025, 3, 1))
    );
    assert_eq!(
        light_day_start(w, d.and_hms_opt(6, 0, 0).unwrap()),
        six_am(d)
    );
    assert_eq!(
        light_day_start(None, d.and_hms_opt(5, 0, 0).unwrap()),
        d.and_hms_opt(0, 0, 0).unwrap()
    );
    assert_eq!(window_len_s(w), 16.0 * 3600.0);
    // A window wrapping midnight: 20:00-04:00 is 8 h long.
    assert_eq!(
        window_len_s(Some(Window {
            start_min: 1200,
            end_min: 240
        })),
        8.0 * 3600.0
    );
}

#[test]
fn the_day_closes_at_the_window_start_with_its_report_and_carries_the_deficit() {
    let s = DliSettings {
        carry_max_mol: 2.0,
        ..dli_settings()
    };
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(s, WINDOW, &clock);
    // 10 klux for 10 h: 10000 × 0.0185 × 36000 = 6.66 mol.
    for i in 0..=600 {
        d.reading(clock.t(i as f64 * 60.0), 10_000.0, false);
    }
    d.reading(clock.t(601.0 * 60.0), 0.0, false);
    let notes = d.tick(clock.t(86_400.0 - 1.0));
    assert!(closed(&notes).is_empty());
    let notes = d.tick(clock.t(86_400.0 + 5.0));
    let reports = closed(&notes);
    assert_eq!(reports.len(), 1, "{notes:?}");
    let r = &reports[0];
    assert_eq!(r.figures.day, "2025-01-10");
    assert!((r.figures.sun_mol - 6.666).abs() < 0.01, "{r:?}");
    assert_eq!(r.figures.status, "short");
    assert_eq!(r.longest_dark_h, 24.0);
    assert!(
        r.log_line
            .starts_with("dli: light-day 2025-01-10 short: 6.67 of 17.00 mol/m²"),
        "{}",
        r.log_line
    );
    assert!(
        r.log_line.contains("threshold rule: lamp"),
        "{}",
        r.log_line
    );
    // The deficit (about 10 mol) is carried, capped at 2.
    assert_eq!(d.day_start(), six_am(date(2025, 1, 11)));
    assert_eq!(d.day().carry_in_mol, 2.0);
    assert!((d.target_mol() - 19.0).abs() < 1e-9);
    assert_eq!(d.mol(), 0.0);
}

#[test]
fn a_surplus_lowers_the_next_target_and_no_target_carries_nothing() {
    let s = DliSettings {
        carry_max_mol: 3.0,
        target_mol: 5.0,
        ..dli_settings()
    };
    let clock = Clock::new(six_am(date(2025, 6, 10)));
    let mut d = engine(s.clone(), WINDOW, &clock);
    for i in 0..=600 {
        d.reading(clock.t(i as f64 * 60.0), 10_000.0, false);
    }
    d.tick(clock.t(86_401.0));
    // 6.66 mol against a target of 5: 1.66 less tomorrow (within the cap of 3).
    assert!(
        (d.day().carry_in_mol + 1.66).abs() < 1e-6,
        "{}",
        d.day().carry_in_mol
    );
    // Accounting only: no carry whatever the day got.
    let mut d = engine(
        DliSettings {
            target_mol: 0.0,
            ..s
        },
        WINDOW,
        &clock,
    );
    d.reading(clock.t(0.0), 10_000.0, false);
    d.reading(clock.t(60.0), 10_000.0, false);
    let r = closed(&d.tick(clock.t(86_401.0)));
    assert_eq!(r[0].figures.status, "no_target");
    assert_eq!(d.day().carry_in_mol, 0.0);
    assert_eq!(d.target_mol(), 0.0);
}

#[test]
fn sunlight_up_to_the_boundary_goes_to_the_closing_day() {
    let clock =
        Clock::new(six_am(date(2025, 6, 10)) + TimeDelta::hours(24) - TimeDelta::seconds(30));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    d.reading(clock.t(0.0), 1000.0, false);
    let notes = d.reading(clock.t(60.0), 1000.0, false);
    let r = closed(&notes);
    assert_eq!(r.len(), 1);
    // The closed day got the 30 s before 06:00 (payloads are rounded to 0.001 mol), the new one the 30 s after.
    assert_eq!(r[0].figures.sun_mol, 0.001);
    assert_eq!(r[0].figures.day, "2025-06-10");
    assert!((d.day().sun_umol - 1000.0 * 0.0185 * 30.0).abs() < 1e-6);
}

#[test]
fn longest_dark_counts_the_night_after_the_window() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    d.relay(clock.t(2.0 * 3600.0), true);
    d.relay(clock.t(6.0 * 3600.0), false);
    d.relay(clock.t(8.0 * 3600.0), true);
    d.relay(clock.t(16.0 * 3600.0), false);
    let r = closed(&d.tick(clock.t(86_400.0)));
    // Lamp 08-12 and 14-22: the longest dark stretch is 22:00-06:00, 8 h.
    assert_eq!(r[0].longest_dark_h, 8.0);
    assert_eq!(r[0].switches, 4);
    assert_eq!(r[0].figures.lamp_on_s, 12.0 * 3600.0);
}

// ---------- persisted state ----------

#[test]
fn the_day_so_far_survives_a_restart() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    for i in 0..=120 {
        d.reading(clock.t(i as f64 * 30.0), 5000.0, false);
    }
    d.relay(clock.t(3600.0), true);
    d.tick(clock.t(4000.0));
    let json = d.state().to_json();
    let restored = DliState::from_json(&json).unwrap();
    assert_eq!(&restored, d.state());
    // A new process an hour later (its monotonic clock unrelated): the day resumes.
    let later = Clock::new(six_am(date(2025, 1, 10)) + TimeDelta::hours(2));
    let (d2, notes) = Dli::new(
        dli_settings(),
        control(WINDOW),
        false,
        Some(restored),
        later.t(0.0),
    );
    assert_eq!(d2.mol(), d.mol());
    assert_eq!(d2.day().lamp_on_s, 400.0);
    assert!(matches!(&notes[..], [Note::Log { line, .. }] if line.contains("resumed")));
}

#[test]
fn a_saved_day_that_ended_while_down_is_closed_and_its_carry_kept() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let s = DliSettings {
        carry_max_mol: 1.0,
        ..dli_settings()
    };
    let mut d = engine(s.clone(), WINDOW, &clock);
    d.reading(clock.t(0.0), 5000.0, false);
    d.reading(clock.t(60.0), 5000.0, false);
    let saved = DliState::from_json(&d.state().to_json()).unwrap();
    let next_morning = Clock::new(six_am(date(2025, 1, 11)) + TimeDelta::hours(1));
    let (d2, notes) = Dli::new(s, control(WINDOW), false, Some(saved), next_morning.t(0.0));
    let r = closed(&notes);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].figures.day, "2025-01-10");
    assert_eq!(d2.day_start(), six_am(date(2025, 1, 11)));
    assert_eq!(d2.day().carry_in_mol, 1.0);
    assert_eq!(d2.mol(), 0.0);
}

#[test]
fn a_torn_or_tampered_state_file_is_rejected_with_the_reason() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let d = engine(dli_settings(), WINDOW, &clock);
    let json = d.state().to_json();
    let torn = &json[..json.len() / 2];
    assert!(DliState::from_json(torn)
        .unwrap_err()
        .contains("not a DLI state file"));
    assert!(DliState::from_json("").is_err());
    let mut bad = d.state().clone();
    bad.day.sun_umol = -1.0;
    assert!(DliState::from_json(&bad.to_json())
        .unwrap_err()
        .contains("negative"));
    let mut bad = d.state().clone();
    bad.day.lux_s.pop();
    assert!(DliState::from_json(&bad.to_json())
        .unwrap_err()
        .contains("1439/1440"));
    let mut bad = d.state().clone();
    bad.version = 99;
    assert!(DliState::from_json(&bad.to_json())
        .unwrap_err()
        .contains("version 99"));
    let mut bad = d.state().clone();
    bad.day.start = "yesterday".into();
    assert!(DliState::from_json(&bad.to_json())
        .unwrap_err()
        .contains("yesterday"));
    let mut bad = d.state().clone();
    bad.day.lamp_periods = vec![[100.0, 50.0]];
    assert!(DliState::from_json(&bad.to_json())
        .unwrap_err()
        .contains("lamp periods"));
    // An engine started without the rejected state simply starts the day afresh.
    let (fresh, _) = Dli::new(dli_settings(), control(WINDOW), false, None, clock.t(0.0));
    assert_eq!(fresh.mol(), 0.0);
}

// ---------- the plan ----------

fn at_hour(d: &Clock, h: f64) -> Now {
    d.t(h * 3600.0)
}

#[test]
fn the_first_day_expects_no_sunlight_and_schedules_the_lamp_as_late_as_possible() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    d.reading(clock.t(0.0), 0.0, false);
    let p = d.plan(&clock.t(1.0));
    assert_eq!(p.expected_sun_mol, 0.0);
    // 17 mol at 200 µmol/s = 85000 s > 16 h window: short, lamp on.
    assert_eq!(p.status, Status::Short);
    assert_eq!(
        p.demand,
        Some(Demand {
            on: true,
            reason: DliReason::Needed
        })
    );
    // Give it 10 mol of sun so far (by a long bright reading sequence up to 12:00).
    let mut t = 0.0;
    while t <= 6.0 * 3600.0 {
        d.reading(clock.t(t), 25_000.0, false);
        t += 60.0;
    }
    let now = at_hour(&clock, 6.0);
    let p = d.plan(&now);
    let mol = d.mol();
    assert!((mol - 9.99).abs() < 0.01, "{mol}");
    let need_s = (17.0 - mol) * 1e6 / 200.0;
    assert!((p.need_s - need_s).abs() < 1.0);
    assert_eq!(p.status, Status::OnTrack);
    assert_eq!(
        p.demand,
        Some(Demand {
            on: false,
            reason: DliReason::Scheduled
        })
    );
    assert!((p.projected_mol - 17.0).abs() < 1e-6);
    // Equal prices: the lamp block ends at the window end, so it starts at 22:00 − need.
    let start_h = 16.0 - need_s / 3600.0;
    assert!(!d.plan(&at_hour(&clock, start_h - 0.05)).demand.unwrap().on);
    assert!(d.plan(&at_hour(&clock, start_h + 0.02)).demand.unwrap().on);
}

#[test]
fn the_lamp_goes_to_the_cheapest_hours_that_reach_the_target() {
    let mut s = dli_settings();
    s.target_mol = 5.0;
    // Cheap from 06:00 to 08:00, dear after.
    s.tariff = vec![TariffPeriod {
        from: 360,
        to: 480,
        price: 0.05,
    }];
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(s, WINDOW, &clock);
    d.reading(clock.t(0.0), 0.0, false);
    // 5 mol / 200 = 25000 s ≈ 6.9 h: the 2 cheap hours first (now included), the rest at the end.
    let p = d.plan(&clock.t(1.0));
    assert_eq!(
        p.demand.unwrap(),
        Demand {
            on: true,
            reason: DliReason::Needed
        }
    );
    assert_eq!(p.status, Status::OnTrack);
    // At 08:00 (dear) with the lamp on since 06:00: 1.44 mol from the lamp, need left 3.56 mol = 4.9 h, at the end.
    d.relay(clock.t(1.0), true);
    d.reading(clock.t(2.0 * 3600.0), 0.0, false);
    d.relay(clock.t(2.0 * 3600.0), false);
    let p = d.plan(&at_hour(&clock, 2.0));
    assert_eq!(
        p.demand.unwrap(),
        Demand {
            on: false,
            reason: DliReason::Scheduled
        }
    );
    // A running lamp stays on while the current price is no dearer than the plan's dearest minute.
    let mut d2 = d.clone();
    d2.relay(at_hour(&clock, 2.0), true);
    assert!(d2.plan(&at_hour(&clock, 2.0)).demand.unwrap().on);
}

#[test]
fn equal_prices_prefer_later_hours() {
    let mut s = dli_settings();
    s.target_mol = 1.0; // 5000 s of lamp
    s.default_price = 0.3;
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(s, WINDOW, &clock);
    d.reading(clock.t(0.0), 0.0, false);
    assert!(!d.plan(&at_hour(&clock, 14.0)).demand.unwrap().on);
    assert!(d.plan(&at_hour(&clock, 14.7)).demand.unwrap().on);
}

#[test]
fn target_met_or_sunlight_alone_enough_turns_the_lamp_off() {
    let mut s = dli_settings();
    s.target_mol = 5.0;
    let clock = Clock::new(six_am(date(2025, 6, 10)));
    let mut d = engine(s, WINDOW, &clock);
    // Three days of 10 klux 08:00-18:00 teach the forecast (6.66 mol a day).
    for day in 0..3 {
        for m in 0..1440 {
            let lux = if (120..720).contains(&m) {
                10_000.0
            } else {
                0.0
            };
            d.reading(clock.t(day as f64 * 86_400.0 + m as f64 * 60.0), lux, false);
        }
    }
    d.reading(clock.t(3.0 * 86_400.0), 0.0, false);
    assert_eq!(d.state().profiles.len(), 3);
    // Day 4 at 06:00: expected 6.66 mol (cautiously 0.8 × that) ≥ 5: sunlight will do it.
    let now = clock.t(3.0 * 86_400.0 + 1.0);
    assert_eq!(d.expected_sun_mol(&now).0, 0.8 * d.expected_sun_mol(&now).1);
    let p = d.plan(&now);
    assert!((p.expected_sun_mol - 6.66).abs() < 0.01, "{p:?}");
    assert_eq!(
        p.demand.unwrap(),
        Demand {
            on: false,
            reason: DliReason::Met
        }
    );
    assert_eq!(p.status, Status::OnTrack);
    // Once received, status met.
    let mut t = 3.0 * 86_400.0 + 60.0;
    while d.mol() < 5.0 {
        d.reading(clock.t(t), 30_000.0, false);
        t += 60.0;
    }
    let p = d.plan(&clock.t(t));
    assert_eq!(p.status, Status::Met);
    assert_eq!(p.demand.unwrap().reason, DliReason::Met);
    assert_eq!(d.payload(&clock.t(t)).status, "met");
}

#[test]
fn the_forecast_scales_the_recent_days_by_today_so_far() {
    let clock = Clock::new(six_am(date(2025, 6, 10)));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    // Three days of 10 klux 08:00-18:00 (6.66 mol each).
    for day in 0..3 {
        for m in 0..1440 {
            let lux = if (120..720).contains(&m) {
                10_000.0
            } else {
                0.0
            };
            d.reading(clock.t(day as f64 * 86_400.0 + m as f64 * 60.0), lux, false);
        }
    }
    // Day 4: half as bright from 08:00 to 10:00.
    let day4 = 3.0 * 86_400.0;
    for m in 0..=240 {
        let lux = if m >= 120 { 5_000.0 } else { 0.0 };
        d.reading(clock.t(day4 + m as f64 * 60.0), lux, false);
    }
    let (cautious, central) = d.expected_sun_mol(&clock.t(day4 + 240.0 * 60.0));
    // The recent days had 1.332 mol by 10:00 and 5.328 mol after; today has half: 2.664 mol expected.
    assert!((central - 2.664).abs() < 0.01, "{central}");
    assert!(
        (cautious - CAUTIOUS_DISCOUNT * 2.664).abs() < 0.01,
        "{cautious}"
    );
    // A brighter day is expected brighter (ratio up to RATIO_MAX), cautiously never above the recent days.
    let mut bright = d.clone();
    for m in 241..=300 {
        bright.reading(clock.t(day4 + m as f64 * 60.0), 60_000.0, false);
    }
    let now = clock.t(day4 + 300.0 * 60.0);
    let (cautious, central) = bright.expected_sun_mol(&now);
    let rest = 10_000.0 * 0.0185 * 7.0 * 3600.0 / 1e6;
    assert!(central > rest * 1.5, "{central}");
    assert!(
        (cautious - CAUTIOUS_DISCOUNT * rest).abs() < 0.01,
        "{cautious}"
    );
}

#[test]
fn no_target_or_unknown_lamp_ppfd_leaves_the_decision_to_the_band() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let d = engine(
        DliSettings {
            target_mol: 0.0,
            ..dli_settings()
        },
        WINDOW,
        &clock,
    );
    let p = d.plan(&clock.t(10.0));
    assert_eq!((p.demand, p.status), (None, Status::NoTarget));
    let d = engine(
        DliSettings {
            lamp_ppfd: 0.0,
            ..dli_settings()
        },
        WINDOW,
        &clock,
    );
    assert_eq!(d.plan(&clock.t(10.0)).demand, None);
    // Outside the window: none either (the controller keeps the light off there).
    let d = engine(dli_settings(), WINDOW, &clock);
    assert_eq!(d.plan(&at_hour(&clock, 17.0)).demand, None);
}

#[test]
fn a_live_target_replaces_the_configured_one_until_a_reload() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    d.set_target(12.5);
    assert_eq!(d.target_mol(), 12.5);
    d.set_settings(dli_settings(), control(WINDOW));
    assert_eq!(d.target_mol(), 17.0);
}

// ---------- report ----------

#[test]
fn the_threshold_replay_uses_the_days_sunlight_and_reports_the_saving() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    // 06:00-10:00 dark (100 lux), 10:00-16:00 bright, 16:00-06:00 dark.
    for m in 0..1440 {
        let lux = if (240..600).contains(&m) {
            20_000.0
        } else {
            100.0
        };
        d.reading(clock.t(m as f64 * 60.0), lux, false);
    }
    // The DLI strategy ran the lamp one hour.
    d.relay(clock.t(3600.0 * 15.0), true);
    d.relay(clock.t(3600.0 * 16.0), false);
    let r = closed(&d.tick(clock.t(86_400.0)))[0].clone();
    // The threshold rule lights 06:00-10:00 and 16:00-22:00 less the two minutes whose mean (readings
    // interpolated across the change) is bright: 599 minutes.
    let on_s = 599.0 * 60.0;
    assert_eq!(r.threshold_rule.lamp_on_s, on_s);
    let kwh = 0.4 * on_s / 3600.0;
    assert!((r.threshold_rule.lamp_kwh - kwh).abs() < 1e-4);
    assert!((r.threshold_rule.cost - 0.2 * kwh).abs() < 1e-4);
    let sun = r.figures.sun_mol;
    assert!((r.threshold_rule.mol - (sun + 200.0 * on_s / 1e6)).abs() < 0.002);
    assert!((r.saved_kwh - (kwh - 0.4)).abs() < 1e-4);
    assert!((r.saved_cost - 0.2 * (kwh - 0.4)).abs() < 1e-4);
}

#[test]
fn payloads_have_exactly_the_contract_fields() {
    let clock = Clock::new(six_am(date(2025, 1, 10)));
    let mut d = engine(dli_settings(), WINDOW, &clock);
    d.reading(clock.t(0.0), 100.0, false);
    d.reading(clock.t(60.0), 100.0, false);
    let v: serde_json::Value = serde_json::from_str(&d.payload(&clock.t(60.0)).to_json()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut expected = vec![
        "day",
        "mol",
        "sun_mol",
        "lamp_mol",
        "target_mol",
        "projected_mol",
        "lamp_on_s",
        "lamp_kwh",
        "cost",
        "status",
    ];
    let mut sorted = keys.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    assert_eq!(v["day"], "2025-01-10");
    assert_eq!(v["target_mol"], 17.0);
    let r = closed(&d.tick(clock.t(86_400.0)))[0].to_json();
    let v: serde_json::Value = serde_json::from_str(&r).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    expected.extend([
        "switches",
        "longest_dark_h",
        "threshold_rule",
        "saved_kwh",
        "saved_cost",
    ]);
    expected.sort();
    assert_eq!(keys, expected);
    let mut t: Vec<&str> = v["threshold_rule"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    t.sort();
    assert_eq!(t, ["cost", "lamp_kwh", "lamp_on_s", "mol"]);
}

#[test]
fn the_target_command_accepts_0_to_100_and_says_why_otherwise() {
    assert_eq!(parse_target(b"17"), Ok(17.0));
    assert_eq!(parse_target(b" 12.5\n"), Ok(12.5));
    assert_eq!(parse_target(b"0"), Ok(0.0));
    assert_eq!(parse_target(b"100"), Ok(100.0));
    let cases: [(&[u8], &str); 6] = [
        (b"-1", "negative"),
        (b"abc", "not a number"),
        (b"", "empty"),
        (b"  ", "empty"),
        (b"100.5", "above 100"),
        (b"NaN", "not a finite number"),
    ];
    for (payload, why) in cases {
        let e = parse_target(payload).unwrap_err();
        assert!(e.contains(why), "{payload:?}: {e}");
        assert!(e.contains("from 0 (accounting only) to 100"), "{e}");
    }
    assert!(parse_target(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
}
