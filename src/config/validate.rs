//! Validation: raw values → typed [`Settings`], applying the defaults of the contract and collecting every
//! problem (with its key path) instead of stopping at the first.

use std::fs;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::Environment;
use super::raw::{NumberOrText, RawConfig};
use super::{
    Ambient, BrokerUrl, ControlSettings, DeviceSettings, FailurePolicy, LampLux, MockSettings,
    MonitorSettings, MqttSettings, OnStart, OnStop, Problem, RelaySettings, SensorSettings,
    SensorSource, Settings, Window,
};
use crate::hw::bh1750::WORST_CASE_CYCLE;

/// Highest lux the thresholds accept: the BH1750 tops out at about 121 klx (full sun is about 100 klx).
pub const MAX_LUX: f64 = 100_000.0;
/// Highest lux the simulation accepts (above the sensor's range, to exercise saturation).
pub const MAX_MOCK_LUX: f64 = 200_000.0;
/// Default `device.id` when the host name gives nothing usable.
pub const FALLBACK_DEVICE_ID: &str = "greenhouse";
/// File name looked up in `$CREDENTIALS_DIRECTORY` when `mqtt.password_file` is empty.
pub const CREDENTIAL_NAME: &str = "mqtt-password";

const DAY_S: f64 = 86_400.0;

/// Accepted `mqtt.url` forms, quoted in the message when a URL is rejected.
const URL_FORMS: &str = "accepted forms: \"embedded\", \"mqtt://host[:port]\" (default port 1883), \
\"mqtts://host[:port]\" (TLS, default port 8883); IPv6 hosts in brackets, e.g. \"mqtt://[fd00::1]:1883\"";

