//! MQTT: the contract's topic names ([`topics`]), the command parser ([`command`]), the paho client task
//! ([`client`]) and the embedded broker ([`broker`]).

pub mod broker;
pub mod client;
pub mod command;
pub mod topics;
