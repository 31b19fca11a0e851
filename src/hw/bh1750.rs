//! Auto-ranging BH1750 over the `bh1750` driver, generic over any `embedded_hal` I2C bus and delay.
//!
//! One measurement cycle: power on → write MTreg → start continuous conversion → wait the datasheet MAXIMUM
//! conversion time (the driver's own one-shot call waits only 1.2 × typical, which can read a stale value) →
//! read → power down. All settings are rewritten every cycle, so a sensor that browned out and came back with its
//! defaults is reconfigured without anybody noticing.
//!
//! Range choice: [`LADDER`] lists the settings from least to most sensitive. Each cycle uses the least sensitive
//! step that would put the previous reading at [`GOOD_COUNTS`] or more (fine quantisation with the shortest
//! conversion time); the first cycle uses the least sensitive step, so the first reading comes after ≈ 81 ms
//! instead of ≈ 663 ms (at deep dusk it is coarse, ±2 lx, and the next cycle refines it). A raw count of 0xFFFF
//! at a more sensitive step is re-measured at once at the least sensitive step; 0xFFFF there is
//! [`Measurement::Saturated`]. A failed cycle leaves the next step unchanged. After a sudden drop the first reading may come from a coarse step (still
//! correct within that step's resolution); the next cycle uses the right one.

use std::time::Duration;

use bh1750::{BH1750Error, Resolution, BH1750};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{Error as _, ErrorKind, I2c};

use super::{LuxSensor, Measurement, SensorError};

/// Upper bound of one auto-ranged measurement cycle: the datasheet maximum conversion time at the most sensitive
/// setting (H-resolution, MTreg 254: 180 ms × 254/69 ≈ 663 ms) plus a re-measurement at the least sensitive
/// setting after saturation (MTreg 31: ≈ 81 ms), rounded up for bus traffic. `sensor.interval_s` below this is
/// rejected by validation.
pub const WORST_CASE_CYCLE: Duration = Duration::from_millis(750);

/// The raw count the sensor reports when the light exceeds the current range.
pub const SATURATED_RAW: u16 = 0xFFFF;

/// Raw count a reading should reach for the range to count as well chosen (quantisation ≤ 0.1 %).
pub const GOOD_COUNTS: f64 = 1000.0;

/// Smallest and largest accepted measurement-time register values (datasheet).
pub const MTREG_MIN: u8 = 31;
/// Largest accepted MTreg value.
pub const MTREG_MAX: u8 = 254;
/// Power-on default of the MTreg; the datasheet's times and sensitivities are given for it.
pub const MTREG_DEFAULT: u8 = 69;

/// BH1750 resolution mode (the driver's `Resolution`, with equality for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// H-resolution: 1 lx per count at MTreg 69, typ 120 ms / max 180 ms.
    High,
    /// H-resolution mode 2: 0.5 lx per count at MTreg 69, same timing as `High`.
    High2,
    /// L-resolution: 4 lx steps at MTreg 69, typ 16 ms / max 24 ms.
    Low,
}

impl Mode {
    /// The driver's equivalent.
    pub fn resolution(self) -> Resolution {
        match self {
            Mode::High => Resolution::High,
            Mode::High2 => Resolution::High2,
            Mode::Low => Resolution::Low,
        }
    }

    /// Datasheet maximum conversion time at MTreg 69, in microseconds.
    const fn max_us_at_default(self) -> u64 {
        match self {
            Mode::High | Mode::High2 => 180_000,
            Mode::Low => 24_000,
        }
    }

    /// Datasheet typical conversion time at MTreg 69, in microseconds.
    const fn typical_us_at_default(self) -> u64 {
        match self {
            Mode::High | Mode::High2 => 120_000,
            Mode::Low => 16_000,
        }
    }
}

/// One (mode, MTreg) combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Setting {
    /// Resolution mode.
    pub mode: Mode,
    /// Measurement-time register, `MTREG_MIN..=MTREG_MAX`.
    pub mtreg: u8,
}

impl Setting {
    /// Raw counts per lux: 1.2 × MTreg/69, doubled in H-resolution mode 2 (datasheet).
    pub fn counts_per_lux(self) -> f64 {
        let mode_factor = if self.mode == Mode::High2 { 2.0 } else { 1.0 };
        1.2 * mode_factor * f64::from(self.mtreg) / f64::from(MTREG_DEFAULT)
    }

