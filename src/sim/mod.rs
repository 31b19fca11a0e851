//! `greenhoused simulate`: the control logic on simulated hardware and a virtual clock, as fast as the CPU allows.
//!
//! | file | holds |
//! |---|---|
//! | [`weather`] | the weather CSV (parsing, errors with line numbers, interpolation, exact integral), the day model |
//! | [`run`] | one run: the production `Core` on a virtual clock over the real BH1750 driver, the simulated chip, relay and lamp |
//! | [`report`] | light-day figures, `report.json`, `days.csv`, `chart.svg` |
//!
//! The whole simulation is two runs on the same sunlight: the configured strategy, and the plain threshold rule
//! for comparison (`threshold_rule` in the report). They run on two threads at once.

pub mod report;
pub mod run;
pub mod weather;

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::config::{Settings, Strategy};
use report::{ChartRun, DayShape, DliParams, Report};
use run::{Observed, Progress, RunSpec};
use weather::{Sunlight, Trace, TIME_FORMAT};

/// How the lamp is steered (`--strategy`, else `control.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyArg {
    /// The lux band with hysteresis (`control.on_below_lux` / `off_above_lux`).
    Threshold,
    /// Light to the daily light integral target of `[dli]`.
    Dli,
}

impl StrategyArg {
    fn as_str(self) -> &'static str {
        match self {
            StrategyArg::Threshold => "threshold",
            StrategyArg::Dli => "dli",
        }
    }
}

/// The `simulate` options after parsing.
#[derive(Debug, Clone)]
pub struct Options {
    pub weather: Option<PathBuf>,
    pub from: Option<NaiveDate>,
    pub days: Option<u32>,
    pub strategy: Option<StrategyArg>,
    pub out: PathBuf,
    pub verbose: bool,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Bad input (weather file, dates, configuration for the simulation): exit 78.
    #[error("{0}")]
    Input(String),
    /// The output could not be written.
    #[error("{0}")]
    Output(String),
}

impl SimError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            SimError::Input(_) => crate::exit::CONFIG,
            SimError::Output(_) => crate::exit::SOFTWARE,
        }
    }
}

/// What a finished simulation reports to the caller.
#[derive(Debug)]
pub struct Summary {
    pub report: Report,
    pub days: usize,
    /// Simulated seconds over both runs.
    pub simulated_s: f64,
    pub wall: Duration,
    pub measurements: u64,
    pub files: Vec<PathBuf>,
}