/// Checks every value of `raw`, resolving relative file paths against `base_dir` (the configuration file's
/// directory; `None` = the working directory). Returns every value problem found (the raw parse's own problems,
/// which `raw.mistyped` lists, are the caller's to report), or the settings when there is none at all.
pub fn validate(
    raw: &RawConfig,
    base_dir: Option<&Path>,
    env: &Environment,
) -> Result<Settings, Vec<Problem>> {
    let mut c = Check::default();
    // A mistyped key was replaced by its default: cross-checks involving it would only confuse.
    let usable = |keys: &[&str]| keys.iter().all(|k| !raw.mistyped.contains(*k));

    // [device]
    let id = match non_empty(&raw.device.id) {
        None => default_device_id(env.hostname.as_deref()),
        Some(id) => {
            if !is_valid_device_id(id) {
                c.push(
                    "device.id",
                    format!(
                        "({id:?}) must be 1 to 64 characters of a-z, 0-9, '_' and '-' (lower case)"
                    ),
                );
            }
            id.to_string()
        }
    };
    let name = match &raw.device.name {
        None => "Greenhouse".to_string(),
        Some(n) if n.trim().is_empty() => {
            c.push(
                "device.name",
                "must not be empty (it is the name shown to people)",
            );
            String::new()
        }
        Some(n) => n.clone(),
    };

    // [mqtt]
    let url = c.map(
        "mqtt.url",
        raw.mqtt.url.as_deref().unwrap_or("embedded"),
        parse_broker_url,
    );
    let embedded_listen = c.map(
        "mqtt.embedded_listen",
        raw.mqtt.embedded_listen.as_deref().unwrap_or("127.0.0.1:1883"),
        |s| {
            s.trim().parse::<SocketAddr>().map_err(|_| {
                format!("({s:?}) must be a socket address such as \"127.0.0.1:1883\", \"0.0.0.0:1883\" or \"[::1]:1883\"")
            })
        },
    );
    let client_id = match non_empty(&raw.mqtt.client_id) {
        None => format!("greenhoused-{id}"),
        Some(cid) => {
            if cid.chars().count() > 128
                || cid.chars().any(|ch| ch.is_control() || ch.is_whitespace())
            {
                c.push(
                    "mqtt.client_id",
                    format!("({cid:?}) must be at most 128 characters without spaces or control characters; \"\" gives \"greenhoused-<device.id>\""),
                );
            }
            cid.to_string()
        }
    };
    let topic_prefix = c.map(
        "mqtt.topic_prefix",
        raw.mqtt
            .topic_prefix
            .as_deref()
            .unwrap_or("laboratory/greenhouse"),
        |p| check_topic_prefix(p).map(|()| p.to_string()),
    );
    let username = non_empty(&raw.mqtt.username).map(str::to_string);
    let (password_file, password) = match non_empty(&raw.mqtt.password_file) {
        Some(file) => {
            let path = resolve(base_dir, file);
            match read_secret(&path) {
                Ok(secret) => (Some(path), Some(secret)),
                Err(why) => {
                    c.push(
                        "mqtt.password_file",
                        format!("({}) {why}; point it at a readable file holding only the password, or set \"\" for none", path.display()),
                    );
                    (Some(path), None)
                }
            }
        }
        None => match env
            .credentials_dir
            .as_deref()
            .map(|d| d.join(CREDENTIAL_NAME))
        {
            Some(path) if path.is_file() => match read_secret(&path) {
                Ok(secret) => (Some(path), Some(secret)),
                Err(why) => {
                    c.push(
                        "mqtt.password_file",
                        format!("(default {}, from $CREDENTIALS_DIRECTORY) {why}; fix the credential passed with LoadCredential=", path.display()),
                    );
                    (Some(path), None)
                }
            },
            _ => (None, None),
        },
    };
    if password_file.is_some() && username.is_none() && usable(&["mqtt.username"]) {
        c.push(
            "mqtt.username",
            "must be set when a password is given (mqtt.password_file or $CREDENTIALS_DIRECTORY/mqtt-password): MQTT sends a password only with a user name",
        );
    }
    let tls = match &url {
        _ if !usable(&["mqtt.url"]) => None,
        Some(BrokerUrl::Remote { tls, .. }) => Some(*tls),
        Some(BrokerUrl::Embedded) => Some(false),
        None => None,
    };
    let tls_file = |c: &mut Check, key: &str, value: &Option<String>| -> Option<PathBuf> {
        let path = resolve(base_dir, non_empty(value)?);
        if let Err(why) = check_readable(&path) {
            c.push(key, format!("({}) {why}", path.display()));
        }
        if tls == Some(false) {
            c.push(
                key,
                format!(
                    "({}) is only used with an mqtts:// url, but mqtt.url is {:?}; use mqtts://host[:port] or set \"\"",
                    path.display(),
                    raw.mqtt.url.as_deref().unwrap_or("embedded")
                ),
            );
        }
        Some(path)
    };
    let ca_file = tls_file(&mut c, "mqtt.ca_file", &raw.mqtt.ca_file);
    let cert_file = tls_file(&mut c, "mqtt.cert_file", &raw.mqtt.cert_file);
    let key_file = tls_file(&mut c, "mqtt.key_file", &raw.mqtt.key_file);
    if key_file.is_some() && cert_file.is_none() && usable(&["mqtt.cert_file"]) {
        c.push(
            "mqtt.key_file",
            "is set but mqtt.cert_file is not: a client key needs its client certificate",
        );
    }
    let keepalive = c.int("mqtt.keepalive_s", raw.mqtt.keepalive_s, 30, 5, 3600, " s");
    let qos = c.int("mqtt.qos", raw.mqtt.qos, 1, 0, 2, "");

    // [sensor]
    let source = c.choice(
        "sensor.source",
        raw.sensor.source.as_deref(),
        SensorSource::Bh1750,
        &[
            ("bh1750", SensorSource::Bh1750),
            ("mqtt", SensorSource::Mqtt),
        ],
    );
    let i2c_bus = raw.sensor.i2c_bus.as_deref().unwrap_or("/dev/i2c-1");
    if !i2c_bus.starts_with('/') {
        c.push(
            "sensor.i2c_bus",
            format!("({i2c_bus:?}) must be an absolute device path such as \"/dev/i2c-1\""),
        );
    }
    let address = raw.sensor.address.unwrap_or(0x23);
    if address != 0x23 && address != 0x5c {
        let shown = u32::try_from(address).map_or(address.to_string(), |a| format!("{a:#04x}"));
        c.push(
            "sensor.address",
            format!("({shown}) must be 0x23 (ADDR pin low) or 0x5c (ADDR pin high), the BH1750's only addresses"),
        );
    }
    let min_interval = WORST_CASE_CYCLE.as_secs_f64();
    let interval_s = raw.sensor.interval_s.unwrap_or(1.0);
    let interval_s = if interval_s < min_interval {
        c.push(
            "sensor.interval_s",
            format!(
                "({}) must be at least {} s to leave room for the worst-case auto-ranged BH1750 conversion",
                num(interval_s),
                num(min_interval)
            ),
        );
        None
    } else {
        c.range(
            "sensor.interval_s",
            Some(interval_s),
            1.0,
            Range::closed(0.0, 3600.0, " s"),
        )
    };
    let topic = match non_empty(&raw.sensor.topic) {
        None => format!(
            "{}/luminosity",
            topic_prefix.as_deref().unwrap_or("laboratory/greenhouse")
        ),
        Some(t) => {
            if let Err(why) = check_topic_name(t) {
                c.push("sensor.topic", format!("({t:?}) {why}"));
            }
            t.to_string()
        }
    };
    let stale_after_s = c.range(
        "sensor.stale_after_s",
        raw.sensor.stale_after_s,
        10.0,
        Range::open(0.0, DAY_S, " s"),
    );
    if let (Some(stale), Some(interval)) = (stale_after_s, interval_s) {
        if stale <= interval && usable(&["sensor.interval_s", "sensor.stale_after_s"]) {
            c.push(
                "sensor.stale_after_s",
                format!(
                    "({}) must be greater than sensor.interval_s ({}): a reading goes stale only after more than one interval without one",
                    num(stale),
                    num(interval)
                ),
            );
        }
    }

    // [relay]
    let gpio = c.int(
        "relay.gpio",
        raw.relay.gpio,
        17,
        0,
        27,
        " (BCM line number of the 40-pin header)",
    );
    let on_start = c.choice(
        "relay.on_start",
        raw.relay.on_start.as_deref(),
        OnStart::Off,
        &[
            ("off", OnStart::Off),
            ("on", OnStart::On),
            ("restore", OnStart::Restore),
        ],
    );
    let on_stop = c.choice(
        "relay.on_stop",
        raw.relay.on_stop.as_deref(),
        OnStop::Off,
        &[
            ("off", OnStop::Off),
            ("on", OnStop::On),
            ("keep", OnStop::Keep),
        ],
    );

    // [control]
    let lux_range =
        Range::closed(0.0, MAX_LUX, " lux").because(" (the BH1750 tops out at about 121 klx)");
    let on_below = c.range(
        "control.on_below_lux",
        raw.control.on_below_lux,
        450.0,
        lux_range,
    );
    let off_above = c.range(
        "control.off_above_lux",
        raw.control.off_above_lux,
        550.0,
        lux_range,
    );
    if let (Some(on), Some(off)) = (on_below, off_above) {
        if off <= on && usable(&["control.on_below_lux", "control.off_above_lux"]) {
            c.push(
                "control.off_above_lux",
                format!(
                    "({}) must be greater than control.on_below_lux ({}); the gap between them is the hysteresis band",
                    num(off),
                    num(on)
                ),
            );
        }
    }
    let day = Range::closed(0.0, DAY_S, " s");
    let min_on = c.secs("control.min_on_s", raw.control.min_on_s, 60.0, day);
    let min_off = c.secs("control.min_off_s", raw.control.min_off_s, 60.0, day);
    let window = c.map(
        "control.window",
        raw.control.window.as_deref().unwrap_or("06:00-22:00"),
        parse_window,
    );
    let on_sensor_failure = c.choice(
        "control.on_sensor_failure",
        raw.control.on_sensor_failure.as_deref(),
        FailurePolicy::Off,
        &[
            ("off", FailurePolicy::Off),
            ("on", FailurePolicy::On),
            ("keep", FailurePolicy::Keep),
        ],
    );
    let override_max = c
        .secs(
            "control.override_max_s",
            raw.control.override_max_s,
            0.0,
            Range::closed(0.0, 7.0 * DAY_S, " s"),
        )
        .map(|d| (!d.is_zero()).then_some(d));
    let lamp_lux = match &raw.control.lamp_lux {
        None => Some(LampLux::Auto),
        Some(NumberOrText::Text(t)) if t.trim().eq_ignore_ascii_case("auto") => Some(LampLux::Auto),
        Some(NumberOrText::Text(t)) => {
            c.push(
                "control.lamp_lux",
                format!("({t:?}) must be \"auto\" or a number of lux without quotes (0 disables compensation)"),
            );
            None
        }
        Some(NumberOrText::Number(n)) => c
            .range("control.lamp_lux", Some(*n), 0.0, lux_range)
            .map(LampLux::Fixed),
    };

    // [monitor]
    let settle = c.secs(
        "monitor.settle_s",
        raw.monitor.settle_s,
        5.0,
        Range::open(0.0, 3600.0, " s"),
    );
    let lamp_min_rise_lux = c.range(
        "monitor.lamp_min_rise_lux",
        raw.monitor.lamp_min_rise_lux,
        0.0,
        lux_range,
    );

    // [mock]
    let mock_lux = Range::closed(0.0, MAX_MOCK_LUX, " lux");
    let ambient = match &raw.mock.ambient {
        None => Some(Ambient::Day),
        Some(NumberOrText::Text(t)) if t.trim().eq_ignore_ascii_case("day") => Some(Ambient::Day),
        Some(NumberOrText::Text(t)) => match t.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => c
                .range("mock.ambient", Some(n), 0.0, mock_lux)
                .map(Ambient::Constant),
            _ => {
                c.push(
                    "mock.ambient",
                    format!("({t:?}) must be \"day\" (sunrise/sunset curve) or a constant lux such as \"300\""),
                );
                None
            }
        },
        Some(NumberOrText::Number(n)) => c
            .range("mock.ambient", Some(*n), 0.0, mock_lux)
            .map(Ambient::Constant),
    };
    let mock_lamp_lux = c.range("mock.lamp_lux", raw.mock.lamp_lux, 400.0, mock_lux);
    let time_scale = c.range(
        "mock.time_scale",
        raw.mock.time_scale,
        1.0,
        Range::open(0.0, 100_000.0, ""),
    );

    c.problems.retain(|p| !raw.mistyped.contains(&p.key));
    if !c.problems.is_empty() || !raw.mistyped.is_empty() {
        return Err(c.problems);
    }
    // With no problem every check returned Some; the fallbacks below are never used.
    Ok(Settings {
        device: DeviceSettings { id, name },
        mqtt: MqttSettings {
            url: url.unwrap_or(BrokerUrl::Embedded),
            embedded_listen: embedded_listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1883))),
            client_id,
            topic_prefix: topic_prefix.unwrap_or_default(),
            username,
            password_file,
            password,
            ca_file,
            cert_file,
            key_file,
            keepalive: Duration::from_secs(keepalive.unwrap_or(30).unsigned_abs()),
            qos: qos.map_or(1, |q| q as i32),
        },
        sensor: SensorSettings {
            source: source.unwrap_or(SensorSource::Bh1750),
            i2c_bus: PathBuf::from(i2c_bus),
            address: address as u8,
            interval: Duration::from_secs_f64(interval_s.unwrap_or(1.0)),
            topic,
            stale_after: Duration::from_secs_f64(stale_after_s.unwrap_or(10.0)),
        },
        relay: RelaySettings {
            gpio: gpio.map_or(17, |g| g as u8),
            active_low: raw.relay.active_low.unwrap_or(false),
            on_start: on_start.unwrap_or(OnStart::Off),
            on_stop: on_stop.unwrap_or(OnStop::Off),
        },
        control: ControlSettings {
            on_below_lux: on_below.unwrap_or(450.0),
            off_above_lux: off_above.unwrap_or(550.0),
            min_on: min_on.unwrap_or_default(),
            min_off: min_off.unwrap_or_default(),
            window: window.flatten(),
            on_sensor_failure: on_sensor_failure.unwrap_or(FailurePolicy::Off),
            override_max: override_max.flatten(),
            lamp_lux: lamp_lux.unwrap_or(LampLux::Auto),
        },
        monitor: MonitorSettings {
            settle: settle.unwrap_or_default(),
            lamp_min_rise_lux: lamp_min_rise_lux.unwrap_or(0.0),
        },
        mock: MockSettings {
            ambient: ambient.unwrap_or(Ambient::Day),
            lamp_lux: mock_lamp_lux.unwrap_or(400.0),
            time_scale: time_scale.unwrap_or(1.0),
        },
    })
}