    /// Lux for a raw count at this setting.
    pub fn lux(self, raw: u16) -> f64 {
        f64::from(raw) / self.counts_per_lux()
    }

    /// Lux per count (the smallest step a reading can resolve).
    pub fn resolution_lux(self) -> f64 {
        1.0 / self.counts_per_lux()
    }

    /// Highest lux below saturation.
    pub fn full_scale_lux(self) -> f64 {
        self.lux(SATURATED_RAW - 1)
    }

    /// Datasheet maximum conversion time, see [`max_conversion_time`].
    pub fn max_conversion_time(self) -> Duration {
        max_conversion_time(self.mode, self.mtreg)
    }
}

/// Datasheet MAXIMUM conversion time for a mode and MTreg: 180 ms (H, H2) or 24 ms (L) at MTreg 69, scaled by
/// MTreg/69, rounded up to the microsecond.
pub fn max_conversion_time(mode: Mode, mtreg: u8) -> Duration {
    scaled_us(mode.max_us_at_default(), mtreg)
}

/// Datasheet typical conversion time for a mode and MTreg (120 ms or 16 ms at MTreg 69, scaled by MTreg/69).
pub fn typical_conversion_time(mode: Mode, mtreg: u8) -> Duration {
    scaled_us(mode.typical_us_at_default(), mtreg)
}

fn scaled_us(us_at_default: u64, mtreg: u8) -> Duration {
    let default = u64::from(MTREG_DEFAULT);
    Duration::from_micros((us_at_default * u64::from(mtreg)).div_ceil(default))
}

/// The auto-ranging ladder, least sensitive first. From full sun (H @ MTreg 31: ≈ 121.6 klx full scale, 1.85 lx
/// per count, 81 ms) to deep dusk (H2 @ MTreg 254: ≈ 0.11 lx per count, 663 ms). Neighbouring steps differ by at
/// most a factor 2.3 in sensitivity, so a reading chosen by [`GOOD_COUNTS`] lands between 1000 and ~2300 counts.
pub const LADDER: [Setting; 5] = [
    Setting {
        mode: Mode::High,
        mtreg: 31,
    },
    Setting {
        mode: Mode::High,
        mtreg: 69,
    },
    Setting {
        mode: Mode::High2,
        mtreg: 69,
    },
    Setting {
        mode: Mode::High2,
        mtreg: 138,
    },
    Setting {
        mode: Mode::High2,
        mtreg: MTREG_MAX,
    },
];

const LEAST_SENSITIVE: usize = 0;
const MOST_SENSITIVE: usize = LADDER.len() - 1;

/// The longest cycle this ladder can take (conversion waits only): the slowest step, then a saturation
/// re-measurement at the least sensitive step. Must stay within [`WORST_CASE_CYCLE`].
pub fn ladder_worst_case() -> Duration {
    let slowest = LADDER
        .iter()
        .map(|s| s.max_conversion_time())
        .max()
        .unwrap_or_default();
    slowest + LADDER[LEAST_SENSITIVE].max_conversion_time()
}

/// Index into [`LADDER`] for the next cycle given the last reading in lux.
pub fn step_for(lux: f64) -> usize {
    LADDER
        .iter()
        .position(|s| lux * s.counts_per_lux() >= GOOD_COUNTS)
        .unwrap_or(MOST_SENSITIVE)
}

/// Recover the raw 16-bit count from the lux value the `bh1750` driver returned (it computes `raw / 1.2`, halved
/// in H2 mode, times 69/MTreg, in f32). f32 keeps ~7 significant digits, so rounding recovers the count exactly.
pub fn raw_from_driver_lux(lux: f32, mode: Mode, mtreg: u8) -> u16 {
    let setting = Setting { mode, mtreg };
    let raw = (f64::from(lux) * setting.counts_per_lux()).round();
    // Clamped, so the cast cannot truncate.
    raw.clamp(0.0, f64::from(SATURATED_RAW)) as u16
}

/// Delay handed to the driver. Never used: the driver only delays in `get_one_time_measurement`, which waits too
/// little and is therefore not called; [`AutoRanging`] waits with its own delay.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnusedDelay;

impl DelayNs for UnusedDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

