//! greenhoused — supplemental grow-light daemon for a Raspberry Pi.
//!
//! Module map (data flows top to bottom):
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | raw TOML structs → validation (every problem, with key paths) → typed [`config::Settings`] |
//! | [`hw`] | domain traits: [`hw::LuxSensor`] and [`hw::Relay`] with read-back |
//! | [`hw::bh1750`] | auto-ranging over the `bh1750` driver, generic over `embedded_hal::i2c::I2c` |
//! | [`hw::pi`] | the real backends: linux-embedded-hal `I2cdev`, rppal output pin |
//! | [`hw::mock`] | simulated BH1750 bus device, simulated pin, light world model, fault switches |
//! | [`mod@core`] | the sans-I/O core: events in, effects out, on any clock; owns all decisions and state |
//! | [`core::control`] | the light rule state machine (pure: time and inputs in, decisions out) |
//! | [`core::monitor`] | the checks and the alert lifecycle (pure) |
//! | [`core::dli`] | daily light integral: accounting, strategy "dli", daily report (pure) |
//! | [`mqtt`] | contract topic names, command parser, paho client task, embedded broker, Home Assistant discovery |
//! | [`app`] | the daemon shell: sensor thread, MQTT task, signals, clock; executes the core's effects |
//! | [`core::history`] | one-minute and daily aggregates for the dashboard (pure), its journal format |
//! | [`http`] | the read-only dashboard, `/metrics`, `/api` server (own thread, bounded) |
//! | [`persist`] | atomic state files |
//! | [`memory`] | when to give freed heap memory back to the kernel (after start-up and after bursts) |
//! | [`systemd`], [`logging`] | sd_notify READY/STATUS/WATCHDOG/STOPPING; journald/syslog/stderr output |
//! | [`sim`] | `greenhoused simulate`: weather, virtual clock loop, report, chart |
//! | [`cli`] | the command line of the spec |

pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod hw;
pub mod logging;
pub mod memory;
pub mod mqtt;
pub mod persist;
pub mod sim;
pub mod systemd;

/// The light rule, at its old path (`greenhoused::control`).
pub use crate::core::control;
/// The monitor, at its old path (`greenhoused::monitor`).
pub use crate::core::monitor;

/// Process exit codes of the contract.
pub mod exit {
    /// Clean stop.
    pub const OK: u8 = 0;
    /// Configuration error (`EX_CONFIG`); the unit does not restart on it.
    pub const CONFIG: u8 = 78;
    /// Hardware unavailable at start (`EX_UNAVAILABLE`).
    pub const UNAVAILABLE: u8 = 69;
    /// Internal error (`EX_SOFTWARE`).
    pub const SOFTWARE: u8 = 70;
}
