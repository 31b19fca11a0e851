//! Configuration: TOML walked against the schema ([`raw`]) → validation collecting every problem
//! ([`validate`]) → the typed [`Settings`] below, which the rest of the daemon uses. [`mod@load`] picks the file,
//! [`render`] prints the effective configuration, [`reload`] tells which changes need a restart.

pub mod error;
pub mod load;
pub mod raw;
pub mod reload;
pub mod render;
pub mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{ConfigError, Problem};
pub use load::{load, load_str, load_str_with, load_with, Environment};
pub use reload::restart_required_changes;
pub use render::render_effective;

/// Default configuration file path of the contract.
pub const DEFAULT_PATH: &str = "/etc/greenhoused/greenhoused.toml";

/// The validated, typed configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub device: DeviceSettings,
    pub mqtt: MqttSettings,
    pub sensor: SensorSettings,
    pub relay: RelaySettings,
    pub control: ControlSettings,
    pub monitor: MonitorSettings,
    pub mock: MockSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSettings {
    /// `[a-z0-9_-]{1,64}`; default: the host name, lower-cased and sanitised.
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BrokerUrl {
    /// Host rumqttd in-process on `MqttSettings::embedded_listen`.
    Embedded,
    /// `mqtt://host:port` (tls = false) or `mqtts://host:port` (tls = true).
    /// `host` is a name or an IP address, IPv6 without brackets.
    Remote { host: String, port: u16, tls: bool },
}

impl BrokerUrl {
    /// The paho-mqtt server URI (`tcp://host:port` / `ssl://host:port`); `None` for the embedded broker.
    pub fn server_uri(&self) -> Option<String> {
        match self {
            BrokerUrl::Embedded => None,
            BrokerUrl::Remote { tls, .. } => {
                let scheme = if *tls { "ssl" } else { "tcp" };
                Some(format!("{scheme}://{}", self.authority()))
            }
        }
    }

    /// `host:port`, IPv6 hosts in brackets; empty for the embedded broker.
    fn authority(&self) -> String {
        match self {
            BrokerUrl::Embedded => String::new(),
            BrokerUrl::Remote { host, port, .. } if host.contains(':') => {
                format!("[{host}]:{port}")
            }
            BrokerUrl::Remote { host, port, .. } => format!("{host}:{port}"),
        }
    }
}

/// The `mqtt.url` form: `embedded`, `mqtt://host:port` or `mqtts://host:port`.
impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerUrl::Embedded => f.write_str("embedded"),
            BrokerUrl::Remote { tls, .. } => {
                let scheme = if *tls { "mqtts" } else { "mqtt" };
                write!(f, "{scheme}://{}", self.authority())
            }
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct MqttSettings {
    pub url: BrokerUrl,
    pub embedded_listen: SocketAddr,
    /// Effective client id (default `greenhoused-<device.id>`).
    pub client_id: String,
    /// Validated prefix, no wildcards, no leading/trailing '/'.
    pub topic_prefix: String,
    pub username: Option<String>,
    /// Where the password came from (for display), already read into `password`.
    pub password_file: Option<PathBuf>,
    /// The secret itself; never printed (see the manual `Debug`).
    pub password: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub keepalive: Duration,
    /// 0, 1 or 2.
    pub qos: i32,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("url", &self.url)
            .field("embedded_listen", &self.embedded_listen)
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("keepalive", &self.keepalive)
            .field("qos", &self.qos)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorSource {
    Bh1750,
    Mqtt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SensorSettings {
    pub source: SensorSource,
    pub i2c_bus: PathBuf,
    /// 0x23 or 0x5c.
    pub address: u8,
    pub interval: Duration,
    /// Effective topic for `source = "mqtt"` (default `<prefix>/luminosity`).
    pub topic: String,
    pub stale_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStart {
    Off,
    On,
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    Off,
    On,
    Keep,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelaySettings {
    pub gpio: u8,
    pub active_low: bool,
    pub on_start: OnStart,
    pub on_stop: OnStop,
}

/// Photoperiod window in local time, minutes since midnight. `start == end` never occurs (rejected);
/// `start > end` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_min: u16,
    pub end_min: u16,
}

/// The `control.window` form `HH:MM-HH:MM`.
impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, e) = (self.start_min, self.end_min);
        write!(f, "{:02}:{:02}-{:02}:{:02}", s / 60, s % 60, e / 60, e % 60)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    Off,
    On,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LampLux {
    /// Learn the lamp's contribution from the lux step across each switch.
    Auto,
    /// A fixed contribution in lux; 0 disables compensation.
    Fixed(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ControlSettings {
    pub on_below_lux: f64,
    pub off_above_lux: f64,
    pub min_on: Duration,
    pub min_off: Duration,
    /// `None` = always allowed.
    pub window: Option<Window>,
    pub on_sensor_failure: FailurePolicy,
    /// `None` = manual override lasts until "auto".
    pub override_max: Option<Duration>,
    pub lamp_lux: LampLux,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSettings {
    pub settle: Duration,
    /// 0 disables the `lamp_no_effect` check.
    pub lamp_min_rise_lux: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ambient {
    /// Sunrise/sunset curve with clouds.
    Day,
    /// A constant lux.
    Constant(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MockSettings {
    pub ambient: Ambient,
    pub lamp_lux: f64,
    pub time_scale: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_url_display_and_server_uri() {
        let plain = BrokerUrl::Remote {
            host: "broker.lan".into(),
            port: 1883,
            tls: false,
        };
        assert_eq!(plain.to_string(), "mqtt://broker.lan:1883");
        assert_eq!(plain.server_uri().as_deref(), Some("tcp://broker.lan:1883"));
        let v6 = BrokerUrl::Remote {
            host: "fd00::1".into(),
            port: 8883,
            tls: true,
        };
        assert_eq!(v6.to_string(), "mqtts://[fd00::1]:8883");
        assert_eq!(v6.server_uri().as_deref(), Some("ssl://[fd00::1]:8883"));
        assert_eq!(BrokerUrl::Embedded.to_string(), "embedded");
        assert_eq!(BrokerUrl::Embedded.server_uri(), None);
    }

    #[test]
    fn window_display() {
        let w = Window {
            start_min: 22 * 60 + 30,
            end_min: 6 * 60 + 5,
        };
        assert_eq!(w.to_string(), "22:30-06:05");
    }
}
