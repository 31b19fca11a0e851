//! The simulated greenhouse: ambient light over the day, the lamp's contribution, the relay pin and the fault
//! switches steered through `P/mock/set`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{NaiveTime, Timelike};

use super::clock::Clock;
use super::set::MockSet;
use crate::config::{Ambient, MockSettings};

/// Simulated sensor faults (`sensor_fault` in `P/mock/set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SensorFault {
    /// Healthy.
    #[default]
    None,
    /// Unplugged / dead: every transaction is NACKed; the chip loses its state (power-on defaults on return).
    Nack,
    /// The data register no longer changes.
    Stuck,
    /// Every conversion reads 0xFFFF.
    Saturated,
}

impl SensorFault {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            SensorFault::None => "none",
            SensorFault::Nack => "nack",
            SensorFault::Stuck => "stuck",
            SensorFault::Saturated => "saturated",
        }
    }
}

impl std::str::FromStr for SensorFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(SensorFault::None),
            "nack" => Ok(SensorFault::Nack),
            "stuck" => Ok(SensorFault::Stuck),
            "saturated" => Ok(SensorFault::Saturated),
            other => Err(format!(
                "unknown sensor_fault {other:?} (expected none, nack, stuck or saturated)"
            )),
        }
    }
}

/// Seed of the cloud pattern used by [`World::new`].
pub const DEFAULT_CLOUD_SEED: u64 = 0x6772_6565_6e68_6f75;

/// Clear-sky illuminance at solar noon.
pub const CLEAR_NOON_LUX: f64 = 90_000.0;
const SUNRISE_MIN: f64 = 6.0 * 60.0;
const SUNSET_MIN: f64 = 20.0 * 60.0;
/// Illuminance at sunrise/sunset; twilight falls off by a factor 10 every 12 minutes away from it.
const HORIZON_LUX: f64 = 400.0;
const TWILIGHT_DECADE_MIN: f64 = 12.0;
/// Twilight ends (darkness, 0 lx) this long before sunrise / after sunset.
const TWILIGHT_MIN: f64 = 60.0;
const CLOUD_CELL_MIN: f64 = 15.0;

#[derive(Debug)]
struct State {
    ambient: Ambient,
    ambient_override: Option<f64>,
    lamp_lux: f64,
    sensor_fault: SensorFault,
    lamp_broken: bool,
    relay_stuck: bool,
    pin_high: bool,
    active_low: bool,
    cloud_seed: u64,
}

/// Handle on the shared simulated world; clones see the same world.
#[derive(Clone)]
pub struct World {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

impl World {
    /// A world per `[mock]`, the relay line `active_low` and starting with the lamp `initial_on`.
    pub fn new(
        settings: &MockSettings,
        active_low: bool,
        initial_on: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_seed(settings, active_low, initial_on, clock, DEFAULT_CLOUD_SEED)
    }

