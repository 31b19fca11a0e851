//! The command line of the contract.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::sim::StrategyArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogTarget {
    /// journald when stderr is the journal (`JOURNAL_STREAM`), else stderr with timestamps.
    #[default]
    Auto,
    Journald,
    Syslog,
    Stderr,
}

/// Greenhouse supplemental-lighting daemon: BH1750 lux sensor, GPIO relay, MQTT, built-in monitor.
#[derive(Debug, Clone, Parser)]
#[command(name = "greenhoused", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Default /etc/greenhoused/greenhoused.toml; built-in defaults when that
    /// default file does not exist.
    #[arg(short = 'c', long = "config", value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,

    /// Simulated sensor, relay and light environment instead of I2C/GPIO.
    #[arg(long)]
    pub mock_hardware: bool,

    /// Load and validate the configuration, print the effective configuration (secrets redacted), exit 0 or 78.
    #[arg(long)]
    pub check_config: bool,

    /// Where log lines go.
    #[arg(long, value_enum, default_value_t = LogTarget::Auto)]
    pub log_target: LogTarget,

    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less log output (warnings and errors only).
    #[arg(short, long)]
    pub quiet: bool,

    /// A subcommand instead of running the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the control logic on simulated hardware and a virtual clock (no broker, no sleeping) and write
    /// report.json, days.csv and chart.svg.
    Simulate(SimulateArgs),
}

/// Options of `greenhoused simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Sunlight from a CSV file (header `time,lux`, rows `YYYY-MM-DDTHH:MM:SS,<lux>`, ascending); else the
    /// built-in day model with clouds.
    #[arg(long, value_name = "FILE.csv")]
    pub weather: Option<PathBuf>,

    /// First light-day (default: the trace's first, else today).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub from: Option<chrono::NaiveDate>,

    /// Number of light-days (default: every whole day of the trace, else 7).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: Option<u32>,

    /// Overrides control.strategy.
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,

    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "simulation")]
    pub out: PathBuf,
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("{e}: expected a date like 2024-06-01"))
}