/// An auto-ranging BH1750 at a fixed address.
pub struct AutoRanging<I2C, D> {
    driver: BH1750<I2C, UnusedDelay>,
    delay: D,
    address: u8,
    next: usize,
}

impl<I2C: I2c, D: DelayNs> AutoRanging<I2C, D> {
    /// A sensor at `address` (0x23 or 0x5c) on `i2c`; `delay` times the conversion waits. Nothing is sent yet.
    pub fn new(i2c: I2C, delay: D, address: u8) -> Self {
        AutoRanging {
            driver: BH1750::new_custom_address(i2c, UnusedDelay, address),
            delay,
            address,
            // Fastest conversion first: a reading within ~0.1 s of start; the next cycle picks the right step.
            next: LEAST_SENSITIVE,
        }
    }

    /// The setting the next cycle will start with.
    pub fn next_setting(&self) -> Setting {
        LADDER[self.next]
    }

    /// One conversion at `setting`, returning the raw count.
    fn convert(&mut self, setting: Setting) -> Result<u16, SensorError> {
        let res = setting.mode.resolution();
        let wait = setting.max_conversion_time();
        let wait_us = u32::try_from(wait.as_micros()).unwrap_or(u32::MAX);
        self.driver.power_on().map_err(|e| self.error(e))?;
        self.driver
            .set_measurement_time_register(setting.mtreg)
            .map_err(|e| self.error(e))?;
        self.driver
            .start_continuous_measurement(res)
            .map_err(|e| self.error(e))?;
        self.delay.delay_us(wait_us);
        let lux = self
            .driver
            .get_current_measurement(res)
            .map_err(|e| self.error(e))?;
        self.driver.power_down().map_err(|e| self.error(e))?;
        Ok(raw_from_driver_lux(lux, setting.mode, setting.mtreg))
    }

    fn error(&self, e: BH1750Error<I2C::Error>) -> SensorError {
        match e {
            BH1750Error::I2C(e) => match e.kind() {
                ErrorKind::NoAcknowledge(_) => SensorError::NoAck {
                    address: self.address,
                },
                ErrorKind::Other => SensorError::Bus(format!("{e:?}")),
                kind => SensorError::Bus(kind.to_string()),
            },
            BH1750Error::MeasurementTimeOutOfRange => {
                SensorError::Bus("internal: MTreg outside 31..=254".to_owned())
            }
        }
    }
}

