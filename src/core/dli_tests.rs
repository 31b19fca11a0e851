//! The DLI inside the core, on chosen times: `strategy = "dli"` driving the relay with its reasons, retained
//! `P/dli` every minute and on each switch, `P/report/daily` and its notice line at the light-day's end, the
//! day state persisted (at most every 5 minutes, at day end and at stop) and restored, `P/dli/target/set`
//! accepted or rejected on its error topic, and `[dli]` reloaded live.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::*;

const DLI: &str =
    "[control]\nstrategy = \"dli\"\n[dli]\ntarget_mol = 5\nlamp_ppfd = 200\nlamp_watts = 100\n\
                   [sensor]\nstale_after_s = 3600\n";

fn settings(text: &str) -> Settings {
    let mut s = config::load_str(&format!(
        "[device]\nid = \"t\"\n[mqtt]\ntopic_prefix = \"gh\"\n{text}"
    ))
    .expect("test settings load");
    s.control.lamp_lux = config::LampLux::Fixed(0.0);
    s
}

/// The shell's part: a relay that follows, the effects collected.
struct Rig {
    core: Core,
    t0: Instant,
    start: NaiveDateTime,
    line: bool,
    effects: Vec<Effect>,
}

impl Rig {
    fn new(text: &str, dli: Option<DliState>, h: u32) -> Rig {
        let t0 = crate::hw::mock::test_instant();
        let start = NaiveDate::from_ymd_opt(2025, 1, 14)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap();
        let core = Core::new(
            settings(text),
            Start {
                dli,
                ..Start::new(Ok(false))
            },
            Now::naive(t0, start),
        );
        Rig {
            core,
            t0,
            start,
            line: false,
            effects: Vec::new(),
        }
    }

    fn now(&self, s: f64) -> Now {
        Now::naive(self.t0, self.start).after(Duration::from_secs_f64(s))
    }

    fn at(&mut self, s: f64, event: Event) -> Vec<Effect> {
        let now = self.now(s);
        let mut queue: std::collections::VecDeque<Effect> = self.core.handle(now, event).into();
        let mut seen = Vec::new();
        while let Some(e) = queue.pop_front() {
            if let Effect::SetRelay(on) = e {
                self.line = on;
                queue.extend(self.core.handle(
                    now,
                    Event::Relay {
                        requested: on,
                        write: Ok(()),
                        read_back: Ok(on),
                    },
                ));
            }
            seen.push(e);
        }
        self.effects.extend(seen.iter().cloned());
        seen
    }

    fn read(&mut self, s: f64, lux: f64) -> Vec<Effect> {
        let started = self.t0 + Duration::from_secs_f64(s);
        self.at(
            s,
            Event::Reading {
                started,
                result: Ok(Measurement::Lux {
                    lux,
                    raw: (lux * 1.2).min(65_534.0) as u16,
                }),
            },
        )
    }

    fn message(&mut self, s: f64, topic: &str, payload: &str, retained: bool) -> Vec<Effect> {
        self.at(
            s,
            Event::Message {
                topic: topic.into(),
                payload: payload.as_bytes().to_vec(),
                retained,
            },
        )
    }
}

fn published<'a>(effects: &'a [Effect], topic: &str) -> Vec<&'a str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish {
                topic: t,
                payload,
                retained,
            } if t == topic => {
                assert!(*retained || !topic.ends_with("dli"), "P/dli is retained");
                Some(payload.as_str())
            }
            _ => None,
        })
        .collect()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("JSON payload")
}

fn reason(r: &Rig) -> &'static str {
    r.core.view().reason
}

fn persisted(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Persist(Persist::Dli(_))))
        .count()
}

#[test]
fn strategy_dli_waits_then_lights_as_late_as_the_target_allows() {
    // From 06:00, dark all day: 5 mol at 200 µmol/s = 25000 s, so the lamp starts at 22:00 − 6.94 h ≈ 15:03.
    let mut r = Rig::new(DLI, None, 6);
    r.read(1.0, 0.0);
    assert_eq!(reason(&r), "dli_scheduled");
    assert!(!r.line);
    let mut on_at = None;
    for m in 1..(16 * 60) {
        let s = m as f64 * 60.0;
        r.read(s, 0.0);
        if r.line && on_at.is_none() {
            on_at = Some(s);
            assert_eq!(reason(&r), "dli_needed");
        }
    }
    let on_at = on_at.expect("the lamp came on");
    let latest = 16.0 * 3600.0 - 25_000.0;
    assert!(
        on_at <= latest && on_at >= latest - 120.0,
        "on at {on_at} s, latest start {latest} s"
    );
    // It ran to the window's end: 22:00 turns it off.
    assert!(r.line);
    r.read(16.0 * 3600.0 + 1.0, 0.0);
    assert!(!r.line);
    assert_eq!(reason(&r), "outside_window");
    let dli = json(published(&r.effects, "gh/dli").last().unwrap());
    assert!((dli["mol"].as_f64().unwrap() - 5.0).abs() < 0.05, "{dli}");
    assert_eq!(dli["status"], "met");
}

#[test]
fn enough_light_already_means_dli_met_and_the_lamp_stays_off() {
    let mut r = Rig::new(DLI, None, 6);
    // 40 klux for an hour: 40000 × 0.0185 × 3600 = 2.66 mol; two hours: 5.3 mol.
    for m in 0..=120 {
        r.read(m as f64 * 60.0, 40_000.0);
    }
    assert_eq!(reason(&r), "dli_met");
    assert!(!r.line);
    let dli = json(published(&r.effects, "gh/dli").last().unwrap());
    assert_eq!(dli["status"], "met");
    assert_eq!(dli["target_mol"], 5.0);
}

