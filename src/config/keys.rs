//! Every configuration key, declared once: its path, TOML type with default and bounds ([`Kind`]), doc line,
//! whether a reload applies it live ([`Reload`]), and how it moves between its TOML value and its [`Settings`]
//! field (`set`/`get`). Everything else derives from [`KEYS`] and [`SECTIONS`]: the TOML walk (unknown keys, wrong
//! types: [`super::raw`]), validation ([`super::validate`]: bounds here, key syntax in `set`, cross-key checks in
//! each section's `check`), the `--check-config` output and the example file ([`super::render`]) and the SIGHUP
//! classification ([`super::reload`]).
//!
//! Adding a key: one [`Key`] entry here (in the section's order) and its field in [`Settings`]; then regenerate
//! config/greenhoused.toml (`GREENHOUSED_BLESS=1 cargo test --test config_fixtures example`).

use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use super::validate::{self as v, Cx, Range, DAY_S, MAX_DLI_MOL, MAX_LUX, MAX_MOCK_LUX, MAX_PRICE};
use super::{
    Ambient, FailurePolicy, LampLux, MqttSettings, OnStart, OnStop, SensorSource, Settings,
    Strategy,
};
use crate::hw::bh1750::WORST_CASE_CYCLE;

/// When a changed value takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// A reload (SIGHUP, `systemctl reload greenhoused`) applies it.
    Live,
    /// Only a restart applies it; a reload logs that it changed.
    Restart,
}

/// The TOML type a key takes, with its default (what an absent key means) and, for numbers, its bounds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A string.
    Text(&'static str),
    /// A finite number (an integer is accepted), within the range.
    Number(f64, Range),
    /// A whole number within `min..=max` (`note` follows the range in the message); `hex`: shown as 0x...
    Integer {
        default: i64,
        min: i64,
        max: i64,
        note: &'static str,
        hex: bool,
    },
    Bool(bool),
    /// One word of a list (checked by the key's `set`, which holds the list).
    Choice(&'static str),
    /// A number or a word (`control.lamp_lux`, `mock.ambient`); the default is the word.
    NumberOrText(&'static str),
    /// A string or a list of strings (`mqtt.url`).
    TextOrList(&'static str),
    /// An array of tables with these keys and types (`[[dli.tariff]]`; whether a key is required and its
    /// bounds are checked by `set`); none by default.
    Tables(&'static [(&'static str, Kind)]),
}

impl Kind {
    /// The value an absent key takes.
    pub fn default_value(&self) -> Value {
        match *self {
            Kind::Text(t) | Kind::Choice(t) | Kind::NumberOrText(t) | Kind::TextOrList(t) => {
                Value::String(t.to_string())
            }
            Kind::Number(x, _) => Value::Float(x),
            Kind::Integer { default, .. } => Value::Integer(default),
            Kind::Bool(b) => Value::Boolean(b),
            Kind::Tables(_) => Value::Array(Vec::new()),
        }
    }

    /// The type a value must have, as the walk says it (`None`: the value has it). Numbers are also checked to be
    /// finite here; list elements and table entries are checked by [`super::raw`].
    pub fn expected(&self) -> &'static str {
        match self {
            Kind::Text(_) | Kind::Choice(_) => "a string (in quotes)",
            Kind::Number(..) => "a number",
            Kind::Integer { .. } => "a whole number",
            Kind::Bool(_) => "true or false (without quotes)",
            Kind::NumberOrText(_) => "a number or a string",
            Kind::TextOrList(_) => "a string (in quotes) or a list of strings",
            Kind::Tables(_) => {
                "a list of tables (write each one under its own [[section.key]] header)"
            }
        }
    }

    /// The declared bounds for people (`None` when the key's `set` checks its values).
    pub fn bounds(&self) -> Option<String> {
        match self {
            Kind::Number(_, range) => Some(range.describe()),
            Kind::Integer { min, max, note, .. } if *min > i64::MIN && *max < i64::MAX => {
                Some(format!("{min} to {max}{note}"))
            }
            _ => None,
        }
    }

    /// True when `value` has this kind's TOML type.
    pub fn accepts(&self, value: &Value) -> bool {
        matches!(
            (self, value),
            (Kind::Text(_) | Kind::Choice(_), Value::String(_))
                | (Kind::Number(..), Value::Integer(_) | Value::Float(_))
                | (Kind::Integer { .. }, Value::Integer(_))
                | (Kind::Bool(_), Value::Boolean(_))
                | (
                    Kind::NumberOrText(_),
                    Value::String(_) | Value::Integer(_) | Value::Float(_)
                )
                | (Kind::TextOrList(_), Value::String(_) | Value::Array(_))
                | (Kind::Tables(_), Value::Array(_))
        )
    }
}

