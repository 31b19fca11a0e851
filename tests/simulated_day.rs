//! A whole simulated day on the mock environment, driven through the real [`Core`]: the real `bh1750` driver and
//! auto-ranging read the simulated BH1750, which sees the day's light plus the lamp; the core (default
//! configuration: 450/550 lx, 60 s dwell, window 06:00-22:00, lamp contribution learned automatically) decides,
//! and its relay writes go to the simulated relay and are read back, as the daemon shell does. Time is virtual
//! (the core's wake-ups and the sensor's conversions move it), so 24 h take a moment.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveTime, Timelike};
use greenhoused::config::{self, LampLux, Settings};
use greenhoused::control::window_contains;
use greenhoused::core::{Core, Effect, Event, Start};
use greenhoused::hw::mock::{self, Clock, VirtualClock, World};
use greenhoused::hw::Relay;

/// One switch of the relay during the day.
#[derive(Debug, Clone, Copy)]
struct Switch {
    minute: u16,
    on: bool,
    /// True ambient light (without the lamp) at that moment.
    ambient: f64,
}

struct DayRun {
    switches: Vec<Switch>,
    /// Seconds the lamp was on outside the window.
    on_outside_window_s: u32,
    learned_lamp_lux: f64,
    /// Alerts the monitor raised during the day.
    alerts: Vec<String>,
}

fn settings(lamp_lux: LampLux) -> Settings {
    let mut s =
        config::load_str("[device]\nid = \"sim\"\n[mock]\nambient = \"day\"\nlamp_lux = 400\n")
            .expect("defaults load");
    s.control.lamp_lux = lamp_lux;
    s
}

/// The shell's part: hand `event` to the core, answer relay writes with the simulated relay's read-back, and
/// record what the core published.
struct Shell {
    clock: VirtualClock,
    world: World,
    relay: Box<dyn Relay>,
    light_topic: String,
    alert_topic: String,
    run: DayRun,
}

impl Shell {
    fn handle(&mut self, core: &mut Core, event: Event) {
        let mut effects = core.handle(self.clock.moment(), event);
        while !effects.is_empty() {
            let mut more = Vec::new();
            for effect in effects {
                match effect {
                    Effect::SetRelay(on) => {
                        let write = self.relay.set(on).map_err(|e| e.to_string());
                        let read_back = self.relay.read_back().map_err(|e| e.to_string());
                        more.extend(core.handle(
                            self.clock.moment(),
                            Event::Relay {
                                requested: on,
                                write,
                                read_back,
                            },
                        ));
                    }
                    Effect::Publish { topic, payload, .. } if topic == self.light_topic => {
                        let t = self.clock.local_time();
                        self.run.switches.push(Switch {
                            minute: (t.hour() * 60 + t.minute()) as u16,
                            on: payload == "on",
                            ambient: self.world.ambient_lux(),
                        });
                    }
                    Effect::Publish { topic, payload, .. }
                        if topic == self.alert_topic && payload.contains("\"active\":true") =>
                    {
                        self.run.alerts.push(payload);
                    }
                    _ => {}
                }
            }
            effects = more;
        }
    }
}

