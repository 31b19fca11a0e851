//! History for the dashboard and `/api/history`: one-minute aggregates for the last [`MINUTES_KEPT`] minutes
//! (49 h) and daily summaries for the last [`DAYS_KEPT`] days.
//!
//! Pure: fed with the local time of each update as an input; no clock, no files. Persistence is a journal the
//! shell writes: [`History::flush`] hands out either bytes to append (the records closed since the last flush, one
//! CRC-checked frame) or a whole new file to put in place atomically (a compaction, when the appended frames
//! outgrow the live data, and after a load that found damage). Flushes are due at most every
//! [`FLUSH_EVERY_MIN`] minutes (an SD card must not wear out), plus one at stop. [`History::load`] reads a file
//! back, stops at the first damaged frame (a torn write at a power cut) and says so; the next flush then rewrites
//! the file from what was good.
//!
//! Format: the 8-byte magic [`MAGIC`], then frames `[len: u32 LE][crc32: u32 LE][postcard(Vec<Record>)]`.
//! postcard is a compact serde format (varints, f32 as 4 bytes): about 12-16 bytes a minute, see the tests for
//! the bytes written per day.

use std::collections::{BTreeSet, VecDeque};

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

/// One-minute aggregates kept: 49 h (the dashboard shows 48 h).
pub const MINUTES_KEPT: usize = 49 * 60;
/// Daily summaries kept (the dashboard shows 30 days; the spec asks for at least 400).
pub const DAYS_KEPT: usize = 420;
/// A flush is due at most this often (minutes).
pub const FLUSH_EVERY_MIN: i64 = 10;
/// A gap between updates longer than this is unknown time: lamp time is not counted across it.
pub const MAX_GAP_S: f64 = 120.0;
/// File magic: "GHHIST", a zero, the format version.
pub const MAGIC: &[u8; 8] = b"GHHIST\x00\x01";
/// Frames larger than this are damage, not data (a full snapshot is well under 100 KiB).
const MAX_FRAME: usize = 4 << 20;

/// One minute of history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    /// Start of the minute in local time: minutes since 1970-01-01T00:00 (naive).
    pub t: i32,
    /// Mean of the readings in this minute (None: no valid reading).
    pub lux: Option<f32>,
    /// Mean ambient estimate (the reading without the lamp's share).
    pub ambient_lux: Option<f32>,
    /// Seconds the lamp was on (read back from the relay) in this minute, 0-60.
    pub lamp_on_s: u8,
    /// Whether the photoperiod window was open at any update in this minute.
    pub window_open: bool,
}

impl Minute {
    /// The minute's local start time.
    pub fn start(&self) -> NaiveDateTime {
        minute_start(self.t)
    }
}

/// One light-day's figures (from the DLI engine).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// The light-day's date: days since 0001-01-01 (chrono's `num_days_from_ce`).
    pub day: i32,
    /// DLI from sunlight, mol m⁻² d⁻¹.
    pub sun_mol: f32,
    /// DLI from the lamp.
    pub lamp_mol: f32,
    /// The day's target (0: accounting only).
    pub target_mol: f32,
    /// Lamp on-time, seconds.
    pub lamp_on_s: u32,
    /// Lamp energy, kWh (0 when `dli.lamp_watts` is not set).
    pub lamp_kwh: f32,
    /// Electricity cost (0 without prices).
    pub cost: f32,
}

impl Day {
    /// The light-day's date.
    pub fn date(&self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.day).unwrap_or_default()
    }

    /// `day` for a date.
    pub fn day_number(date: NaiveDate) -> i32 {
        date.num_days_from_ce()
    }

    /// Sun plus lamp.
    pub fn total_mol(&self) -> f32 {
        self.sun_mol + self.lamp_mol
    }
}

/// What one update saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// A valid reading taken with this update (None: a tick, or the sensor failed).
    pub lux: Option<f64>,
    /// The ambient estimate for that reading.
    pub ambient_lux: Option<f64>,
    /// The relay state read back, valid from this update until the next.
    pub light_on: bool,
    /// Whether the photoperiod window is open.
    pub window_open: bool,
}

