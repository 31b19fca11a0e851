//! MQTT: the contract's topic names ([`topics`]), the command parser ([`command`]), the outbox the core loop
//! publishes into ([`outbox`]), the paho client task ([`client`]), the embedded broker ([`broker`]) and Home
//! Assistant discovery ([`discovery`]).

pub mod broker;
pub mod client;
pub mod command;
pub mod discovery;
pub mod outbox;
pub mod topics;

pub use client::{spawn, Event};
pub use outbox::Outbox;
