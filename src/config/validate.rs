//! Validation: the declared keys ([`super::keys`]) applied to the walked file ([`RawConfig`]): each value (the
//! file's or the default) checked against its bounds, stored by its key's `set` (which checks its syntax), then
//! each section's cross-key checks (the `check_*` functions below). Every problem is collected, with its key
//! path, instead of stopping at the first.

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use toml::Value;

use super::keys::{self, Kind, KEYS, SECTIONS};
use super::load::Environment;
use super::raw::RawConfig;
use super::{
    Ambient, BrokerUrl, Endpoint, LampLux, Problem, Settings, Strategy, TariffPeriod, Window,
};

/// Highest lux the thresholds accept: the BH1750 tops out at about 121 klx (full sun is about 100 klx).
pub const MAX_LUX: f64 = 100_000.0;
/// Highest lux the simulation accepts (above the sensor's range, to exercise saturation).
pub const MAX_MOCK_LUX: f64 = 200_000.0;
/// Default `device.id` when the host name gives nothing usable.
pub const FALLBACK_DEVICE_ID: &str = "greenhouse";
/// File name looked up in `$CREDENTIALS_DIRECTORY` when `mqtt.password_file` is empty.
pub const CREDENTIAL_NAME: &str = "mqtt-password";

pub(crate) const DAY_S: f64 = 86_400.0;
/// The placeholder in `mqtt.topic_prefix` replaced by `device.id`.
pub const DEVICE_PLACEHOLDER: &str = "{device}";
/// Darkness every day needs with `control.strategy = "dli"`, in minutes (6 h).
pub const MIN_DARK_MIN: u16 = 6 * 60;
/// Highest daily light integral target accepted (full summer sun gives about 60 mol m⁻² d⁻¹).
pub const MAX_DLI_MOL: f64 = 100.0;
/// Highest price per kWh accepted (in any currency; only to catch a misplaced decimal point).
pub(crate) const MAX_PRICE: f64 = 1_000_000.0;

/// Accepted `mqtt.url` forms, quoted in the message when a URL is rejected.
const URL_FORMS: &str = "accepted forms: \"embedded\", \"mqtt://host[:port]\" (default port 1883), \
\"mqtts://host[:port]\" (TLS, default port 8883); IPv6 hosts in brackets, e.g. \"mqtt://[fd00::1]:1883\"; \
or a list of mqtt(s):// URLs for failover, e.g. [\"mqtt://a:1883\", \"mqtt://b:1883\"]";

/// Checks every value of `raw`, resolving relative file paths against `base_dir` (the configuration file's
/// directory; `None` = the working directory). Returns every value problem found (the raw parse's own problems,
/// which `raw.mistyped` lists, are the caller's to report), or the settings when there is none at all.
pub fn validate(
    raw: &RawConfig,
    base_dir: Option<&Path>,
    env: &Environment,
) -> Result<Settings, Vec<Problem>> {
    let mut s = keys::blank();
    let mut cx = Cx {
        base_dir,
        env,
        raw,
        key: "",
        problems: Vec::new(),
        failed: raw.mistyped.clone(),
    };
    for section in SECTIONS {
        for (i, key) in KEYS.iter().enumerate() {
            if key.section() != section.name || raw.mistyped.contains(key.path) {
                continue;
            }
            let default;
            let value = match raw.value(i) {
                Some(v) => v,
                None => {
                    default = key.kind.default_value();
                    &default
                }
            };
            cx.key = key.path;
            if cx.within_bounds(&key.kind, value) {
                (key.set)(&mut s, value, &mut cx);
            }
        }
        (section.check)(&s, &mut cx);
    }
    cx.problems.retain(|p| !raw.mistyped.contains(&p.key));
    if !cx.problems.is_empty() || !raw.mistyped.is_empty() {
        return Err(cx.problems);
    }
    Ok(s)
}

/// What a key's `set` and a section's check see: where the file is, the environment, what was given, and where
/// to report problems.
pub struct Cx<'a> {
    base_dir: Option<&'a Path>,
    env: &'a Environment,
    raw: &'a RawConfig,
    /// The key being set.
    key: &'static str,
    problems: Vec<Problem>,
    /// Keys with a problem so far (mistyped ones included).
    failed: BTreeSet<String>,
}

impl Cx<'_> {
    /// A problem of the key being set.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.fail_at(self.key, reason);
    }

    /// A problem of `key` (a list element such as `mqtt.url[1]`, or the key a cross-check blames).
    pub fn fail_at(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        let key = key.into();
        self.failed.insert(key.clone());
        self.problems.push(Problem::new(key, reason));
    }

    /// True when none of `keys` has a problem (so a cross-check between them means something).
    pub fn ok(&self, keys: &[&str]) -> bool {
        keys.iter().all(|k| !self.failed.contains(*k))
    }

    /// True when the file sets `key` (rather than leaving it to its default).
    pub fn given(&self, key: &str) -> bool {
        self.raw.get(key).is_some()
    }

    /// `file` relative to the configuration file's directory.
    pub fn resolve(&self, file: &str) -> PathBuf {
        let path = Path::new(file);
        match self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// The entry of `table` whose word is `value` (any case), or a problem listing the words.
    pub fn choice<T: Copy>(&mut self, value: &Value, table: &[(&str, T)]) -> Option<T> {
        let word = value.as_str().unwrap_or_default();
        let found = table
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word.trim()))
            .map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<String> = table.iter().map(|(n, _)| format!("{n:?}")).collect();
            self.fail(format!("({word:?}) must be one of {}", names.join(", ")));
        }
        found
    }

    /// `x` within `range`, else a problem of the key being set.
    pub fn in_range(&mut self, x: f64, r: Range) -> bool {
        match r.check(x) {
            Ok(()) => true,
            Err(why) => {
                self.fail(why);
                false
            }
        }
    }

    /// The bounds of the key's kind (numbers only; the rest is the key's `set`'s).
    fn within_bounds(&mut self, kind: &Kind, value: &Value) -> bool {
        match (kind, value) {
            (Kind::Number(_, range), Value::Integer(i)) => self.in_range(*i as f64, *range),
            (Kind::Number(_, range), Value::Float(f)) => self.in_range(*f, *range),
            (Kind::Integer { min, max, note, .. }, Value::Integer(v)) => {
                if (min..=max).contains(&v) {
                    true
                } else {
                    self.fail(format!("({v}) must be between {min} and {max}{note}"));
                    false
                }
            }
            _ => true,
        }
    }
}

/// A numeric range for messages: lower bound inclusive or exclusive, upper bound inclusive; `why_low` /
/// `why_high` explain the bound in the message.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    min: f64,
    min_exclusive: bool,
    max: f64,
    unit: &'static str,
    why_low: &'static str,
    why_high: &'static str,
}

impl Range {
    pub const fn closed(min: f64, max: f64, unit: &'static str) -> Self {
        Range {
            min,
            min_exclusive: false,
            max,
            unit,
            why_low: "",
            why_high: "",
        }
    }

    pub const fn open(min: f64, max: f64, unit: &'static str) -> Self {
        let mut r = Range::closed(min, max, unit);
        r.min_exclusive = true;
        r
    }

    /// Explains the upper bound.
    pub const fn because(mut self, why: &'static str) -> Self {
        self.why_high = why;
        self
    }

    /// Explains the lower bound.
    pub const fn because_low(mut self, why: &'static str) -> Self {
        self.why_low = why;
        self
    }

    /// The bounds for people: `0.75 to 3600 s`, `greater than 0, at most 3600 s`.
    pub fn describe(&self) -> String {
        let (min, max, unit) = (num(self.min), num(self.max), self.unit);
        if self.min_exclusive {
            format!("greater than {min}, at most {max}{unit}")
        } else {
            format!("{min} to {max}{unit}")
        }
    }

    /// True when `v` is within the bounds.
    pub fn contains(&self, v: f64) -> bool {
        self.check(v).is_ok()
    }

    fn check(&self, v: f64) -> Result<(), String> {
        let too_low = if self.min_exclusive {
            v <= self.min
        } else {
            v < self.min
        };
        if too_low {
            let bound = if self.min_exclusive {
                "greater than"
            } else {
                "at least"
            };
            Err(format!(
                "({}) must be {bound} {}{}{}",
                num(v),
                num(self.min),
                self.unit,
                self.why_low
            ))
        } else if v > self.max {
            Err(format!(
                "({}) must be at most {}{}{}",
                num(v),
                num(self.max),
                self.unit,
                self.why_high
            ))
        } else {
            Ok(())
        }
    }
}