/// A numeric range for messages: lower bound inclusive or exclusive, upper bound inclusive (`why` explains it).
#[derive(Debug, Clone, Copy)]
struct Range {
    min: f64,
    min_exclusive: bool,
    max: f64,
    unit: &'static str,
    why: &'static str,
}

impl Range {
    fn closed(min: f64, max: f64, unit: &'static str) -> Self {
        Range {
            min,
            min_exclusive: false,
            max,
            unit,
            why: "",
        }
    }

    fn open(min: f64, max: f64, unit: &'static str) -> Self {
        Range {
            min_exclusive: true,
            ..Range::closed(min, max, unit)
        }
    }

    fn because(self, why: &'static str) -> Self {
        Range { why, ..self }
    }
}

/// Collects problems; each check returns `None` when its value is bad.
#[derive(Default)]
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn push(&mut self, key: &str, reason: impl Into<String>) {
        self.problems.push(Problem::new(key, reason));
    }

    fn map<T>(
        &mut self,
        key: &str,
        value: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(value).map_err(|why| self.push(key, why)).ok()
    }

    fn range(&mut self, key: &str, value: Option<f64>, default: f64, r: Range) -> Option<f64> {
        let v = value.unwrap_or(default);
        let too_low = if r.min_exclusive {
            v <= r.min
        } else {
            v < r.min
        };
        if too_low {
            let bound = if r.min_exclusive {
                "greater than"
            } else {
                "at least"
            };
            self.push(
                key,
                format!("({}) must be {bound} {}{}", num(v), num(r.min), r.unit),
            );
            None
        } else if v > r.max {
            self.push(
                key,
                format!(
                    "({}) must be at most {}{}{}",
                    num(v),
                    num(r.max),
                    r.unit,
                    r.why
                ),
            );
            None
        } else {
            Some(v)
        }
    }

    fn secs(&mut self, key: &str, value: Option<f64>, default: f64, r: Range) -> Option<Duration> {
        // In range means finite, >= 0 and small: `from_secs_f64` cannot panic.
        self.range(key, value, default, r)
            .map(Duration::from_secs_f64)
    }

    fn int(
        &mut self,
        key: &str,
        value: Option<i64>,
        default: i64,
        min: i64,
        max: i64,
        note: &str,
    ) -> Option<i64> {
        let v = value.unwrap_or(default);
        if (min..=max).contains(&v) {
            Some(v)
        } else {
            self.push(key, format!("({v}) must be between {min} and {max}{note}"));
            None
        }
    }

    fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: T,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let Some(word) = value else {
            return Some(default);
        };
        let found = choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word.trim()))
            .map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            self.push(
                key,
                format!("({word:?}) must be one of {}", names.join(", ")),
            );
        }
        found
    }
}

/// A number for messages: `400`, `0.75`, `-1`.
pub(crate) fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        v.to_string()
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.trim().is_empty())
}

fn resolve(base_dir: Option<&Path>, file: &str) -> PathBuf {
    let path = Path::new(file);
    match base_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
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
    Ok(BrokerUrl::Remote {
        host: host.to_string(),
        port,
        tls,
    })
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
fn check_topic_name(topic: &str) -> Result<(), &'static str> {
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
        assert_eq!(s.relay.on_stop, OnStop::Off);
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
            Ok(BrokerUrl::Remote {
                host: host.into(),
                port,
                tls,
            })
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

    #[test]
    fn problems_in_several_sections_are_all_reported() {
        let p =
            check("[mqtt]\nqos = 5\n[relay]\ngpio = 99\n[control]\nwindow = \"x\"\n").unwrap_err();
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["mqtt.qos", "relay.gpio", "control.window"]);
    }
}
