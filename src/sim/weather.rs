//! Sunlight for the simulation: a weather trace from a CSV file (`time,lux`, interpolated linearly), or the
//! built-in day model with deterministic clouds (a different cloud pattern each date).

use std::fmt;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};

use crate::hw::mock::world::{daylight_lux, DEFAULT_CLOUD_SEED};

/// The `time` format of the weather CSV.
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Why a weather file was rejected: where (1-based line, 0 = the file as a whole) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeatherError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for WeatherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

fn err(line: usize, reason: impl Into<String>) -> WeatherError {
    WeatherError {
        line,
        reason: reason.into(),
    }
}

/// A parsed weather trace: times in seconds since the first row, lux at each.
#[derive(Debug, Clone)]
pub struct Trace {
    start: NaiveDateTime,
    /// Seconds since `start`, strictly ascending; the first is 0.
    secs: Vec<f64>,
    lux: Vec<f64>,
}

impl Trace {
    /// Parse the CSV text: header `time,lux`, then one `YYYY-MM-DDTHH:MM:SS,<lux>` row per line, strictly
    /// ascending in time, lux a finite number ≥ 0. Blank lines and a trailing newline are allowed; at least two
    /// rows are needed to interpolate.
    pub fn parse(text: &str) -> Result<Trace, WeatherError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let Some((hline, header)) = lines.next() else {
            return Err(err(
                0,
                "the file is empty (expected the header `time,lux` and rows like `2024-06-01T00:00:00,0`)",
            ));
        };
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        if cols != ["time", "lux"] {
            return Err(err(
                hline,
                format!("the header must be `time,lux`, found `{header}`"),
            ));
        }
        let mut start = None;
        let mut prev: Option<NaiveDateTime> = None;
        let mut secs = Vec::new();
        let mut lux = Vec::new();
        for (n, line) in lines {
            let mut fields = line.split(',').map(str::trim);
            let (Some(t), Some(v), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(err(
                    n,
                    format!("expected two fields `time,lux`, found `{line}`"),
                ));
            };
            let time = NaiveDateTime::parse_from_str(t, TIME_FORMAT).map_err(|e| {
                err(
                    n,
                    format!(
                        "bad time `{t}` ({e}); expected a local date-time like 2024-06-01T13:30:00"
                    ),
                )
            })?;
            let value: f64 = v.parse().map_err(|_| {
                err(
                    n,
                    format!("lux `{v}` is not a number (expected a plain number ≥ 0, e.g. 1234.5)"),
                )
            })?;
            if !value.is_finite() {
                return Err(err(n, format!("lux `{v}` is not a finite number")));
            }
            if value < 0.0 {
                return Err(err(n, format!("lux {v} is negative (sunlight is ≥ 0)")));
            }
            if let Some(p) = prev {
                if time == p {
                    return Err(err(n, format!("duplicate time {t} (each time once)")));
                }
                if time < p {
                    return Err(err(
                        n,
                        format!(
                            "time {t} is before the previous row's {} (rows must be in ascending time order)",
                            p.format(TIME_FORMAT)
                        ),
                    ));
                }
            }
            prev = Some(time);
            let s = *start.get_or_insert(time);
            secs.push((time - s).num_seconds() as f64);
            lux.push(value);
        }
        let Some(start) = start else {
            return Err(err(
                hline,
                "no data rows after the header (expected rows like `2024-06-01T00:00:00,0`)",
            ));
        };
        if secs.len() < 2 {
            return Err(err(
                hline + 1,
                "only one data row; at least two are needed to interpolate",
            ));
        }
        Ok(Trace { start, secs, lux })
    }

    /// Read and parse a file; a read failure is reported as a whole-file error.
    pub fn load(path: &Path) -> Result<Trace, WeatherError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(0, format!("cannot read it: {e}")))?;
        Trace::parse(&text)
    }

    /// The first row's time.
    pub fn first(&self) -> NaiveDateTime {
        self.start
    }

    /// The last row's time.
    pub fn last(&self) -> NaiveDateTime {
        let last = self.secs.last().copied().unwrap_or(0.0);
        self.start + chrono::Duration::seconds(last as i64)
    }

    /// Index of the segment holding `s` (seconds since the first row), clamped to the ends.
    fn segment(&self, s: f64) -> usize {
        // `partition_point` returns the number of rows at or before `s`.
        let i = self.secs.partition_point(|&x| x <= s);
        i.clamp(1, self.secs.len() - 1) - 1
    }

    fn at_secs(&self, s: f64, seg: usize) -> f64 {
        let (t0, t1) = (self.secs[seg], self.secs[seg + 1]);
        let (l0, l1) = (self.lux[seg], self.lux[seg + 1]);
        let f = ((s - t0) / (t1 - t0)).clamp(0.0, 1.0);
        l0 + (l1 - l0) * f
    }

    /// ∫ lux dt over [a, b] (seconds since the first row, inside the trace): exact for the linear interpolation.
    fn integral_secs(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        let mut total = 0.0;
        let mut seg = self.segment(a);
        let mut x = a;
        while x < b && seg + 1 < self.secs.len() {
            let end = self.secs[seg + 1].min(b);
            if end > x {
                total += (self.at_secs(x, seg) + self.at_secs(end, seg)) * 0.5 * (end - x);
            }
            x = end;
            seg += 1;
        }
        total
    }
}