// Section checks: what involves more than one key, run once the section's keys are set.

/// A password needs a user name; a client key needs its certificate.
pub(crate) fn check_mqtt(s: &Settings, cx: &mut Cx) {
    if s.mqtt.password_file.is_some() && s.mqtt.username.is_none() && cx.ok(&["mqtt.username"]) {
        cx.fail_at(
            "mqtt.username",
            "must be set when a password is given (mqtt.password_file or $CREDENTIALS_DIRECTORY/mqtt-password): MQTT sends a password only with a user name",
        );
    }
    if s.mqtt.key_file.is_some() && s.mqtt.cert_file.is_none() && cx.ok(&["mqtt.cert_file"]) {
        cx.fail_at(
            "mqtt.key_file",
            "is set but mqtt.cert_file is not: a client key needs its client certificate",
        );
    }
}

/// A reading goes stale only after more than one interval.
pub(crate) fn check_sensor(s: &Settings, cx: &mut Cx) {
    let (stale, interval) = (s.sensor.stale_after, s.sensor.interval);
    if stale <= interval && cx.ok(&["sensor.interval_s", "sensor.stale_after_s"]) {
        cx.fail_at(
            "sensor.stale_after_s",
            format!(
                "({}) must be greater than sensor.interval_s ({}): a reading goes stale only after more than one interval without one",
                num(stale.as_secs_f64()),
                num(interval.as_secs_f64())
            ),
        );
    }
}

/// The hysteresis band is a band; the DLI strategy leaves the plants a night.
pub(crate) fn check_control(s: &Settings, cx: &mut Cx) {
    let c = &s.control;
    if c.off_above_lux <= c.on_below_lux
        && cx.ok(&["control.on_below_lux", "control.off_above_lux"])
    {
        cx.fail_at(
            "control.off_above_lux",
            format!(
                "({}) must be greater than control.on_below_lux ({}); the gap between them is the hysteresis band",
                num(c.off_above_lux),
                num(c.on_below_lux)
            ),
        );
    }
    if c.strategy == Strategy::Dli && cx.ok(&["control.strategy", "control.window"]) {
        let (shown, dark) = match c.window {
            None => ("\"\"".to_string(), 0),
            Some(w) => {
                let light = (w.end_min + 1440 - w.start_min) % 1440;
                (format!("{:?}", w.to_string()), 1440 - light)
            }
        };
        if dark < MIN_DARK_MIN {
            cx.fail_at(
                "control.window",
                format!(
                    "({shown}) leaves {} of darkness a day; with control.strategy = \"dli\" it must leave at least 6 h in one piece (a window of at most 18 h, e.g. \"06:00-22:00\")",
                    hours(dark)
                ),
            );
        }
    }
}

/// The DLI strategy needs a target (a negative one is already a bounds problem; 0, the default, is this one).
pub(crate) fn check_dli(s: &Settings, cx: &mut Cx) {
    if s.control.strategy == Strategy::Dli
        && s.dli.target_mol == 0.0
        && cx.ok(&["control.strategy", "dli.target_mol"])
    {
        cx.fail_at(
            "dli.target_mol",
            "(0) must be greater than 0 with control.strategy = \"dli\": the daily light integral to reach, in mol m⁻² d⁻¹ (lettuce ~17, herbs ~12, tomato 20-25)",
        );
    }
}

// What the keys' `set` functions use: one function per key syntax.

/// `device.id`: the host name's when empty.
pub(crate) fn device_id(id: &str, cx: &mut Cx) -> String {
    match non_empty(id) {
        None => default_device_id(cx.env.hostname.as_deref()),
        Some(id) => {
            if !is_valid_device_id(id) {
                cx.fail(format!(
                    "({id:?}) must be 1 to 64 characters of a-z, 0-9, '_' and '-' (lower case)"
                ));
            }
            id.to_string()
        }
    }
}

pub(crate) fn device_name(name: &str, cx: &mut Cx) -> String {
    if name.trim().is_empty() {
        cx.fail("must not be empty (it is the name shown to people)");
    }
    name.to_string()
}

pub(crate) fn socket_address(text: &str, example: &str, cx: &mut Cx) -> Option<SocketAddr> {
    let parsed = text.trim().parse::<SocketAddr>();
    if parsed.is_err() {
        let port = example.rsplit(':').next().unwrap_or_default();
        let off = if cx.key == "http.listen" {
            "; \"\" turns the HTTP server off"
        } else {
            ""
        };
        cx.fail(format!(
            "({text:?}) must be a socket address such as \"127.0.0.1:{port}\" (this machine only), \"0.0.0.0:{port}\" (the LAN) or \"[::1]:{port}\"{off}"
        ));
    }
    parsed.ok()
}

/// `mqtt.client_id`: `greenhoused-<device.id>` when empty.
pub(crate) fn client_id(cid: &str, device_id: &str, cx: &mut Cx) -> String {
    match non_empty(cid) {
        None => format!("greenhoused-{device_id}"),
        Some(cid) => {
            if cid.chars().count() > 128
                || cid.chars().any(|ch| ch.is_control() || ch.is_whitespace())
            {
                cx.fail(format!("({cid:?}) must be at most 128 characters without spaces or control characters; \"\" gives \"greenhoused-<device.id>\""));
            }
            cid.to_string()
        }
    }
}

/// `mqtt.url`: one URL or a non-empty list of them (failover in order). Problems of one list element are
/// reported as `mqtt.url[i]`, problems of the list as `mqtt.url`.
pub(crate) fn broker_urls(value: &Value, cx: &mut Cx) -> Option<BrokerUrl> {
    let list = match value {
        Value::Array(list) => list,
        other => {
            return parse_broker_url(other.as_str().unwrap_or_default())
                .map_err(|why| cx.fail(why))
                .ok()
        }
    };
    match list.as_slice() {
        [] => {
            cx.fail(format!("([]) must not be an empty list; {URL_FORMS}"));
            return None;
        }
        // A one-element list is the same as the URL alone ("embedded" included).
        [one] => {
            return parse_broker_url(one.as_str()?)
                .map_err(|why| cx.fail_at("mqtt.url[0]", why))
                .ok()
        }
        _ => {}
    }
    let mut endpoints: Vec<Endpoint> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, url) in list.iter().enumerate() {
        let key = format!("mqtt.url[{i}]");
        let Some(url) = url.as_str() else {
            ok = false; // Mistyped: the walk reported it.
            continue;
        };
        if url == "embedded" {
            cx.fail_at(
                key,
                "(\"embedded\") can only be used alone (url = \"embedded\"), not in a failover list of remote brokers",
            );
            ok = false;
            continue;
        }
        match parse_broker_url(url) {
            Ok(parsed) => {
                for endpoint in parsed.endpoints() {
                    if let Some(first) = endpoints.iter().position(|e| e == endpoint) {
                        cx.fail_at(
                            &key,
                            format!("({url:?}) is the same broker as mqtt.url[{first}]; list each broker once"),
                        );
                        ok = false;
                    }
                    endpoints.push(endpoint.clone());
                }
            }
            Err(why) => {
                cx.fail_at(key, why);
                ok = false;
            }
        }
    }
    if ok && endpoints.iter().any(|e| e.tls) && endpoints.iter().any(|e| !e.tls) {
        cx.fail("mixes mqtts:// and mqtt:// URLs: failing over would drop TLS; use mqtts:// for every broker or for none");
        ok = false;
    }
    ok.then_some(BrokerUrl::Remote(endpoints))
}

/// `mqtt.topic_prefix` with `{device}` replaced by `id`. Rejected: unknown placeholders, a prefix that is invalid
/// after the replacement, and `{device}` when the id is the fallback every gateway without a host name shares.
pub(crate) fn topic_prefix(template: &str, id: &str, cx: &mut Cx) -> Option<String> {
    let prefix = template.replace(DEVICE_PLACEHOLDER, id);
    if prefix.contains(['{', '}']) {
        cx.fail(format!("({template:?}) has an unknown placeholder: only {DEVICE_PLACEHOLDER} is replaced (by device.id), braces are not allowed otherwise"));
        return None;
    }
    if !template.contains(DEVICE_PLACEHOLDER) {
        return check_topic_prefix(template)
            .map(|()| template.to_string())
            .map_err(|why| cx.fail(why))
            .ok();
    }
    if !cx.ok(&["device.id"]) || !is_valid_device_id(id) {
        return None; // device.id's own problem says it.
    }
    let id_chosen = cx.given("device.id")
        && cx
            .raw
            .get("device.id")
            .and_then(Value::as_str)
            .is_some_and(|i| !i.trim().is_empty());
    if !id_chosen && id == FALLBACK_DEVICE_ID {
        cx.fail(format!("({template:?}) uses {DEVICE_PLACEHOLDER}, but device.id is not set and the host name gives none: every such gateway would share the prefix {prefix:?}; set device.id"));
        return None;
    }
    match check_topic_prefix(&prefix) {
        Ok(()) => Some(prefix),
        Err(why) => {
            cx.fail(format!(
                "({template:?}, with {DEVICE_PLACEHOLDER} = {id:?}) is not a valid prefix: {why}"
            ));
            None
        }
    }
}

