//! Validation: raw values → typed [`Settings`], applying the defaults of the contract and collecting every
//! problem (with its key path) instead of stopping at the first.

use std::fs;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::Environment;
use super::raw::{NumberOrText, OneOrMany, RawConfig, RawDli};
use super::{
    Ambient, BrokerUrl, ControlSettings, DeviceSettings, DliSettings, Endpoint, FailurePolicy,
    HomeAssistantSettings, HttpSettings, LampLux, MockSettings, MonitorSettings, MqttSettings,
    OnStart, OnStop, Problem, RelaySettings, SensorSettings, SensorSource, Settings, Strategy,
    TariffPeriod, Window,
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
/// The placeholder in `mqtt.topic_prefix` replaced by `device.id`.
pub const DEVICE_PLACEHOLDER: &str = "{device}";
/// Darkness every day needs with `control.strategy = "dli"`, in minutes (6 h).
pub const MIN_DARK_MIN: u16 = 6 * 60;
/// Highest daily light integral target accepted (full summer sun gives about 60 mol m⁻² d⁻¹).
pub const MAX_DLI_MOL: f64 = 100.0;
/// Highest price per kWh accepted (in any currency; only to catch a misplaced decimal point).
const MAX_PRICE: f64 = 1_000_000.0;

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
    let url = check_broker_urls(&mut c, raw.mqtt.url.as_ref());
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
    let topic_prefix = check_prefix_template(
        &mut c,
        raw.mqtt
            .topic_prefix
            .as_deref()
            .unwrap_or("laboratory/greenhouse"),
        &id,
        non_empty(&raw.device.id).is_some() || id != FALLBACK_DEVICE_ID,
        usable(&["device.id"]),
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
        Some(url) => Some(url.tls()),
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
                    "({}) is only used with an mqtts:// url, but mqtt.url is {}; use mqtts://host[:port] or set \"\"",
                    path.display(),
                    url.as_ref().map_or("embedded".to_string(), |u| format!("{:?}", u.to_string()))
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
    let on_boot = c.choice(
        "relay.on_boot",
        raw.relay.on_boot.as_deref(),
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
    let strategy = c.choice(
        "control.strategy",
        raw.control.strategy.as_deref(),
        Strategy::Threshold,
        &[("threshold", Strategy::Threshold), ("dli", Strategy::Dli)],
    );
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
    if strategy == Some(Strategy::Dli) && usable(&["control.strategy", "control.window"]) {
        if let Some(window) = &window {
            check_darkness(&mut c, *window);
        }
    }
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

    // [dli]
    let dli = check_dli(&mut c, &raw.dli);
    // A negative target is already a range problem; 0 (the default) is the one this check adds.
    let target = raw.dli.target_mol.unwrap_or(0.0);
    if strategy == Some(Strategy::Dli)
        && target == 0.0
        && usable(&["control.strategy", "dli.target_mol"])
    {
        c.push(
            "dli.target_mol",
            format!(
                "({}) must be greater than 0 with control.strategy = \"dli\": the daily light integral to reach, in mol m⁻² d⁻¹ (lettuce ~17, herbs ~12, tomato 20-25)",
                num(target)
            ),
        );
    }

    // [homeassistant]
    let discovery_prefix = c.map(
        "homeassistant.discovery_prefix",
        raw.homeassistant
            .discovery_prefix
            .as_deref()
            .unwrap_or("homeassistant"),
        |p| check_topic_prefix(p).map(|()| p.to_string()),
    );
    let status_topic = c.map(
        "homeassistant.status_topic",
        raw.homeassistant
            .status_topic
            .as_deref()
            .unwrap_or("homeassistant/status"),
        |t| {
            if t.is_empty() {
                Err(
                    "must not be empty (Home Assistant's default is \"homeassistant/status\")"
                        .to_string(),
                )
            } else {
                check_topic_name(t)
                    .map(|()| t.to_string())
                    .map_err(|why| format!("({t:?}) {why}"))
            }
        },
    );

    // [http]
    let listen = c.map(
        "http.listen",
        raw.http.listen.as_deref().unwrap_or("127.0.0.1:8080"),
        |s| {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim().parse::<SocketAddr>().map(Some).map_err(|_| {
                format!("({s:?}) must be a socket address such as \"127.0.0.1:8080\" (this machine only), \"0.0.0.0:8080\" (the LAN) or \"[::1]:8080\"; \"\" turns the HTTP server off")
            })
        },
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
    let weather = non_empty(&raw.mock.weather).map(|file| {
        let path = resolve(base_dir, file);
        if let Err(why) = check_readable(&path) {
            c.push(
                "mock.weather",
                format!("({}) {why}; point it at a weather CSV (header `time,lux`) or set \"\" to use mock.ambient", path.display()),
            );
        }
        path
    });

    c.problems.retain(|p| !raw.mistyped.contains(&p.key));
    if !c.problems.is_empty() || !raw.mistyped.is_empty() {
        return Err(c.problems);
    }
    // With no problem every check returned Some; the fallbacks below are never used.
    let Some(dli) = dli else {
        return Err(c.problems);
    };
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
            on_boot: on_boot.unwrap_or(OnStart::Off),
            on_stop: on_stop.unwrap_or(OnStop::Off),
        },
        control: ControlSettings {
            strategy: strategy.unwrap_or(Strategy::Threshold),
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
        dli,
        homeassistant: HomeAssistantSettings {
            discovery: raw.homeassistant.discovery.unwrap_or(true),
            discovery_prefix: discovery_prefix.unwrap_or_default(),
            status_topic: status_topic.unwrap_or_default(),
        },
        http: HttpSettings {
            listen: listen.flatten(),
        },
        mock: MockSettings {
            ambient: ambient.unwrap_or(Ambient::Day),
            lamp_lux: mock_lamp_lux.unwrap_or(400.0),
            time_scale: time_scale.unwrap_or(1.0),
            weather,
        },
    })
}

/// `mqtt.url`: one URL or a non-empty list of them (failover in order). Problems of one list element are
/// reported as `mqtt.url[i]`, problems of the list as `mqtt.url`.
fn check_broker_urls(c: &mut Check, value: Option<&OneOrMany>) -> Option<BrokerUrl> {
    let list = match value {
        None => return Some(BrokerUrl::Embedded),
        Some(OneOrMany::One(url)) => return c.map("mqtt.url", url, parse_broker_url),
        Some(OneOrMany::Many(list)) => list,
    };
    if list.is_empty() {
        c.push(
            "mqtt.url",
            format!("([]) must not be an empty list; {URL_FORMS}"),
        );
        return None;
    }
    if list.len() == 1 {
        // A one-element list is the same as the URL alone ("embedded" included).
        let url = list[0].as_deref()?;
        return c.map("mqtt.url[0]", url, parse_broker_url);
    }
    let mut endpoints = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, url) in list.iter().enumerate() {
        let key = format!("mqtt.url[{i}]");
        let Some(url) = url else {
            ok = false; // Mistyped: already reported.
            continue;
        };
        if url == "embedded" {
            c.push(
                &key,
                "(\"embedded\") can only be used alone (url = \"embedded\"), not in a failover list of remote brokers",
            );
            ok = false;
            continue;
        }
        match parse_broker_url(url) {
            Ok(BrokerUrl::Remote(one)) => {
                for endpoint in one {
                    if let Some(first) = endpoints.iter().position(|e| *e == endpoint) {
                        c.push(
                            &key,
                            format!("({url:?}) is the same broker as mqtt.url[{first}]; list each broker once"),
                        );
                        ok = false;
                    }
                    endpoints.push(endpoint);
                }
            }
            Ok(BrokerUrl::Embedded) => ok = false,
            Err(why) => {
                c.push(&key, why);
                ok = false;
            }
        }
    }
    if ok && endpoints.iter().any(|e| e.tls) && endpoints.iter().any(|e| !e.tls) {
        c.push(
            "mqtt.url",
            "mixes mqtts:// and mqtt:// URLs: failing over would drop TLS; use mqtts:// for every broker or for none",
        );
        ok = false;
    }
    ok.then_some(BrokerUrl::Remote(endpoints))
}

