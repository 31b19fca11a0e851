//! Benchmark of `greenhoused simulate`. Prints numbers; it is not a test.
//!
//! ```text
//! cargo build --release --example bench_simulate && target/release/examples/bench_simulate [DAYS...]
//! ```
//! Default: 7 and 365 light-days on the built-in day model at `sensor.interval_s = 1`. For each: wall time of the
//! whole command (both runs: the strategy and the threshold rule, on two threads) and simulated seconds per wall
//! second, next to a baseline measured in the same process: the bare sensor path (the real bh1750 driver with
//! auto-ranging over the simulated chip on a virtual clock, one measurement per simulated second, nothing else),
//! i.e. the floor the simulator's loop cannot beat on one core.
//!
//! On a shared, loaded machine wall time says little, so the process's CPU time (user + system, from
//! /proc/self/stat) is printed as well: simulated seconds per CPU second do not depend on the load, and on an idle
//! two-core machine the wall time of the two parallel runs is about half their CPU time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime};
use greenhoused::config;
use greenhoused::hw::mock::{self, Clock, VirtualClock};
use greenhoused::sim::{self, Options, StrategyArg};

/// The targets of issue 8.
const TARGETS: [(u32, Duration); 2] = [
    (7, Duration::from_secs(10)),
    (365, Duration::from_secs(300)),
];

/// CPU time (user + system) of this process so far; Linux, 100 clock ticks per second.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let days: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let days = if days.is_empty() { vec![7, 365] } else { days };
    let settings = config::load_str("[device]\nid = \"bench\"\n[sensor]\ninterval_s = 1.0\n")?;
    let out = tempfile::tempdir()?;

    // Baseline: the bare sensor path, one simulated day.
    let clock = VirtualClock::new(NaiveTime::MIN);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let (_world, mut sensor, _relay) = mock::build(
        &settings.mock,
        &settings.sensor,
        &settings.relay,
        false,
        shared,
    );
    let (wall, cpu) = (Instant::now(), cpu_time());
    for s in 0..86_400u64 {
        let behind = Duration::from_secs(s).saturating_sub(clock.elapsed());
        clock.advance(behind);
        sensor.measure()?;
    }
    let base = wall.elapsed();
    let base_cpu = cpu_time() - cpu;
    let base_speed = 86_400.0 / base_cpu.as_secs_f64().max(0.01);
    println!(
        "baseline: bare sensor path, 1 simulated day at 1 measurement/s: {:.3} s wall, {:.2} s CPU = {:.0} simulated s per CPU s",
        base.as_secs_f64(),
        base_cpu.as_secs_f64(),
        base_speed
    );

    for n in days {
        let opts = Options {
            weather: None,
            from: Some(NaiveDate::from_ymd_opt(2024, 1, 1).ok_or("date")?),
            days: Some(n),
            strategy: Some(StrategyArg::Threshold),
            out: out.path().to_owned(),
            verbose: false,
        };
        let cpu = cpu_time();
        let summary = sim::simulate(&settings, &opts)?;
        let cpu = (cpu_time() - cpu).as_secs_f64().max(0.01);
        let target = TARGETS
            .iter()
            .find(|(d, _)| *d == n)
            .map(|(_, t)| format!(" (target < {} s)", t.as_secs()))
            .unwrap_or_default();
        println!(
            "simulate {n} days x 2 runs: {:.2} s wall{target}, {:.2} s CPU; {:.0} simulated s per wall s, {:.0} per CPU s ({:.2}x the baseline); {} measurements",
            summary.wall.as_secs_f64(),
            cpu,
            summary.speed(),
            summary.simulated_s / cpu,
            summary.simulated_s / cpu / base_speed,
            summary.measurements
        );
    }
    Ok(())
}