impl<I2C, D> LuxSensor for AutoRanging<I2C, D>
where
    I2C: I2c + Send,
    D: DelayNs + Send,
{
    fn measure(&mut self) -> Result<Measurement, SensorError> {
        let mut setting = LADDER[self.next];
        let mut raw = self.convert(setting)?;
        if raw == SATURATED_RAW && self.next != LEAST_SENSITIVE {
            setting = LADDER[LEAST_SENSITIVE];
            raw = self.convert(setting)?;
        }
        if raw == SATURATED_RAW {
            self.next = LEAST_SENSITIVE;
            return Ok(Measurement::Saturated);
        }
        let lux = setting.lux(raw);
        self.next = step_for(lux);
        Ok(Measurement::Lux { lux, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::{ErrorType, Operation};
    use std::convert::Infallible;

    /// A bus that answers every read with a fixed raw count: lets the inversion be checked against the real driver.
    struct FixedRaw(u16);

    impl ErrorType for FixedRaw {
        type Error = Infallible;
    }

    impl I2c for FixedRaw {
        fn transaction(&mut self, _: u8, ops: &mut [Operation<'_>]) -> Result<(), Infallible> {
            for op in ops {
                if let Operation::Read(buf) = op {
                    for (b, v) in buf.iter_mut().zip(self.0.to_be_bytes()) {
                        *b = v;
                    }
                }
            }
            Ok(())
        }
    }

    fn driver_lux(raw: u16, mode: Mode, mtreg: u8) -> f32 {
        let mut drv = BH1750::new_custom_address(FixedRaw(raw), UnusedDelay, 0x23);
        drv.set_measurement_time_register(mtreg).unwrap();
        drv.get_current_measurement(mode.resolution()).unwrap()
    }

    const MODES: [Mode; 3] = [Mode::High, Mode::High2, Mode::Low];

    #[test]
    fn inversion_recovers_every_raw_count_at_ladder_and_extreme_mtregs() {
        for mtreg in [31, 32, 69, 70, 138, 200, 253, 254] {
            for mode in MODES {
                for raw in 0..=u16::MAX {
                    let lux = driver_lux(raw, mode, mtreg);
                    assert_eq!(
                        raw_from_driver_lux(lux, mode, mtreg),
                        raw,
                        "{mode:?} MTreg {mtreg}"
                    );
                }
            }
        }
    }

    #[test]
    fn inversion_recovers_sampled_raw_counts_at_every_mtreg() {
        for mtreg in MTREG_MIN..=MTREG_MAX {
            for mode in MODES {
                for raw in (0..=u16::MAX).step_by(97).chain([1, 2, 3, 0xFFFE, 0xFFFF]) {
                    let lux = driver_lux(raw, mode, mtreg);
                    assert_eq!(
                        raw_from_driver_lux(lux, mode, mtreg),
                        raw,
                        "{mode:?} MTreg {mtreg}"
                    );
                }
            }
        }
    }

    #[test]
    fn max_conversion_times_follow_the_datasheet() {
        assert_eq!(
            max_conversion_time(Mode::High, 69),
            Duration::from_millis(180)
        );
        assert_eq!(
            max_conversion_time(Mode::High2, 69),
            Duration::from_millis(180)
        );
        assert_eq!(
            max_conversion_time(Mode::Low, 69),
            Duration::from_millis(24)
        );
        // 180 ms × 254/69 = 662.6087 ms, rounded up to the microsecond.
        assert_eq!(
            max_conversion_time(Mode::High2, 254),
            Duration::from_micros(662_609)
        );
        // 180 ms × 31/69 = 80.8696 ms.
        assert_eq!(
            max_conversion_time(Mode::High, 31),
            Duration::from_micros(80_870)
        );
        assert_eq!(
            typical_conversion_time(Mode::High, 138),
            Duration::from_millis(240)
        );
        for mode in MODES {
            for mtreg in MTREG_MIN..=MTREG_MAX {
                assert!(max_conversion_time(mode, mtreg) > typical_conversion_time(mode, mtreg));
            }
        }
    }

    #[test]
    fn ladder_worst_case_fits_the_published_bound() {
        // Slowest step (H2 @ 254, 662.609 ms) plus re-measure at H @ 31 (80.870 ms).
        assert_eq!(ladder_worst_case(), Duration::from_micros(662_609 + 80_870));
        assert!(ladder_worst_case() <= WORST_CASE_CYCLE);
    }

    #[test]
    fn ladder_spans_deep_dusk_to_full_sun() {
        let most = LADDER[MOST_SENSITIVE];
        let least = LADDER[LEAST_SENSITIVE];
        assert!(most.resolution_lux() < 0.12, "{}", most.resolution_lux());
        assert!(
            least.full_scale_lux() > 120_000.0,
            "{}",
            least.full_scale_lux()
        );
        for s in LADDER {
            assert!((MTREG_MIN..=MTREG_MAX).contains(&s.mtreg));
        }
        for pair in LADDER.windows(2) {
            let ratio = pair[1].counts_per_lux() / pair[0].counts_per_lux();
            assert!(ratio > 1.0 && ratio < 2.5, "{pair:?}: {ratio}");
        }
    }

    #[test]
    fn step_choice_keeps_counts_in_the_good_band() {
        let mut lux = 0.01;
        while lux < 150_000.0 {
            let s = LADDER[step_for(lux)];
            let counts = lux * s.counts_per_lux();
            if step_for(lux) == MOST_SENSITIVE {
                assert!(counts <= 2.5 * GOOD_COUNTS, "{lux} lx → {counts}");
            } else if step_for(lux) == LEAST_SENSITIVE {
                assert!(counts >= GOOD_COUNTS, "{lux} lx → {counts}");
            } else {
                assert!(
                    (GOOD_COUNTS..2.5 * GOOD_COUNTS).contains(&counts),
                    "{lux} lx → {counts}"
                );
            }
            lux *= 1.07;
        }
        assert_eq!(step_for(0.0), MOST_SENSITIVE);
        assert_eq!(step_for(500.0), 2);
        assert_eq!(step_for(100_000.0), LEAST_SENSITIVE);
    }
}
