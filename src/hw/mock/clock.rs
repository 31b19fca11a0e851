//! Time for the simulation: one clock shared by the light world, the simulated sensor's conversions, the sensor
//! reader's cadence and the core (dwell, staleness, overrides, window, `ts`), so that "wait for the conversion",
//! "conversion done" and "the reading is stale" agree at any time scale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use embedded_hal::delay::DelayNs;

use crate::core::Now;

/// A source of monotonic time, local wall time and sleeping.
pub trait Clock: Send + Sync {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Local wall time now, with its UTC offset (drives the simulated sun, the window and `ts`).
    fn local_now(&self) -> DateTime<FixedOffset>;
    /// Block for `d` of this clock's time.
    fn sleep(&self, d: Duration);
    /// How much real time passes while `d` passes on this clock (what a shell waits for a deadline).
    fn real_duration(&self, d: Duration) -> Duration {
        d
    }
    /// Called by the sensor reader with the instant of its next measurement: a clock that runs ahead of real
    /// time must not pass it before the reader has measured again (or slept on this clock), so a reader that
    /// gets the CPU late makes the simulated world wait instead of missing readings. Real time cannot wait.
    fn hold_until(&self, _next: Instant) {}
    /// Local time of day (drives the simulated sun).
    fn local_time(&self) -> NaiveTime {
        self.local_now().time()
    }
    /// Both times of this moment, for the core.
    fn moment(&self) -> Now {
        Now {
            at: self.now(),
            local: self.local_now(),
        }
    }
}

/// An instant to count made-up times from (tests and simulations of the core, which never read a clock
/// themselves): the start of a new [`VirtualClock`].
pub fn test_instant() -> Instant {
    VirtualClock::new(NaiveTime::MIN).now()
}

/// Real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn local_now(&self) -> DateTime<FixedOffset> {
        chrono::Local::now().fixed_offset()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// No hold: the clock runs freely.
const NO_HOLD: u64 = u64::MAX;

/// Simulated time running `scale` times faster than real time (`mock.time_scale`), from the real local time at
/// creation: simulated = start + real elapsed × scale, for both the monotonic and the wall clock, except that it
/// never passes the sensor reader's hold ([`Clock::hold_until`]; [`Clock::sleep`] moves the hold along). Clones
/// share the hold.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start: Instant,
    start_local: DateTime<FixedOffset>,
    scale: f64,
    /// Simulated nanoseconds since `start` the clock may not pass ([`NO_HOLD`]: none).
    hold_ns: Arc<AtomicU64>,
}

impl ScaledClock {
    /// Starting now at the current local time. A `scale` that is not a positive finite number means 1.
    pub fn new(scale: f64) -> Self {
        Self::starting_at(chrono::Local::now().fixed_offset(), scale)
    }

    /// Starting now at the given simulated local date and time.
    pub fn starting_at(start_local: DateTime<FixedOffset>, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        ScaledClock {
            start: Instant::now(),
            start_local,
            scale,
            hold_ns: Arc::new(AtomicU64::new(NO_HOLD)),
        }
    }

    /// Simulated time elapsed since creation.
    pub fn elapsed(&self) -> Duration {
        let real = self.start.elapsed().as_secs_f64() * self.scale;
        let free = Duration::try_from_secs_f64(real).unwrap_or(Duration::MAX);
        match self.hold_ns.load(Ordering::Acquire) {
            NO_HOLD => free,
            hold => free.min(Duration::from_nanos(hold)),
        }
    }

    /// Raise the hold to `until` (never lowers it).
    fn raise_hold(&self, until: Instant) {
        let ns = u64::try_from(until.saturating_duration_since(self.start).as_nanos())
            .unwrap_or(NO_HOLD - 1);
        let mut current = self.hold_ns.load(Ordering::Acquire);
        while current == NO_HOLD || current < ns {
            match self.hold_ns.compare_exchange_weak(
                current,
                ns,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Instant {
        self.start.checked_add(self.elapsed()).unwrap_or(self.start)
    }
    fn local_now(&self) -> DateTime<FixedOffset> {
        let elapsed =
            chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::zero());
        self.start_local
            .checked_add_signed(elapsed)
            .unwrap_or(self.start_local)
    }
    fn sleep(&self, d: Duration) {
        // The sleeper (the sensor reader, waiting for a conversion) holds the clock: let it run to the end of
        // the sleep, and wait until it got there.
        let end = self.now() + d;
        self.raise_hold(end);
        loop {
            let left = end.saturating_duration_since(self.now());
            if left.is_zero() {
                break;
            }
            // One extra microsecond absorbs the float rounding of the division.
            std::thread::sleep(self.real_duration(left) + Duration::from_micros(1));
        }
    }
    fn real_duration(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }
    fn hold_until(&self, next: Instant) {
        self.raise_hold(next);
    }
}

/// Deterministic time for tests: it moves only when [`Clock::sleep`] or [`VirtualClock::advance`] is called.
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    base: Instant,
    start_local: DateTime<FixedOffset>,
    elapsed: Arc<Mutex<Duration>>,
}

impl VirtualClock {
    /// A clock standing at local time `start_local` on 2024-06-21 (UTC+0).
    pub fn new(start_local: NaiveTime) -> Self {
        let day = NaiveDate::from_ymd_opt(2024, 6, 21).unwrap_or_default();
        Self::starting_at(day.and_time(start_local).and_utc().fixed_offset())
    }

    /// A clock standing at `start_local`.
    pub fn starting_at(start_local: DateTime<FixedOffset>) -> Self {
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

    /// Move time forward to `at` (no change if it is not later).
    pub fn advance_to(&self, at: Instant) {
        let mut e = self.elapsed.lock().unwrap_or_else(PoisonError::into_inner);
        *e = (*e).max(at.saturating_duration_since(self.base));
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
    fn local_now(&self) -> DateTime<FixedOffset> {
        let elapsed =
            chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::zero());
        self.start_local
            .checked_add_signed(elapsed)
            .unwrap_or(self.start_local)
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
    fn real_duration(&self, _d: Duration) -> Duration {
        Duration::ZERO
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
    use chrono::Timelike;

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
            .unwrap()
            .and_utc()
            .fixed_offset();
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
