//! Configuration: TOML walked against the schema ([`raw`]) → validation collecting every problem
//! ([`validate`]) → the typed [`Settings`] below, which the rest of the daemon uses. [`mod@load`] picks the file,
//! [`render`] prints the effective configuration, [`reload`] tells which changes need a restart.

pub mod error;
pub mod keys;
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
pub use keys::Reload;
pub use load::{load, load_str, load_str_with, load_with, Environment};
pub use reload::{changes, live_changes, restart_required_changes};
pub use render::{render_effective, render_example};

/// Default configuration file path of the contract.
pub const DEFAULT_PATH: &str = "/etc/greenhoused/greenhoused.toml";

/// The validated, typed configuration: what [`load`] returns. The sections' `Default`s are blanks (zeros, empty
/// strings, the first choice) that validation fills key by key, not the configuration's defaults: those are what
/// `load_str("")` gives. Each key is declared in [`keys::KEYS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub device: DeviceSettings,
    pub mqtt: MqttSettings,
    pub sensor: SensorSettings,
    pub relay: RelaySettings,
    pub control: ControlSettings,
    pub monitor: MonitorSettings,
    pub dli: DliSettings,
    pub homeassistant: HomeAssistantSettings,
    pub http: HttpSettings,
    pub mock: MockSettings,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceSettings {
    /// `[a-z0-9_-]{1,64}`; default: the host name, lower-cased and sanitised.
    pub id: String,
    pub name: String,
}

/// `mqtt.url`: the embedded broker, or one or more remote brokers tried in order (failover).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum BrokerUrl {
    /// Host rumqttd in-process on `MqttSettings::embedded_listen`.
    #[default]
    Embedded,
    /// One or more brokers (never empty): the first that answers is used; on a loss the next ones are tried in
    /// order. All use TLS or none do (validation rejects a mix: failover must not downgrade to plain text).
    Remote(Vec<Endpoint>),
}

/// One remote broker of `mqtt.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A name or an IP address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// `mqtts://` (true) or `mqtt://` (false).
    pub tls: bool,
}

impl Endpoint {
    /// The paho-mqtt server URI: `tcp://host:port` or `ssl://host:port`.
    pub fn server_uri(&self) -> String {
        let scheme = if self.tls { "ssl" } else { "tcp" };
        format!("{scheme}://{}", self.authority())
    }

    /// `host:port`, IPv6 hosts in brackets.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The `mqtt.url` form of one broker: `mqtt://host:port` or `mqtts://host:port`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

impl BrokerUrl {
    /// The remote brokers in failover order; empty for the embedded broker.
    pub fn endpoints(&self) -> &[Endpoint] {
        match self {
            BrokerUrl::Embedded => &[],
            BrokerUrl::Remote(list) => list,
        }
    }

    /// The paho-mqtt server URIs in failover order; empty for the embedded broker.
    pub fn server_uris(&self) -> Vec<String> {
        self.endpoints().iter().map(Endpoint::server_uri).collect()
    }

