//! The core driven directly with chosen times: no clock, no broker, no threads. A [`Rig`] plays the shell: it
//! answers every `SetRelay` with a relay that follows (or fails, or is stuck), and collects the effects.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::Value;

use super::*;

/// Default settings (450/550 lx, 60 s dwell, window 06:00-22:00, stale after 10 s, settle 5 s) plus `extra`.
/// Default settings with prefix `gh`, lamp compensation off unless `extra` sets it.
fn settings(extra: &str) -> Settings {
    let mut s = config::load_str(&format!(
        "[device]\nid = \"t\"\n[mqtt]\ntopic_prefix = \"gh\"\n{extra}"
    ))
    .expect("test settings load");
    if !extra.contains("lamp_lux") {
        s.control.lamp_lux = config::LampLux::Fixed(0.0);
    }
    s
}

/// Readings never go stale within these tests unless they say so.
const LONG_STALE: &str = "[sensor]\nstale_after_s = 3600\n";

/// What the simulated relay does with a write.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RelayBehaviour {
    Follows,
    /// The write returns an error; the line keeps its level.
    WriteFails,
    /// The write "succeeds" but the line keeps its level.
    Stuck,
}

struct Rig {
    core: Core,
    t0: Instant,
    day: NaiveDateTime,
    /// Seconds after `t0` of the last event.
    s: f64,
    line: bool,
    relay: RelayBehaviour,
    effects: Vec<Effect>,
    writes: Vec<bool>,
}

impl Rig {
    /// A core at 12:00 local with the relay line at `on`.
    fn new(extra: &str, on: bool) -> Rig {
        Rig::at_time(extra, on, 12, 0)
    }

    fn at_time(extra: &str, on: bool, h: u32, m: u32) -> Rig {
        let t0 = crate::hw::mock::test_instant();
        let day = NaiveDate::from_ymd_opt(2024, 6, 21)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap();
        let core = Core::new(settings(extra), Start::new(Ok(on)), Now::naive(t0, day));
        Rig {
            core,
            t0,
            day,
            s: 0.0,
            line: on,
            relay: RelayBehaviour::Follows,
            effects: Vec::new(),
            writes: Vec::new(),
        }
    }

    fn now(&self, s: f64) -> Now {
        Now::naive(self.t0, self.day).after(Duration::from_secs_f64(s))
    }

    fn t(&self, s: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(s)
    }

    /// Handle `event` at `s`, answering relay writes like the daemon shell; returns this event's effects.
    fn at(&mut self, s: f64, event: Event) -> Vec<Effect> {
        self.s = s;
        let now = self.now(s);
        let mut queue: std::collections::VecDeque<Effect> = self.core.handle(now, event).into();
        let mut seen = Vec::new();
        while let Some(e) = queue.pop_front() {
            if let Effect::SetRelay(on) = e {
                self.writes.push(on);
                let write = match self.relay {
                    RelayBehaviour::Follows => {
                        self.line = on;
                        Ok(())
                    }
                    RelayBehaviour::WriteFails => Err("GPIO write failed".to_string()),
                    RelayBehaviour::Stuck => Ok(()),
                };
                queue.extend(self.core.handle(
                    now,
                    Event::Relay {
                        requested: on,
                        write,
                        read_back: Ok(self.line),
                    },
                ));
            }
            seen.push(e);
        }
        self.effects.extend(seen.iter().cloned());
        seen
    }

    fn tick(&mut self, s: f64) -> Vec<Effect> {
        self.at(s, Event::Tick)
    }

    /// A valid reading taken at `s` (raw count as a BH1750 at MTreg 69 would give).
    fn read(&mut self, s: f64, lux: f64) -> Vec<Effect> {
        let started = self.t(s);
        let raw = (lux * 1.2).min(65_534.0) as u16;
        self.at(
            s,
            Event::Reading {
                started,
                result: Ok(Measurement::Lux { lux, raw }),
            },
        )
    }