/// `mqtt.password_file` (or the systemd credential when empty): the file and the password read from it.
pub(crate) fn password(file: &str, cx: &mut Cx) -> (Option<PathBuf>, Option<String>) {
    if let Some(file) = non_empty(file) {
        let path = cx.resolve(file);
        return match read_secret(&path) {
            Ok(secret) => (Some(path), Some(secret)),
            Err(why) => {
                cx.fail(format!("({}) {why}; point it at a readable file holding only the password, or set \"\" for none", path.display()));
                (Some(path), None)
            }
        };
    }
    let credential = cx
        .env
        .credentials_dir
        .as_deref()
        .map(|d| d.join(CREDENTIAL_NAME));
    match credential {
        Some(path) if path.is_file() => match read_secret(&path) {
            Ok(secret) => (Some(path), Some(secret)),
            Err(why) => {
                cx.fail(format!("(default {}, from $CREDENTIALS_DIRECTORY) {why}; fix the credential passed with LoadCredential=", path.display()));
                (Some(path), None)
            }
        },
        _ => (None, None),
    }
}

/// `mqtt.ca_file` / `cert_file` / `key_file`: a readable file, only with mqtts:// brokers.
pub(crate) fn tls_file(file: &str, url: &BrokerUrl, cx: &mut Cx) -> Option<PathBuf> {
    let path = cx.resolve(non_empty(file)?);
    if let Err(why) = check_readable(&path) {
        cx.fail(format!("({}) {why}", path.display()));
    }
    if cx.ok(&["mqtt.url"]) && !url.tls() {
        cx.fail(format!(
            "({}) is only used with an mqtts:// url, but mqtt.url is {:?}; use mqtts://host[:port] or set \"\"",
            path.display(),
            url.to_string()
        ));
    }
    Some(path)
}

pub(crate) fn i2c_bus(bus: &str, cx: &mut Cx) -> PathBuf {
    if !bus.starts_with('/') {
        cx.fail(format!(
            "({bus:?}) must be an absolute device path such as \"/dev/i2c-1\""
        ));
    }
    PathBuf::from(bus)
}

pub(crate) fn bh1750_address(address: i64, cx: &mut Cx) -> Option<u8> {
    if address == 0x23 || address == 0x5c {
        return u8::try_from(address).ok();
    }
    let shown = u32::try_from(address).map_or(address.to_string(), |a| format!("{a:#04x}"));
    cx.fail(format!("({shown}) must be 0x23 (ADDR pin low) or 0x5c (ADDR pin high), the BH1750's only addresses"));
    None
}

/// `sensor.topic`: `<prefix>/luminosity` when empty.
pub(crate) fn sensor_topic(topic: &str, prefix: &str, cx: &mut Cx) -> String {
    match non_empty(topic) {
        None => format!("{prefix}/luminosity"),
        Some(t) => {
            if let Err(why) = check_topic_name(t) {
                cx.fail(format!("({t:?}) {why}"));
            }
            t.to_string()
        }
    }
}

/// `control.lamp_lux`: "auto" or a number of lux.
pub(crate) fn lamp_lux(value: &Value, range: Range, cx: &mut Cx) -> Option<LampLux> {
    match value {
        Value::String(t) if t.trim().eq_ignore_ascii_case("auto") => Some(LampLux::Auto),
        Value::String(t) => {
            cx.fail(format!("({t:?}) must be \"auto\" or a number of lux without quotes (0 disables compensation)"));
            None
        }
        other => {
            let lux = other.as_float().or(other.as_integer().map(|i| i as f64))?;
            cx.in_range(lux, range).then_some(LampLux::Fixed(lux))
        }
    }
}

/// `mock.ambient`: "day" or a constant lux (a number, also in quotes).
pub(crate) fn ambient(value: &Value, range: Range, cx: &mut Cx) -> Option<Ambient> {
    let lux = match value {
        Value::String(t) if t.trim().eq_ignore_ascii_case("day") => return Some(Ambient::Day),
        Value::String(t) => match t.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => n,
            _ => {
                cx.fail(format!("({t:?}) must be \"day\" (sunrise/sunset curve) or a constant lux such as \"300\""));
                return None;
            }
        },
        other => other.as_float().or(other.as_integer().map(|i| i as f64))?,
    };
    cx.in_range(lux, range).then_some(Ambient::Constant(lux))
}

pub(crate) fn status_topic(topic: &str, cx: &mut Cx) -> Option<String> {
    if topic.is_empty() {
        cx.fail("must not be empty (Home Assistant's default is \"homeassistant/status\")");
        return None;
    }
    match check_topic_name(topic) {
        Ok(()) => Some(topic.to_string()),
        Err(why) => {
            cx.fail(format!("({topic:?}) {why}"));
            None
        }
    }
}

/// `mock.weather`: a readable file (its content is the simulator's to check).
pub(crate) fn weather_file(file: &str, cx: &mut Cx) -> Option<PathBuf> {
    let path = cx.resolve(non_empty(file)?);
    if let Err(why) = check_readable(&path) {
        cx.fail(format!("({}) {why}; point it at a weather CSV (header `time,lux`) or set \"\" to use mock.ambient", path.display()));
    }
    Some(path)
}

/// `[[dli.tariff]]`: every period complete and well-formed, none overlapping; sorted by start.
pub(crate) fn tariff(value: &Value, cx: &mut Cx) -> Option<Vec<TariffPeriod>> {
    let entries = value.as_array()?;
    let price_range = Range::closed(0.0, MAX_PRICE, " per kWh");
    let mut periods = Vec::new();
    let mut ok = true;
    for (i, entry) in entries.iter().enumerate() {
        let key = |field: &str| format!("dli.tariff[{i}]{field}");
        let Some(entry) = entry.as_table() else {
            ok = false; // Not a table: the walk reported it.
            continue;
        };
        if !cx.ok(&[&key(".from"), &key(".to"), &key(".price")]) {
            ok = false; // Mistyped: the walk reported it.
            continue;
        }
        let mut time = |field: &str| -> Option<u16> {
            let Some(text) = entry.get(field).and_then(Value::as_str) else {
                cx.fail_at(
                    key(&format!(".{field}")),
                    "is missing: each [[dli.tariff]] period needs from, to (\"HH:MM\", local time) and price",
                );
                return None;
            };
            let minute = match text.trim() {
                "24:00" if field == "to" => Some(0),
                t => parse_hhmm(t),
            };
            if minute.is_none() {
                cx.fail_at(
                    key(&format!(".{field}")),
                    format!("({text:?}) must be \"HH:MM\" in local 24-hour time, e.g. \"07:00\""),
                );
            }
            minute
        };
        let from = time("from");
        let to = time("to");
        let price = match entry.get("price") {
            None => {
                cx.fail_at(
                    key(".price"),
                    "is missing: each [[dli.tariff]] period needs a price per kWh",
                );
                None
            }
            Some(p) => {
                let p = p.as_float().or(p.as_integer().map(|i| i as f64))?;
                match price_range.check(p) {
                    Ok(()) => Some(p),
                    Err(why) => {
                        cx.fail_at(key(".price"), why);
                        None
                    }
                }
            }
        };
        match (from, to, price) {
            (Some(from), Some(to), _) if from == to => {
                cx.fail_at(
                    key(""),
                    format!(
                        "({}-{}) is empty or the whole day: from and to must differ (a period may wrap midnight, e.g. from = \"22:00\", to = \"06:00\"); for one price all day set dli.default_price",
                        hhmm(from),
                        hhmm(to)
                    ),
                );
                ok = false;
            }
            (Some(from), Some(to), Some(price)) => {
                periods.push((i, TariffPeriod { from, to, price }))
            }
            _ => ok = false,
        }
    }
    // Overlaps: mark each minute of the day with the period that prices it.
    let mut owner: Vec<Option<usize>> = vec![None; 1440];
    for (n, (i, period)) in periods.iter().enumerate() {
        let mut clashes: Vec<usize> = Vec::new();
        for minute in 0..1440u16 {
            if !period.contains(minute) {
                continue;
            }
            match owner[usize::from(minute)] {
                Some(other) if !clashes.contains(&other) => clashes.push(other),
                Some(_) => {}
                None => owner[usize::from(minute)] = Some(n),
            }
        }
        for other in clashes {
            let (j, p) = &periods[other];
            cx.fail_at(
                format!("dli.tariff[{i}]"),
                format!(
                    "({}-{}) overlaps dli.tariff[{j}] ({}-{}): each time of day may have one price only",
                    hhmm(period.from),
                    hhmm(period.to),
                    hhmm(p.from),
                    hhmm(p.to)
                ),
            );
            ok = false;
        }
    }
    let mut periods: Vec<TariffPeriod> = periods.into_iter().map(|(_, p)| p).collect();
    periods.sort_by_key(|p| p.from);
    ok.then_some(periods)
}