/// A journal record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Record {
    Minute(Minute),
    Day(Day),
}

/// What the shell must write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Append these bytes to the file (one frame).
    Append(Vec<u8>),
    /// Replace the file atomically with these bytes (magic + one frame with everything).
    Replace(Vec<u8>),
}

impl Write {
    /// The bytes to write.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Write::Append(b) | Write::Replace(b) => b,
        }
    }
}

/// The minute being aggregated.
#[derive(Debug, Clone, Copy)]
struct Acc {
    t: i32,
    lux_sum: f64,
    lux_n: u32,
    ambient_sum: f64,
    ambient_n: u32,
    lamp_on_s: f64,
    window_open: bool,
}

impl Acc {
    fn new(t: i32) -> Acc {
        Acc {
            t,
            lux_sum: 0.0,
            lux_n: 0,
            ambient_sum: 0.0,
            ambient_n: 0,
            lamp_on_s: 0.0,
            window_open: false,
        }
    }

    fn close(&self) -> Minute {
        let mean = |sum: f64, n: u32| (n > 0).then(|| (sum / f64::from(n)) as f32);
        Minute {
            t: self.t,
            lux: mean(self.lux_sum, self.lux_n),
            ambient_lux: mean(self.ambient_sum, self.ambient_n),
            lamp_on_s: self.lamp_on_s.round().clamp(0.0, 60.0) as u8,
            window_open: self.window_open,
        }
    }
}

/// The history: closed minutes, daily summaries, the minute in progress and what is not saved yet.
#[derive(Debug, Clone, Default)]
pub struct History {
    minutes: VecDeque<Minute>,
    days: VecDeque<Day>,
    acc: Option<Acc>,
    /// The previous update: local time in seconds and the light state since then.
    last: Option<(f64, bool)>,
    unsaved_minutes: Vec<Minute>,
    unsaved_days: BTreeSet<i32>,
    last_flush: Option<NaiveDateTime>,
    /// Bytes appended since the file was last replaced.
    journal_bytes: usize,
    /// Size of the last replacement.
    snapshot_bytes: usize,
    /// The next flush must replace the file (nothing written yet, or the file was damaged).
    needs_replace: bool,
}

/// What [`History::load`] found.
#[derive(Debug)]
pub struct Loaded {
    pub history: History,
    /// Damage found (the rest of the file was ignored); the next flush rewrites the file.
    pub problem: Option<String>,
}

fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// Local time as seconds since 1970-01-01T00:00 (naive), with the fraction.
fn seconds(local: NaiveDateTime) -> f64 {
    let d = local - epoch();
    d.num_seconds() as f64 + f64::from(local.nanosecond() % 1_000_000_000) / 1e9
}

/// The minute number of a local time.
pub fn minute_of(local: NaiveDateTime) -> i32 {
    ((local - epoch()).num_seconds().div_euclid(60)) as i32
}

/// The local start of minute number `t`.
pub fn minute_start(t: i32) -> NaiveDateTime {
    epoch() + chrono::Duration::minutes(i64::from(t))
}

impl History {
    /// An empty history (its first flush writes a whole file).
    pub fn new() -> History {
        History {
            needs_replace: true,
            ..History::default()
        }
    }