/// `mqtt.topic_prefix` with `{device}` replaced by `id`. `id_chosen`: the id was set or came from a usable host
/// name (not the fallback every such gateway shares); `id_usable`: `device.id` itself is valid (else its own
/// problem is enough).
fn check_prefix_template(
    c: &mut Check,
    template: &str,
    id: &str,
    id_chosen: bool,
    id_usable: bool,
) -> Option<String> {
    const KEY: &str = "mqtt.topic_prefix";
    let templated = template.contains(DEVICE_PLACEHOLDER);
    let prefix = template.replace(DEVICE_PLACEHOLDER, id);
    if prefix.contains(['{', '}']) {
        c.push(
            KEY,
            format!("({template:?}) has an unknown placeholder: only {DEVICE_PLACEHOLDER} is replaced (by device.id), braces are not allowed otherwise"),
        );
        return None;
    }
    if !templated {
        return c.map(KEY, template, |p| {
            check_topic_prefix(p).map(|()| p.to_string())
        });
    }
    if !id_usable || !is_valid_device_id(id) {
        return None;
    }
    if !id_chosen {
        c.push(
            KEY,
            format!("({template:?}) uses {DEVICE_PLACEHOLDER}, but device.id is not set and the host name gives none: every such gateway would share the prefix {prefix:?}; set device.id"),
        );
        return None;
    }
    match check_topic_prefix(&prefix) {
        Ok(()) => Some(prefix),
        Err(why) => {
            c.push(
                KEY,
                format!("({template:?}, with {DEVICE_PLACEHOLDER} = {id:?}) is not a valid prefix: {why}"),
            );
            None
        }
    }
}