/// One configuration key.
pub struct Key {
    /// `section.key`.
    pub path: &'static str,
    pub kind: Kind,
    pub reload: Reload,
    /// What it does, for people: printed as comments by `--check-config` and in the example file.
    pub doc: &'static str,
    /// Stores the value (the file's or the default, of the right type and within bounds) into its field;
    /// reports through `cx` what else is wrong with it (syntax of a window, a URL, an unreadable file).
    pub set: fn(&mut Settings, &Value, &mut Cx),
    /// The field as the TOML value that loads back to it.
    pub get: fn(&Settings) -> Value,
}

impl Key {
    pub fn section(&self) -> &'static str {
        self.path.split_once('.').map_or(self.path, |(s, _)| s)
    }

    pub fn name(&self) -> &'static str {
        self.path.split_once('.').map_or(self.path, |(_, k)| k)
    }
}

/// A `[section]`: its doc line and its cross-key checks, which run after all its keys are set (keys of earlier
/// sections are set too).
pub struct Section {
    pub name: &'static str,
    pub doc: &'static str,
    pub check: fn(&Settings, &mut Cx),
}

/// The keys of `section`, in order.
pub fn keys_of(section: &str) -> impl Iterator<Item = &'static Key> + '_ {
    KEYS.iter().filter(move |k| k.section() == section)
}

