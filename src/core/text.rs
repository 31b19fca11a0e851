//! Small pure helpers of the core: number formats of the contract, the remote-reading parser, printable payload
//! excerpts for log lines, and the log budget for rejected input.

use std::time::{Duration, Instant};

/// Lux as the seed's scripts parse it: a plain decimal number, at most two decimals (`412.5`, `0.11`, `90000`).
pub fn format_lux(lux: f64) -> String {
    format!("{}", round2(lux))
}

/// Rounded to two decimals (the precision of lux values in payloads).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A reading from `sensor.topic`: a plain non-negative finite number, as the seed photosensor publishes.
pub fn parse_lux(payload: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    let lux: f64 = text.parse().ok()?;
    (lux.is_finite() && lux >= 0.0).then_some(lux)
}

/// A 16-bit stand-in for a raw count when readings come over MQTT (identical values give identical prints).
pub fn lux_fingerprint(lux: f64) -> u16 {
    let bits = lux.to_bits();
    (bits ^ (bits >> 16) ^ (bits >> 32) ^ (bits >> 48)) as u16
}

/// The first 64 bytes of a payload, quoted, with control characters masked: safe to put in a log line.
pub fn printable(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(64)]);
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if payload.len() > 64 {
        s.push('…');
    }
    format!("{s:?}")
}

/// `on` / `off`, the payload words of the contract.
pub fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// At most [`LogBudget::PER_MINUTE`] warnings a minute for rejected input; the rest are counted and reported in
/// one line when the next minute starts. Every rejection is still answered on `P/light/set/error`.
#[derive(Debug, Default)]
pub struct LogBudget {
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

/// What [`LogBudget::allow`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Whether this warning may be logged.
    pub log: bool,
    /// Warnings suppressed in the minute that just ended (report them in one line), if any.
    pub suppressed_before: Option<u64>,
}

impl LogBudget {
    pub const PER_MINUTE: u32 = 10;

    /// Whether a warning may be logged at `now`.
    pub fn allow(&mut self, now: Instant) -> Allowance {
        let expired = self.window_start.map_or(true, |start| {
            now.saturating_duration_since(start) >= Duration::from_secs(60)
        });
        let mut suppressed_before = None;
        if expired {
            if self.suppressed > 0 {
                suppressed_before = Some(self.suppressed);
            }
            *self = LogBudget {
                window_start: Some(now),
                used: 0,
                suppressed: 0,
            };
        }
        let log = if self.used < Self::PER_MINUTE {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        };
        Allowance {
            log,
            suppressed_before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lux_is_formatted_as_a_plain_number_python_float_accepts() {
        assert_eq!(format_lux(412.5), "412.5");
        assert_eq!(format_lux(90000.0), "90000");
        assert_eq!(format_lux(0.114), "0.11");
        assert_eq!(format_lux(3.0), "3");
    }

    #[test]
    fn remote_readings_must_be_plain_non_negative_numbers() {
        assert_eq!(parse_lux(b"412.5"), Some(412.5));
        assert_eq!(parse_lux(b" 12\n"), Some(12.0));
        assert_eq!(parse_lux(b"-1"), None);
        assert_eq!(parse_lux(b"NaN"), None);
        assert_eq!(parse_lux(b"inf"), None);
        assert_eq!(parse_lux(b"bright"), None);
        assert_eq!(parse_lux(&[0xff, 0xfe]), None);
    }

    #[test]
    fn log_budget_allows_ten_a_minute_then_counts() {
        let mut b = LogBudget::default();
        let t0 = crate::hw::mock::test_instant();
        let allowed = (0..25)
            .filter(|i| b.allow(t0 + Duration::from_millis(*i)).log)
            .count();
        assert_eq!(allowed, LogBudget::PER_MINUTE as usize);
        assert_eq!(b.suppressed, 15);
        let next = b.allow(t0 + Duration::from_secs(61));
        assert!(next.log, "a new minute starts a new budget");
        assert_eq!(next.suppressed_before, Some(15));
        assert_eq!(b.suppressed, 0);
    }

    #[test]
    fn printable_truncates_and_masks_control_characters() {
        assert_eq!(printable(b"on"), "\"on\"");
        assert_eq!(printable(b"a\nb"), "\"a?b\"");
        assert!(printable(&[b'x'; 100]).ends_with("…\""));
    }
}