/// Minutes as `5 h` / `5 h 30 min`.
fn hours(min: u16) -> String {
    match min % 60 {
        0 => format!("{} h", min / 60),
        m => format!("{} h {m} min", min / 60),
    }
}

/// Minutes of the day as `HH:MM`.
pub(crate) fn hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// A number for messages: `400`, `0.75`, `-1`.
pub(crate) fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        v.to_string()
    }
}

/// `None` for a blank string.
pub(crate) fn non_empty(value: &str) -> Option<&str> {
    Some(value).filter(|s| !s.trim().is_empty())
}

/// Longest password file accepted: a password, not a device or a log someone pointed at by mistake.
const MAX_SECRET_BYTES: u64 = 4096;

/// Reads a secret file, dropping the trailing newline(s) editors and `echo` add.
fn read_secret(path: &Path) -> Result<String, String> {
    use std::io::Read;
    // A regular file only (a FIFO would block, /dev/zero would never end), read with a bound.
    let mut text = String::new();
    open_regular(path)?
        .take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        return Err(format!(
            "is larger than {MAX_SECRET_BYTES} bytes; it should hold only the password"
        ));
    }
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err("is empty".to_string());
    }
    Ok(secret.to_string())
}

fn check_readable(path: &Path) -> Result<(), String> {
    open_regular(path).map(drop)
}

/// Opens `path` for reading if it is a regular file; the error says why not.
fn open_regular(path: &Path) -> Result<fs::File, String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".to_string());
    }
    fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))
}

/// `device.id` syntax: `[a-z0-9_-]{1,64}`.
pub fn is_valid_device_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The default `device.id` from a host name: lower-cased, other characters replaced by '-', at most 64
/// characters; [`FALLBACK_DEVICE_ID`] when that leaves no letter or digit.
pub fn default_device_id(hostname: Option<&str>) -> String {
    let id: String = hostname
        .unwrap_or("")
        .trim()
        .chars()
        .map(|ch| {
            let ch = ch.to_ascii_lowercase();
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-' {
                ch
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.bytes().any(|b| b.is_ascii_alphanumeric()) {
        id
    } else {
        FALLBACK_DEVICE_ID.to_string()
    }
}

/// Parses `mqtt.url`: `embedded`, `mqtt://host[:port]` or `mqtts://host[:port]` (IPv6 hosts in brackets; the
/// returned host has no brackets).
pub fn parse_broker_url(url: &str) -> Result<BrokerUrl, String> {
    let fail = |detail: &str| Err(format!("({url:?}) {detail}; {URL_FORMS}"));
    if url == "embedded" {
        return Ok(BrokerUrl::Embedded);
    }
    let (rest, tls, default_port) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (rest, true, 8883)
    } else if let Some(rest) = url.strip_prefix("mqtt://") {
        (rest, false, 1883)
    } else {
        return fail("is not a broker URL");
    };
    if rest.contains('@') {
        return fail("must not hold credentials (use mqtt.username and mqtt.password_file)");
    }
    if rest.contains(['/', '?', '#']) {
        return fail("must not have a path");
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return fail("has an IPv6 host without its closing ']'");
        };
        if host.parse::<Ipv6Addr>().is_err() {
            return fail("has an invalid IPv6 address in brackets");
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return fail("has text after the ']' that is not \":port\""),
            },
        }
    } else {
        match rest.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return fail("has an IPv6 host that is not in brackets")
            }
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let valid_host = !host.is_empty()
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
    if !valid_host {
        return fail("has no valid host name");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return fail("has a port that is not a number from 1 to 65535"),
        },
    };
    Ok(BrokerUrl::Remote(vec![Endpoint {
        host: host.to_string(),
        port,
        tls,
    }]))
}

/// Checks `mqtt.topic_prefix`: a plain topic name without wildcards, empty levels or leading/trailing '/'.
pub fn check_topic_prefix(prefix: &str) -> Result<(), String> {
    let why = if prefix.is_empty() {
        "must not be empty (every topic starts with it, e.g. \"laboratory/greenhouse\")"
    } else if prefix.starts_with('/') || prefix.ends_with('/') {
        "must not start or end with '/'"
    } else if prefix.contains("//") {
        "must not contain empty levels ('//')"
    } else {
        return check_topic_name(prefix).map_err(|why| format!("({prefix:?}) {why}"));
    };
    Err(format!("({prefix:?}) {why}"))
}

/// Checks a topic the daemon subscribes to or publishes under: no wildcards, no `$`, no NUL.
pub(crate) fn check_topic_name(topic: &str) -> Result<(), &'static str> {
    if topic.contains(['+', '#']) {
        Err("must not contain the MQTT wildcards '+' or '#'")
    } else if topic.starts_with('$') {
        Err("must not start with '$' (reserved for broker topics such as $SYS)")
    } else if topic.contains('\0') {
        Err("must not contain a NUL character")
    } else {
        Ok(())
    }
}