    /// Feed one update: a reading (or a tick), the light state read back and the window.
    pub fn update(&mut self, local: NaiveDateTime, sample: Sample) {
        let now_s = seconds(local);
        let now_min = minute_of(local);
        match (self.last, self.acc) {
            (Some((prev_s, prev_on)), Some(mut acc)) if now_s >= prev_s => {
                let gap = now_s - prev_s;
                if gap > MAX_GAP_S {
                    // Unknown time: close what was, start afresh (the chart shows a gap).
                    self.close(acc);
                    self.acc = Some(Acc::new(now_min));
                } else {
                    // Spread the lamp time since the previous update over the minutes it covers.
                    let mut cur = prev_s;
                    while acc.t < now_min {
                        let end = f64::from(acc.t + 1) * 60.0;
                        if prev_on {
                            acc.lamp_on_s += end - cur;
                        }
                        cur = end;
                        self.close(acc);
                        acc = Acc::new(acc.t + 1);
                    }
                    if prev_on {
                        acc.lamp_on_s += now_s - cur;
                    }
                    self.acc = Some(acc);
                }
            }
            (_, acc) => {
                // First update, or the clock went back (DST end, a clock set back): close and restart here.
                if let Some(acc) = acc {
                    self.close(acc);
                }
                self.acc = Some(Acc::new(now_min));
            }
        }
        if let Some(acc) = self.acc.as_mut() {
            if let Some(lux) = sample.lux.filter(|v| v.is_finite()) {
                acc.lux_sum += lux;
                acc.lux_n += 1;
            }
            if let Some(a) = sample.ambient_lux.filter(|v| v.is_finite()) {
                acc.ambient_sum += a;
                acc.ambient_n += 1;
            }
            acc.window_open |= sample.window_open;
        }
        self.last = Some((now_s, sample.light_on));
    }

    /// Keep the minutes in time order: a minute at or before the newest one is dropped. The wall clock went back
    /// (DST ended, or a Pi without a real-time clock booted with an old time before NTP set it): what was recorded
    /// stays, and recording resumes once the clock passes it again.
    fn push_minute(&mut self, m: Minute) -> bool {
        if self.minutes.back().is_some_and(|b| b.t >= m.t) {
            return false;
        }
        self.minutes.push_back(m);
        while self.minutes.len() > MINUTES_KEPT {
            self.minutes.pop_front();
        }
        true
    }

    fn close(&mut self, acc: Acc) {
        let m = acc.close();
        if self.push_minute(m) {
            self.unsaved_minutes.push(m);
        }
    }

    fn put_day(&mut self, day: Day) {
        match self.days.iter().rposition(|d| d.day <= day.day) {
            Some(i) if self.days[i].day == day.day => self.days[i] = day,
            Some(i) => self.days.insert(i + 1, day),
            None => self.days.push_front(day),
        }
        while self.days.len() > DAYS_KEPT {
            self.days.pop_front();
        }
    }

    /// Record (or update) a light-day's figures: called with today's running figures and at each day's end.
    pub fn set_day(&mut self, day: Day) {
        if self.days.iter().rev().any(|d| *d == day) {
            return;
        }
        self.put_day(day);
        self.unsaved_days.insert(day.day);
    }

    /// Closed minutes, oldest first.
    pub fn minutes(&self) -> &VecDeque<Minute> {
        &self.minutes
    }

    /// The closed minutes that start at or after `from`.
    pub fn minutes_since(&self, from: NaiveDateTime) -> impl Iterator<Item = &Minute> {
        let t = minute_of(from);
        let first = self.minutes.partition_point(|m| m.t < t);
        self.minutes.range(first..)
    }

    /// Daily summaries, oldest first.
    pub fn days(&self) -> &VecDeque<Day> {
        &self.days
    }

    /// Whether a flush is due: [`FLUSH_EVERY_MIN`] minutes after the last one (or the clock went back).
    pub fn flush_due(&self, local: NaiveDateTime) -> bool {
        let pending = !self.unsaved_minutes.is_empty() || !self.unsaved_days.is_empty();
        match self.last_flush {
            None => pending,
            Some(last) => {
                pending
                    && (local < last || local - last >= chrono::Duration::minutes(FLUSH_EVERY_MIN))
            }
        }
    }