    fn command(&mut self, s: f64, payload: &str) -> Vec<Effect> {
        self.at(
            s,
            Event::Message {
                topic: "gh/light/set".into(),
                payload: payload.as_bytes().to_vec(),
                retained: false,
            },
        )
    }

    fn view(&self) -> View {
        self.core.view()
    }
}

fn published<'a>(effects: &'a [Effect], topic: &str) -> Vec<&'a str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish {
                topic: t, payload, ..
            } if t == topic => Some(payload.as_str()),
            _ => None,
        })
        .collect()
}

fn last_state(effects: &[Effect]) -> Value {
    let p = published(effects, "gh/state");
    serde_json::from_str(p.last().expect("a P/state was published")).expect("P/state is JSON")
}

fn alerts(effects: &[Effect]) -> Vec<(String, bool)> {
    published(effects, "gh/alert")
        .into_iter()
        .map(|p| {
            let v: Value = serde_json::from_str(p).unwrap();
            (
                v["alert"].as_str().unwrap().to_string(),
                v["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn logs(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Log { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

fn relay_writes(effects: &[Effect]) -> Vec<bool> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetRelay(on) => Some(*on),
            _ => None,
        })
        .collect()
}

#[test]
fn first_event_announces_online_light_mode_and_state() {
    let mut r = Rig::new("", false);
    let e = r.tick(0.0);
    assert_eq!(published(&e, "gh/status"), vec!["online"]);
    assert_eq!(published(&e, "gh/light"), vec!["off"]);
    assert_eq!(published(&e, "gh/mode"), vec!["auto"]);
    let state = last_state(&e);
    assert_eq!(state["light"], "off");
    assert_eq!(state["reason"], "in_band");
    assert_eq!(state["lux"], Value::Null);
    assert_eq!(state["window_open"], true);
    // `ts` is the local time the shell passed in, not the machine's clock.
    assert_eq!(state["ts"], "2024-06-21T12:00:00.000+00:00");
    assert!(relay_writes(&e).is_empty(), "nothing to switch yet");
    assert!(logs(&e)[0].starts_with("started: relay off"));
    // Announced once.
    assert!(published(&r.tick(1.0), "gh/status").is_empty());
}

#[test]
fn dwell_delays_the_switch_until_min_off_then_counts_from_the_confirmation() {
    let mut r = Rig::new(LONG_STALE, false);
    let e = r.read(10.0, 100.0);
    assert!(relay_writes(&e).is_empty());
    assert_eq!(last_state(&e)["reason"], "min_off_hold");
    assert_eq!(
        r.core.next_wakeup(),
        Some(r.t(60.0)),
        "wakes at the end of min_off"
    );
    let e = r.tick(60.0);
    assert_eq!(relay_writes(&e), vec![true]);
    assert_eq!(published(&e, "gh/light"), vec!["on"]);
    assert!(r.view().light);
    // min_on counts from the confirmed switch at 60 s.
    let e = r.read(100.0, 5000.0);
    assert!(relay_writes(&e).is_empty());
    assert_eq!(last_state(&e)["reason"], "min_on_hold");
    assert_eq!(r.core.next_wakeup(), Some(r.t(120.0)));
    let e = r.tick(120.0);
    assert_eq!(relay_writes(&e), vec![false]);
    assert_eq!(last_state(&e)["reason"], "above_threshold");
}

#[test]
fn a_failed_relay_write_is_no_switch_and_is_retried() {
    let mut r = Rig::new("", false);
    r.relay = RelayBehaviour::WriteFails;
    let e = r.read(100.0, 100.0);
    assert_eq!(relay_writes(&e), vec![true], "the rule asks for the light");
    assert!(
        logs(&e)
            .iter()
            .any(|l| l == "cannot switch the light on: GPIO write failed"),
        "{:?}",
        logs(&e)
    );
    assert!(!r.view().light, "the light is what the relay shows");
    assert!(
        !published(&e, "gh/light").contains(&"on"),
        "P/light stays off"
    );
    assert!(!e
        .iter()
        .any(|x| matches!(x, Effect::Persist(Persist::Relay { .. }))));
    assert_eq!(
        r.core.next_wakeup(),
        Some(r.t(101.0)),
        "retried a second later"
    );
    // Still failing on the next reading: asked again, still off.
    let e = r.read(101.0, 100.0);
    assert_eq!(relay_writes(&e), vec![true]);
    // The relay recovers at 130 s: the switch counts from there, so min_on holds until 190 s (a dwell started
    // by the failed write at 100 s would have ended at 160 s).
    r.relay = RelayBehaviour::Follows;
    let e = r.read(130.0, 100.0);
    assert_eq!(relay_writes(&e), vec![true]);
    assert_eq!(published(&e, "gh/light"), vec!["on"]);
    let e = r.read(170.0, 5000.0);
    assert!(relay_writes(&e).is_empty());
    assert_eq!(last_state(&e)["reason"], "min_on_hold");
    let e = r.read(190.0, 5000.0);
    assert_eq!(relay_writes(&e), vec![false]);
}

#[test]
fn a_failed_write_teaches_the_lamp_learner_nothing() {
    let mut r = Rig::new("[control]\nlamp_lux = \"auto\"\n", false);
    r.relay = RelayBehaviour::WriteFails;
    r.read(99.0, 100.0);
    r.read(100.0, 100.0);
    // The "step" seen after the failed switch is ambient noise, not the lamp.
    r.read(102.0, 180.0);
    r.read(103.0, 180.0);
    assert_eq!(r.view().lamp_learned_lux, None);
    // A real switch: 100 → 500 lx is learned as a 400 lx lamp.
    r.relay = RelayBehaviour::Follows;
    r.read(200.0, 100.0);
    assert!(r.view().light);
    r.read(201.0, 500.0);
    assert_eq!(r.view().lamp_learned_lux, Some(400.0));
}

#[test]
fn a_stuck_relay_raises_relay_readback_and_rule_mismatch() {
    let mut r = Rig::new("", false);
    r.relay = RelayBehaviour::Stuck;
    r.read(100.0, 100.0);
    r.tick(101.0);
    let mut raised = alerts(&r.effects);
    for s in 102..=106 {
        raised.extend(alerts(&r.tick(f64::from(s))));
    }
    assert!(
        raised.contains(&("relay_readback".into(), true)),
        "{raised:?}"
    );
    assert!(
        raised.contains(&("rule_mismatch".into(), true)),
        "{raised:?}"
    );
    assert!(!r.view().light);
    let health = published(&r.effects, "gh/health");
    assert!(health.last().unwrap().contains("relay_readback"));
    // Unstuck: the next retry switches, both alerts clear.
    r.relay = RelayBehaviour::Follows;
    let e = r.tick(107.0);
    assert_eq!(published(&e, "gh/light"), vec!["on"]);
    let cleared = alerts(&e);
    assert!(
        cleared.contains(&("relay_readback".into(), false)),
        "{cleared:?}"
    );
    assert!(
        cleared.contains(&("rule_mismatch".into(), false)),
        "{cleared:?}"
    );
}

#[test]
fn window_closes_and_opens_on_the_minute() {
    let mut r = Rig::at_time(LONG_STALE, true, 21, 59);
    r.read(0.0, 100.0);
    assert!(r.view().light && r.view().window_open);
    // The next wake-up is the minute boundary (22:00), where the window closes.
    let wake = r.core.next_wakeup().unwrap();
    assert_eq!(wake, r.t(60.0));
    r.read(59.0, 100.0);
    let e = r.tick(60.0);
    assert_eq!(
        relay_writes(&e),
        vec![false],
        "off at 22:00 even inside min_on"
    );
    let state = last_state(&e);
    assert_eq!(
        (state["reason"].as_str(), state["window_open"].as_bool()),
        (Some("outside_window"), Some(false))
    );
}

#[test]
fn an_override_holds_then_expires_back_to_the_rule() {
    let mut r = Rig::new(LONG_STALE, false);
    r.read(100.0, 5000.0);
    let e = r.command(101.0, r#"{"state": "on", "for_s": 30}"#);
    assert_eq!(relay_writes(&e), vec![true], "immediately, no dwell");
    assert_eq!(published(&e, "gh/mode"), vec!["manual"]);
    assert!(r.view().light && r.view().mode == "manual");
    r.read(125.0, 5000.0);
    assert_eq!(
        r.core.next_wakeup(),
        Some(r.t(131.0)),
        "the override ends at 131 s"
    );
    let e = r.tick(131.0);
    assert_eq!(published(&e, "gh/mode"), vec!["auto"]);
    // Back to the rule: min_on from the switch at 101 s is not over yet.
    assert_eq!(last_state(&e)["reason"], "min_on_hold");
    let e = r.tick(161.0);
    assert_eq!(relay_writes(&e), vec![false]);
}

#[test]
fn toggle_uses_the_confirmed_state() {
    let mut r = Rig::new("", false);
    r.relay = RelayBehaviour::WriteFails;
    r.command(10.0, "toggle");
    assert!(!r.view().light);
    // The write failed, so the light is still off: toggle asks for on again, not off.
    let e = r.command(11.0, "toggle");
    assert_eq!(relay_writes(&e), vec![true]);
}

#[test]
fn sensor_failure_goes_stale_applies_the_policy_and_recovers() {
    let mut r = Rig::new(
        "[control]\non_sensor_failure = \"on\"\nmin_off_s = 0\n",
        false,
    );
    r.read(0.0, 5000.0);
    for s in 1..=9 {
        r.at(
            f64::from(s),
            Event::Reading {
                started: r.t(f64::from(s)),
                result: Err(SensorError::NoAck { address: 0x23 }),
            },
        );
    }
    let raised = alerts(&r.effects);
    assert_eq!(raised, vec![("sensor_error".to_string(), true)]);
    assert_eq!(r.view().sensor, SensorStatus::Error);
    assert!(!r.view().light, "not stale yet");
    assert_eq!(
        r.core.next_wakeup(),
        Some(r.t(10.0)),
        "stale 10 s after the last reading"
    );
    let e = r.tick(10.0);
    assert_eq!(alerts(&e), vec![("sensor_stale".to_string(), true)]);
    assert_eq!(relay_writes(&e), vec![true], "on_sensor_failure = on");
    assert_eq!(last_state(&e)["reason"], "sensor_failure");
    let detail: Value = serde_json::from_str(published(&r.effects, "gh/alert")[0]).unwrap();
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("no answer from the light sensor at I2C address 0x23"),
        "{detail}"
    );
    // The sensor answers again: both alerts clear, the rule is back.
    let e = r.read(20.0, 5000.0);
    let cleared = alerts(&e);
    assert!(cleared.contains(&("sensor_error".into(), false)));
    assert!(cleared.contains(&("sensor_stale".into(), false)));
    assert_eq!(r.view().sensor, SensorStatus::Ok);
}

#[test]
fn a_saturated_sensor_is_reported_and_cleared() {
    let mut r = Rig::new("", false);
    let e = r.at(
        1.0,
        Event::Reading {
            started: r.t(1.0),
            result: Ok(Measurement::Saturated),
        },
    );
    assert_eq!(alerts(&e), vec![("sensor_saturated".to_string(), true)]);
    assert_eq!(last_state(&e)["sensor"], "saturated");
    let e = r.read(2.0, 300.0);
    assert_eq!(alerts(&e), vec![("sensor_saturated".to_string(), false)]);
    assert_eq!(published(&e, "gh/luminosity"), vec!["300"]);
}

#[test]
fn commands_retained_and_bad_ones_are_rejected_with_a_reason() {
    let mut r = Rig::new("", false);
    let e = r.at(
        1.0,
        Event::Message {
            topic: "gh/light/set".into(),
            payload: b"on".to_vec(),
            retained: true,
        },
    );
    assert!(relay_writes(&e).is_empty(), "a retained command is ignored");
    assert!(logs(&e)
        .iter()
        .any(|l| l.contains("commands must not be retained")));
    let e = r.command(2.0, "blink");
    assert!(relay_writes(&e).is_empty());
    let err = published(&e, "gh/light/set/error");
    assert_eq!(err.len(), 1);
    assert!(err[0].starts_with("unknown command \"blink\""), "{err:?}");
    // A flood: every rejection is answered, but only ten a minute are logged.
    for i in 0..30 {
        r.command(3.0 + f64::from(i) * 0.1, "blink");
    }
    let answered = published(&r.effects, "gh/light/set/error").len();
    let logged = logs(&r.effects)
        .iter()
        .filter(|l| l.starts_with("rejected command"))
        .count();
    assert_eq!((answered, logged), (31, 10));
    let e = r.command(70.0, "blink");
    assert!(logs(&e)
        .contains(&"21 more rejected MQTT inputs were not logged in the last minute".to_string()));
}

#[test]
fn remote_readings_from_sensor_topic() {
    let mut r = Rig::new(
        "[sensor]\nsource = \"mqtt\"\ntopic = \"outside/lux\"\n",
        false,
    );
    let msg = |p: &str| Event::Message {
        topic: "outside/lux".into(),
        payload: p.as_bytes().to_vec(),
        retained: false,
    };
    let e = r.at(1.0, msg("612.5"));
    assert_eq!(r.view().lux, Some(612.5));
    assert_eq!(published(&e, "gh/luminosity"), vec!["612.5"]);
    let e = r.at(2.0, msg("-3"));
    assert!(logs(&e)[0].contains("not a non-negative number"));
    assert_eq!(r.view().lux, Some(612.5));
}

#[test]
fn reload_applies_live_keys_and_leaves_the_relay_alone() {
    let mut r = Rig::new("", true);
    r.read(100.0, 500.0);
    let writes = r.writes.len();
    let mut new = settings(
        "[control]\non_below_lux = 100\noff_above_lux = 600\nmin_on_s = 0\n[relay]\ngpio = 5\n",
    );
    new.mqtt.topic_prefix = "gh".into();
    let e = r.at(101.0, Event::Reload(Ok(Box::new(new))));
    let l = logs(&e);
    assert!(
        l.iter()
            .any(|x| x
                == "configuration reload: relay.gpio changed; restart greenhoused to apply it"),
        "{l:?}"
    );
    assert!(l
        .iter()
        .any(|x| x == "configuration reloaded: [control], [monitor] and [dli] applied (changed: control.on_below_lux, control.off_above_lux, control.min_on_s)"));
    assert_eq!(r.core.settings().control.on_below_lux, 100.0);
    assert_eq!(
        r.core.settings().relay.gpio,
        17,
        "restart-only keys keep their running value"
    );
    assert_eq!(
        r.writes.len(),
        writes,
        "the reload itself does not write the relay"
    );
    // The new thresholds decide the next readings: 550 lx is now in band, 700 lx above off_above_lux.
    let e = r.read(102.0, 550.0);
    assert!(relay_writes(&e).is_empty());
    let e = r.read(103.0, 700.0);
    assert_eq!(relay_writes(&e), vec![false]);
    // A rejected file keeps everything.
    let e = r.at(
        104.0,
        Event::Reload(Err("control.on_below_lux: must be a number".into())),
    );
    assert!(logs(&e)[0]
        .starts_with("configuration reload rejected, keeping the running configuration:"));
    assert_eq!(r.core.settings().control.on_below_lux, 100.0);
}

#[test]
fn stop_puts_the_relay_to_on_stop_then_goes_offline() {
    let mut r = Rig::new("", false);
    r.command(1.0, "on");
    assert!(r.view().light);
    let e = r.at(2.0, Event::Stop);
    assert_eq!(relay_writes(&e), vec![false], "relay.on_stop = off");
    let order: Vec<(&str, &str)> = e
        .iter()
        .filter_map(|x| match x {
            Effect::Publish { topic, payload, .. } => Some((topic.as_str(), payload.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![("gh/light", "off"), ("gh/status", "offline")]);
    assert_eq!(r.core.next_wakeup(), None);
    assert!(r.tick(3.0).is_empty(), "nothing happens after the stop");
}

#[test]
fn stop_with_keep_does_not_touch_the_relay() {
    let mut r = Rig::new("[relay]\non_stop = \"keep\"\n", true);
    r.tick(0.0);
    let e = r.at(1.0, Event::Stop);
    assert!(relay_writes(&e).is_empty());
    assert_eq!(published(&e, "gh/status"), vec!["offline"]);
}

#[test]
fn stop_with_a_failing_relay_still_goes_offline() {
    let mut r = Rig::new("", true);
    r.tick(0.0);
    r.relay = RelayBehaviour::WriteFails;
    let e = r.at(1.0, Event::Stop);
    assert!(logs(&e)
        .iter()
        .any(|l| l == "cannot put the light off on stop: GPIO write failed"));
    assert_eq!(published(&e, "gh/status"), vec!["offline"]);
    assert!(logs(&e).last().unwrap().starts_with("stopped: light on"));
}

#[test]
fn restore_persists_confirmed_switches_only() {
    let mut r = Rig::new("[relay]\non_start = \"restore\"\n", false);
    r.relay = RelayBehaviour::WriteFails;
    r.command(1.0, "on");
    assert!(!r
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Persist(Persist::Relay { .. }))));
    r.relay = RelayBehaviour::Follows;
    let e = r.command(2.0, "on");
    assert!(e.contains(&Effect::Persist(Persist::Relay { on: true })));
}

#[test]
fn broker_state_goes_to_the_status_line_and_the_view() {
    let mut r = Rig::new("", false);
    r.tick(0.0);
    let e = r.at(
        1.0,
        Event::Broker {
            connected: true,
            broker: Some("mqtt://127.0.0.1:1883".into()),
        },
    );
    let Some(Effect::Notify(line)) = e.iter().find(|x| matches!(x, Effect::Notify(_))) else {
        panic!("no status line: {e:?}");
    };
    assert!(
        line.ends_with("broker connected to mqtt://127.0.0.1:1883"),
        "{line}"
    );
    // A fresh `P/state` names the broker (one of a failover list).
    assert_eq!(last_state(&e)["broker"], "mqtt://127.0.0.1:1883");
    let v = r.view();
    assert!(v.broker_connected);
    assert_eq!(v.broker.as_deref(), Some("mqtt://127.0.0.1:1883"));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["sensor"], "ok");
    assert_eq!(json["light"], false);
    // Offline: the status line says so and the next `P/state` names no broker.
    let e = r.at(
        2.0,
        Event::Broker {
            connected: false,
            broker: None,
        },
    );
    let Some(Effect::Notify(line)) = e.iter().find(|x| matches!(x, Effect::Notify(_))) else {
        panic!("no status line: {e:?}");
    };
    assert!(line.ends_with("broker disconnected"), "{line}");
    let e = r.read(3.0, 500.0);
    assert_eq!(last_state(&e)["broker"], Value::Null);
}

#[test]
fn next_wakeup_is_never_in_the_past() {
    let mut r = Rig::new("", false);
    r.relay = RelayBehaviour::Stuck;
    r.read(100.0, 100.0);
    for s in 101..200 {
        r.tick(f64::from(s));
        let wake = r.core.next_wakeup().unwrap();
        assert!(
            wake > r.t(f64::from(s)),
            "at {s} s the core asks for {wake:?}"
        );
    }
}

/// The history sub-module: fed on every reading, its bytes handed out at most every 10 minutes and at stop; the
/// view counts lamp time and switches confirmed by the relay.
#[test]
fn history_is_fed_and_persisted_at_most_every_ten_minutes_and_at_stop() {
    let mut rig = Rig::new(
        &format!("{LONG_STALE}[control]\nmin_on_s = 0\nmin_off_s = 0\n"),
        false,
    );
    let history_writes = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Persist(Persist::History(_))))
            .count()
    };
    // 25 minutes of readings a second: dark (lamp on) for the first 10 minutes, then bright (lamp off).
    for s in 0..1500 {
        let lux = if s < 600 { 100.0 } else { 2000.0 };
        rig.read(f64::from(s), lux);
    }
    // The first closed minute creates the file (at 1 min), then a flush 10 and 20 minutes after that.
    let written = history_writes(&rig.effects);
    assert_eq!(written, 3, "flushes at 1, 11 and 21 minutes, not more");
    let h = rig.core.history();
    assert_eq!(h.minutes().len(), 24);
    assert_eq!(h.minutes()[0].lux, Some(100.0));
    assert_eq!(h.minutes()[0].lamp_on_s, 60);
    assert_eq!(h.minutes()[23].lamp_on_s, 0);
    assert_eq!(h.minutes()[23].lux, Some(2000.0));
    assert!(h.minutes().iter().all(|m| m.window_open));
    // Today's DLI figures are in the daily history (the 30-day chart includes today).
    assert_eq!(h.days().len(), 1);
    let today = h.days()[0];
    assert_eq!(today.date().to_string(), "2024-06-21");
    let v = rig.core.view();
    assert!(
        today.sun_mol > 0.0 && (f64::from(today.total_mol()) - v.dli.mol).abs() < 0.05,
        "{today:?} vs {:?}",
        v.dli
    );
    assert_eq!(v.lamp_switches_total, 2);
    assert!(
        (v.lamp_on_seconds_total - 600.0).abs() < 1.5,
        "{}",
        v.lamp_on_seconds_total
    );
    // Stop writes what is left.
    let stop = rig.at(1500.5, Event::Stop);
    assert_eq!(history_writes(&stop), 1);
}