/// Parses `control.window`: `""` = always, else `HH:MM-HH:MM` in local 24-hour time; wrapping midnight is
/// allowed, an empty window (start == end) is not.
pub fn parse_window(text: &str) -> Result<Option<Window>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || {
        format!("({text:?}) must be \"HH:MM-HH:MM\" in local 24-hour time, e.g. \"06:00-22:00\" (it may wrap midnight, \"\" = always)")
    };
    let (start, end) = t.split_once('-').ok_or_else(bad)?;
    let start_min = parse_hhmm(start.trim()).ok_or_else(bad)?;
    let end_min = parse_hhmm(end.trim()).ok_or_else(bad)?;
    if start_min == end_min {
        return Err(format!(
            "({text:?}) starts and ends at the same time; use \"\" to allow the light at any time"
        ));
    }
    Ok(Some(Window { start_min, end_min }))
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        DliSettings, FailurePolicy, HomeAssistantSettings, OnStart, OnStop, SensorSource,
    };
    use crate::hw::bh1750::WORST_CASE_CYCLE;
    use std::time::Duration;

    fn env() -> Environment {
        Environment {
            credentials_dir: None,
            hostname: Some("Test-Pi".into()),
        }
    }

    fn check(text: &str) -> Result<Settings, Vec<Problem>> {
        let (raw, problems) = match RawConfig::parse(text) {
            Ok(r) => r,
            Err(p) => panic!("syntax error in test text: {p}"),
        };
        assert!(problems.is_empty(), "raw problems: {problems:?}");
        validate(&raw, None, &env())
    }

    fn ok(text: &str) -> Settings {
        match check(text) {
            Ok(s) => s,
            Err(p) => panic!("unexpected problems: {p:?}"),
        }
    }

    /// The problems of `text`, asserting they are all about `key`.
    fn problems_of(text: &str, key: &str) -> Vec<String> {
        match check(text) {
            Ok(s) => panic!("expected a problem with {key}, got {s:?}"),
            Err(problems) => {
                assert!(problems.iter().all(|p| p.key == key), "{problems:?}");
                problems.iter().map(|p| p.to_string()).collect()
            }
        }
    }

    #[test]
    fn defaults_are_those_of_the_spec() {
        let s = ok("");
        assert_eq!(s.device.id, "test-pi");
        assert_eq!(s.device.name, "Greenhouse");
        assert_eq!(s.mqtt.url, BrokerUrl::Embedded);
        assert_eq!(
            s.mqtt.embedded_listen,
            "127.0.0.1:1883".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(s.mqtt.client_id, "greenhoused-test-pi");
        assert_eq!(s.mqtt.topic_prefix, "laboratory/greenhouse");
        assert_eq!(s.mqtt.username, None);
        assert_eq!(s.mqtt.password_file, None);
        assert_eq!(s.mqtt.password, None);
        assert_eq!(
            (&s.mqtt.ca_file, &s.mqtt.cert_file, &s.mqtt.key_file),
            (&None, &None, &None)
        );
        assert_eq!(s.mqtt.keepalive, Duration::from_secs(30));
        assert_eq!(s.mqtt.qos, 1);
        assert_eq!(s.sensor.source, SensorSource::Bh1750);
        assert_eq!(s.sensor.i2c_bus, PathBuf::from("/dev/i2c-1"));
        assert_eq!(s.sensor.address, 0x23);
        assert_eq!(s.sensor.interval, Duration::from_secs(1));
        assert_eq!(s.sensor.topic, "laboratory/greenhouse/luminosity");
        assert_eq!(s.sensor.stale_after, Duration::from_secs(10));
        assert_eq!(s.relay.gpio, 17);
        assert!(!s.relay.active_low);
        assert_eq!(s.relay.on_start, OnStart::Off);
        assert_eq!(s.relay.on_boot, OnStart::Off);
        assert_eq!(s.relay.on_stop, OnStop::Off);
        assert_eq!(s.control.strategy, Strategy::Threshold);
        assert_eq!(s.control.on_below_lux, 450.0);
        assert_eq!(s.control.off_above_lux, 550.0);
        assert_eq!(s.control.min_on, Duration::from_secs(60));
        assert_eq!(s.control.min_off, Duration::from_secs(60));
        assert_eq!(
            s.control.window,
            Some(Window {
                start_min: 360,
                end_min: 1320
            })
        );
        assert_eq!(s.control.on_sensor_failure, FailurePolicy::Off);
        assert_eq!(s.control.override_max, None);
        assert_eq!(s.control.lamp_lux, LampLux::Auto);
        assert_eq!(s.monitor.settle, Duration::from_secs(5));
        assert_eq!(s.monitor.lamp_min_rise_lux, 0.0);
        assert_eq!(s.mock.ambient, Ambient::Day);
        assert_eq!(s.mock.lamp_lux, 400.0);
        assert_eq!(s.mock.time_scale, 1.0);
        assert_eq!(s.mock.weather, None);
        assert_eq!(
            s.dli,
            DliSettings {
                target_mol: 0.0,
                sun_umol_per_lux: 0.0185,
                lamp_ppfd: 0.0,
                lamp_umol_per_lux: 0.0135,
                lamp_watts: 0.0,
                carry_max_mol: 0.0,
                tariff: vec![],
                default_price: 0.0,
            }
        );
        assert_eq!(
            s.homeassistant,
            HomeAssistantSettings {
                discovery: true,
                discovery_prefix: "homeassistant".into(),
                status_topic: "homeassistant/status".into(),
            }
        );
        assert_eq!(s.http.listen, Some("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let p = problems_of(
            "[control]\non_below_lux = 450\noff_above_lux = 400\n",
            "control.off_above_lux",
        );
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with(
            "control.off_above_lux (400) must be greater than control.on_below_lux (450)"
        ));
        problems_of(
            "[control]\non_below_lux = 500\noff_above_lux = 500\n",
            "control.off_above_lux",
        );
        // Order is checked against defaults too.
        problems_of("[control]\non_below_lux = 600\n", "control.off_above_lux");
    }

    #[test]
    fn thresholds_must_be_in_sensor_range() {
        let p = problems_of("[control]\non_below_lux = -1\n", "control.on_below_lux");
        assert!(p[0].contains("at least 0"), "{p:?}");
        let p = problems_of(
            "[control]\non_below_lux = 100\noff_above_lux = 150000\n",
            "control.off_above_lux",
        );
        assert!(p[0].contains("at most 100000 lux"), "{p:?}");
        let s = ok("[control]\non_below_lux = 0\noff_above_lux = 100000\n");
        assert_eq!(s.control.off_above_lux, 100_000.0);
    }

    #[test]
    fn window_syntax() {
        assert_eq!(parse_window(""), Ok(None));
        assert_eq!(parse_window("  "), Ok(None));
        assert_eq!(
            parse_window("06:00-22:00"),
            Ok(Some(Window {
                start_min: 360,
                end_min: 1320
            }))
        );
        assert_eq!(
            parse_window("22:30 - 6:15"),
            Ok(Some(Window {
                start_min: 1350,
                end_min: 375
            }))
        );
        assert_eq!(
            parse_window("00:00-23:59"),
            Ok(Some(Window {
                start_min: 0,
                end_min: 1439
            }))
        );
        for bad in [
            "06:00",
            "6-22",
            "24:00-06:00",
            "06:60-07:00",
            "06:00-22:00-23:00",
            "a:00-b:00",
            "06:0-07:00",
        ] {
            assert!(parse_window(bad).is_err(), "{bad} accepted");
        }
        let same = parse_window("06:00-06:00");
        assert!(same.is_err_and(|e| e.contains("same time")));
        problems_of("[control]\nwindow = \"25:00-06:00\"\n", "control.window");
        assert_eq!(ok("[control]\nwindow = \"\"\n").control.window, None);
    }

    #[test]
    fn topic_prefix_rules() {
        assert!(check_topic_prefix("laboratory/greenhouse").is_ok());
        assert!(check_topic_prefix("a").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a/+/b", "a/#", "$SYS/x", "a\0b"] {
            assert!(check_topic_prefix(bad).is_err(), "{bad:?} accepted");
        }
        problems_of(
            "[mqtt]\ntopic_prefix = \"green/house/\"\n",
            "mqtt.topic_prefix",
        );
    }

    #[test]
    fn sensor_topic_default_follows_prefix_and_rejects_wildcards() {
        assert_eq!(
            ok("[mqtt]\ntopic_prefix = \"gh\"\n").sensor.topic,
            "gh/luminosity"
        );
        assert_eq!(
            ok("[sensor]\ntopic = \"other/lux\"\n").sensor.topic,
            "other/lux"
        );
        problems_of("[sensor]\ntopic = \"other/+/lux\"\n", "sensor.topic");
        problems_of("[sensor]\ntopic = \"other/#\"\n", "sensor.topic");
    }

    #[test]
    fn device_id_rules_and_hostname_sanitising() {
        assert_eq!(default_device_id(Some("RaspberryPi")), "raspberrypi");
        assert_eq!(default_device_id(Some("pi.local\n")), "pi-local");
        assert_eq!(default_device_id(Some("Grün Haus_2")), "gr-n-haus_2");
        assert_eq!(default_device_id(Some(&"x".repeat(100))).len(), 64);
        assert_eq!(default_device_id(Some("")), FALLBACK_DEVICE_ID);
        assert_eq!(default_device_id(Some("...")), FALLBACK_DEVICE_ID);
        assert_eq!(default_device_id(None), FALLBACK_DEVICE_ID);
        assert!(is_valid_device_id("gh-1_a"));
        assert!(!is_valid_device_id(""));
        assert!(!is_valid_device_id("GH"));
        assert!(!is_valid_device_id(&"a".repeat(65)));
        problems_of("[device]\nid = \"Green House\"\n", "device.id");
        let s = ok("[device]\nid = \"gh-7\"\n");
        assert_eq!(s.mqtt.client_id, "greenhoused-gh-7");
        assert_eq!(ok("[device]\nid = \"\"\n").device.id, "test-pi");
    }

    #[test]
    fn client_id_override() {
        assert_eq!(ok("[mqtt]\nclient_id = \"mine\"\n").mqtt.client_id, "mine");
        problems_of("[mqtt]\nclient_id = \"has space\"\n", "mqtt.client_id");
    }

    #[test]
    fn address_is_one_of_the_two_bh1750_addresses() {
        assert_eq!(ok("[sensor]\naddress = 0x5c\n").sensor.address, 0x5c);
        let p = problems_of("[sensor]\naddress = 0x24\n", "sensor.address");
        assert!(
            p[0].starts_with("sensor.address (0x24) must be 0x23"),
            "{p:?}"
        );
        problems_of("[sensor]\naddress = -1\n", "sensor.address");
    }

    #[test]
    fn gpio_range() {
        assert_eq!(ok("[relay]\ngpio = 0\n").relay.gpio, 0);
        assert_eq!(ok("[relay]\ngpio = 27\n").relay.gpio, 27);
        problems_of("[relay]\ngpio = 28\n", "relay.gpio");
        problems_of("[relay]\ngpio = -3\n", "relay.gpio");
    }

    #[test]
    fn interval_leaves_room_for_the_worst_case_conversion() {
        let p = problems_of("[sensor]\ninterval_s = 0.5\n", "sensor.interval_s");
        assert_eq!(
            p,
            vec!["sensor.interval_s (0.5) must be at least 0.75 s to leave room for the worst-case auto-ranged BH1750 conversion"]
        );
        assert_eq!(
            ok("[sensor]\ninterval_s = 0.75\n").sensor.interval,
            WORST_CASE_CYCLE
        );
        assert_eq!(
            ok("[sensor]\ninterval_s = 2\n").sensor.interval,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn stale_after_exceeds_interval() {
        let p = problems_of(
            "[sensor]\ninterval_s = 5\nstale_after_s = 5\n",
            "sensor.stale_after_s",
        );
        assert!(p[0].contains("greater than sensor.interval_s (5)"), "{p:?}");
        problems_of("[sensor]\nstale_after_s = 0\n", "sensor.stale_after_s");
        assert_eq!(
            ok("[sensor]\ninterval_s = 2\nstale_after_s = 2.5\n")
                .sensor
                .stale_after,
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn broker_urls() {
        let remote = |host: &str, port, tls| {
            Ok(BrokerUrl::Remote(vec![Endpoint {
                host: host.into(),
                port,
                tls,
            }]))
        };
        assert_eq!(parse_broker_url("embedded"), Ok(BrokerUrl::Embedded));
        assert_eq!(
            parse_broker_url("mqtt://broker.lan"),
            remote("broker.lan", 1883, false)
        );
        assert_eq!(
            parse_broker_url("mqtt://10.0.0.2:1884"),
            remote("10.0.0.2", 1884, false)
        );
        assert_eq!(
            parse_broker_url("mqtts://broker.lan"),
            remote("broker.lan", 8883, true)
        );
        assert_eq!(
            parse_broker_url("mqtts://[fd00::1]:8884"),
            remote("fd00::1", 8884, true)
        );
        assert_eq!(parse_broker_url("mqtt://[::1]"), remote("::1", 1883, false));
        for bad in [
            "",
            "Embedded",
            "broker.lan",
            "tcp://broker:1883",
            "http://broker",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://broker:0",
            "mqtt://broker:70000",
            "mqtt://broker:port",
            "mqtt://user:pw@broker",
            "mqtt://broker/path",
            "mqtt://fd00::1:1883",
            "mqtt://[fd00::1",
            "mqtt://[nothex]:1883",
            "mqtt://bro ker",
        ] {
            let e = parse_broker_url(bad);
            assert!(
                e.as_ref().is_err_and(|m| m.contains("accepted forms")),
                "{bad:?} gave {e:?}"
            );
        }
    }

    #[test]
    fn embedded_listen_must_be_a_socket_address() {
        assert_eq!(
            ok("[mqtt]\nembedded_listen = \"[::1]:1884\"\n")
                .mqtt
                .embedded_listen,
            "[::1]:1884".parse::<SocketAddr>().unwrap()
        );
        problems_of(
            "[mqtt]\nembedded_listen = \"localhost\"\n",
            "mqtt.embedded_listen",
        );
    }

    #[test]
    fn qos_and_keepalive_ranges() {
        assert_eq!(ok("[mqtt]\nqos = 0\n").mqtt.qos, 0);
        assert_eq!(ok("[mqtt]\nqos = 2\n").mqtt.qos, 2);
        problems_of("[mqtt]\nqos = 3\n", "mqtt.qos");
        problems_of("[mqtt]\nkeepalive_s = 4\n", "mqtt.keepalive_s");
        problems_of("[mqtt]\nkeepalive_s = 3601\n", "mqtt.keepalive_s");
        assert_eq!(
            ok("[mqtt]\nkeepalive_s = 60\n").mqtt.keepalive,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn password_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let (raw, _) =
            RawConfig::parse("[mqtt]\nusername = \"u\"\npassword_file = \"pw\"\n").unwrap();
        let s = validate(&raw, Some(dir.path()), &env()).unwrap();
        assert_eq!(s.mqtt.password.as_deref(), Some("s3cret"));
        assert_eq!(s.mqtt.password_file, Some(dir.path().join("pw")));
        assert_eq!(s.mqtt.username.as_deref(), Some("u"));
    }

    #[test]
    fn password_file_missing_empty_or_without_username_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        std::fs::write(dir.path().join("pw"), "x").unwrap();
        let run = |text: &str| {
            let (raw, _) = RawConfig::parse(text).unwrap();
            validate(&raw, Some(dir.path()), &env()).unwrap_err()
        };
        let p = run("[mqtt]\nusername = \"u\"\npassword_file = \"missing\"\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "mqtt.password_file");
        assert!(p[0].reason.contains("cannot be read"), "{p:?}");
        let p = run("[mqtt]\nusername = \"u\"\npassword_file = \"empty\"\n");
        assert!(p[0].reason.contains("is empty"), "{p:?}");
        let p = run("[mqtt]\npassword_file = \"pw\"\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "mqtt.username");
    }

    #[test]
    fn password_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("huge"), "x".repeat(5000)).unwrap();
        let run = |text: &str| {
            let (raw, _) = RawConfig::parse(text).unwrap();
            validate(&raw, Some(dir.path()), &env()).unwrap_err()
        };
        let p = run("[mqtt]\nusername = \"u\"\npassword_file = \"huge\"\n");
        assert!(p[0].reason.contains("larger than"), "{p:?}");
        // /dev/zero would never end and a FIFO would block: neither is read.
        let p = run("[mqtt]\nusername = \"u\"\npassword_file = \"/dev/zero\"\n");
        assert!(p[0].reason.contains("not a regular file"), "{p:?}");
    }

    #[test]
    fn credentials_directory_supplies_the_default_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let env_with = Environment {
            credentials_dir: Some(dir.path().to_path_buf()),
            hostname: Some("h".into()),
        };
        let (raw, _) = RawConfig::parse("[mqtt]\nusername = \"u\"\n").unwrap();
        // No credential file: no password.
        let s = validate(&raw, None, &env_with).unwrap();
        assert_eq!(s.mqtt.password, None);
        assert_eq!(s.mqtt.password_file, None);
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "from-systemd\r\n").unwrap();
        let s = validate(&raw, None, &env_with).unwrap();
        assert_eq!(s.mqtt.password.as_deref(), Some("from-systemd"));
        assert_eq!(s.mqtt.password_file, Some(dir.path().join(CREDENTIAL_NAME)));
        // An explicit password_file wins over the credential.
        std::fs::write(dir.path().join("explicit"), "mine").unwrap();
        let (raw, _) =
            RawConfig::parse("[mqtt]\nusername = \"u\"\npassword_file = \"explicit\"\n").unwrap();
        let s = validate(&raw, Some(dir.path()), &env_with).unwrap();
        assert_eq!(s.mqtt.password.as_deref(), Some("mine"));
    }

    #[test]
    fn tls_files_need_mqtts_readable_files_and_a_cert_for_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let run = |text: &str| {
            let (raw, _) = RawConfig::parse(text).unwrap();
            validate(&raw, Some(dir.path()), &env())
        };
        let s = run("[mqtt]\nurl = \"mqtts://b\"\nca_file = \"ca.pem\"\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n")
            .unwrap();
        assert_eq!(s.mqtt.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(s.mqtt.key_file, Some(dir.path().join("key.pem")));

        let p = run("[mqtt]\nurl = \"mqtt://b\"\nca_file = \"ca.pem\"\ncert_file = \"cert.pem\"\n")
            .unwrap_err();
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["mqtt.ca_file", "mqtt.cert_file"]);
        assert!(p[0].reason.contains("mqtts://"));

        let p = run("[mqtt]\nurl = \"mqtts://b\"\nkey_file = \"key.pem\"\n").unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(p[0].key == "mqtt.key_file" && p[0].reason.contains("cert_file"));

        let p = run("[mqtt]\nurl = \"mqtts://b\"\nca_file = \"nope.pem\"\n").unwrap_err();
        assert!(
            p.len() == 1 && p[0].reason.contains("cannot be read"),
            "{p:?}"
        );
        let p = run("[mqtt]\nurl = \"mqtts://b\"\nca_file = \".\"\n").unwrap_err();
        assert!(
            p.len() == 1 && p[0].reason.contains("not a regular file"),
            "{p:?}"
        );
    }

    #[test]
    fn relay_and_failure_policies() {
        let s = ok("[relay]\non_start = \"restore\"\non_stop = \"keep\"\n[control]\non_sensor_failure = \"on\"\n");
        assert_eq!(s.relay.on_start, OnStart::Restore);
        assert_eq!(s.relay.on_stop, OnStop::Keep);
        assert_eq!(s.control.on_sensor_failure, FailurePolicy::On);
        let p = problems_of("[relay]\non_stop = \"restore\"\n", "relay.on_stop");
        assert!(p[0].contains("\"off\", \"on\", \"keep\""), "{p:?}");
        problems_of("[relay]\non_start = \"keep\"\n", "relay.on_start");
        problems_of(
            "[control]\non_sensor_failure = \"restore\"\n",
            "control.on_sensor_failure",
        );
    }

    #[test]
    fn dwell_and_override_times() {
        let s = ok("[control]\nmin_on_s = 0\nmin_off_s = 90.5\noverride_max_s = 1800\n");
        assert_eq!(s.control.min_on, Duration::ZERO);
        assert_eq!(s.control.min_off, Duration::from_millis(90_500));
        assert_eq!(s.control.override_max, Some(Duration::from_secs(1800)));
        assert_eq!(
            ok("[control]\noverride_max_s = 0\n").control.override_max,
            None
        );
        problems_of("[control]\nmin_on_s = -1\n", "control.min_on_s");
        problems_of("[control]\nmin_off_s = -0.5\n", "control.min_off_s");
        problems_of("[control]\noverride_max_s = -1\n", "control.override_max_s");
    }

    #[test]
    fn lamp_lux_auto_fixed_or_disabled() {
        assert_eq!(
            ok("[control]\nlamp_lux = \"auto\"\n").control.lamp_lux,
            LampLux::Auto
        );
        assert_eq!(
            ok("[control]\nlamp_lux = 320\n").control.lamp_lux,
            LampLux::Fixed(320.0)
        );
        assert_eq!(
            ok("[control]\nlamp_lux = 0\n").control.lamp_lux,
            LampLux::Fixed(0.0)
        );
        problems_of("[control]\nlamp_lux = \"300\"\n", "control.lamp_lux");
        problems_of("[control]\nlamp_lux = -5\n", "control.lamp_lux");
    }

    #[test]
    fn monitor_checks() {
        let s = ok("[monitor]\nsettle_s = 2.5\nlamp_min_rise_lux = 50\n");
        assert_eq!(s.monitor.settle, Duration::from_millis(2500));
        assert_eq!(s.monitor.lamp_min_rise_lux, 50.0);
        let p = problems_of("[monitor]\nsettle_s = 0\n", "monitor.settle_s");
        assert!(p[0].contains("greater than 0"), "{p:?}");
        problems_of(
            "[monitor]\nlamp_min_rise_lux = -1\n",
            "monitor.lamp_min_rise_lux",
        );
    }

    #[test]
    fn mock_settings() {
        assert_eq!(
            ok("[mock]\nambient = \"300\"\n").mock.ambient,
            Ambient::Constant(300.0)
        );
        assert_eq!(
            ok("[mock]\nambient = 120.5\n").mock.ambient,
            Ambient::Constant(120.5)
        );
        assert_eq!(ok("[mock]\nambient = \"day\"\n").mock.ambient, Ambient::Day);
        problems_of("[mock]\nambient = \"night\"\n", "mock.ambient");
        problems_of("[mock]\nambient = \"inf\"\n", "mock.ambient");
        problems_of("[mock]\nambient = -1\n", "mock.ambient");
        problems_of("[mock]\nlamp_lux = -1\n", "mock.lamp_lux");
        problems_of("[mock]\ntime_scale = 0\n", "mock.time_scale");
        problems_of("[mock]\ntime_scale = 100001\n", "mock.time_scale");
        assert_eq!(ok("[mock]\ntime_scale = 60\n").mock.time_scale, 60.0);
    }

    #[test]
    fn i2c_bus_must_be_absolute() {
        assert_eq!(
            ok("[sensor]\ni2c_bus = \"/dev/i2c-3\"\n").sensor.i2c_bus,
            PathBuf::from("/dev/i2c-3")
        );
        problems_of("[sensor]\ni2c_bus = \"i2c-1\"\n", "sensor.i2c_bus");
    }

    /// The problems of `text` as (key, message) pairs, in order.
    fn all_problems(text: &str) -> Vec<(String, String)> {
        match check(text) {
            Ok(s) => panic!("expected problems, got {s:?}"),
            Err(p) => p
                .into_iter()
                .map(|p| (p.key.clone(), p.to_string()))
                .collect(),
        }
    }

    fn keys_of(text: &str) -> Vec<String> {
        all_problems(text).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn url_lists_fail_over_in_order() {
        let s = ok("[mqtt]\nurl = [\"mqtt://a\", \"mqtt://[fd00::2]:1884\"]\n");
        assert_eq!(
            s.mqtt.url,
            BrokerUrl::Remote(vec![
                Endpoint {
                    host: "a".into(),
                    port: 1883,
                    tls: false
                },
                Endpoint {
                    host: "fd00::2".into(),
                    port: 1884,
                    tls: false
                },
            ])
        );
        // A one-element list is the URL alone, "embedded" included.
        assert_eq!(
            ok("[mqtt]\nurl = [\"embedded\"]\n").mqtt.url,
            BrokerUrl::Embedded
        );
        assert_eq!(
            ok("[mqtt]\nurl = [\"mqtt://a\"]\n").mqtt.url,
            ok("[mqtt]\nurl = \"mqtt://a\"\n").mqtt.url
        );
        let p = all_problems("[mqtt]\nurl = []\n");
        assert_eq!(p[0].0, "mqtt.url");
        assert!(p[0].1.contains("empty list"), "{p:?}");
        let p = all_problems("[mqtt]\nurl = [\"mqtt://a\", \"embedded\"]\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "mqtt.url[1]");
        assert!(p[0].1.contains("only be used alone"), "{p:?}");
        assert_eq!(
            keys_of("[mqtt]\nurl = [\"mqtt://a\", \"ftp://b\", \"mqtt://a:1883\"]\n"),
            vec!["mqtt.url[1]", "mqtt.url[2]"]
        );
        let p = all_problems("[mqtt]\nurl = [\"mqtt://a\", \"mqtts://b\"]\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].0 == "mqtt.url" && p[0].1.contains("drop TLS"), "{p:?}");
        // A list element of the wrong type is the raw walk's problem (and no follow-up).
        let (raw, problems) = RawConfig::parse("[mqtt]\nurl = [\"mqtt://a\", 3]\n").unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "mqtt.url[1]");
        assert!(validate(&raw, None, &env()).is_err());
    }

    #[test]
    fn device_placeholder_in_the_prefix() {
        let s = ok("[device]\nid = \"north\"\n[mqtt]\ntopic_prefix = \"greenhouses/{device}\"\n");
        assert_eq!(s.mqtt.topic_prefix, "greenhouses/north");
        assert_eq!(s.sensor.topic, "greenhouses/north/luminosity");
        // The host name gives the id.
        assert_eq!(
            ok("[mqtt]\ntopic_prefix = \"{device}/gh\"\n")
                .mqtt
                .topic_prefix,
            "test-pi/gh"
        );
        let p = problems_of(
            "[mqtt]\ntopic_prefix = \"greenhouses/{devices}\"\n",
            "mqtt.topic_prefix",
        );
        assert!(p[0].contains("unknown placeholder"), "{p:?}");
        let p = problems_of(
            "[mqtt]\ntopic_prefix = \"greenhouses/{device}/\"\n",
            "mqtt.topic_prefix",
        );
        assert!(p[0].contains("with {device} = \"test-pi\""), "{p:?}");
        problems_of(
            "[mqtt]\ntopic_prefix = \"+/{device}\"\n",
            "mqtt.topic_prefix",
        );
        // An invalid id is reported once, on device.id.
        problems_of(
            "[device]\nid = \"A B\"\n[mqtt]\ntopic_prefix = \"g/{device}\"\n",
            "device.id",
        );
        // No id and no usable host name: every such gateway would share the prefix.
        let (raw, _) = RawConfig::parse("[mqtt]\ntopic_prefix = \"g/{device}\"\n").unwrap();
        let nameless = Environment {
            credentials_dir: None,
            hostname: None,
        };
        let p = validate(&raw, None, &nameless).unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].key == "mqtt.topic_prefix" && p[0].reason.contains("set device.id"),
            "{p:?}"
        );
        // An explicit id equal to the fallback is a choice, not a default.
        let (raw, _) = RawConfig::parse(
            "[device]\nid = \"greenhouse\"\n[mqtt]\ntopic_prefix = \"g/{device}\"\n",
        )
        .unwrap();
        assert_eq!(
            validate(&raw, None, &nameless).unwrap().mqtt.topic_prefix,
            "g/greenhouse"
        );
    }

    #[test]
    fn strategy_and_dli_keys() {
        let s = ok("[control]\nstrategy = \"dli\"\n[dli]\ntarget_mol = 17\nlamp_ppfd = 180\nlamp_watts = 400\ncarry_max_mol = 2\ndefault_price = 0.25\n");
        assert_eq!(s.control.strategy, Strategy::Dli);
        assert_eq!(s.dli.target_mol, 17.0);
        assert_eq!(s.dli.lamp_ppfd, 180.0);
        assert_eq!(s.dli.lamp_watts, 400.0);
        assert_eq!(s.dli.carry_max_mol, 2.0);
        assert_eq!(s.dli.default_price, 0.25);
        problems_of("[control]\nstrategy = \"lux\"\n", "control.strategy");
        let p = problems_of("[control]\nstrategy = \"dli\"\n", "dli.target_mol");
        assert!(
            p[0].contains("must be greater than 0 with control.strategy = \"dli\""),
            "{p:?}"
        );
        for key in [
            "target_mol",
            "lamp_ppfd",
            "lamp_watts",
            "carry_max_mol",
            "default_price",
        ] {
            let p = problems_of(&format!("[dli]\n{key} = -1\n"), &format!("dli.{key}"));
            assert!(p[0].contains("must be at least 0"), "{p:?}");
        }
        problems_of("[dli]\ntarget_mol = 101\n", "dli.target_mol");
        problems_of("[dli]\nsun_umol_per_lux = 0\n", "dli.sun_umol_per_lux");
        problems_of("[dli]\nlamp_umol_per_lux = 2\n", "dli.lamp_umol_per_lux");
        // A mistyped target raises no follow-up "needs a target".
        let (raw, problems) =
            RawConfig::parse("[control]\nstrategy = \"dli\"\n[dli]\ntarget_mol = \"17\"\n")
                .unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(validate(&raw, None, &env()).unwrap_err(), vec![]);
    }

    #[test]
    fn dli_needs_six_hours_of_darkness() {
        let dli = "[control]\nstrategy = \"dli\"\n[dli]\ntarget_mol = 12\n";
        let with = |window: &str| {
            format!(
                "[control]\nstrategy = \"dli\"\nwindow = \"{window}\"\n[dli]\ntarget_mol = 12\n"
            )
        };
        assert_eq!(
            ok(&with("06:00-00:00"))
                .control
                .window
                .map(|w| w.to_string())
                .as_deref(),
            Some("06:00-00:00")
        );
        ok(&with("22:00-16:00"));
        ok(&with("06:00-22:00"));
        let p = problems_of(&with(""), "control.window");
        assert!(p[0].contains("(\"\") leaves 0 h of darkness"), "{p:?}");
        let p = problems_of(&with("05:30-00:00"), "control.window");
        assert!(p[0].contains("leaves 5 h 30 min of darkness"), "{p:?}");
        problems_of(&with("20:00-15:00"), "control.window");
        // The default window leaves 8 h; the threshold strategy has no such limit.
        ok(dli);
        ok("[control]\nwindow = \"\"\n");
    }

    #[test]
    fn tariff_periods() {
        let s = ok("[dli]\ndefault_price = 0.2\n\
            [[dli.tariff]]\nfrom = \"22:00\"\nto = \"06:00\"\nprice = 0.1\n\
            [[dli.tariff]]\nfrom = \"07:00\"\nto = \"12:00\"\nprice = 0.3\n\
            [[dli.tariff]]\nfrom = \"12:00\"\nto = \"22:00\"\nprice = 0\n");
        assert_eq!(
            s.dli.tariff,
            vec![
                TariffPeriod {
                    from: 420,
                    to: 720,
                    price: 0.3
                },
                TariffPeriod {
                    from: 720,
                    to: 1320,
                    price: 0.0
                },
                TariffPeriod {
                    from: 1320,
                    to: 360,
                    price: 0.1
                },
            ]
        );
        // "24:00" ends a period at midnight.
        assert_eq!(
            ok("[[dli.tariff]]\nfrom = \"18:00\"\nto = \"24:00\"\nprice = 1\n")
                .dli
                .tariff,
            vec![TariffPeriod {
                from: 1080,
                to: 0,
                price: 1.0
            }]
        );
        // Malformed entries: every problem at once, each with its path.
        let p = all_problems(
            "[[dli.tariff]]\nfrom = \"7:00\"\nto = \"25:00\"\nprice = -1\n\
            [[dli.tariff]]\nfrom = \"08:00\"\n\
            [[dli.tariff]]\nfrom = \"09:00\"\nto = \"09:00\"\nprice = 1\n",
        );
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "dli.tariff[0].to",
                "dli.tariff[0].price",
                "dli.tariff[1].to",
                "dli.tariff[1].price",
                "dli.tariff[2]"
            ],
            "{p:?}"
        );
        assert!(p[1].1.contains("must be at least 0"), "{p:?}");
        assert!(p[2].1.contains("is missing"), "{p:?}");
        assert!(p[4].1.contains("from and to must differ"), "{p:?}");
        // Overlaps, also across midnight.
        let p = all_problems(
            "[[dli.tariff]]\nfrom = \"22:00\"\nto = \"06:00\"\nprice = 0.1\n\
            [[dli.tariff]]\nfrom = \"05:00\"\nto = \"07:00\"\nprice = 0.2\n\
            [[dli.tariff]]\nfrom = \"07:00\"\nto = \"08:00\"\nprice = 0.2\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(
            p[0].1,
            "dli.tariff[1] (05:00-07:00) overlaps dli.tariff[0] (22:00-06:00): each time of day may have one price only"
        );
        // Not a table / unknown key / wrong type: the raw walk's problems.
        let (_, problems) = RawConfig::parse("[dli]\ntariff = [1]\n").unwrap();
        assert_eq!(problems[0].key, "dli.tariff[0]");
        let (raw, problems) = RawConfig::parse(
            "[[dli.tariff]]\nfrom = \"07:00\"\nto = \"08:00\"\nprice = \"1\"\ncost = 2\n",
        )
        .unwrap();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["dli.tariff[0].price", "dli.tariff[0].cost"]);
        assert!(problems[1]
            .reason
            .contains("known keys in [[dli.tariff]]: from, to, price"));
        // ... with no follow-up "price is missing".
        assert_eq!(validate(&raw, None, &env()).unwrap_err(), vec![]);
    }

    #[test]
    fn homeassistant_http_on_boot_and_weather() {
        let s = ok("[homeassistant]\ndiscovery = false\ndiscovery_prefix = \"ha\"\nstatus_topic = \"ha/status\"\n\
                    [http]\nlisten = \"\"\n[relay]\non_boot = \"restore\"\n");
        assert!(!s.homeassistant.discovery);
        assert_eq!(s.homeassistant.discovery_prefix, "ha");
        assert_eq!(s.homeassistant.status_topic, "ha/status");
        assert_eq!(s.http.listen, None);
        assert_eq!(s.relay.on_boot, OnStart::Restore);
        assert_eq!(
            ok("[http]\nlisten = \"[::]:0\"\n").http.listen,
            Some("[::]:0".parse().unwrap())
        );
        problems_of("[http]\nlisten = \"localhost:80\"\n", "http.listen");
        problems_of(
            "[homeassistant]\ndiscovery_prefix = \"ha/\"\n",
            "homeassistant.discovery_prefix",
        );
        problems_of(
            "[homeassistant]\nstatus_topic = \"ha/#\"\n",
            "homeassistant.status_topic",
        );
        problems_of(
            "[homeassistant]\nstatus_topic = \"\"\n",
            "homeassistant.status_topic",
        );
        problems_of("[relay]\non_boot = \"keep\"\n", "relay.on_boot");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.csv"), "time,lux\n").unwrap();
        let run = |text: &str| {
            let (raw, _) = RawConfig::parse(text).unwrap();
            validate(&raw, Some(dir.path()), &env())
        };
        assert_eq!(
            run("[mock]\nweather = \"w.csv\"\n").unwrap().mock.weather,
            Some(dir.path().join("w.csv"))
        );
        let p = run("[mock]\nweather = \"missing.csv\"\n").unwrap_err();
        assert!(
            p.len() == 1 && p[0].key == "mock.weather" && p[0].reason.contains("cannot be read"),
            "{p:?}"
        );
    }

    #[test]
    fn problems_in_several_sections_are_all_reported() {
        let p =
            check("[mqtt]\nqos = 5\n[relay]\ngpio = 99\n[control]\nwindow = \"x\"\n").unwrap_err();
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["mqtt.qos", "relay.gpio", "control.window"]);
    }
}