/// The key at `path`.
pub fn key(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// The settings every key is set into: blanks, each replaced by its key's value.
pub(crate) fn blank() -> Settings {
    Settings {
        device: Default::default(),
        mqtt: MqttSettings::blank(),
        sensor: Default::default(),
        relay: Default::default(),
        control: Default::default(),
        monitor: Default::default(),
        dli: Default::default(),
        homeassistant: Default::default(),
        http: Default::default(),
        mock: Default::default(),
    }
}

// Value conversions. `set` only sees values of its kind's type (checked by the walk), so the fallbacks below
// are never used.

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Integer(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn integer(value: &Value) -> i64 {
    value.as_integer().unwrap_or_default()
}

fn flag(value: &Value) -> bool {
    value.as_bool().unwrap_or_default()
}

/// Seconds, within bounds (finite, >= 0, small), so `from_secs_f64` cannot panic.
fn secs(value: &Value) -> Duration {
    Duration::from_secs_f64(number(value).max(0.0))
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

fn float(x: f64) -> Value {
    Value::Float(x)
}

/// Whole seconds as an integer, otherwise a float.
fn seconds(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        Value::Integer(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    } else {
        Value::Float(d.as_secs_f64())
    }
}

fn path(p: Option<&Path>) -> Value {
    string(
        &p.map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// The word of `value` in a choice table.
fn word<T: PartialEq>(table: &[(&'static str, T)], value: T) -> Value {
    string(
        table
            .iter()
            .find(|(_, t)| *t == value)
            .map_or("", |(w, _)| w),
    )
}

const SOURCES: &[(&str, SensorSource)] = &[
    ("bh1750", SensorSource::Bh1750),
    ("mqtt", SensorSource::Mqtt),
];
const ON_START: &[(&str, OnStart)] = &[
    ("off", OnStart::Off),
    ("on", OnStart::On),
    ("restore", OnStart::Restore),
];
const ON_STOP: &[(&str, OnStop)] = &[
    ("off", OnStop::Off),
    ("on", OnStop::On),
    ("keep", OnStop::Keep),
];
const STRATEGIES: &[(&str, Strategy)] =
    &[("threshold", Strategy::Threshold), ("dli", Strategy::Dli)];
const FAILURE: &[(&str, FailurePolicy)] = &[
    ("off", FailurePolicy::Off),
    ("on", FailurePolicy::On),
    ("keep", FailurePolicy::Keep),
];

const LUX: Range =
    Range::closed(0.0, MAX_LUX, " lux").because(" (the BH1750 tops out at about 121 klx)");
const MOCK_LUX: Range = Range::closed(0.0, MAX_MOCK_LUX, " lux");
const MOL: Range = Range::closed(0.0, MAX_DLI_MOL, " mol m⁻² d⁻¹");
const PER_LUX: Range = Range::open(0.0, 1.0, " µmol m⁻² s⁻¹ per lux");
const PRICE: Range = Range::closed(0.0, MAX_PRICE, " per kWh");
const DWELL: Range = Range::closed(0.0, DAY_S, " s");
const NO_FILE: Kind = Kind::Text("");

/// The sections in file order, with their cross-key checks.
pub static SECTIONS: &[Section] = &[
    Section {
        name: "device",
        doc: "",
        check: |_, _| {},
    },
    Section {
        name: "mqtt",
        doc: "",
        check: v::check_mqtt,
    },
    Section {
        name: "sensor",
        doc: "",
        check: v::check_sensor,
    },
    Section {
        name: "relay",
        doc: "",
        check: |_, _| {},
    },
    Section {
        name: "control",
        doc: "",
        check: v::check_control,
    },
    Section {
        name: "monitor",
        doc: "",
        check: |_, _| {},
    },
    Section {
        name: "dli",
        doc: "Daily light integral (DLI): the light the plants received, in mol m⁻² d⁻¹, counted per light-day\n\
              (from the start of control.window). Accounting is always on; control.strategy = \"dli\" also\n\
              lights to target_mol.",
        check: v::check_dli,
    },
    Section {
        name: "homeassistant",
        doc: "",
        check: |_, _| {},
    },
    Section {
        name: "http",
        doc: "",
        check: |_, _| {},
    },
    Section {
        name: "mock",
        doc: "Only used with --mock-hardware (simulated sensor, relay and light).",
        check: |_, _| {},
    },
];

use Reload::{Live, Restart};

/// Every key of the contract, section by section in [`SECTIONS`] order.
pub static KEYS: &[Key] = &[
    // [device]
    Key {
        path: "device.id",
        kind: Kind::Text(""),
        reload: Restart,
        doc: "Identifies this greenhouse in the MQTT client id, discovery ids and {device} of topic_prefix:\n\
              1 to 64 characters of a-z, 0-9, '_', '-'. \"\" = the host name, lower-cased, other characters\n\
              replaced by '-' (\"greenhouse\" if that leaves nothing).",
        set: |s, x, cx| s.device.id = v::device_id(text(x), cx),
        get: |s| string(&s.device.id),
    },
    Key {
        path: "device.name",
        kind: Kind::Text("Greenhouse"),
        reload: Restart,
        doc: "Human-readable name.",
        set: |s, x, cx| s.device.name = v::device_name(text(x), cx),
        get: |s| string(&s.device.name),
    },
    // [mqtt]
    Key {
        path: "mqtt.url",
        kind: Kind::TextOrList("embedded"),
        reload: Restart,
        doc: "Broker: \"embedded\" hosts a small broker inside the daemon (on embedded_listen); or an external\n\
              broker as \"mqtt://host[:port]\" (default port 1883) or \"mqtts://host[:port]\" (TLS, default port\n\
              8883); IPv6 hosts in brackets: \"mqtt://[fd00::1]:1883\". A list [\"mqtt://a:1883\",\n\
              \"mqtt://b:1883\"] fails over between brokers: each (re)connect tries them in that order (all\n\
              mqtts:// or all mqtt://; \"embedded\" only alone).",
        set: |s, x, cx| {
            if let Some(url) = v::broker_urls(x, cx) {
                s.mqtt.url = url;
            }
        },
        get: |s| match s.mqtt.url.endpoints() {
            [_, _, ..] => Value::Array(
                s.mqtt.url.endpoints().iter().map(|e| string(&e.to_string())).collect(),
            ),
            _ => string(&s.mqtt.url.to_string()),
        },
    },
    Key {
        path: "mqtt.embedded_listen",
        kind: Kind::Text("127.0.0.1:1883"),
        reload: Restart,
        doc: "Socket address of the embedded broker (only with url = \"embedded\"). \"0.0.0.0:1883\" serves the LAN.",
        set: |s, x, cx| {
            if let Some(a) = v::socket_address(text(x), "127.0.0.1:1883", cx) {
                s.mqtt.embedded_listen = a;
            }
        },
        get: |s| string(&s.mqtt.embedded_listen.to_string()),
    },
    Key {
        path: "mqtt.client_id",
        kind: Kind::Text(""),
        reload: Restart,
        doc: "MQTT client id; \"\" = \"greenhoused-<device.id>\". Must be unique on the broker.",
        set: |s, x, cx| s.mqtt.client_id = v::client_id(text(x), &s.device.id, cx),
        get: |s| string(&s.mqtt.client_id),
    },
    Key {
        path: "mqtt.topic_prefix",
        kind: Kind::Text("laboratory/greenhouse"),
        reload: Restart,
        doc: "Every topic starts with this: P/luminosity, P/light, P/light/set, P/state, ... No '+' or '#', no\n\
              leading or trailing '/', no empty levels. \"{device}\" is replaced by device.id: a fleet on one\n\
              broker uses \"greenhouses/{device}\". The default keeps the original tutorial's topics working.",
        set: |s, x, cx| {
            if let Some(p) = v::topic_prefix(text(x), &s.device.id, cx) {
                s.mqtt.topic_prefix = p;
            }
        },
        get: |s| string(&s.mqtt.topic_prefix),
    },
    Key {
        path: "mqtt.username",
        kind: Kind::Text(""),
        reload: Restart,
        doc: "User name for the broker; \"\" = none.",
        set: |s, x, _| s.mqtt.username = v::non_empty(text(x)).map(str::to_string),
        get: |s| string(s.mqtt.username.as_deref().unwrap_or("")),
    },
    Key {
        path: "mqtt.password_file",
        kind: NO_FILE,
        reload: Restart,
        doc: "File holding the broker password (one line; a trailing newline is ignored). Needs username.\n\
              \"\" = $CREDENTIALS_DIRECTORY/mqtt-password when systemd passes that credential\n\
              (LoadCredential=mqtt-password:/etc/greenhoused/mqtt-password), else no password.",
        set: |s, x, cx| (s.mqtt.password_file, s.mqtt.password) = v::password(text(x), cx),
        get: |s| path(s.mqtt.password_file.as_deref()),
    },
    Key {
        path: "mqtt.ca_file",
        kind: NO_FILE,
        reload: Restart,
        doc: "TLS (only with mqtts:// urls): CA bundle (PEM) to verify the broker; \"\" = the system's CA store.",
        set: |s, x, cx| s.mqtt.ca_file = v::tls_file(text(x), &s.mqtt.url, cx),
        get: |s| path(s.mqtt.ca_file.as_deref()),
    },
    Key {
        path: "mqtt.cert_file",
        kind: NO_FILE,
        reload: Restart,
        doc: "TLS client certificate (PEM), for brokers that require client certificates.",
        set: |s, x, cx| s.mqtt.cert_file = v::tls_file(text(x), &s.mqtt.url, cx),
        get: |s| path(s.mqtt.cert_file.as_deref()),
    },
    Key {
        path: "mqtt.key_file",
        kind: NO_FILE,
        reload: Restart,
        doc: "The client certificate's private key (PEM); needs cert_file.",
        set: |s, x, cx| s.mqtt.key_file = v::tls_file(text(x), &s.mqtt.url, cx),
        get: |s| path(s.mqtt.key_file.as_deref()),
    },
    Key {
        path: "mqtt.keepalive_s",
        kind: Kind::Integer {
            default: 30,
            min: 5,
            max: 3600,
            note: " s",
            hex: false,
        },
        reload: Restart,
        doc: "Seconds between keep-alive pings; the broker declares the daemon offline after 1.5 × this.",
        set: |s, x, _| s.mqtt.keepalive = Duration::from_secs(integer(x).unsigned_abs()),
        get: |s| seconds(s.mqtt.keepalive),
    },
    Key {
        path: "mqtt.qos",
        kind: Kind::Integer {
            default: 1,
            min: 0,
            max: 2,
            note: "",
            hex: false,
        },
        reload: Restart,
        doc: "MQTT quality of service for published and subscribed messages: 0, 1 or 2.",
        set: |s, x, _| s.mqtt.qos = integer(x) as i32,
        get: |s| Value::Integer(i64::from(s.mqtt.qos)),
    },
    // [sensor]
    Key {
        path: "sensor.source",
        kind: Kind::Choice("bh1750"),
        reload: Restart,
        doc: "\"bh1750\": read the BH1750 over I2C. \"mqtt\": take plain-number lux readings from `topic`\n\
              (another node).",
        set: |s, x, cx| {
            if let Some(c) = cx.choice(x, SOURCES) {
                s.sensor.source = c;
            }
        },
        get: |s| word(SOURCES, s.sensor.source),
    },
    Key {
        path: "sensor.i2c_bus",
        kind: Kind::Text("/dev/i2c-1"),
        reload: Restart,
        doc: "I2C bus device of the BH1750 (enable I2C with raspi-config; the daemon's user needs the i2c group).",
        set: |s, x, cx| s.sensor.i2c_bus = v::i2c_bus(text(x), cx),
        get: |s| path(Some(&s.sensor.i2c_bus)),
    },
    Key {
        path: "sensor.address",
        kind: Kind::Integer {
            default: 0x23,
            min: i64::MIN,
            max: i64::MAX,
            note: "",
            hex: true,
        },
        reload: Restart,
        doc: "BH1750 address: 0x23 (ADDR pin low or open) or 0x5c (ADDR pin high).",
        set: |s, x, cx| {
            if let Some(a) = v::bh1750_address(integer(x), cx) {
                s.sensor.address = a;
            }
        },
        get: |s| Value::Integer(i64::from(s.sensor.address)),
    },
    Key {
        path: "sensor.interval_s",
        kind: Kind::Number(
            1.0,
            Range::closed(WORST_CASE_CYCLE.as_millis() as f64 / 1000.0, 3600.0, " s")
                .because_low(" to leave room for the worst-case auto-ranged BH1750 conversion"),
        ),
        reload: Restart,
        doc: "Seconds between readings; the lower bound leaves room for the worst-case auto-ranged conversion.",
        set: |s, x, _| s.sensor.interval = secs(x),
        get: |s| seconds(s.sensor.interval),
    },
    Key {
        path: "sensor.topic",
        kind: Kind::Text(""),
        reload: Restart,
        doc: "source = \"mqtt\" only: topic to read lux from; \"\" = \"<topic_prefix>/luminosity\". No wildcards.",
        set: |s, x, cx| s.sensor.topic = v::sensor_topic(text(x), &s.mqtt.topic_prefix, cx),
        get: |s| string(&s.sensor.topic),
    },
    Key {
        path: "sensor.stale_after_s",
        kind: Kind::Number(10.0, Range::open(0.0, DAY_S, " s")),
        reload: Restart,
        doc: "Seconds without a good reading after which the reading is stale (alert sensor_stale, and\n\
              control.on_sensor_failure applies). Must be greater than interval_s.",
        set: |s, x, _| s.sensor.stale_after = secs(x),
        get: |s| seconds(s.sensor.stale_after),
    },
    // [relay]
    Key {
        path: "relay.gpio",
        kind: Kind::Integer {
            default: 17,
            min: 0,
            max: 27,
            note: " (BCM line number of the 40-pin header)",
            hex: false,
        },
        reload: Restart,
        doc: "BCM GPIO line driving the relay (GPIO 17 is physical pin 11). The user needs the gpio group.",
        set: |s, x, _| s.relay.gpio = integer(x) as u8,
        get: |s| Value::Integer(i64::from(s.relay.gpio)),
    },
    Key {
        path: "relay.active_low",
        kind: Kind::Bool(false),
        reload: Restart,
        doc: "true when the relay switches on with the line LOW (most cheap relay boards are active-low).",
        set: |s, x, _| s.relay.active_low = flag(x),
        get: |s| Value::Boolean(s.relay.active_low),
    },
    Key {
        path: "relay.on_start",
        kind: Kind::Choice("off"),
        reload: Restart,
        doc: "Light state when the daemon (re)starts within one boot of the machine: \"off\", \"on\", or\n\
              \"restore\" (the last state, persisted under the state directory). The line is set before it is\n\
              driven, so the relay does not glitch.",
        set: |s, x, cx| {
            if let Some(c) = cx.choice(x, ON_START) {
                s.relay.on_start = c;
            }
        },
        get: |s| word(ON_START, s.relay.on_start),
    },
    Key {
        path: "relay.on_boot",
        kind: Kind::Choice("off"),
        reload: Restart,
        doc: "Light state at the first start after the machine booted (power cut, reboot), instead of\n\
              on_start: \"off\", \"on\" or \"restore\".",
        set: |s, x, cx| {
            if let Some(c) = cx.choice(x, ON_START) {
                s.relay.on_boot = c;
            }
        },
        get: |s| word(ON_START, s.relay.on_boot),
    },
    Key {
        path: "relay.on_stop",
        kind: Kind::Choice("off"),
        reload: Restart,
        doc: "Light state when the daemon stops (SIGTERM/SIGINT): \"off\", \"on\", or \"keep\" (leave it as it is).",
        set: |s, x, cx| {
            if let Some(c) = cx.choice(x, ON_STOP) {
                s.relay.on_stop = c;
            }
        },
        get: |s| word(ON_STOP, s.relay.on_stop),
    },
    // [control]
    Key {
        path: "control.strategy",
        kind: Kind::Choice("threshold"),
        reload: Live,
        doc: "\"threshold\": the lux band below decides. \"dli\": light to the daily light integral target of\n\
              [dli] (the band then only matters while no DLI decision is possible); needs dli.target_mol > 0\n\
              and a window that leaves at least 6 h of darkness in one piece.",
        set: |s, x, cx| {
            if let Some(c) = cx.choice(x, STRATEGIES) {
                s.control.strategy = c;
            }
        },
        get: |s| word(STRATEGIES, s.control.strategy),
    },
    Key {
        path: "control.on_below_lux",
        kind: Kind::Number(450.0, LUX),
        reload: Live,
        doc: "Hysteresis band, in lux: the light goes ON when the ambient light falls below on_below_lux and\n\
              OFF when it rises above off_above_lux; in between nothing changes.",
        set: |s, x, _| s.control.on_below_lux = number(x),
        get: |s| float(s.control.on_below_lux),
    },
    Key {
        path: "control.off_above_lux",
        kind: Kind::Number(550.0, LUX),
        reload: Live,
        doc: "Must be greater than on_below_lux.",
        set: |s, x, _| s.control.off_above_lux = number(x),
        get: |s| float(s.control.off_above_lux),
    },
    Key {
        path: "control.min_on_s",
        kind: Kind::Number(60.0, DWELL),
        reload: Live,
        doc: "Minimum seconds the light stays on / off before the rule may switch it again (protects the\n\
              relay and the lamp, prevents flapping). Manual commands are not delayed by them.",
        set: |s, x, _| s.control.min_on = secs(x),
        get: |s| seconds(s.control.min_on),
    },
    Key {
        path: "control.min_off_s",
        kind: Kind::Number(60.0, DWELL),
        reload: Live,
        doc: "",
        set: |s, x, _| s.control.min_off = secs(x),
        get: |s| seconds(s.control.min_off),
    },
    Key {
        path: "control.window",
        kind: Kind::Text("06:00-22:00"),
        reload: Live,
        doc: "Photoperiod in local time \"HH:MM-HH:MM\"; outside it the rule keeps the light off. May wrap\n\
              midnight (\"20:00-02:00\"); \"\" = no window (light allowed at any time).",
        set: |s, x, cx| match v::parse_window(text(x)) {
            Ok(w) => s.control.window = w,
            Err(why) => cx.fail(why),
        },
        get: |s| string(&s.control.window.map(|w| w.to_string()).unwrap_or_default()),
    },
    Key {
        path: "control.on_sensor_failure",
        kind: Kind::Choice("off"),
        reload: Live,
        doc: "What the light does once the reading is stale (sensor missing or failing): \"off\", \"on\" or\n\
              \"keep\".",
        set: |s, x, cx| {
            if let Some(c) = cx.choice(x, FAILURE) {
                s.control.on_sensor_failure = c;
            }
        },
        get: |s| word(FAILURE, s.control.on_sensor_failure),
    },
    Key {
        path: "control.override_max_s",
        kind: Kind::Number(0.0, Range::closed(0.0, 7.0 * DAY_S, " s")),
        reload: Live,
        doc: "Seconds after which a manual on/off/toggle (P/light/set) expires and the rule takes over again;\n\
              0 = the override lasts until \"auto\" is sent. At most 7 days.",
        set: |s, x, _| s.control.override_max = Some(secs(x)).filter(|d| !d.is_zero()),
        get: |s| seconds(s.control.override_max.unwrap_or_default()),
    },
    Key {
        path: "control.lamp_lux",
        kind: Kind::NumberOrText("auto"),
        reload: Live,
        doc: "The lamp's own light at the sensor, subtracted while the lamp is on before the rule compares,\n\
              so that a sensor that sees the lamp does not make the rule flap. \"auto\" learns it from the lux\n\
              step at each switch; a number (lux) fixes it; 0 disables the compensation.",
        set: |s, x, cx| {
            if let Some(l) = v::lamp_lux(x, LUX, cx) {
                s.control.lamp_lux = l;
            }
        },
        get: |s| match s.control.lamp_lux {
            LampLux::Auto => string("auto"),
            LampLux::Fixed(lux) => float(lux),
        },
    },
    // [monitor]
    Key {
        path: "monitor.settle_s",
        kind: Kind::Number(5.0, Range::open(0.0, 3600.0, " s")),
        reload: Live,
        doc: "Seconds the light gets to follow the rule before a mismatch raises the rule_mismatch alert.",
        set: |s, x, _| s.monitor.settle = secs(x),
        get: |s| seconds(s.monitor.settle),
    },
    Key {
        path: "monitor.lamp_min_rise_lux",
        kind: Kind::Number(0.0, LUX),
        reload: Live,
        doc: "> 0: after switching on, lux must rise by at least this much, else the lamp_no_effect alert is\n\
              raised. 0 disables that check.",
        set: |s, x, _| s.monitor.lamp_min_rise_lux = number(x),
        get: |s| float(s.monitor.lamp_min_rise_lux),
    },
    // [dli]
    Key {
        path: "dli.target_mol",
        kind: Kind::Number(0.0, MOL),
        reload: Live,
        doc: "The crop's daily target (lettuce ~17, herbs ~12, tomato 20-25); 0 = accounting only.",
        set: |s, x, _| s.dli.target_mol = number(x),
        get: |s| float(s.dli.target_mol),
    },
    Key {
        path: "dli.sun_umol_per_lux",
        kind: Kind::Number(0.0185, PER_LUX),
        reload: Live,
        doc: "PPFD (µmol m⁻² s⁻¹) per lux of sunlight at the sensor.",
        set: |s, x, _| s.dli.sun_umol_per_lux = number(x),
        get: |s| float(s.dli.sun_umol_per_lux),
    },
    Key {
        path: "dli.lamp_ppfd",
        kind: Kind::Number(
            0.0,
            Range::closed(0.0, 5000.0, " µmol m⁻² s⁻¹").because(" (full sun is about 2000)"),
        ),
        reload: Live,
        doc: "The lamp's PPFD at the canopy (measure once with a quantum meter); 0 = estimate it from the\n\
              lamp's lux at the sensor × lamp_umol_per_lux.",
        set: |s, x, _| s.dli.lamp_ppfd = number(x),
        get: |s| float(s.dli.lamp_ppfd),
    },
    Key {
        path: "dli.lamp_umol_per_lux",
        kind: Kind::Number(0.0135, PER_LUX),
        reload: Live,
        doc: "Only for that estimate: HPS ~0.0125, white LED 0.014-0.018.",
        set: |s, x, _| s.dli.lamp_umol_per_lux = number(x),
        get: |s| float(s.dli.lamp_umol_per_lux),
    },
    Key {
        path: "dli.lamp_watts",
        kind: Kind::Number(0.0, Range::closed(0.0, 1_000_000.0, " W")),
        reload: Live,
        doc: "Electrical power of the lamps in W, for kWh and cost; 0 = not reported.",
        set: |s, x, _| s.dli.lamp_watts = number(x),
        get: |s| float(s.dli.lamp_watts),
    },
    Key {
        path: "dli.carry_max_mol",
        kind: Kind::Number(0.0, MOL),
        reload: Live,
        doc: "A surplus or deficit of up to this much carries into the next day's target.",
        set: |s, x, _| s.dli.carry_max_mol = number(x),
        get: |s| float(s.dli.carry_max_mol),
    },
    Key {
        path: "dli.default_price",
        kind: Kind::Number(0.0, PRICE),
        reload: Live,
        doc: "Price per kWh (any currency) at times no [[dli.tariff]] period covers.",
        set: |s, x, _| s.dli.default_price = number(x),
        get: |s| float(s.dli.default_price),
    },
    Key {
        path: "dli.tariff",
        kind: Kind::Tables(&[
            ("from", Kind::Text("")),
            ("to", Kind::Text("")),
            ("price", Kind::Number(0.0, PRICE)),
        ]),
        reload: Live,
        doc: "Electricity prices by local time, one [[dli.tariff]] table per period (none by default):\n\
              from/to \"HH:MM\" (a period may wrap midnight, \"24:00\" ends one at midnight; periods must not\n\
              overlap) and price per kWh. The \"dli\" strategy puts lamp time into the cheapest hours that\n\
              still reach the target. For example:\n\
              [[dli.tariff]]\n\
              from = \"07:00\"\n\
              to = \"23:00\"\n\
              price = 0.30",
        set: |s, x, cx| {
            if let Some(t) = v::tariff(x, cx) {
                s.dli.tariff = t;
            }
        },
        get: |s| {
            Value::Array(
                s.dli
                    .tariff
                    .iter()
                    .map(|p| {
                        let mut t = Table::new();
                        t.insert("from".into(), string(&v::hhmm(p.from)));
                        t.insert("to".into(), string(&v::hhmm(p.to)));
                        t.insert("price".into(), float(p.price));
                        Value::Table(t)
                    })
                    .collect(),
            )
        },
    },
    // [homeassistant]
    Key {
        path: "homeassistant.discovery",
        kind: Kind::Bool(true),
        reload: Restart,
        doc: "Home Assistant MQTT discovery: one device with its entities, announced on\n\
              <discovery_prefix>/device/greenhoused_<device.id>/config. false removes the device.",
        set: |s, x, _| s.homeassistant.discovery = flag(x),
        get: |s| Value::Boolean(s.homeassistant.discovery),
    },
    Key {
        path: "homeassistant.discovery_prefix",
        kind: Kind::Text("homeassistant"),
        reload: Restart,
        doc: "Home Assistant's discovery prefix (its MQTT integration's setting). Same rules as topic_prefix.",
        set: |s, x, cx| match v::check_topic_prefix(text(x)) {
            Ok(()) => s.homeassistant.discovery_prefix = text(x).to_string(),
            Err(why) => cx.fail(why),
        },
        get: |s| string(&s.homeassistant.discovery_prefix),
    },
    Key {
        path: "homeassistant.status_topic",
        kind: Kind::Text("homeassistant/status"),
        reload: Restart,
        doc: "Home Assistant's birth topic: \"online\" there makes the daemon announce itself again.",
        set: |s, x, cx| {
            if let Some(t) = v::status_topic(text(x), cx) {
                s.homeassistant.status_topic = t;
            }
        },
        get: |s| string(&s.homeassistant.status_topic),
    },
    // [http]
    Key {
        path: "http.listen",
        kind: Kind::Text("127.0.0.1:8080"),
        reload: Restart,
        doc: "Read-only dashboard (/), Prometheus /metrics and JSON /api on this socket address; \"\" = off.\n\
              \"0.0.0.0:8080\" serves the LAN. A port in use is logged and the daemon runs without HTTP.",
        set: |s, x, cx| {
            s.http.listen = match v::non_empty(text(x)) {
                None => None,
                Some(a) => v::socket_address(a, "127.0.0.1:8080", cx),
            }
        },
        get: |s| string(&s.http.listen.map(|a| a.to_string()).unwrap_or_default()),
    },
    // [mock]
    Key {
        path: "mock.ambient",
        kind: Kind::NumberOrText("day"),
        reload: Restart,
        doc: "Ambient light: \"day\" (sunrise/sunset curve with clouds) or a constant lux, e.g. \"300\".",
        set: |s, x, cx| {
            if let Some(a) = v::ambient(x, MOCK_LUX, cx) {
                s.mock.ambient = a;
            }
        },
        get: |s| match s.mock.ambient {
            Ambient::Day => string("day"),
            Ambient::Constant(lux) => string(&v::num(lux)),
        },
    },
    Key {
        path: "mock.lamp_lux",
        kind: Kind::Number(400.0, MOCK_LUX),
        reload: Restart,
        doc: "Lux the simulated lamp adds at the sensor while it is on.",
        set: |s, x, _| s.mock.lamp_lux = number(x),
        get: |s| float(s.mock.lamp_lux),
    },
    Key {
        path: "mock.time_scale",
        kind: Kind::Number(1.0, Range::open(0.0, 100_000.0, "")),
        reload: Restart,
        doc: "> 1 runs the simulated world faster (60 = one simulated hour per minute).",
        set: |s, x, _| s.mock.time_scale = number(x),
        get: |s| float(s.mock.time_scale),
    },
    Key {
        path: "mock.weather",
        kind: NO_FILE,
        reload: Restart,
        doc: "A weather CSV used instead of ambient: header \"time,lux\", rows \"YYYY-MM-DDTHH:MM:SS,lux\" (local\n\
              time, ascending; lux = sunlight at the sensor without the lamp). \"\" = none.",
        set: |s, x, cx| s.mock.weather = v::weather_file(text(x), cx),
        get: |s| path(s.mock.weather.as_deref()),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_grouped_by_section_in_section_order_and_unique() {
        let mut order = Vec::new();
        for k in KEYS {
            let section = SECTIONS.iter().position(|s| s.name == k.section());
            let Some(section) = section else {
                panic!("{} is in no section of SECTIONS", k.path);
            };
            assert!(
                order.last().map_or(true, |last| *last <= section),
                "{} is out of section order",
                k.path
            );
            order.push(section);
            assert_eq!(
                KEYS.iter().filter(|o| o.path == k.path).count(),
                1,
                "{}",
                k.path
            );
        }
        for s in SECTIONS {
            assert!(keys_of(s.name).next().is_some(), "[{}] has no keys", s.name);
        }
    }

    #[test]
    fn every_default_has_its_kind() {
        for k in KEYS {
            assert!(k.kind.accepts(&k.kind.default_value()), "{}", k.path);
        }
    }

    /// Every number, whole-number and boolean key reaches its field: a value other than the default, given in a
    /// file, comes back out of the loaded settings through `get` (a `set` that stored it elsewhere, or nowhere,
    /// fails here).
    #[test]
    fn each_key_sets_and_gets_its_own_field() {
        let env = crate::config::Environment {
            credentials_dir: None,
            hostname: Some("pi".into()),
        };
        let defaults = crate::config::load_str_with("", &env).unwrap();
        let mut tried = 0;
        for k in KEYS {
            let value = match k.kind {
                Kind::Number(default, range) => {
                    // A small step up from the default, inside the bounds and clear of cross-checks.
                    let Some(x) = [default + 1.5, default + 0.01]
                        .into_iter()
                        .find(|x| range.contains(*x))
                    else {
                        panic!("{}: no value near the default", k.path);
                    };
                    Value::Float(x)
                }
                Kind::Integer {
                    default,
                    max,
                    hex: false,
                    ..
                } if default < max => Value::Integer(default + 1),
                Kind::Bool(b) => Value::Boolean(!b),
                _ => continue,
            };
            let text = format!("[{}]\n{} = {value}\n", k.section(), k.name());
            let s = match crate::config::load_str_with(&text, &env) {
                Ok(s) => s,
                Err(e) => panic!("{text}: {e}"),
            };
            let got = (k.get)(&s);
            let same = match (&got, &value) {
                (Value::Float(a), Value::Float(b)) => (a - b).abs() < 1e-9,
                (Value::Integer(a), Value::Float(b)) => (*a as f64 - b).abs() < 1e-9,
                (a, b) => a == b,
            };
            assert!(same, "{}: set {value}, got {got}", k.path);
            assert_ne!(s, defaults, "{}: setting it changed nothing", k.path);
            tried += 1;
        }
        assert!(tried >= 20, "only {tried} keys tried");
    }

    #[test]
    fn live_keys_are_control_monitor_and_dli() {
        for k in KEYS {
            let live = matches!(k.section(), "control" | "monitor" | "dli");
            assert_eq!(k.reload == Reload::Live, live, "{}", k.path);
        }
    }
}