    /// As [`World::new`] with another cloud pattern.
    pub fn with_seed(
        settings: &MockSettings,
        active_low: bool,
        initial_on: bool,
        clock: Arc<dyn Clock>,
        cloud_seed: u64,
    ) -> Self {
        let state = State {
            ambient: settings.ambient,
            ambient_override: None,
            lamp_lux: settings.lamp_lux,
            sensor_fault: SensorFault::None,
            lamp_broken: false,
            relay_stuck: false,
            pin_high: initial_on != active_low,
            active_low,
            cloud_seed,
        };
        World {
            state: Arc::new(Mutex::new(state)),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The clock this world runs on.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// Ambient light (without the lamp) now.
    pub fn ambient_lux(&self) -> f64 {
        let t = self.clock.local_time();
        let s = self.lock();
        match (s.ambient_override, s.ambient) {
            (Some(lux), _) | (None, Ambient::Constant(lux)) => lux,
            (None, Ambient::Day) => daylight_lux(t, s.cloud_seed),
        }
    }

    /// What the sensor sees now: ambient plus the lamp while it is on and not broken.
    pub fn lux_at_sensor(&self) -> f64 {
        let ambient = self.ambient_lux();
        let s = self.lock();
        let lamp_shines = (s.pin_high != s.active_low) && !s.lamp_broken;
        ambient + if lamp_shines { s.lamp_lux } else { 0.0 }
    }

    /// Whether the relay line is at the level that switches the lamp on.
    pub fn lamp_on(&self) -> bool {
        let s = self.lock();
        s.pin_high != s.active_low
    }

    /// The physical level of the relay line.
    pub fn pin_high(&self) -> bool {
        self.lock().pin_high
    }

    /// Whether the relay line is configured active-low.
    pub fn active_low(&self) -> bool {
        self.lock().active_low
    }

    /// Drive the relay line; ignored (returns false) while `relay_stuck`.
    pub fn drive_pin(&self, high: bool) -> bool {
        let mut s = self.lock();
        if s.relay_stuck {
            return false;
        }
        s.pin_high = high;
        true
    }

    /// Force the ambient light (`Some`), or return to the configured `mock.ambient` (`None`).
    pub fn set_ambient_lux(&self, lux: Option<f64>) {
        self.lock().ambient_override = lux;
    }

    /// The active sensor fault.
    pub fn sensor_fault(&self) -> SensorFault {
        self.lock().sensor_fault
    }

    /// Set the sensor fault.
    pub fn set_sensor_fault(&self, fault: SensorFault) {
        self.lock().sensor_fault = fault;
    }

    /// Unplug the sensor (same as the `nack` fault).
    pub fn unplug_sensor(&self) {
        self.set_sensor_fault(SensorFault::Nack);
    }

    /// Plug the sensor back in (no fault).
    pub fn plug_sensor(&self) {
        self.set_sensor_fault(SensorFault::None);
    }

    /// The lamp gives no light although the relay switches.
    pub fn set_lamp_broken(&self, broken: bool) {
        self.lock().lamp_broken = broken;
    }

    /// The relay line ignores writes.
    pub fn set_relay_stuck(&self, stuck: bool) {
        self.lock().relay_stuck = stuck;
    }

    /// Whether the relay line ignores writes.
    pub fn relay_stuck(&self) -> bool {
        self.lock().relay_stuck
    }

    /// Whether the lamp is broken.
    pub fn lamp_broken(&self) -> bool {
        self.lock().lamp_broken
    }

    /// Apply a `P/mock/set` command (only the fields it contains).
    pub fn apply(&self, set: &MockSet) {
        let mut s = self.lock();
        if let Some(ambient) = set.ambient_lux {
            s.ambient_override = ambient;
        }
        if let Some(fault) = set.sensor_fault {
            s.sensor_fault = fault;
        }
        if let Some(broken) = set.lamp_broken {
            s.lamp_broken = broken;
        }
        if let Some(stuck) = set.relay_stuck {
            s.relay_stuck = stuck;
        }
    }
}

/// Simulated daylight at local time `t`: dark at night, exponential twilight up to [`HORIZON_LUX`] at sunrise
/// (06:00), a sine-shaped day peaking at [`CLEAR_NOON_LUX`] (13:00) under a clear sky, sunset at 20:00. Clouds dim
/// it by up to 35 % in 15-minute patches drawn deterministically from `seed` and blended smoothly.
pub fn daylight_lux(t: NaiveTime, seed: u64) -> f64 {
    let min = f64::from(t.num_seconds_from_midnight()) / 60.0;
    let clear = if (SUNRISE_MIN..=SUNSET_MIN).contains(&min) {
        let elevation =
            (std::f64::consts::PI * (min - SUNRISE_MIN) / (SUNSET_MIN - SUNRISE_MIN)).sin();
        HORIZON_LUX + (CLEAR_NOON_LUX - HORIZON_LUX) * elevation.powf(1.5)
    } else {
        let away = if min < SUNRISE_MIN {
            SUNRISE_MIN - min
        } else {
            min - SUNSET_MIN
        };
        if away > TWILIGHT_MIN {
            0.0
        } else {
            HORIZON_LUX * 10f64.powf(-away / TWILIGHT_DECADE_MIN)
        }
    };
    clear * cloud_factor(min, seed)
}

/// Cloud transmission in 0.65..=1.0 at `min` minutes after midnight: value noise over 15-minute cells.
fn cloud_factor(min: f64, seed: u64) -> f64 {
    let cell = (min / CLOUD_CELL_MIN).floor();
    let frac = min / CLOUD_CELL_MIN - cell;
    let smooth = frac * frac * (3.0 - 2.0 * frac);
    // `cell` is 0..=96, so the casts are exact.
    let a = cell_transmission(seed, cell as u64);
    let b = cell_transmission(seed, cell as u64 + 1);
    a + (b - a) * smooth
}

fn cell_transmission(seed: u64, cell: u64) -> f64 {
    let u = (splitmix64(seed ^ cell.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 11) as f64
        / (1u64 << 53) as f64;
    // Half the cells clear, the others 0.65..1.0.
    if u < 0.5 {
        1.0
    } else {
        1.0 - 0.35 * (u - 0.5) * 2.0
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::mock::clock::VirtualClock;
    use std::time::Duration;

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn settings(ambient: Ambient) -> MockSettings {
        MockSettings {
            ambient,
            lamp_lux: 400.0,
            time_scale: 1.0,
            weather: None,
        }
    }

    #[test]
    fn day_curve_dark_at_night_bright_at_noon() {
        for seed in [0, 1, DEFAULT_CLOUD_SEED] {
            assert_eq!(daylight_lux(hm(0, 0), seed), 0.0);
            assert_eq!(daylight_lux(hm(3, 30), seed), 0.0);
            assert_eq!(daylight_lux(hm(22, 0), seed), 0.0);
            let noon = daylight_lux(hm(13, 0), seed);
            assert!((58_000.0..=90_000.0).contains(&noon), "seed {seed}: {noon}");
            let dusk = daylight_lux(hm(20, 30), seed);
            assert!(dusk > 0.0 && dusk < 10.0, "seed {seed}: {dusk}");
            let sunrise = daylight_lux(hm(6, 0), seed);
            assert!(
                (0.65 * HORIZON_LUX..=HORIZON_LUX).contains(&sunrise),
                "{sunrise}"
            );
        }
    }

    #[test]
    fn day_curve_is_continuous_and_deterministic() {
        let mut prev = daylight_lux(hm(0, 0), 7);
        for s in (1..86_400).step_by(10) {
            let t = NaiveTime::from_num_seconds_from_midnight_opt(s, 0).unwrap();
            let lux = daylight_lux(t, 7);
            assert_eq!(lux, daylight_lux(t, 7));
            // 10 s apart: never more than a 3 % + 60 lx jump.
            assert!(
                (lux - prev).abs() <= 0.03 * prev.max(lux) + 60.0,
                "{t}: {prev} → {lux}"
            );
            prev = lux;
        }
        // Different seeds give different clouds somewhere in the day.
        assert!((0..96).any(|c| {
            let t = hm(c / 4, (c % 4) * 15 + 7);
            daylight_lux(t, 1) != daylight_lux(t, 2)
        }));
    }

    #[test]
    fn world_follows_the_clock_and_the_lamp() {
        let clock = VirtualClock::new(hm(0, 0));
        let world = World::new(
            &settings(Ambient::Day),
            false,
            false,
            Arc::new(clock.clone()),
        );
        assert_eq!(world.lux_at_sensor(), 0.0);
        assert!(world.drive_pin(true));
        assert!(world.lamp_on());
        assert_eq!(world.lux_at_sensor(), 400.0);
        clock.advance(Duration::from_secs(13 * 3600));
        let noon = world.ambient_lux();
        assert!(noon > 50_000.0, "{noon}");
        assert_eq!(world.lux_at_sensor(), noon + 400.0);
    }

    #[test]
    fn overrides_faults_and_active_low() {
        let clock = Arc::new(VirtualClock::new(hm(12, 0)));
        let world = World::new(&settings(Ambient::Constant(300.0)), true, true, clock);
        // Active-low and on: the line is low.
        assert!(!world.pin_high());
        assert!(world.lamp_on());
        assert_eq!(world.lux_at_sensor(), 700.0);
        world.set_lamp_broken(true);
        assert_eq!(world.lux_at_sensor(), 300.0);
        world.set_ambient_lux(Some(5.0));
        assert_eq!(world.lux_at_sensor(), 5.0);
        world.set_ambient_lux(None);
        assert_eq!(world.ambient_lux(), 300.0);
        world.set_relay_stuck(true);
        assert!(!world.drive_pin(true));
        assert!(world.lamp_on());
        world.unplug_sensor();
        assert_eq!(world.sensor_fault(), SensorFault::Nack);
        world.plug_sensor();
        assert_eq!(world.sensor_fault(), SensorFault::None);
    }

    #[test]
    fn apply_changes_only_given_fields() {
        let clock = Arc::new(VirtualClock::new(hm(12, 0)));
        let world = World::new(&settings(Ambient::Constant(300.0)), false, false, clock);
        world.apply(&MockSet {
            ambient_lux: Some(Some(20.0)),
            ..MockSet::default()
        });
        assert_eq!(world.ambient_lux(), 20.0);
        world.apply(&MockSet {
            sensor_fault: Some(SensorFault::Stuck),
            lamp_broken: Some(true),
            ..MockSet::default()
        });
        assert_eq!(world.ambient_lux(), 20.0);
        assert_eq!(world.sensor_fault(), SensorFault::Stuck);
        assert!(world.lamp_broken());
        assert!(!world.relay_stuck());
        world.apply(&MockSet {
            ambient_lux: Some(None),
            relay_stuck: Some(true),
            ..MockSet::default()
        });
        assert_eq!(world.ambient_lux(), 300.0);
        assert!(world.relay_stuck());
        assert_eq!(world.sensor_fault(), SensorFault::Stuck);
    }
}
