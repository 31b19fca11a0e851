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
//! | [`control`] | the light rule state machine (pure: time and inputs in, decisions out) |
//! | [`monitor`] | the checks and the alert lifecycle (pure) |
//! | [`mqtt`] | contract topic names, command parser, paho client task, embedded broker |
//! | [`app`] | the core loop that owns all state, and the task wiring |
//! | [`history`] | one-minute and daily aggregates for the dashboard (pure), its journal format |
//! | [`http`] | the read-only dashboard, `/metrics`, `/api` server (own thread, bounded) |
//! | [`systemd`], [`logging`] | sd_notify READY/STATUS/WATCHDOG/STOPPING; journald/syslog/stderr output |
//! | [`cli`] | the command line of the spec |

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
/// Pure history aggregates (moves under `core` once the sans-I/O core lands).
#[path = "core/history.rs"]
pub mod history;
pub mod http;
pub mod hw;
pub mod logging;
pub mod monitor;
pub mod mqtt;
pub mod persist;
pub mod systemd;

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