// ----- Home Assistant discovery -----

const HA_CONFIG: &str = "homeassistant/device/greenhoused_t/config";

fn ha_status(r: &mut Rig, s: f64, payload: &str, retained: bool) -> Vec<Effect> {
    r.at(
        s,
        Event::Message {
            topic: "homeassistant/status".into(),
            payload: payload.as_bytes().to_vec(),
            retained,
        },
    )
}

fn topics_published(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish { topic, .. } => Some(topic.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_event_announces_to_home_assistant_after_online() {
    let mut r = Rig::new("", false);
    let e = r.tick(0.0);
    let topics = topics_published(&e);
    assert_eq!(&topics[..2], &["gh/status", HA_CONFIG], "{topics:?}");
    let config: Value = serde_json::from_str(published(&e, HA_CONFIG)[0]).expect("JSON");
    assert_eq!(config["availability_topic"], "gh/status");
    assert_eq!(config["cmps"]["light"]["command_topic"], "gh/light/set");
    assert!(e
        .iter()
        .any(|x| matches!(x, Effect::Publish { topic, retained: true, .. } if topic == HA_CONFIG)));
}

#[test]
fn home_assistant_online_reannounces_after_the_jitter_then_republishes_the_states() {
    let mut r = Rig::new(LONG_STALE, false);
    r.tick(0.0);
    r.read(1.0, 300.0);
    assert!(
        published(&r.tick(2.0), HA_CONFIG).is_empty(),
        "announced once"
    );
    // Retained `online` (the broker's memory) and `offline` change nothing.
    ha_status(&mut r, 3.0, "online", true);
    ha_status(&mut r, 3.0, "offline", false);
    assert!(r.core.announcer.next_wakeup().is_none());

    let e = ha_status(&mut r, 10.0, "online", false);
    assert!(topics_published(&e).is_empty(), "nothing at once: {e:?}");
    assert!(
        logs(&e)[0].starts_with("Home Assistant is online"),
        "{:?}",
        logs(&e)
    );
    let delay = discovery::jitter("t", 0);
    let due = r.t(10.0) + delay;
    assert_eq!(r.core.next_wakeup().map(|w| w <= due), Some(true));
    // Another online while pending: the same time.
    ha_status(&mut r, 10.5, "online", false);
    assert_eq!(r.core.announcer.next_wakeup(), Some(due));

    let before = 10.0 + delay.as_secs_f64() - 0.01;
    assert!(
        published(&r.tick(before), HA_CONFIG).is_empty(),
        "not before the delay"
    );
    let e = r.tick(10.0 + delay.as_secs_f64());
    let topics = topics_published(&e);
    assert_eq!(topics[0], HA_CONFIG, "the config first: {topics:?}");
    for t in [
        "gh/status",
        "gh/light",
        "gh/mode",
        "gh/health",
        "gh/state",
        "gh/dli",
    ] {
        assert!(topics.contains(&t), "{t} republished: {topics:?}");
    }
    assert!(
        published(&r.tick(20.0), HA_CONFIG).is_empty(),
        "once per online"
    );
    // The next online draws the next delay.
    ha_status(&mut r, 30.0, "online", false);
    assert_eq!(
        r.core.announcer.next_wakeup(),
        Some(r.t(30.0) + discovery::jitter("t", 1))
    );
}

#[test]
fn discovery_off_removes_every_component_and_ignores_home_assistant() {
    let mut r = Rig::new("[homeassistant]\ndiscovery = false\n", false);
    let e = r.tick(0.0);
    let config: Value = serde_json::from_str(published(&e, HA_CONFIG)[0]).expect("JSON");
    assert_eq!(config["cmps"]["light"], serde_json::json!({"p": "switch"}));
    ha_status(&mut r, 1.0, "online", false);
    assert!(r.core.announcer.next_wakeup().is_none());
    assert!(published(&r.tick(10.0), HA_CONFIG).is_empty());
}

#[test]
fn without_lamp_watts_the_energy_entity_is_retired() {
    let mut r = Rig::new("", false);
    let e = r.tick(0.0);
    let config: Value = serde_json::from_str(published(&e, HA_CONFIG)[0]).expect("JSON");
    assert_eq!(
        config["cmps"]["lamp_energy"],
        serde_json::json!({"p": "sensor"})
    );
    let mut r = Rig::new("[dli]\nlamp_watts = 200\n", false);
    let e = r.tick(0.0);
    let config: Value = serde_json::from_str(published(&e, HA_CONFIG)[0]).expect("JSON");
    assert_eq!(config["cmps"]["lamp_energy"]["device_class"], "energy");
}

#[test]
fn a_reload_changing_lamp_watts_announces_the_energy_entity() {
    let mut r = Rig::new("", false);
    r.tick(0.0);
    let e = r.at(
        1.0,
        Event::Reload(Ok(Box::new(settings("[dli]\nlamp_watts = 90\n")))),
    );
    let config: Value = serde_json::from_str(published(&e, HA_CONFIG)[0]).expect("JSON");
    assert_eq!(config["cmps"]["lamp_energy"]["unit_of_measurement"], "kWh");
    // The same file again: nothing to announce.
    let e = r.at(
        2.0,
        Event::Reload(Ok(Box::new(settings("[dli]\nlamp_watts = 90\n")))),
    );
    assert!(published(&e, HA_CONFIG).is_empty());
}
