//! Raw configuration: the TOML text walked against the known schema, every key type-checked on its own.
//!
//! Unlike a serde derive (which stops at the first error), this collects every syntax-free problem at once:
//! unknown sections, unknown keys, and values of the wrong type. Every field is optional; defaults and value
//! checks are applied by [`super::validate`].

use std::collections::BTreeSet;

use toml::{Table, Value};

use super::Problem;

/// Every section and key of the contract, in the order of the specification.
pub const SCHEMA: &[(&str, &[&str])] = &[
    ("device", &["id", "name"]),
    (
        "mqtt",
        &[
            "url",
            "embedded_listen",
            "client_id",
            "topic_prefix",
            "username",
            "password_file",
            "ca_file",
            "cert_file",
            "key_file",
            "keepalive_s",
            "qos",
        ],
    ),
    (
        "sensor",
        &[
            "source",
            "i2c_bus",
            "address",
            "interval_s",
            "topic",
            "stale_after_s",
        ],
    ),
    (
        "relay",
        &["gpio", "active_low", "on_start", "on_boot", "on_stop"],
    ),
    (
        "control",
        &[
            "strategy",
            "on_below_lux",
            "off_above_lux",
            "min_on_s",
            "min_off_s",
            "window",
            "on_sensor_failure",
            "override_max_s",
            "lamp_lux",
        ],
    ),
    ("monitor", &["settle_s", "lamp_min_rise_lux"]),
    (
        "dli",
        &[
            "target_mol",
            "sun_umol_per_lux",
            "lamp_ppfd",
            "lamp_umol_per_lux",
            "lamp_watts",
            "carry_max_mol",
            "tariff",
            "default_price",
        ],
    ),
    (
        "homeassistant",
        &["discovery", "discovery_prefix", "status_topic"],
    ),
    ("http", &["listen"]),
    ("mock", &["ambient", "lamp_lux", "time_scale", "weather"]),
];

/// The keys of one `[[dli.tariff]]` entry.
pub const TARIFF_KEYS: &[&str] = &["from", "to", "price"];

/// A key that takes either a number or a word (`control.lamp_lux`, `mock.ambient`).
#[derive(Debug, Clone, PartialEq)]
pub enum NumberOrText {
    Number(f64),
    Text(String),
}

