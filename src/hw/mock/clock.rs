//! Time for the simulation: one clock shared by the light world, the simulated sensor's conversions and the
//! sensor reader's delays, so that "wait for the conversion" and "conversion done" agree at any time scale.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, NaiveTime};
use embedded_hal::delay::DelayNs;

/// A source of monotonic time, local wall time and sleeping.
pub trait Clock: Send + Sync {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Local time of day (drives the simulated sun).
    fn local_time(&self) -> NaiveTime;
    /// Block for `d` of this clock's time.
    fn sleep(&self, d: Duration);
}

/// Real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn local_time(&self) -> NaiveTime {
        chrono::Local::now().time()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Simulated time running `scale` times faster than real time (`mock.time_scale`), from the real local time at
/// creation: simulated = start + real elapsed × scale, for both the monotonic and the wall clock.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start: Instant,
    start_local: NaiveDateTime,
    scale: f64,
}

impl ScaledClock {
    /// Starting now at the current local time. A `scale` that is not a positive finite number means 1.
    pub fn new(scale: f64) -> Self {
        Self::starting_at(chrono::Local::now().naive_local(), scale)
    }

    /// Starting now at the given simulated local date and time.
    pub fn starting_at(start_local: NaiveDateTime, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        ScaledClock {
            start: Instant::now(),
            start_local,
            scale,
        }
    }

    /// Simulated time elapsed since creation.
    pub fn elapsed(&self) -> Duration {
        let real = self.start.elapsed().as_secs_f64() * self.scale;
        Duration::try_from_secs_f64(real).unwrap_or(Duration::MAX)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Instant {
        self.start.checked_add(self.elapsed()).unwrap_or(self.start)
    }
    fn local_time(&self) -> NaiveTime {
        let elapsed =
            chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::zero());
        self.start_local
            .checked_add_signed(elapsed)
            .unwrap_or(self.start_local)
            .time()
    }
    fn sleep(&self, d: Duration) {
        // One extra microsecond absorbs the float rounding of the division, so the simulated time that passes is
        // never shorter than `d`.
        std::thread::sleep(d.div_f64(self.scale) + Duration::from_micros(1));
    }
}

/// Deterministic time for tests: it moves only when [`Clock::sleep`] or [`VirtualClock::advance`] is called.
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    base: Instant,
    start_local: NaiveTime,
    elapsed: Arc<Mutex<Duration>>,
}

impl VirtualClock {
    /// A clock standing at local time `start_local`.
    pub fn new(start_local: NaiveTime) -> Self {
        VirtualClock {
            base: Instant::now(),
            start_local,
            elapsed: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// Move time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut e = self.elapsed.lock().unwrap_or_else(PoisonError::into_inner);
        *e += d;
    }

    /// Total time advanced since creation.
    pub fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.base + self.elapsed()
    }
    fn local_time(&self) -> NaiveTime {
        let elapsed =
            chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::zero());
        self.start_local.overflowing_add_signed(elapsed).0
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

/// An `embedded_hal` delay that sleeps on a [`Clock`].
#[derive(Clone)]
pub struct ClockDelay(pub Arc<dyn Clock>);

impl DelayNs for ClockDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.sleep(Duration::from_nanos(u64::from(ns)));
    }
    fn delay_us(&mut self, us: u32) {
        self.0.sleep(Duration::from_micros(u64::from(us)));
    }
    fn delay_ms(&mut self, ms: u32) {
        self.0.sleep(Duration::from_millis(u64::from(ms)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Timelike};

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn virtual_clock_moves_only_when_told() {
        let c = VirtualClock::new(hm(23, 30));
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.sleep(Duration::from_secs(60));
        assert_eq!(c.now() - t0, Duration::from_secs(60));
        c.advance(Duration::from_secs(3600));
        assert_eq!(c.elapsed(), Duration::from_secs(3660));
        // Wraps past midnight.
        assert_eq!(c.local_time(), hm(0, 31));
        let shared = c.clone();
        shared.advance(Duration::from_secs(60));
        assert_eq!(c.local_time(), hm(0, 32));
    }

    #[test]
    fn clock_delay_sleeps_on_its_clock() {
        let c = VirtualClock::new(hm(12, 0));
        let mut d = ClockDelay(Arc::new(c.clone()));
        d.delay_us(1500);
        d.delay_ms(2);
        d.delay_ns(500);
        assert_eq!(c.elapsed(), Duration::from_nanos(3_500_500));
    }

    #[test]
    fn scaled_clock_runs_faster_and_sleeps_shorter() {
        let start = NaiveDate::from_ymd_opt(2024, 6, 1)
            .unwrap()
            .and_hms_opt(11, 59, 0)
            .unwrap();
        let c = ScaledClock::starting_at(start, 1000.0);
        let real0 = Instant::now();
        let t0 = c.now();
        c.sleep(Duration::from_secs(120));
        let real = real0.elapsed();
        assert!(c.now() - t0 >= Duration::from_secs(120));
        assert!(real >= Duration::from_millis(120), "{real:?}");
        assert!(real < Duration::from_secs(5), "{real:?}");
        // At least two simulated minutes later than 11:59.
        let t = c.local_time();
        assert!(t.hour() == 12 && t.minute() >= 1, "{t}");
    }

    #[test]
    fn scaled_clock_rejects_nonsense_scales() {
        let c = ScaledClock::new(0.0);
        let t0 = c.now();
        c.sleep(Duration::from_millis(5));
        let dt = c.now() - t0;
        assert!(
            dt >= Duration::from_millis(5) && dt < Duration::from_secs(2),
            "{dt:?}"
        );
        assert_eq!(ScaledClock::new(f64::NAN).scale, 1.0);
    }
}
