//! Service-manager notifications over `sd_notify` (READY, STATUS, WATCHDOG, RELOADING, STOPPING).
//!
//! Every helper is a no-op returning `Ok` when `NOTIFY_SOCKET` is unset (not started by systemd). A failed send
//! never needs to stop the daemon: log it and carry on.
//!
//! The watchdog is pinged only through [`Watchdog::tick`], which the control loop calls on each iteration: when
//! the loop hangs the pings stop and systemd restarts the service after `WatchdogSec`.

use std::io;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// A notification could not be delivered to `NOTIFY_SOCKET`.
#[derive(Debug, thiserror::Error)]
#[error("cannot notify the service manager through NOTIFY_SOCKET")]
pub struct NotifyError(#[from] io::Error);

/// Whether a service manager listens (`NOTIFY_SOCKET` is set).
pub fn is_supervised() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Startup finished (hardware up, control loop running): `READY=1` with a first `STATUS=` line.
pub fn ready(status: &str) -> Result<(), NotifyError> {
    let status = one_line(status);
    send(&[NotifyState::Ready, NotifyState::Status(&status)])
}

/// A one-line summary shown by `systemctl status` (`STATUS=`); newlines become spaces.
pub fn status(line: &str) -> Result<(), NotifyError> {
    let line = one_line(line);
    send(&[NotifyState::Status(&line)])
}

/// One watchdog ping (`WATCHDOG=1`). Prefer [`Watchdog::tick`], which keeps the rate.
pub fn watchdog() -> Result<(), NotifyError> {
    send(&[NotifyState::Watchdog])
}

/// Configuration reload started (`RELOADING=1` with `MONOTONIC_USEC=`); send [`ready`] once it is done.
pub fn reloading() -> Result<(), NotifyError> {
    let now = NotifyState::monotonic_usec_now()?;
    send(&[NotifyState::Reloading, now])
}

/// Shutdown started (`STOPPING=1`).
pub fn stopping() -> Result<(), NotifyError> {
    send(&[NotifyState::Stopping])
}

/// The watchdog timeout systemd asks for (`WATCHDOG_USEC`, honouring `WATCHDOG_PID`), None when disabled.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

fn send(states: &[NotifyState<'_>]) -> Result<(), NotifyError> {
    Ok(sd_notify::notify(states)?)
}

/// STATUS must stay on one line: a newline would start a new assignment in the datagram.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Rate-limits watchdog pings to one per half the watchdog timeout, as sd_watchdog_enabled(3) advises.
#[derive(Debug, Clone)]
pub struct Watchdog {
    period: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    /// From the environment systemd sets ([`watchdog_interval`]); disabled when the unit has no `WatchdogSec`.
    pub fn from_env() -> Self {
        Self::with_timeout(watchdog_interval())
    }

    /// For a watchdog `timeout` (None: disabled); pings every `timeout / 2`.
    pub fn with_timeout(timeout: Option<Duration>) -> Self {
        Self {
            period: timeout.map(|t| t / 2),
            last: None,
        }
    }

    /// Time between pings, None when disabled. The control loop must iterate at least this often.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// When the next ping is due (for a loop that sleeps until its next event), None when disabled.
    pub fn next_due(&self) -> Option<Instant> {
        let period = self.period?;
        Some(self.last.map_or_else(Instant::now, |last| last + period))
    }

    /// Whether a ping is due at `now`: the first tick, then every `period`.
    pub fn due(&self, now: Instant) -> bool {
        match (self.period, self.last) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(period), Some(last)) => now.saturating_duration_since(last) >= period,
        }
    }

    /// Call once per control-loop iteration while the loop is healthy: sends `WATCHDOG=1` when due.
    /// Returns whether a ping was due (and sent, unless an error is returned).
    pub fn tick(&mut self, now: Instant) -> Result<bool, NotifyError> {
        if !self.due(now) {
            return Ok(false);
        }
        // Count the attempt even when it fails, so a broken socket is not retried on every iteration.
        self.last = Some(now);
        watchdog()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Ping offsets (ms) for ticks at `ticks` (ms after a base instant), without sending anything.
    fn pings(wd: &mut Watchdog, ticks: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let base = Instant::now();
        let mut sent = Vec::new();
        for t in ticks {
            let now = base + MS * t as u32;
            if wd.due(now) {
                wd.last = Some(now);
                sent.push(t);
            }
        }
        sent
    }

    #[test]
    fn pings_at_half_the_timeout() {
        let mut wd = Watchdog::with_timeout(Some(Duration::from_secs(30)));
        assert_eq!(wd.period(), Some(Duration::from_secs(15)));
        let ticks = (0..=60_000).step_by(1000);
        assert_eq!(pings(&mut wd, ticks), [0, 15_000, 30_000, 45_000, 60_000]);
    }

    #[test]
    fn first_tick_pings_and_a_late_tick_pings_once() {
        let mut wd = Watchdog::with_timeout(Some(200 * MS));
        assert_eq!(
            pings(&mut wd, [0, 50, 99, 100, 150, 450, 460, 549, 550]),
            [0, 100, 450, 550]
        );
    }

    #[test]
    fn disabled_never_pings() {
        let mut wd = Watchdog::with_timeout(None);
        assert_eq!(wd.period(), None);
        assert_eq!(wd.next_due(), None);
        assert!(pings(&mut wd, 0..1000).is_empty());
    }

    #[test]
    fn next_due_follows_the_last_ping() {
        let mut wd = Watchdog::with_timeout(Some(200 * MS));
        let t0 = Instant::now();
        wd.last = Some(t0);
        assert_eq!(wd.next_due(), Some(t0 + 100 * MS));
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(one_line("lux 12\nlight on\r"), "lux 12 light on ");
    }
}