/// `mqtt.url`: one URL, or a list of them (failover in order).
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany {
    One(String),
    /// The list's strings; `None` for an element that is not a string (reported as `mqtt.url[i]`).
    Many(Vec<Option<String>>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawDevice {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawMqtt {
    pub url: Option<OneOrMany>,
    pub embedded_listen: Option<String>,
    pub client_id: Option<String>,
    pub topic_prefix: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub keepalive_s: Option<i64>,
    pub qos: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSensor {
    pub source: Option<String>,
    pub i2c_bus: Option<String>,
    pub address: Option<i64>,
    pub interval_s: Option<f64>,
    pub topic: Option<String>,
    pub stale_after_s: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRelay {
    pub gpio: Option<i64>,
    pub active_low: Option<bool>,
    pub on_start: Option<String>,
    pub on_boot: Option<String>,
    pub on_stop: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawControl {
    pub strategy: Option<String>,
    pub on_below_lux: Option<f64>,
    pub off_above_lux: Option<f64>,
    pub min_on_s: Option<f64>,
    pub min_off_s: Option<f64>,
    pub window: Option<String>,
    pub on_sensor_failure: Option<String>,
    pub override_max_s: Option<f64>,
    pub lamp_lux: Option<NumberOrText>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawMonitor {
    pub settle_s: Option<f64>,
    pub lamp_min_rise_lux: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawDli {
    pub target_mol: Option<f64>,
    pub sun_umol_per_lux: Option<f64>,
    pub lamp_ppfd: Option<f64>,
    pub lamp_umol_per_lux: Option<f64>,
    pub lamp_watts: Option<f64>,
    pub carry_max_mol: Option<f64>,
    /// `None` when absent (or not an array); an entry that is not a table is `None` (and a problem).
    pub tariff: Option<Vec<Option<RawTariff>>>,
    pub default_price: Option<f64>,
}

/// One `[[dli.tariff]]` entry as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTariff {
    pub from: Option<String>,
    pub to: Option<String>,
    pub price: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawHomeAssistant {
    pub discovery: Option<bool>,
    pub discovery_prefix: Option<String>,
    pub status_topic: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawHttp {
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawMock {
    pub ambient: Option<NumberOrText>,
    pub lamp_lux: Option<f64>,
    pub time_scale: Option<f64>,
    pub weather: Option<String>,
}

/// The file as written: `None` wherever a key is absent or had the wrong type (reported as a [`Problem`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub device: RawDevice,
    pub mqtt: RawMqtt,
    pub sensor: RawSensor,
    pub relay: RawRelay,
    pub control: RawControl,
    pub monitor: RawMonitor,
    pub dli: RawDli,
    pub homeassistant: RawHomeAssistant,
    pub http: RawHttp,
    pub mock: RawMock,
    /// Key paths that were present but unusable (wrong type, inf/nan): validation raises no follow-up problems
    /// about them (such as a cross-check against the default that replaced them).
    pub mistyped: BTreeSet<String>,
}

impl RawConfig {
    /// Parses TOML text. A syntax error is the single problem returned (with line and column); otherwise the
    /// raw values are returned together with every unknown-key and wrong-type problem found.
    pub fn parse(text: &str) -> Result<(RawConfig, Vec<Problem>), Problem> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| syntax_problem(text, &e))?;
        let mut problems = Vec::new();
        let raw = RawConfig::from_table(&table, &mut problems);
        Ok((raw, problems))
    }

    /// Walks a parsed table against [`SCHEMA`], pushing a problem for each unknown or mistyped entry.
    pub fn from_table(table: &Table, problems: &mut Vec<Problem>) -> RawConfig {
        for (name, value) in table {
            match SCHEMA.iter().find(|(section, _)| section == name) {
                Some(_) if !value.is_table() => problems.push(Problem::new(
                    name.as_str(),
                    format!(
                        "({}) must be a table: write the keys under a [{name}] header, not `{name} = ...`",
                        describe(value)
                    ),
                )),
                Some(_) => {}
                None => {
                    let known: Vec<&str> = SCHEMA.iter().map(|(s, _)| *s).collect();
                    let what = if value.is_table() { "section" } else { "key" };
                    problems.push(Problem::new(
                        name.as_str(),
                        format!(
                            "is not a known {what}{} (known sections: {})",
                            suggestion(name, &known, |s| format!("[{s}]")),
                            known.join(", ")
                        ),
                    ))
                }
            }
        }

        let r = |section: &'static str| Reader::new(table, section);
        let device = r("device");
        let raw_device = RawDevice {
            id: device.string("id", problems),
            name: device.string("name", problems),
        };
        device.finish(problems);

        let mqtt = r("mqtt");
        let raw_mqtt = RawMqtt {
            url: mqtt.one_or_many("url", problems),
            embedded_listen: mqtt.string("embedded_listen", problems),
            client_id: mqtt.string("client_id", problems),
            topic_prefix: mqtt.string("topic_prefix", problems),
            username: mqtt.string("username", problems),
            password_file: mqtt.string("password_file", problems),
            ca_file: mqtt.string("ca_file", problems),
            cert_file: mqtt.string("cert_file", problems),
            key_file: mqtt.string("key_file", problems),
            keepalive_s: mqtt.integer("keepalive_s", problems),
            qos: mqtt.integer("qos", problems),
        };
        mqtt.finish(problems);

        let sensor = r("sensor");
        let raw_sensor = RawSensor {
            source: sensor.string("source", problems),
            i2c_bus: sensor.string("i2c_bus", problems),
            address: sensor.integer("address", problems),
            interval_s: sensor.number("interval_s", problems),
            topic: sensor.string("topic", problems),
            stale_after_s: sensor.number("stale_after_s", problems),
        };
        sensor.finish(problems);

        let relay = r("relay");
        let raw_relay = RawRelay {
            gpio: relay.integer("gpio", problems),
            active_low: relay.boolean("active_low", problems),
            on_start: relay.string("on_start", problems),
            on_boot: relay.string("on_boot", problems),
            on_stop: relay.string("on_stop", problems),
        };
        relay.finish(problems);

        let control = r("control");
        let raw_control = RawControl {
            strategy: control.string("strategy", problems),
            on_below_lux: control.number("on_below_lux", problems),
            off_above_lux: control.number("off_above_lux", problems),
            min_on_s: control.number("min_on_s", problems),
            min_off_s: control.number("min_off_s", problems),
            window: control.string("window", problems),
            on_sensor_failure: control.string("on_sensor_failure", problems),
            override_max_s: control.number("override_max_s", problems),
            lamp_lux: control.number_or_text("lamp_lux", problems),
        };
        control.finish(problems);

        let monitor = r("monitor");
        let raw_monitor = RawMonitor {
            settle_s: monitor.number("settle_s", problems),
            lamp_min_rise_lux: monitor.number("lamp_min_rise_lux", problems),
        };
        monitor.finish(problems);

        let dli = r("dli");
        let raw_dli = RawDli {
            target_mol: dli.number("target_mol", problems),
            sun_umol_per_lux: dli.number("sun_umol_per_lux", problems),
            lamp_ppfd: dli.number("lamp_ppfd", problems),
            lamp_umol_per_lux: dli.number("lamp_umol_per_lux", problems),
            lamp_watts: dli.number("lamp_watts", problems),
            carry_max_mol: dli.number("carry_max_mol", problems),
            tariff: dli.tariff("tariff", problems),
            default_price: dli.number("default_price", problems),
        };
        dli.finish(problems);

        let ha = r("homeassistant");
        let raw_ha = RawHomeAssistant {
            discovery: ha.boolean("discovery", problems),
            discovery_prefix: ha.string("discovery_prefix", problems),
            status_topic: ha.string("status_topic", problems),
        };
        ha.finish(problems);

        let http = r("http");
        let raw_http = RawHttp {
            listen: http.string("listen", problems),
        };
        http.finish(problems);

        let mock = r("mock");
        let raw_mock = RawMock {
            ambient: mock.number_or_text("ambient", problems),
            lamp_lux: mock.number("lamp_lux", problems),
            time_scale: mock.number("time_scale", problems),
            weather: mock.string("weather", problems),
        };
        mock.finish(problems);

        RawConfig {
            device: raw_device,
            mqtt: raw_mqtt,
            sensor: raw_sensor,
            relay: raw_relay,
            control: raw_control,
            monitor: raw_monitor,
            dli: raw_dli,
            homeassistant: raw_ha,
            http: raw_http,
            mock: raw_mock,
            mistyped: problems.iter().map(|p| p.key.clone()).collect(),
        }
    }
}

/// Reads the keys of one section (or of one `[[dli.tariff]]` entry), each type-checked on its own.
struct Reader<'a> {
    /// Key path prefix: `mqtt`, `dli.tariff[2]`.
    section: String,
    /// How the table is written in the file, for messages: `[mqtt]`, `[[dli.tariff]]`.
    header: String,
    keys: &'static [&'static str],
    table: Option<&'a Table>,
}

impl<'a> Reader<'a> {
    fn new(root: &'a Table, section: &'static str) -> Self {
        let keys = SCHEMA
            .iter()
            .find(|(s, _)| *s == section)
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        Reader {
            section: section.to_string(),
            header: format!("[{section}]"),
            keys,
            table: root.get(section).and_then(Value::as_table),
        }
    }

    fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.section)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        debug_assert!(self.keys.contains(&key), "{key} missing from SCHEMA");
        self.table.and_then(|t| t.get(key))
    }

    fn wrong(&self, key: &str, value: &Value, expected: &str, problems: &mut Vec<Problem>) {
        problems.push(Problem::new(
            self.path(key),
            format!(
                "({}) must be {expected}, not {}",
                describe(value),
                kind(value)
            ),
        ));
    }

    fn string(&self, key: &str, problems: &mut Vec<Problem>) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong(key, other, "a string (in quotes)", problems);
                None
            }
        }
    }

    fn integer(&self, key: &str, problems: &mut Vec<Problem>) -> Option<i64> {
        match self.get(key)? {
            Value::Integer(i) => Some(*i),
            other => {
                self.wrong(key, other, "a whole number", problems);
                None
            }
        }
    }

    /// Integers are accepted where a float is expected (`interval_s = 2`); inf/nan are not.
    fn number(&self, key: &str, problems: &mut Vec<Problem>) -> Option<f64> {
        match self.get(key)? {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) if f.is_finite() => Some(*f),
            Value::Float(f) => {
                problems.push(Problem::new(
                    self.path(key),
                    format!("({f}) must be a finite number"),
                ));
                None
            }
            other => {
                self.wrong(key, other, "a number", problems);
                None
            }
        }
    }

    fn boolean(&self, key: &str, problems: &mut Vec<Problem>) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong(key, other, "true or false (without quotes)", problems);
                None
            }
        }
    }

    fn number_or_text(&self, key: &str, problems: &mut Vec<Problem>) -> Option<NumberOrText> {
        match self.get(key)? {
            Value::String(s) => Some(NumberOrText::Text(s.clone())),
            Value::Integer(_) | Value::Float(_) => {
                self.number(key, problems).map(NumberOrText::Number)
            }
            other => {
                self.wrong(key, other, "a number or a string", problems);
                None
            }
        }
    }

    /// A string or an array of strings; an element of another type is a problem of `key[i]`.
    fn one_or_many(&self, key: &str, problems: &mut Vec<Problem>) -> Option<OneOrMany> {
        match self.get(key)? {
            Value::String(s) => Some(OneOrMany::One(s.clone())),
            Value::Array(items) => Some(OneOrMany::Many(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(s) => Some(s.clone()),
                        other => {
                            problems.push(Problem::new(
                                format!("{}[{i}]", self.path(key)),
                                format!(
                                    "({}) must be a string (in quotes), not {}",
                                    describe(other),
                                    kind(other)
                                ),
                            ));
                            None
                        }
                    })
                    .collect(),
            )),
            other => {
                self.wrong(
                    key,
                    other,
                    "a string (in quotes) or a list of strings",
                    problems,
                );
                None
            }
        }
    }

    /// `[[dli.tariff]]`: an array of tables, each entry walked like a section (`dli.tariff[i].price`).
    fn tariff(&self, key: &str, problems: &mut Vec<Problem>) -> Option<Vec<Option<RawTariff>>> {
        let items = match self.get(key)? {
            Value::Array(items) => items,
            other => {
                self.wrong(
                    key,
                    other,
                    "a list of periods, each written as a [[dli.tariff]] table with from, to and price",
                    problems,
                );
                return None;
            }
        };
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.path(key));
            let Value::Table(table) = item else {
                problems.push(Problem::new(
                    path,
                    format!(
                        "({}) must be a table with from, to and price (write it as a [[dli.tariff]] section), not {}",
                        describe(item),
                        kind(item)
                    ),
                ));
                entries.push(None);
                continue;
            };
            let entry = Reader {
                section: path,
                header: "[[dli.tariff]]".to_string(),
                keys: TARIFF_KEYS,
                table: Some(table),
            };
            entries.push(Some(RawTariff {
                from: entry.string("from", problems),
                to: entry.string("to", problems),
                price: entry.number("price", problems),
            }));
            entry.finish(problems);
        }
        Some(entries)
    }

    /// Reports every key of the section that the schema does not know.
    fn finish(self, problems: &mut Vec<Problem>) {
        let Some(table) = self.table else { return };
        for key in table.keys() {
            if !self.keys.contains(&key.as_str()) {
                problems.push(Problem::new(
                    self.path(key),
                    format!(
                        "is not a known key{} (known keys in {}: {})",
                        suggestion(key, self.keys, |k| format!("{}.{k}", self.section)),
                        self.header,
                        self.keys.join(", ")
                    ),
                ));
            }
        }
    }
}