    /// True when the brokers are reached over TLS (`mqtts://`).
    pub fn tls(&self) -> bool {
        self.endpoints().iter().any(|e| e.tls)
    }
}

/// `embedded`, one URL, or the URLs of a failover list joined by ", ".
impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerUrl::Embedded => f.write_str("embedded"),
            BrokerUrl::Remote(list) => {
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
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
    /// Validated prefix, no wildcards, no leading/trailing '/'; `{device}` already replaced by `device.id`.
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

impl MqttSettings {
    /// A blank (see [`Settings`]).
    pub(crate) fn blank() -> Self {
        MqttSettings {
            url: BrokerUrl::Embedded,
            embedded_listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            client_id: String::new(),
            topic_prefix: String::new(),
            username: None,
            password_file: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            keepalive: Duration::ZERO,
            qos: 0,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SensorSource {
    #[default]
    Bh1750,
    Mqtt,
}

#[derive(Debug, Clone, PartialEq, Default)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStart {
    #[default]
    Off,
    On,
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStop {
    #[default]
    Off,
    On,
    Keep,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RelaySettings {
    pub gpio: u8,
    pub active_low: bool,
    /// Applies when the daemon (re)starts within one boot of the machine.
    pub on_start: OnStart,
    /// Applies instead of `on_start` at the first start after the machine booted (the kernel's boot_id changed).
    pub on_boot: OnStart,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    #[default]
    Off,
    On,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LampLux {
    /// Learn the lamp's contribution from the lux step across each switch.
    #[default]
    Auto,
    /// A fixed contribution in lux; 0 disables compensation.
    Fixed(f64),
}

/// `control.strategy`: what decides the light inside the window in auto mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The lux band `on_below_lux` / `off_above_lux`.
    #[default]
    Threshold,
    /// Light to the daily light integral target of `[dli]` (the band only while no DLI decision is possible).
    Dli,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ControlSettings {
    pub strategy: Strategy,
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

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonitorSettings {
    pub settle: Duration,
    /// 0 disables the `lamp_no_effect` check.
    pub lamp_min_rise_lux: f64,
}

/// `[dli]`: daily light integral accounting and the `dli` strategy's target, lamp figures and prices.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DliSettings {
    /// The crop's daily target in mol m⁻² d⁻¹; 0 = accounting only (needs > 0 with strategy "dli").
    pub target_mol: f64,
    /// PPFD (µmol m⁻² s⁻¹) per lux of sunlight.
    pub sun_umol_per_lux: f64,
    /// The lamp's PPFD at the canopy; 0 = estimate it from the lamp's lux × `lamp_umol_per_lux`.
    pub lamp_ppfd: f64,
    pub lamp_umol_per_lux: f64,
    /// Electrical power of the lamps (W), for kWh and cost; 0 = not reported.
    pub lamp_watts: f64,
    /// A surplus or deficit of up to this much (mol) carries into the next day's target.
    pub carry_max_mol: f64,
    /// Electricity prices by local time, sorted by `from`, never overlapping; other times cost `default_price`.
    pub tariff: Vec<TariffPeriod>,
    /// Price per kWh outside every tariff period.
    pub default_price: f64,
}

/// One `[[dli.tariff]]` period: `[from, to)` in minutes of the local day; `from > to` wraps midnight; never
/// `from == to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TariffPeriod {
    pub from: u16,
    pub to: u16,
    /// Price per kWh in this period.
    pub price: f64,
}

impl TariffPeriod {
    /// True when `minute` (of the day, 0..1440) falls inside the period.
    pub fn contains(&self, minute: u16) -> bool {
        if self.from < self.to {
            (self.from..self.to).contains(&minute)
        } else {
            minute >= self.from || minute < self.to
        }
    }
}

impl DliSettings {
    /// The price per kWh at `minute` of the local day.
    pub fn price_at(&self, minute: u16) -> f64 {
        self.tariff
            .iter()
            .find(|p| p.contains(minute))
            .map_or(self.default_price, |p| p.price)
    }
}

/// `[homeassistant]`: MQTT discovery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HomeAssistantSettings {
    pub discovery: bool,
    /// A valid topic prefix (no wildcards, no leading/trailing '/').
    pub discovery_prefix: String,
    /// Home Assistant's birth/last-will topic (`online` triggers a re-announcement).
    pub status_topic: String,
}

/// `[http]`: the read-only dashboard, `/metrics` and `/api`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSettings {
    /// `None` = off (`listen = ""`).
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Ambient {
    /// Sunrise/sunset curve with clouds.
    #[default]
    Day,
    /// A constant lux.
    Constant(f64),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MockSettings {
    pub ambient: Ambient,
    pub lamp_lux: f64,
    pub time_scale: f64,
    /// A weather CSV (`time,lux`) used instead of `ambient`; the file exists and is readable (its content is
    /// checked by the simulator).
    pub weather: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_url_display_and_server_uri() {
        let plain = Endpoint {
            host: "broker.lan".into(),
            port: 1883,
            tls: false,
        };
        assert_eq!(plain.to_string(), "mqtt://broker.lan:1883");
        assert_eq!(plain.server_uri(), "tcp://broker.lan:1883");
        let v6 = Endpoint {
            host: "fd00::1".into(),
            port: 8883,
            tls: true,
        };
        assert_eq!(v6.to_string(), "mqtts://[fd00::1]:8883");
        assert_eq!(v6.server_uri(), "ssl://[fd00::1]:8883");
        let list = BrokerUrl::Remote(vec![plain.clone(), v6]);
        assert_eq!(
            list.to_string(),
            "mqtt://broker.lan:1883, mqtts://[fd00::1]:8883"
        );
        assert_eq!(
            list.server_uris(),
            vec!["tcp://broker.lan:1883", "ssl://[fd00::1]:8883"]
        );
        assert!(!BrokerUrl::Remote(vec![plain]).tls());
        assert_eq!(BrokerUrl::Embedded.to_string(), "embedded");
        assert!(BrokerUrl::Embedded.server_uris().is_empty());
        assert!(!BrokerUrl::Embedded.tls());
    }

    #[test]
    fn tariff_periods_wrap_midnight_and_default_price_fills_the_rest() {
        let dli = DliSettings {
            target_mol: 0.0,
            sun_umol_per_lux: 0.0185,
            lamp_ppfd: 0.0,
            lamp_umol_per_lux: 0.0135,
            lamp_watts: 0.0,
            carry_max_mol: 0.0,
            tariff: vec![
                TariffPeriod {
                    from: 7 * 60,
                    to: 12 * 60,
                    price: 0.3,
                },
                TariffPeriod {
                    from: 22 * 60,
                    to: 6 * 60,
                    price: 0.1,
                },
            ],
            default_price: 0.2,
        };
        assert_eq!(dli.price_at(7 * 60), 0.3);
        assert_eq!(dli.price_at(12 * 60 - 1), 0.3);
        assert_eq!(dli.price_at(12 * 60), 0.2);
        assert_eq!(dli.price_at(23 * 60), 0.1);
        assert_eq!(dli.price_at(0), 0.1);
        assert_eq!(dli.price_at(6 * 60 - 1), 0.1);
        assert_eq!(dli.price_at(6 * 60), 0.2);
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