/// Where the simulated sunlight comes from.
#[derive(Debug, Clone)]
pub enum Sunlight {
    /// A weather trace.
    Trace(Trace),
    /// The built-in day model (`hw::mock::world::daylight_lux`) with clouds seeded from `seed` and the date.
    Model { seed: u64 },
}

impl Sunlight {
    /// The built-in model with the default seed.
    pub fn model() -> Sunlight {
        Sunlight::Model {
            seed: DEFAULT_CLOUD_SEED,
        }
    }

    /// A sampler for a run starting at `start` (offsets in seconds are relative to it).
    pub fn sampler(&self, start: NaiveDateTime) -> Sampler<'_> {
        Sampler {
            sun: self,
            start,
            trace_offset: match self {
                Sunlight::Trace(t) => (start - t.start).num_seconds() as f64,
                Sunlight::Model { .. } => 0.0,
            },
            seg: 0,
        }
    }
}

/// The cloud seed of the model for one date: a different, deterministic pattern each day.
fn day_seed(seed: u64, date: NaiveDate) -> u64 {
    seed ^ u64::from(date.to_epoch_days().unsigned_abs()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Sunlight lookups along one run; remembers the last trace segment, so the forward-moving lookups of the
/// simulation loop cost O(1).
pub struct Sampler<'a> {
    sun: &'a Sunlight,
    start: NaiveDateTime,
    trace_offset: f64,
    seg: usize,
}

impl Sampler<'_> {
    /// Lux at `s` seconds after the run's start.
    pub fn lux(&mut self, s: f64) -> f64 {
        match self.sun {
            Sunlight::Trace(t) => {
                let x = s + self.trace_offset;
                // Move the cached segment forward (or look it up again after a jump back).
                if x < t.secs[self.seg] {
                    self.seg = t.segment(x);
                }
                while self.seg + 2 < t.secs.len() && x >= t.secs[self.seg + 1] {
                    self.seg += 1;
                }
                t.at_secs(x, self.seg)
            }
            Sunlight::Model { seed } => {
                let at = self.start + chrono::Duration::milliseconds((s * 1000.0) as i64);
                daylight_lux(at.time(), day_seed(*seed, at.date()))
            }
        }
    }

    /// ∫ lux dt over [a, b] seconds after the run's start, in lux·s: exact for a trace, a 1-second midpoint sum
    /// for the model (its clouds change over minutes).
    pub fn integral(&mut self, a: f64, b: f64) -> f64 {
        match self.sun {
            Sunlight::Trace(t) => t.integral_secs(a + self.trace_offset, b + self.trace_offset),
            Sunlight::Model { .. } => {
                let mut total = 0.0;
                let mut x = a;
                while x < b {
                    let end = (x + 1.0).min(b);
                    total += self.lux((x + end) * 0.5) * (end - x);
                    x = end;
                }
                total
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
    }

    #[test]
    fn parses_interpolates_and_integrates() {
        let t = Trace::parse(
            "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T00:01:40,1000\n\n2024-06-01T00:03:20,0\n",
        )
        .unwrap();
        assert_eq!(t.first(), dt("2024-06-01T00:00:00"));
        assert_eq!(t.last(), dt("2024-06-01T00:03:20"));
        let mut s = Sunlight::Trace(t.clone());
        let mut at = s.sampler(dt("2024-06-01T00:00:00"));
        assert_eq!(at.lux(0.0), 0.0);
        assert_eq!(at.lux(50.0), 500.0);
        assert_eq!(at.lux(100.0), 1000.0);
        assert_eq!(at.lux(150.0), 500.0);
        // Backwards after forwards still works.
        assert_eq!(at.lux(25.0), 250.0);
        // Triangle: ½ × 200 s × 1000 lx.
        assert!((at.integral(0.0, 200.0) - 100_000.0).abs() < 1e-6);
        assert!((at.integral(50.0, 150.0) - 75_000.0).abs() < 1e-6);
        // A run starting later: offsets are relative to it.
        s = Sunlight::Trace(t);
        let mut later = s.sampler(dt("2024-06-01T00:01:40"));
        assert_eq!(later.lux(0.0), 1000.0);
        assert!((later.integral(0.0, 100.0) - 50_000.0).abs() < 1e-6);
    }

    #[test]
    fn bad_files_name_the_line_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "empty"),
            ("\n\n", 0, "empty"),
            ("when,lux\n2024-06-01T00:00:00,0\n", 1, "header"),
            (
                "2024-06-01T00:00:00,0\n2024-06-01T00:01:00,5\n",
                1,
                "header",
            ),
            ("time,lux\n", 1, "no data rows"),
            ("time,lux\n2024-06-01T00:00:00,0\n", 2, "only one"),
            (
                "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T00:01:00,abc\n",
                3,
                "not a number",
            ),
            (
                "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T00:01:00,-1\n",
                3,
                "negative",
            ),
            (
                "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T00:01:00,NaN\n",
                3,
                "finite",
            ),
            (
                "time,lux\n2024-06-01T00:00:00,0\n2024-06-01 00:01:00,1\n",
                3,
                "bad time",
            ),
            (
                "time,lux\n2024-06-01T00:00:00,0\n2024-06-31T00:01:00,1\n",
                3,
                "bad time",
            ),
            (
                "time,lux\n2024-06-01T00:00:00,0\n2024-06-01T00:00:00,1\n",
                3,
                "duplicate",
            ),
            (
                "time,lux\n2024-06-01T00:05:00,0\n2024-06-01T00:01:00,1\n",
                3,
                "ascending",
            ),
            ("time,lux\n2024-06-01T00:00:00,0,3\n", 2, "two fields"),
            ("time,lux\n2024-06-01T00:00:00\n", 2, "two fields"),
        ];
        for (text, line, reason) in cases {
            let e = Trace::parse(text).unwrap_err();
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.reason.contains(reason), "{text:?}: {e}");
        }
    }

    #[test]
    fn model_clouds_differ_by_date_and_repeat_exactly() {
        let s = Sunlight::model();
        let start = dt("2024-06-01T00:00:00");
        let mut a = s.sampler(start);
        let mut b = s.sampler(start);
        assert_eq!(a.lux(0.0), 0.0);
        let noon1 = a.lux(13.0 * 3600.0 + 420.0);
        assert_eq!(noon1, b.lux(13.0 * 3600.0 + 420.0));
        assert!(noon1 > 50_000.0, "{noon1}");
        // Some minute of the next day differs from the same minute of the first.
        assert!((0..96).any(|c| {
            let s1 = f64::from(c) * 900.0 + 420.0;
            a.lux(s1) != a.lux(s1 + 86_400.0)
        }));
        // The day's integral: a clear day would be ≈ 2.9e9 lx·s; clouds take up to 35 %.
        let day = a.integral(0.0, 86_400.0);
        assert!((1.5e9..3.2e9).contains(&day), "{day}");
    }
}