    /// What to write now: `None` when nothing changed since the last flush. Call it when [`flush_due`] says so,
    /// and once at stop.
    ///
    /// [`flush_due`]: History::flush_due
    pub fn flush(&mut self, local: NaiveDateTime) -> Option<Write> {
        self.last_flush = Some(local);
        if !self.needs_replace && self.unsaved_minutes.is_empty() && self.unsaved_days.is_empty() {
            return None;
        }
        let mut records: Vec<Record> = Vec::new();
        let replace = self.needs_replace || self.journal_bytes > self.snapshot_bytes.max(16 * 1024);
        if replace {
            records.extend(self.minutes.iter().map(|m| Record::Minute(*m)));
            records.extend(self.days.iter().map(|d| Record::Day(*d)));
        } else {
            records.extend(self.unsaved_minutes.iter().map(|m| Record::Minute(*m)));
            let unsaved = &self.unsaved_days;
            records.extend(
                self.days
                    .iter()
                    .filter(|d| unsaved.contains(&d.day))
                    .map(|d| Record::Day(*d)),
            );
        }
        self.unsaved_minutes.clear();
        self.unsaved_days.clear();
        let frame = frame(&records);
        Some(if replace {
            let mut bytes = Vec::with_capacity(MAGIC.len() + frame.len());
            bytes.extend_from_slice(MAGIC);
            bytes.extend_from_slice(&frame);
            self.needs_replace = false;
            self.journal_bytes = 0;
            self.snapshot_bytes = bytes.len();
            Write::Replace(bytes)
        } else {
            self.journal_bytes += frame.len();
            Write::Append(frame)
        })
    }

    /// The shell could not write the last flush (disk full, the file removed): the next flush rewrites the whole
    /// file, so nothing appended later sits behind a gap.
    pub fn write_failed(&mut self) {
        self.needs_replace = true;
    }

    /// Read a file written by [`flush`](History::flush). Damage (a torn last write, a corrupt frame, a file of
    /// another kind) ends the reading there; what came before is kept and the problem is reported.
    pub fn load(bytes: &[u8]) -> Loaded {
        let mut history = History::new();
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Loaded {
                history,
                problem: Some(if bytes.is_empty() {
                    "the file is empty".to_string()
                } else {
                    "not a greenhoused history file (wrong magic or version)".to_string()
                }),
            };
        }
        let mut pos = MAGIC.len();
        let mut problem = None;
        while pos < bytes.len() {
            match read_frame(&bytes[pos..]) {
                Ok((records, used)) => {
                    for r in records {
                        match r {
                            Record::Minute(m) => {
                                history.push_minute(m);
                            }
                            Record::Day(d) => history.put_day(d),
                        }
                    }
                    pos += used;
                }
                Err(why) => {
                    problem = Some(format!(
                        "{why} at byte {pos} of {}; the rest ({} bytes) is ignored",
                        bytes.len(),
                        bytes.len() - pos
                    ));
                    break;
                }
            }
        }
        // A clean file is appended to; a damaged one is rewritten from what was good at the next flush.
        history.needs_replace = problem.is_some();
        history.snapshot_bytes = pos;
        history.journal_bytes = 0;
        Loaded { history, problem }
    }
}

