//! Giving freed heap memory back to the kernel.
//!
//! glibc's malloc keeps memory freed in the middle of its heaps (and in its per-thread arenas) mapped for reuse, so
//! a burst of allocations — start-up, a command flood, a reconnect backlog — stays in the daemon's RSS for good
//! (measured: +460 KiB of RssAnon after a 10 000 commands/s flood). `malloc_trim(0)` returns those free pages
//! (`MADV_DONTNEED`) and costs a walk over the free lists, tens of microseconds for heaps of this size. The
//! daemon trims once when start-up has settled and after a burst of events, once the burst is over; [`Trimmer`]
//! decides when (pure, tested with chosen counts), [`release_free_memory`] does it.

/// Events handled since the last trim beyond which a quiet second triggers one.
const BURST_EVENTS: u64 = 500;
/// A second with fewer events than this is quiet (idle traffic: one reading and its publishes a second).
const QUIET_EVENTS: u64 = 20;
/// One-second ticks after start before the start-up trim (the first readings, connects and the HTTP server are in).
const SETTLE_TICKS: u32 = 5;

/// When to trim: counts the events the control loop handles and is asked once a second.
#[derive(Debug, Default)]
pub struct Trimmer {
    /// Events handled since the last trim.
    since_trim: u64,
    /// Events handled since the last one-second tick.
    this_second: u64,
    /// One-second ticks seen, up to `SETTLE_TICKS`.
    ticks: u32,
}

impl Trimmer {
    /// One event (reading, message, signal) handled by the loop.
    pub fn event(&mut self) {
        self.since_trim += 1;
        self.this_second += 1;
    }

    /// Whether a coming second may call for a trim (start-up not settled yet, or a burst not yet followed by a
    /// trim): the caller then wakes each second to ask; otherwise asking when it is awake anyway is enough.
    pub fn watching(&self) -> bool {
        self.ticks < SETTLE_TICKS || self.since_trim > BURST_EVENTS
    }

    /// The one-second tick: true when the caller should trim now (start-up settled, or a burst just ended).
    pub fn second(&mut self) -> bool {
        let quiet = self.this_second < QUIET_EVENTS;
        self.this_second = 0;
        let settled = self.ticks < SETTLE_TICKS && {
            self.ticks += 1;
            self.ticks == SETTLE_TICKS
        };
        let burst_over = quiet && self.since_trim > BURST_EVENTS;
        if settled || burst_over {
            self.since_trim = 0;
            true
        } else {
            false
        }
    }
}

/// At most two malloc arenas (glibc; nothing elsewhere), as `MALLOC_ARENA_MAX=2` would. glibc gives every thread
/// that allocates an arena of its own, up to 8 per core, each keeping its free memory; the daemon has up to 8
/// threads (sensor, HTTP, paho's two, the embedded broker's three) and no allocation-heavy one. Call it first
/// thing in `main`, before any thread exists.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Return the heap's free pages to the kernel (glibc); nothing elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks `n` quiet seconds with `per_second` events each; how many of them trimmed.
    fn seconds(t: &mut Trimmer, n: u32, per_second: u64) -> u32 {
        let mut trims = 0;
        for _ in 0..n {
            for _ in 0..per_second {
                t.event();
            }
            trims += u32::from(t.second());
        }
        trims
    }

    #[test]
    fn trims_once_when_start_up_has_settled_then_not_while_idle() {
        let mut t = Trimmer::default();
        assert_eq!(seconds(&mut t, SETTLE_TICKS - 1, 3), 0);
        assert!(t.second(), "the start-up trim");
        // A day of idle traffic (3 events a second) never adds up to a burst within a second, but does in total.
        let mut trims = 0;
        for _ in 0..86_400 {
            for _ in 0..3 {
                t.event();
            }
            trims += u32::from(t.second());
        }
        // Idle traffic is quiet, so every BURST_EVENTS events end in a trim: about one a few minutes, not a second.
        assert_eq!(trims, (86_400 * 3 / (BURST_EVENTS + 1)) as u32);
    }

    #[test]
    fn trims_after_a_burst_is_over_not_during_it() {
        let mut t = Trimmer::default();
        seconds(&mut t, SETTLE_TICKS, 0);
        assert_eq!(
            seconds(&mut t, 10, 10_000),
            0,
            "no trim while the flood lasts"
        );
        assert!(t.second(), "the first quiet second after the flood trims");
        assert_eq!(seconds(&mut t, 60, 0), 0, "and only once");
    }

    #[test]
    fn watches_seconds_only_until_start_up_settled_and_while_a_burst_is_untrimmed() {
        let mut t = Trimmer::default();
        assert!(t.watching(), "start-up");
        seconds(&mut t, SETTLE_TICKS, 3);
        assert!(!t.watching(), "settled and trimmed");
        seconds(&mut t, 60, 3);
        assert!(!t.watching(), "idle traffic");
        seconds(&mut t, 1, 10_000);
        assert!(t.watching(), "a burst waits for its quiet second");
        assert!(t.second());
        assert!(!t.watching(), "trimmed");
    }

    #[test]
    fn a_small_burst_waits_for_more() {
        let mut t = Trimmer::default();
        seconds(&mut t, SETTLE_TICKS, 0);
        assert_eq!(seconds(&mut t, 1, BURST_EVENTS), 0);
        assert_eq!(
            seconds(&mut t, 10, 0),
            0,
            "{BURST_EVENTS} events are not a burst"
        );
        assert_eq!(
            seconds(&mut t, 1, 1),
            1,
            "one more is, and the next quiet second trims"
        );
    }
}