fn simulate_day(s: &Settings) -> DayRun {
    let clock = VirtualClock::new(NaiveTime::from_hms_opt(0, 0, 0).expect("midnight"));
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let (world, mut sensor, mut relay) = mock::build(&s.mock, &s.sensor, &s.relay, false, shared);
    let start = Start::new(relay.read_back().map_err(|e| e.to_string()));
    let mut core = Core::new(s.clone(), start, clock.moment());
    let topics = core.topics().clone();
    let mut shell = Shell {
        clock: clock.clone(),
        world,
        relay,
        light_topic: topics.light,
        alert_topic: topics.alert,
        run: DayRun {
            switches: Vec::new(),
            on_outside_window_s: 0,
            learned_lamp_lux: 0.0,
            alerts: Vec::new(),
        },
    };
    let day = Duration::from_secs(24 * 3600);
    while clock.elapsed() < day {
        // One reading per interval: the measurement's conversion waits advance the clock.
        let cycle_start = clock.now();
        let result = sensor.measure();
        shell.handle(
            &mut core,
            Event::Reading {
                started: cycle_start,
                result,
            },
        );
        // The core's wake-ups up to the next reading (dwell ends, minute edges).
        let next = cycle_start + s.sensor.interval;
        while let Some(wake) = core.next_wakeup().filter(|w| *w <= next) {
            clock.advance_to(wake);
            shell.handle(&mut core, Event::Tick);
        }
        clock.advance_to(next);
        let t = clock.local_time();
        let minute = (t.hour() * 60 + t.minute()) as u16;
        if core.view().light && !window_contains(s.control.window, minute) {
            shell.run.on_outside_window_s += s.sensor.interval.as_secs() as u32;
        }
    }
    let mut run = shell.run;
    // The first P/light is the start state, not a switch.
    run.switches.remove(0);
    run.learned_lamp_lux = core.view().lamp_learned_lux.unwrap_or(0.0);
    run
}

/// Switches the true light does not justify: on while the day is bright enough, off while it is dark enough
/// inside the window (a window edge justifies an off).
fn unjustified(s: &Settings, run: &DayRun) -> Vec<Switch> {
    let (on_below, off_above) = (s.control.on_below_lux, s.control.off_above_lux);
    run.switches
        .iter()
        .copied()
        .filter(|sw| {
            if sw.on {
                sw.ambient >= on_below
            } else {
                window_contains(s.control.window, sw.minute) && sw.ambient <= off_above
            }
        })
        .collect()
}

#[test]
fn a_simulated_day_has_no_flaps_and_no_light_outside_the_window() {
    let s = settings(LampLux::Auto);
    let run = simulate_day(&s);
    let bad = unjustified(&s, &run);
    eprintln!(
        "simulated day: {} switches {:?}, learned lamp {:.0} lx",
        run.switches.len(),
        run.switches
            .iter()
            .map(|w| (w.minute / 60, w.minute % 60, w.on, w.ambient.round()))
            .collect::<Vec<_>>(),
        run.learned_lamp_lux
    );
    assert!(
        bad.is_empty(),
        "switches the ambient light does not justify (flaps): {bad:?}"
    );
    assert_eq!(run.on_outside_window_s, 0, "lamp on outside 06:00-22:00");
    assert!(
        run.alerts.is_empty(),
        "the monitor stays quiet: {:?}",
        run.alerts
    );
    // Dawn (on at 06:00, off when the sun is up) and dusk (on at sunset, off at 22:00), plus cloud dips at most.
    assert!(
        run.switches.len() >= 4,
        "the lamp is used at dawn and dusk: {:?}",
        run.switches
    );
    assert!(
        run.switches.len() <= 12,
        "too many switches: {:?}",
        run.switches
    );
    assert!(
        (run.learned_lamp_lux - 400.0).abs() < 40.0,
        "the lamp's contribution is learned from the switch steps: {}",
        run.learned_lamp_lux
    );
    // Dwell: no two switches closer than the dwell times allow.
    for pair in run.switches.windows(2) {
        let gap_min = pair[1].minute.abs_diff(pair[0].minute);
        assert!(gap_min >= 1, "switches {pair:?} within a minute");
    }
}

#[test]
fn without_lamp_compensation_the_same_day_flaps() {
    // The check above can fail: ignoring the lamp's light at the sensor makes the rule switch itself off.
    let s = settings(LampLux::Fixed(0.0));
    let run = simulate_day(&s);
    assert!(
        !unjustified(&s, &run).is_empty(),
        "expected flapping without compensation: {:?}",
        run.switches
    );
    assert!(
        run.switches.len() >= 8,
        "dwell-limited flapping at dawn and dusk: {:?}",
        run.switches
    );
}