fn frame(records: &[Record]) -> Vec<u8> {
    // Serializing plain structs of numbers into a Vec cannot fail.
    let payload = postcard::to_allocvec(records).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn read_frame(bytes: &[u8]) -> Result<(Vec<Record>, usize), String> {
    if bytes.len() < 8 {
        return Err("a torn frame header".into());
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len > MAX_FRAME {
        return Err(format!("an implausible frame length {len}"));
    }
    let Some(payload) = bytes.get(8..8 + len) else {
        return Err(format!("a torn frame ({} of {len} bytes)", bytes.len() - 8));
    };
    if crc32fast::hash(payload) != crc {
        return Err("a frame with a wrong checksum".into());
    }
    let records: Vec<Record> =
        postcard::from_bytes(payload).map_err(|e| format!("an undecodable frame ({e})"))?;
    Ok((records, 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(d: u32, h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 6, d)
            .and_then(|d| d.and_hms_opt(h, m, s))
            .unwrap()
    }

    fn sample(lux: f64, on: bool) -> Sample {
        Sample {
            lux: Some(lux),
            ambient_lux: Some(if on { lux - 400.0 } else { lux }),
            light_on: on,
            window_open: true,
        }
    }

    /// One update a second from `from` for `secs` seconds; the lamp on while `on(t)` says so.
    fn run(h: &mut History, from: NaiveDateTime, secs: i64, on: impl Fn(i64) -> bool) {
        for s in 0..secs {
            let t = from + chrono::Duration::seconds(s);
            h.update(t, sample(300.0 + (s % 60) as f64, on(s)));
        }
    }

    #[test]
    fn minutes_hold_means_and_lamp_seconds() {
        let mut h = History::new();
        // Lamp on for the first 90 s, then off.
        run(&mut h, at(1, 10, 0, 0), 181, |s| s < 90);
        let m: Vec<_> = h.minutes().iter().copied().collect();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].start(), at(1, 10, 0, 0));
        assert_eq!(m[0].lamp_on_s, 60);
        assert_eq!(m[1].lamp_on_s, 30);
        assert_eq!(m[2].lamp_on_s, 0);
        // Readings 300..359 in each minute: mean 329.5.
        assert_eq!(m[0].lux, Some(329.5));
        assert_eq!(m[2].lux, Some(329.5));
        assert_eq!(m[0].ambient_lux, Some(329.5 - 400.0));
        assert_eq!(m[2].ambient_lux, Some(329.5));
        assert!(m.iter().all(|m| m.window_open));
    }

    #[test]
    fn lamp_time_spreads_over_minutes_between_sparse_updates() {
        let mut h = History::new();
        let on = Sample {
            lux: None,
            ambient_lux: None,
            light_on: true,
            window_open: false,
        };
        h.update(at(1, 10, 0, 30), on);
        // 100 s later: 30 s in 10:00, 60 s in 10:01, 10 s in 10:02 (still open).
        h.update(at(1, 10, 2, 10), on);
        let m: Vec<_> = h.minutes().iter().copied().collect();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].lamp_on_s, m[1].lamp_on_s), (30, 60));
        assert_eq!(m[0].lux, None);
        assert!(!m[0].window_open);
    }

    #[test]
    fn a_long_gap_is_not_lamp_time() {
        let mut h = History::new();
        h.update(at(1, 10, 0, 0), sample(100.0, true));
        h.update(at(1, 10, 10, 0), sample(100.0, true));
        h.update(at(1, 10, 11, 0), sample(100.0, false));
        let m: Vec<_> = h.minutes().iter().copied().collect();
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].t, minute_of(at(1, 10, 0, 0)));
        assert_eq!(m[0].lamp_on_s, 0, "the 10-minute gap counts as unknown");
        assert_eq!(m[1].t, minute_of(at(1, 10, 10, 0)));
        assert_eq!(m[1].lamp_on_s, 60);
    }

    #[test]
    fn the_clock_going_back_keeps_minutes_in_order() {
        let mut h = History::new();
        run(&mut h, at(1, 2, 0, 0), 600, |_| false);
        // The clock goes back 5 minutes (as at the end of DST, by an hour).
        run(&mut h, at(1, 2, 5, 0), 120, |_| false);
        let ts: Vec<i32> = h.minutes().iter().map(|m| m.t).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
        // The first pass's 02:00-02:09 stay; the repeated 02:05-02:06 are not recorded a second time.
        assert_eq!(ts.len(), 10);
        assert_eq!(*ts.last().unwrap(), minute_of(at(1, 2, 9, 0)));
        // Once the clock passes the newest minute, recording resumes.
        run(&mut h, at(1, 2, 12, 0), 120, |_| false);
        assert_eq!(h.minutes().back().unwrap().t, minute_of(at(1, 2, 12, 0)));
    }

    #[test]
    fn keeps_49_hours_of_minutes_and_420_days() {
        let mut h = History::new();
        // One update every 30 s for 50 h.
        for i in 0..(50 * 120) {
            h.update(
                at(1, 0, 0, 0) + chrono::Duration::seconds(30 * i),
                sample(1.0, false),
            );
        }
        assert_eq!(h.minutes().len(), MINUTES_KEPT);
        assert_eq!(
            h.minutes_since(at(1, 0, 0, 0) + chrono::Duration::hours(2))
                .count(),
            48 * 60 - 1
        );
        let d0 = Day::day_number(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        for i in 0..500 {
            h.set_day(day(d0 + i, 1.0));
        }
        assert_eq!(h.days().len(), DAYS_KEPT);
        assert_eq!(h.days().back().unwrap().day, d0 + 499);
        assert_eq!(h.days().front().unwrap().day, d0 + 500 - DAYS_KEPT as i32);
    }

    fn day(day: i32, sun: f32) -> Day {
        Day {
            day,
            sun_mol: sun,
            lamp_mol: 2.5,
            target_mol: 12.0,
            lamp_on_s: 3600,
            lamp_kwh: 0.4,
            cost: 0.1,
        }
    }

    #[test]
    fn set_day_updates_in_place_and_in_order() {
        let mut h = History::new();
        h.set_day(day(10, 1.0));
        h.set_day(day(12, 1.0));
        h.set_day(day(11, 1.0));
        h.set_day(day(12, 5.0));
        let d: Vec<_> = h.days().iter().map(|d| (d.day, d.sun_mol)).collect();
        assert_eq!(d, vec![(10, 1.0), (11, 1.0), (12, 5.0)]);
        assert_eq!(h.days()[2].total_mol(), 7.5);
    }

    /// Replays a file the way the shell writes it: appends go to the end, a replacement starts over.
    fn apply(file: &mut Vec<u8>, w: &Write) {
        match w {
            Write::Append(b) => file.extend_from_slice(b),
            Write::Replace(b) => *file = b.clone(),
        }
    }

    #[test]
    fn round_trip_through_appends_and_replacements() {
        let mut h = History::new();
        let mut file = Vec::new();
        let start = at(1, 0, 0, 0);
        let mut kinds = (0, 0);
        for i in 0..(3 * 24 * 6) {
            let from = start + chrono::Duration::minutes(10 * i);
            run(&mut h, from, 600, |s| s % 200 < 90);
            h.set_day(day(Day::day_number(from.date()), i as f32 / 10.0));
            assert!(h.flush_due(from + chrono::Duration::seconds(600)));
            let w = h.flush(from + chrono::Duration::seconds(600)).unwrap();
            match w {
                Write::Append(_) => kinds.0 += 1,
                Write::Replace(_) => kinds.1 += 1,
            }
            apply(&mut file, &w);
            assert!(!h.flush_due(from + chrono::Duration::seconds(601)));
        }
        assert!(
            kinds.0 > 100 && kinds.1 >= 2,
            "appends and compactions: {kinds:?}"
        );
        let loaded = History::load(&file);
        assert_eq!(loaded.problem, None);
        assert_eq!(loaded.history.minutes(), h.minutes());
        assert_eq!(loaded.history.days(), h.days());
        assert_eq!(h.days().len(), 3);
        // A loaded history appends to the file it came from.
        let mut h2 = loaded.history;
        run(&mut h2, start + chrono::Duration::days(3), 600, |_| true);
        let w = h2
            .flush(start + chrono::Duration::days(3) + chrono::Duration::minutes(10))
            .unwrap();
        assert!(matches!(w, Write::Append(_)));
        apply(&mut file, &w);
        assert_eq!(History::load(&file).history.minutes(), h2.minutes());
    }

    #[test]
    fn bytes_written_per_day_stay_far_below_2_mb() {
        // Updates every second (the default sensor interval), a flush every 10 minutes, for 3 days.
        let mut h = History::new();
        let start = at(1, 0, 0, 0);
        let mut written = 0usize;
        let mut file = Vec::new();
        let days = 3;
        for i in 0..(days * 24 * 6) {
            let from = start + chrono::Duration::minutes(10 * i);
            run(&mut h, from, 600, |s| s % 300 < 120);
            h.set_day(day(Day::day_number(from.date()), i as f32));
            let w = h.flush(from + chrono::Duration::seconds(600)).unwrap();
            written += w.bytes().len();
            apply(&mut file, &w);
        }
        let per_day = written / days as usize;
        println!(
            "history: {per_day} bytes written per day; file {} bytes for {} minutes and {} days",
            file.len(),
            h.minutes().len(),
            h.days().len()
        );
        assert!(per_day < 2_000_000);
        assert!(
            per_day < 200_000,
            "{per_day} bytes/day: the journal should keep this near 100 kB"
        );
        // The whole file at its largest (49 h of minutes and 420 days) stays small too.
        let mut full = History::load(&file).history;
        for i in 0..DAYS_KEPT as i32 {
            full.set_day(day(i + 1000, 3.0));
        }
        full.needs_replace = true;
        let size = full.flush(start).unwrap().bytes().len();
        println!(
            "history: full file {size} bytes ({} minutes, {} days)",
            full.minutes().len(),
            full.days().len()
        );
        assert!(size < 100_000, "{size}");
    }

    #[test]
    fn a_torn_tail_is_reported_and_the_good_part_kept() {
        let mut h = History::new();
        let mut file = Vec::new();
        run(&mut h, at(1, 0, 0, 0), 600, |_| false);
        apply(&mut file, &h.flush(at(1, 0, 10, 0)).unwrap());
        let good = h.minutes().clone();
        run(&mut h, at(1, 0, 10, 0), 600, |_| true);
        let w = h.flush(at(1, 0, 20, 0)).unwrap();
        assert!(matches!(w, Write::Append(_)));
        // A power cut in the middle of the append.
        file.extend_from_slice(&w.bytes()[..w.bytes().len() / 2]);
        let loaded = History::load(&file);
        let problem = loaded.problem.expect("the torn frame is reported");
        assert!(problem.contains("torn frame"), "{problem}");
        assert_eq!(loaded.history.minutes(), &good);
        // The next flush rewrites the file, so later appends are not lost behind the torn frame.
        let mut h2 = loaded.history;
        run(&mut h2, at(1, 0, 30, 0), 120, |_| false);
        let w = h2.flush(at(1, 0, 40, 0)).unwrap();
        assert!(matches!(w, Write::Replace(_)));
        apply(&mut file, &w);
        let again = History::load(&file);
        assert_eq!(again.problem, None);
        assert_eq!(again.history.minutes(), h2.minutes());
    }

    #[test]
    fn corruption_is_reported_not_trusted() {
        let mut h = History::new();
        run(&mut h, at(1, 0, 0, 0), 600, |_| false);
        let mut file = h.flush(at(1, 0, 10, 0)).unwrap().bytes().to_vec();
        let n = file.len();
        file[n - 3] ^= 0x55;
        let loaded = History::load(&file);
        assert!(loaded.problem.unwrap().contains("checksum"));
        assert!(loaded.history.minutes().is_empty());

        let loaded = History::load(b"on\n");
        assert!(loaded
            .problem
            .unwrap()
            .contains("not a greenhoused history file"));
        let loaded = History::load(b"");
        assert_eq!(loaded.problem.as_deref(), Some("the file is empty"));
        // A length field pointing far beyond the file.
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        bad.extend_from_slice(&[0; 12]);
        assert!(History::load(&bad).problem.unwrap().contains("implausible"));
    }

    #[test]
    fn a_failed_write_makes_the_next_flush_a_replacement() {
        let mut h = History::new();
        run(&mut h, at(1, 0, 0, 0), 600, |_| false);
        assert!(matches!(h.flush(at(1, 0, 10, 0)), Some(Write::Replace(_))));
        run(&mut h, at(1, 0, 10, 0), 600, |_| false);
        assert!(matches!(h.flush(at(1, 0, 20, 0)), Some(Write::Append(_))));
        h.write_failed();
        run(&mut h, at(1, 0, 20, 0), 600, |_| false);
        let Some(Write::Replace(bytes)) = h.flush(at(1, 0, 30, 0)) else {
            panic!("a replacement after the failure")
        };
        assert_eq!(History::load(&bytes).history.minutes(), h.minutes());
    }

    #[test]
    fn nothing_to_write_without_changes() {
        let mut h = History::new();
        assert!(!h.flush_due(at(1, 0, 0, 0)));
        run(&mut h, at(1, 0, 0, 0), 90, |_| false);
        assert!(h.flush(at(1, 0, 2, 0)).is_some());
        assert_eq!(h.flush(at(1, 0, 3, 0)), None);
        assert!(!h.flush_due(at(1, 0, 30, 0)));
    }
}