/// `; did you mean X?` when a known name is within a small edit distance of `name`.
fn suggestion(name: &str, known: &[&str], show: impl Fn(&str) -> String) -> String {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean {}?", show(k)))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A short rendering of a value for messages (long strings and tables abbreviated).
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > 60 => {
            format!("{:?}…", s.chars().take(60).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "[...]".to_string(),
        Value::Table(_) => "{...}".to_string(),
        other => other.to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date/time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let position = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    Problem::new(
        "",
        format!("TOML syntax error{position}: {}", e.message().trim_end()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (RawConfig, Vec<Problem>) {
        match RawConfig::parse(text) {
            Ok(r) => r,
            Err(p) => panic!("unexpected syntax error: {p}"),
        }
    }

    fn keys(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn empty_text_is_all_none_and_no_problems() {
        let (raw, problems) = parse("");
        assert_eq!(raw, RawConfig::default());
        assert!(problems.is_empty());
    }

    #[test]
    fn every_schema_key_is_read() {
        let text = r#"
            [device]
            id = "a"
            name = "b"
            [mqtt]
            url = "embedded"
            embedded_listen = "127.0.0.1:1"
            client_id = "c"
            topic_prefix = "p"
            username = "u"
            password_file = "pf"
            ca_file = "ca"
            cert_file = "cert"
            key_file = "key"
            keepalive_s = 30
            qos = 2
            [sensor]
            source = "mqtt"
            i2c_bus = "/dev/i2c-3"
            address = 0x5c
            interval_s = 2
            topic = "t"
            stale_after_s = 9.5
            [relay]
            gpio = 5
            active_low = true
            on_start = "on"
            on_stop = "keep"
            [control]
            on_below_lux = 100
            off_above_lux = 200.5
            min_on_s = 1
            min_off_s = 2
            window = ""
            on_sensor_failure = "keep"
            override_max_s = 3
            lamp_lux = 250
            [monitor]
            settle_s = 4
            lamp_min_rise_lux = 5
            [mock]
            ambient = 300
            lamp_lux = 6
            time_scale = 7
        "#;
        let (raw, problems) = parse(text);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(raw.mqtt.key_file.as_deref(), Some("key"));
        assert_eq!(raw.mqtt.qos, Some(2));
        assert_eq!(raw.sensor.address, Some(0x5c));
        assert_eq!(raw.sensor.interval_s, Some(2.0));
        assert_eq!(raw.relay.active_low, Some(true));
        assert_eq!(raw.control.lamp_lux, Some(NumberOrText::Number(250.0)));
        assert_eq!(raw.monitor.lamp_min_rise_lux, Some(5.0));
        assert_eq!(raw.mock.ambient, Some(NumberOrText::Number(300.0)));
        assert_eq!(raw.mock.time_scale, Some(7.0));
    }

    #[test]
    fn unknown_keys_and_sections_are_all_reported_with_suggestions() {
        let text = r#"
            top = 1
            [mqtt]
            pasword_file = "x"
            qos = 1
            [sensors]
            address = 0x23
            [control]
            colour = "red"
        "#;
        let (_, problems) = parse(text);
        let k = keys(&problems);
        assert_eq!(problems.len(), 4, "{problems:?}");
        for expected in ["top", "sensors", "mqtt.pasword_file", "control.colour"] {
            assert!(k.contains(&expected), "{expected} missing from {k:?}");
        }
        let typo = problems.iter().find(|p| p.key == "mqtt.pasword_file");
        assert!(typo.is_some_and(|p| p.reason.contains("did you mean mqtt.password_file?")));
        let section = problems.iter().find(|p| p.key == "sensors");
        assert!(section.is_some_and(|p| p.reason.contains("did you mean [sensor]?")));
    }

    #[test]
    fn wrong_types_are_all_reported() {
        let text = r#"
            [mqtt]
            qos = "1"
            keepalive_s = 30.5
            [relay]
            active_low = "yes"
            gpio = 17
            [control]
            on_below_lux = "450"
            window = 6
            [mock]
            ambient = true
        "#;
        let (raw, problems) = parse(text);
        let k = keys(&problems);
        assert_eq!(
            k,
            vec![
                "mqtt.keepalive_s",
                "mqtt.qos",
                "relay.active_low",
                "control.on_below_lux",
                "control.window",
                "mock.ambient"
            ]
        );
        assert_eq!(raw.relay.gpio, Some(17));
        assert_eq!(
            problems[1].to_string(),
            "mqtt.qos (\"1\") must be a whole number, not a string"
        );
    }

    #[test]
    fn section_that_is_not_a_table_is_a_problem() {
        let (_, problems) = parse("mqtt = 3\n");
        assert_eq!(keys(&problems), vec!["mqtt"]);
        assert!(problems[0].reason.contains("[mqtt]"));
    }

    #[test]
    fn infinite_and_nan_are_rejected() {
        let (raw, problems) = parse("[sensor]\ninterval_s = inf\nstale_after_s = nan\n");
        assert_eq!(
            keys(&problems),
            vec!["sensor.interval_s", "sensor.stale_after_s"]
        );
        assert_eq!(raw.sensor.interval_s, None);
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let text = "[mqtt]\nqos = 1\nurl = \"unterminated\n";
        let p = match RawConfig::parse(text) {
            Err(p) => p,
            Ok(r) => panic!("expected a syntax error, got {r:?}"),
        };
        assert!(p.key.is_empty());
        assert!(
            p.reason.starts_with("TOML syntax error at line 3, column"),
            "{p}"
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("qos", "qos"), 0);
        assert_eq!(edit_distance("pasword_file", "password_file"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }
}
