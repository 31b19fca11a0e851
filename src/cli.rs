//! The command line of the contract.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

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
    #[arg(short = 'c', long = "config", value_name = "PATH")]
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
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (warnings and errors only).
    #[arg(short, long)]
    pub quiet: bool,
}
