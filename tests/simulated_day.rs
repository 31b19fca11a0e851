//! A whole simulated day on the mock environment: the real `bh1750` driver and auto-ranging read the simulated
//! BH1750, which sees the day's light plus the lamp; the control state machine (default configuration: 450/550 lx,
//! 60 s dwell, window 06:00-22:00, lamp contribution learned automatically) drives the simulated relay. Time is
//! virtual, so 24 h take a moment.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveTime, Timelike};
use greenhoused::config::{self, LampLux, Settings};
use greenhoused::control::{window_contains, Controller, Inputs, SensorInput};
use greenhoused::hw::mock::{self, Clock, VirtualClock};
use greenhoused::hw::Measurement;

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
}

fn settings(lamp_lux: LampLux) -> Settings {
    let mut s =
        config::load_str("[device]\nid = \"sim\"\n[mock]\nambient = \"day\"\nlamp_lux = 400\n")
            .expect("defaults load");
    s.control.lamp_lux = lamp_lux;
    s
}

fn simulate_day(s: &Settings) -> DayRun {
    let clock = VirtualClock::new(NaiveTime::from_hms_opt(0, 0, 0).expect("midnight"));
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let (world, mut sensor, mut relay) = mock::build(&s.mock, &s.sensor, &s.relay, false, shared);
    let mut controller = Controller::new(s.control.clone(), false, clock.now());
    let mut light = false;
    let mut run = DayRun {
        switches: Vec::new(),
        on_outside_window_s: 0,
        learned_lamp_lux: 0.0,
    };
    let day = Duration::from_secs(24 * 3600);
    while clock.elapsed() < day {
        let cycle_start = clock.elapsed();
        let at = clock.now();
        let reading = match sensor.measure() {
            Ok(Measurement::Lux { lux, .. }) => Some(SensorInput::Reading { lux, at }),
            Ok(Measurement::Saturated) => None,
            Err(e) => panic!("the simulated sensor failed: {e}"),
        };
        let t = clock.local_time();
        let minute = (t.hour() * 60 + t.minute()) as u16;
        let decision = controller.decide(&Inputs {
            now: clock.now(),
            local_minute: minute,
            sensor: reading,
        });
        if decision.light_on != light {
            relay.set(decision.light_on).expect("simulated relay");
            controller.switched(clock.now(), decision.light_on);
            light = decision.light_on;
            run.switches.push(Switch {
                minute,
                on: light,
                ambient: world.ambient_lux(),
            });
        }
        if light && !window_contains(s.control.window, minute) {
            run.on_outside_window_s += 1;
        }
        // Next cycle one sensor interval after this one started (the conversion already took part of it).
        let next = cycle_start + s.sensor.interval;
        if clock.elapsed() < next {
            clock.advance(next - clock.elapsed());
        }
    }
    run.learned_lamp_lux = controller.lamp_lux();
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