#[test]
fn p_dli_goes_out_every_minute_and_on_each_switch() {
    let mut r = Rig::new(DLI, None, 12);
    for s in 0..=180 {
        r.read(s as f64, 100.0);
    }
    // Minutes 12:00, 12:01, 12:02, 12:03.
    assert_eq!(published(&r.effects, "gh/dli").len(), 4);
    let n = published(&r.effects, "gh/dli").len();
    let effects = r.message(181.0, "gh/light/set", "on", false);
    assert!(r.line);
    assert_eq!(published(&effects, "gh/dli").len(), 1, "{effects:?}");
    assert_eq!(published(&r.effects, "gh/dli").len(), n + 1);
    let v = json(published(&effects, "gh/dli")[0]);
    for key in [
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
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert_eq!(v["day"], "2025-01-14");
}

#[test]
fn the_light_day_ends_with_a_retained_report_a_notice_line_and_a_save() {
    let mut r = Rig::new(DLI, None, 21);
    r.read(0.0, 0.0);
    // 21:00 → 06:00 next morning, a reading a minute.
    for m in 1..=(9 * 60 + 1) {
        r.read(m as f64 * 60.0, 0.0);
    }
    let reports = published(&r.effects, "gh/report/daily");
    assert_eq!(reports.len(), 1);
    let v = json(reports[0]);
    assert_eq!(v["day"], "2025-01-14");
    assert!(
        v["threshold_rule"]["lamp_on_s"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(v.get("saved_kwh").is_some() && v.get("longest_dark_h").is_some());
    assert!(r.effects.iter().any(|e| matches!(
        e,
        Effect::Log { level: Severity::Notice, line, .. } if line.starts_with("dli: light-day 2025-01-14")
    )));
    assert!(r.effects.iter().any(|e| matches!(
        e,
        Effect::Publish { topic, retained: true, .. } if topic == "gh/report/daily"
    )));
    // Saved at most every 5 minutes over the 9 h, plus the day end.
    let saves = persisted(&r.effects);
    assert!((108..=110).contains(&saves), "{saves} saves");
    // And at stop.
    let stop = r.at(9.0 * 3600.0 + 120.0, Event::Stop);
    assert_eq!(persisted(&stop), 1);
}

#[test]
fn the_day_so_far_comes_back_after_a_restart() {
    let mut r = Rig::new(DLI, None, 10);
    for m in 0..=60 {
        r.read(m as f64 * 60.0, 20_000.0);
    }
    let mol = r.core.dli().mol();
    assert!(mol > 1.0);
    let saved = r
        .effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Persist(Persist::Dli(s)) => Some(s.clone()),
            _ => None,
        })
        .expect("saved");
    let text = saved.to_json();
    let restored = DliState::from_json(&text).expect("valid");
    let r2 = Rig::new(DLI, Some(restored), 11);
    assert!(
        r2.core.dli().mol() > 0.9 * mol,
        "{} vs {mol}",
        r2.core.dli().mol()
    );
}

#[test]
fn the_target_command_is_applied_or_rejected_on_its_error_topic() {
    let mut r = Rig::new(DLI, None, 12);
    r.read(0.0, 100.0);
    let e = r.message(1.0, "gh/dli/target/set", "12.5", false);
    let v = json(published(&e, "gh/dli")[0]);
    assert_eq!(v["target_mol"], 12.5);
    for bad in ["-1", "abc", "", "101"] {
        let e = r.message(2.0, "gh/dli/target/set", bad, false);
        let errors = published(&e, "gh/dli/target/set/error");
        assert_eq!(errors.len(), 1, "{bad:?}: {e:?}");
        assert!(
            errors[0].contains("from 0 (accounting only) to 100"),
            "{}",
            errors[0]
        );
        assert!(e.iter().any(|x| matches!(
            x,
            Effect::Log { level: Severity::Warning, line, .. } if line.contains("rejected DLI target")
        )));
    }
    assert_eq!(r.core.dli().target_mol(), 12.5);
    // Retained targets are ignored with a warning.
    let e = r.message(3.0, "gh/dli/target/set", "3", true);
    assert!(published(&e, "gh/dli/target/set/error").is_empty());
    assert_eq!(r.core.dli().target_mol(), 12.5);
    // A reload brings the configured target back, and applies new [dli] keys.
    let new = settings(&DLI.replace("target_mol = 5", "target_mol = 8"));
    r.at(4.0, Event::Reload(Ok(Box::new(new))));
    assert_eq!(r.core.dli().target_mol(), 8.0);
}

#[test]
fn threshold_strategy_still_accounts_the_dli() {
    let text = DLI.replace("strategy = \"dli\"", "strategy = \"threshold\"");
    let mut r = Rig::new(&text, None, 12);
    for m in 0..=10 {
        r.read(m as f64 * 60.0, 100.0);
    }
    assert_eq!(reason(&r), "below_threshold");
    let v = json(published(&r.effects, "gh/dli").last().unwrap());
    assert!(v["lamp_on_s"].as_f64().unwrap() >= 420.0, "{v}");
    assert!(v["sun_mol"].as_f64().unwrap() > 0.0, "{v}");
}