impl Summary {
    /// Simulated seconds per wall-clock second (both runs together).
    pub fn speed(&self) -> f64 {
        self.simulated_s / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The DLI and energy parameters from `[dli]`; the lamp's PPFD estimated from `mock.lamp_lux` ×
/// `lamp_umol_per_lux` when `lamp_ppfd` is 0.
fn dli_params(settings: &Settings) -> DliParams {
    let dli = &settings.dli;
    DliParams {
        target_mol: dli.target_mol,
        sun_umol_per_lux: dli.sun_umol_per_lux,
        lamp_ppfd: if dli.lamp_ppfd > 0.0 {
            dli.lamp_ppfd
        } else {
            settings.mock.lamp_lux * dli.lamp_umol_per_lux
        },
        lamp_watts: dli.lamp_watts,
        tariff: dli.tariff.iter().map(|p| (p.from, p.to, p.price)).collect(),
        default_price: dli.default_price,
    }
}

/// The local minute a light-day starts at, and how long the window stays open from then (seconds).
fn day_shape(settings: &Settings, first_date: NaiveDate, days: usize) -> DayShape {
    let (start_minute, window_len_s) = match settings.control.window {
        Some(w) => {
            let len = (u32::from(w.end_min) + 1440 - u32::from(w.start_min)) % 1440;
            (u32::from(w.start_min), f64::from(len) * 60.0)
        }
        None => (0, 86_400.0),
    };
    DayShape {
        first_date,
        days,
        start_minute,
        window_len_s,
    }
}

/// Which light-days to simulate: from `--from` (else the trace's first light-day, else today) for `--days` (else
/// every whole light-day of the trace, else 7). A trace must cover every simulated second.
fn plan(
    opts: &Options,
    sunlight: &Sunlight,
    start_minute: u32,
) -> Result<(NaiveDate, usize), SimError> {
    let at = |d: NaiveDate| -> NaiveDateTime {
        d.and_time(NaiveTime::MIN) + chrono::Duration::minutes(i64::from(start_minute))
    };
    let Sunlight::Trace(trace) = sunlight else {
        let from = opts
            .from
            .unwrap_or_else(|| chrono::Local::now().date_naive());
        return Ok((from, opts.days.map_or(7, |d| d as usize)));
    };
    let (first, last) = (trace.first(), trace.last());
    let from = match opts.from {
        Some(d) => d,
        // The first light-day that starts inside the trace.
        None if at(first.date()) >= first => first.date(),
        None => first.date().succ_opt().unwrap_or(first.date()),
    };
    let start = at(from);
    let fmt = |t: NaiveDateTime| t.format(TIME_FORMAT).to_string();
    if start < first || start > last {
        return Err(SimError::Input(format!(
            "--from {from}: the light-day starts at {} but the weather trace covers {} to {}",
            fmt(start),
            fmt(first),
            fmt(last)
        )));
    }
    let whole_days = ((last - start).num_seconds() / 86_400) as usize;
    let days = match opts.days {
        Some(d) => d as usize,
        None if whole_days == 0 => {
            return Err(SimError::Input(format!(
                "the weather trace ({} to {}) holds no whole light-day from {} (light-days start at {:02}:{:02}, \
                 the start of control.window)",
                fmt(first),
                fmt(last),
                fmt(start),
                start_minute / 60,
                start_minute % 60
            )))
        }
        None => whole_days,
    };
    let end = start + chrono::Duration::days(days as i64);
    if end > last {
        return Err(SimError::Input(format!(
            "--days {days} from {from} needs sunlight until {} but the weather trace ends at {} \
             ({whole_days} whole light-days fit; light-days start at the start of control.window)",
            fmt(end),
            fmt(last)
        )));
    }
    Ok((from, days))
}

/// Run the simulation and write `report.json`, `days.csv` and `chart.svg` into `opts.out`.
pub fn simulate(settings: &Settings, opts: &Options) -> Result<Summary, SimError> {
    // `--weather`, else `mock.weather`, else the day model.
    let sunlight = match opts.weather.as_ref().or(settings.mock.weather.as_ref()) {
        Some(path) => Sunlight::Trace(
            Trace::load(path)
                .map_err(|e| SimError::Input(format!("weather file {}: {e}", path.display())))?,
        ),
        None => Sunlight::model(),
    };
    let strategy = opts.strategy.unwrap_or(match settings.control.strategy {
        Strategy::Threshold => StrategyArg::Threshold,
        Strategy::Dli => StrategyArg::Dli,
    });
    let shape0 = day_shape(settings, NaiveDate::MIN, 0);
    let (from, days) = plan(opts, &sunlight, shape0.start_minute)?;
    let shape = day_shape(settings, from, days);
    let start =
        from.and_time(NaiveTime::MIN) + chrono::Duration::minutes(i64::from(shape.start_minute));
    let length = Duration::from_secs(days as u64 * 86_400);
    std::fs::create_dir_all(&opts.out).map_err(|e| {
        SimError::Output(format!(
            "cannot create the output directory {}: {e}",
            opts.out.display()
        ))
    })?;

    let mut main_settings = settings.clone();
    main_settings.control.strategy = match strategy {
        StrategyArg::Threshold => Strategy::Threshold,
        StrategyArg::Dli => Strategy::Dli,
    };
    let mut threshold_settings = settings.clone();
    threshold_settings.control.strategy = Strategy::Threshold;
    let progress = [Progress::default(), Progress::default()];
    let spec = |s, p: usize| RunSpec {
        settings: s,
        sunlight: &sunlight,
        start,
        length,
        keep_topics: vec![format!("{}/report/daily", settings.mqtt.topic_prefix)],
        verbose: opts.verbose,
        progress: &progress[p],
    };
    let (main_spec, threshold_spec) = (spec(&main_settings, 0), spec(&threshold_settings, 1));
    let wall = Instant::now();
    let (main_obs, threshold_obs) = std::thread::scope(|scope| {
        let main = scope.spawn(|| run::run(&main_spec));
        let threshold = scope.spawn(|| run::run(&threshold_spec));
        show_progress(&progress, length.as_secs(), || {
            main.is_finished() && threshold.is_finished()
        });
        (main.join(), threshold.join())
    });
    let (Ok(main_obs), Ok(threshold_obs)) = (main_obs, threshold_obs) else {
        return Err(SimError::Output("a simulation run panicked".into()));
    };
    let wall = wall.elapsed();

    let dli = dli_params(settings);
    let mut main_days = report::days(&main_obs, &shape, &dli, &mut sunlight.sampler(start));
    let mut threshold_days =
        report::days(&threshold_obs, &shape, &dli, &mut sunlight.sampler(start));
    for (days, obs) in [
        (&mut main_days, &main_obs),
        (&mut threshold_days, &threshold_obs),
    ] {
        let payloads: Vec<&str> = obs.published.iter().map(|(_, _, p)| p.as_str()).collect();
        report::apply_core_reports(days, &payloads);
    }
    let main_report = report::run_report(&main_days);
    let threshold_report = report::run_report(&threshold_days);
    let report = Report {
        days: main_report.days.clone(),
        totals: main_report.totals.clone(),
        threshold_rule: threshold_report.clone(),
    };
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| SimError::Output(format!("cannot encode report.json: {e}")))?;
    let csv = report::csv(&[
        (strategy.as_str(), &main_report),
        ("threshold_rule", &threshold_report),
    ]);
    let chart = report::svg(
        &[
            chart_run(
                &format!("strategy {}", strategy.as_str()),
                &main_days,
                &main_obs,
                from,
                days,
            ),
            chart_run(
                "plain threshold rule",
                &threshold_days,
                &threshold_obs,
                from,
                days,
            ),
        ],
        &mut sunlight.sampler(start),
        length.as_secs_f64(),
    );
    let mut files = Vec::new();
    for (name, body) in [
        ("report.json", json + "\n"),
        ("days.csv", csv),
        ("chart.svg", chart),
    ] {
        files.push(write(&opts.out, name, &body)?);
    }
    Ok(Summary {
        report,
        days,
        simulated_s: main_obs.seconds + threshold_obs.seconds,
        wall,
        measurements: main_obs.measurements + threshold_obs.measurements,
        files,
    })
}

fn chart_run<'a>(
    title: &str,
    days: &'a [report::Day],
    observed: &'a Observed,
    from: NaiveDate,
    n: usize,
) -> ChartRun<'a> {
    let to = from + chrono::Days::new(n.saturating_sub(1) as u64);
    ChartRun {
        title: format!("{title}: {from} to {to}"),
        days,
        observed,
    }
}

fn write(dir: &Path, name: &str, body: &str) -> Result<PathBuf, SimError> {
    let path = dir.join(name);
    std::fs::write(&path, body)
        .map_err(|e| SimError::Output(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Until `done()`: a one-line progress indicator on stderr when it is a terminal, redrawn every 200 ms.
fn show_progress(progress: &[Progress], total_s: u64, done: impl Fn() -> bool) {
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    while !done() {
        std::thread::sleep(Duration::from_millis(if terminal { 200 } else { 20 }));
        if !terminal {
            continue;
        }
        let sum: u64 = progress
            .iter()
            .map(|p| p.done_s.load(Ordering::Relaxed))
            .sum();
        let of = total_s * progress.len() as u64;
        let speed = sum as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\rsimulating: day {:.1} of {} ({:.0} %), {:.0} simulated s per s   ",
            sum as f64 / progress.len() as f64 / 86_400.0,
            total_s / 86_400,
            100.0 * sum as f64 / of.max(1) as f64,
            speed
        );
        let _ = std::io::stderr().flush();
    }
    if terminal {
        eprint!("\r{:78}\r", "");
    }
}