/// With `control.strategy = "dli"` every day needs at least [`MIN_DARK_MIN`] of contiguous darkness outside the
/// window (`None` = always allowed = no darkness).
fn check_darkness(c: &mut Check, window: Option<Window>) {
    let (shown, dark) = match window {
        None => ("\"\"".to_string(), 0),
        Some(w) => {
            let light = (w.end_min + 1440 - w.start_min) % 1440;
            (format!("{:?}", w.to_string()), 1440 - light)
        }
    };
    if dark < MIN_DARK_MIN {
        c.push(
            "control.window",
            format!(
                "({shown}) leaves {} of darkness a day; with control.strategy = \"dli\" it must leave at least 6 h in one piece (a window of at most 18 h, e.g. \"06:00-22:00\")",
                hours(dark)
            ),
        );
    }
}

/// Minutes as `5 h` / `5 h 30 min`.
fn hours(min: u16) -> String {
    match min % 60 {
        0 => format!("{} h", min / 60),
        m => format!("{} h {m} min", min / 60),
    }
}

/// `[dli]` and its `[[dli.tariff]]` periods (sorted by start, checked for overlaps).
fn check_dli(c: &mut Check, raw: &RawDli) -> Option<DliSettings> {
    let mol = Range::closed(0.0, MAX_DLI_MOL, " mol m⁻² d⁻¹");
    let per_lux = Range::open(0.0, 1.0, " µmol m⁻² s⁻¹ per lux");
    let price = Range::closed(0.0, MAX_PRICE, " per kWh");
    let target_mol = c.range("dli.target_mol", raw.target_mol, 0.0, mol);
    let sun_umol_per_lux = c.range(
        "dli.sun_umol_per_lux",
        raw.sun_umol_per_lux,
        0.0185,
        per_lux,
    );
    let lamp_ppfd = c.range(
        "dli.lamp_ppfd",
        raw.lamp_ppfd,
        0.0,
        Range::closed(0.0, 5000.0, " µmol m⁻² s⁻¹").because(" (full sun is about 2000)"),
    );
    let lamp_umol_per_lux = c.range(
        "dli.lamp_umol_per_lux",
        raw.lamp_umol_per_lux,
        0.0135,
        per_lux,
    );
    let lamp_watts = c.range(
        "dli.lamp_watts",
        raw.lamp_watts,
        0.0,
        Range::closed(0.0, 1_000_000.0, " W"),
    );
    let carry_max_mol = c.range("dli.carry_max_mol", raw.carry_max_mol, 0.0, mol);
    let default_price = c.range("dli.default_price", raw.default_price, 0.0, price);

    let mut tariff = Vec::new();
    let mut tariff_ok = true;
    for (i, entry) in raw.tariff.iter().flatten().enumerate() {
        let key = |field: &str| format!("dli.tariff[{i}]{field}");
        let Some(entry) = entry else {
            tariff_ok = false; // Not a table: already reported.
            continue;
        };
        let mut time = |field: &str, value: &Option<String>| -> Option<u16> {
            let Some(text) = value else {
                c.push(
                    key(field),
                    "is missing: each [[dli.tariff]] period needs from, to (\"HH:MM\", local time) and price",
                );
                return None;
            };
            let minute = match text.trim() {
                "24:00" if field == ".to" => Some(0),
                t => parse_hhmm(t),
            };
            if minute.is_none() {
                c.push(
                    key(field),
                    format!("({text:?}) must be \"HH:MM\" in local 24-hour time, e.g. \"07:00\""),
                );
            }
            minute
        };
        let from = time(".from", &entry.from);
        let to = time(".to", &entry.to);
        let price = match entry.price {
            None => {
                c.push(
                    key(".price"),
                    "is missing: each [[dli.tariff]] period needs a price per kWh",
                );
                None
            }
            Some(p) => c.range(&key(".price"), Some(p), 0.0, price),
        };
        match (from, to, price) {
            (Some(from), Some(to), _) if from == to => {
                c.push(
                    key(""),
                    format!(
                        "({}-{}) is empty or the whole day: from and to must differ (a period may wrap midnight, e.g. from = \"22:00\", to = \"06:00\"); for one price all day set dli.default_price",
                        hhmm(from), hhmm(to)
                    ),
                );
                tariff_ok = false;
            }
            (Some(from), Some(to), Some(price)) => {
                tariff.push((i, TariffPeriod { from, to, price }))
            }
            _ => tariff_ok = false,
        }
    }
    // Overlaps: mark each minute of the day with the period that prices it.
    let mut owner: Vec<Option<usize>> = vec![None; 1440];
    for (n, (i, period)) in tariff.iter().enumerate() {
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
            let (j, p) = &tariff[other];
            c.push(
                format!("dli.tariff[{i}]"),
                format!(
                    "({}-{}) overlaps dli.tariff[{j}] ({}-{}): each time of day may have one price only",
                    hhmm(period.from),
                    hhmm(period.to),
                    hhmm(p.from),
                    hhmm(p.to)
                ),
            );
            tariff_ok = false;
        }
    }
    let mut tariff: Vec<TariffPeriod> = tariff.into_iter().map(|(_, p)| p).collect();
    tariff.sort_by_key(|p| p.from);
    Some(DliSettings {
        target_mol: target_mol?,
        sun_umol_per_lux: sun_umol_per_lux?,
        lamp_ppfd: lamp_ppfd?,
        lamp_umol_per_lux: lamp_umol_per_lux?,
        lamp_watts: lamp_watts?,
        carry_max_mol: carry_max_mol?,
        tariff: tariff_ok.then_some(tariff)?,
        default_price: default_price?,
    })
}

/// Minutes of the day as `HH:MM`.
pub(crate) fn hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
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
    fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
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
