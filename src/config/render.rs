//! The effective configuration rendered back as TOML (for `--check-config`), secrets redacted.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use toml::Value;

use super::validate::{hhmm, num};
use super::{
    Ambient, BrokerUrl, FailurePolicy, LampLux, OnStart, OnStop, SensorSource, Settings, Strategy,
};

/// Shown instead of the MQTT password.
pub const REDACTED: &str = "<redacted>";

/// The effective configuration (defaults applied) as TOML with the contract's key names, which loads back to
/// the same settings. The password never appears: only a `<redacted>` comment says that one is set.
pub fn render_effective(s: &Settings) -> String {
    let mut out = String::from(
        "# greenhoused effective configuration (defaults applied, secrets redacted)\n",
    );
    let mut section = |name: &str, keys: Vec<(&str, String)>| {
        let _ = writeln!(out, "\n[{name}]");
        for (key, value) in keys {
            if key.starts_with('#') {
                let _ = writeln!(out, "{key}{value}");
            } else {
                let _ = writeln!(out, "{key} = {value}");
            }
        }
    };

    section(
        "device",
        vec![("id", text(&s.device.id)), ("name", text(&s.device.name))],
    );

    let m = &s.mqtt;
    let mut mqtt = vec![
        ("url", broker_url(&m.url)),
        ("embedded_listen", text(&m.embedded_listen.to_string())),
        ("client_id", text(&m.client_id)),
        ("topic_prefix", text(&m.topic_prefix)),
        ("username", text(m.username.as_deref().unwrap_or(""))),
        ("password_file", path(m.password_file.as_deref())),
    ];
    if m.password.is_some() {
        mqtt.push(("# password: ", text(REDACTED)));
    }
    mqtt.extend([
        ("ca_file", path(m.ca_file.as_deref())),
        ("cert_file", path(m.cert_file.as_deref())),
        ("key_file", path(m.key_file.as_deref())),
        ("keepalive_s", secs(m.keepalive)),
        ("qos", m.qos.to_string()),
    ]);
    section("mqtt", mqtt);

    let sn = &s.sensor;
    let source = match sn.source {
        SensorSource::Bh1750 => "bh1750",
        SensorSource::Mqtt => "mqtt",
    };
    section(
        "sensor",
        vec![
            ("source", text(source)),
            ("i2c_bus", path(Some(&sn.i2c_bus))),
            ("address", format!("{:#04x}", sn.address)),
            ("interval_s", secs(sn.interval)),
            ("topic", text(&sn.topic)),
            ("stale_after_s", secs(sn.stale_after)),
        ],
    );

    let r = &s.relay;
    let on_start = |o: OnStart| match o {
        OnStart::Off => "off",
        OnStart::On => "on",
        OnStart::Restore => "restore",
    };
    let on_stop = match r.on_stop {
        OnStop::Off => "off",
        OnStop::On => "on",
        OnStop::Keep => "keep",
    };
    section(
        "relay",
        vec![
            ("gpio", r.gpio.to_string()),
            ("active_low", r.active_low.to_string()),
            ("on_start", text(on_start(r.on_start))),
            ("on_boot", text(on_start(r.on_boot))),
            ("on_stop", text(on_stop)),
        ],
    );

    let c = &s.control;
    let failure = match c.on_sensor_failure {
        FailurePolicy::Off => "off",
        FailurePolicy::On => "on",
        FailurePolicy::Keep => "keep",
    };
    let lamp_lux = match c.lamp_lux {
        LampLux::Auto => text("auto"),
        LampLux::Fixed(lux) => float(lux),
    };
    let strategy = match c.strategy {
        Strategy::Threshold => "threshold",
        Strategy::Dli => "dli",
    };
    section(
        "control",
        vec![
            ("strategy", text(strategy)),
            ("on_below_lux", float(c.on_below_lux)),
            ("off_above_lux", float(c.off_above_lux)),
            ("min_on_s", secs(c.min_on)),
            ("min_off_s", secs(c.min_off)),
            (
                "window",
                text(&c.window.map(|w| w.to_string()).unwrap_or_default()),
            ),
            ("on_sensor_failure", text(failure)),
            (
                "override_max_s",
                secs(c.override_max.unwrap_or(Duration::ZERO)),
            ),
            ("lamp_lux", lamp_lux),
        ],
    );

    section(
        "monitor",
        vec![
            ("settle_s", secs(s.monitor.settle)),
            ("lamp_min_rise_lux", float(s.monitor.lamp_min_rise_lux)),
        ],
    );

    let d = &s.dli;
    section(
        "dli",
        vec![
            ("target_mol", float(d.target_mol)),
            ("sun_umol_per_lux", float(d.sun_umol_per_lux)),
            ("lamp_ppfd", float(d.lamp_ppfd)),
            ("lamp_umol_per_lux", float(d.lamp_umol_per_lux)),
            ("lamp_watts", float(d.lamp_watts)),
            ("carry_max_mol", float(d.carry_max_mol)),
            ("default_price", float(d.default_price)),
        ],
    );
    // Array-of-tables entries come after the [dli] keys (TOML would put later keys into the last entry).
    for p in &d.tariff {
        section(
            "[dli.tariff]",
            vec![
                ("from", text(&hhmm(p.from))),
                ("to", text(&hhmm(p.to))),
                ("price", float(p.price)),
            ],
        );
    }

    let ha = &s.homeassistant;
    section(
        "homeassistant",
        vec![
            ("discovery", ha.discovery.to_string()),
            ("discovery_prefix", text(&ha.discovery_prefix)),
            ("status_topic", text(&ha.status_topic)),
        ],
    );

    section(
        "http",
        vec![(
            "listen",
            text(&s.http.listen.map(|a| a.to_string()).unwrap_or_default()),
        )],
    );

    let ambient = match s.mock.ambient {
        Ambient::Day => "day".to_string(),
        Ambient::Constant(lux) => num(lux),
    };
    section(
        "mock",
        vec![
            ("ambient", text(&ambient)),
            ("lamp_lux", float(s.mock.lamp_lux)),
            ("time_scale", float(s.mock.time_scale)),
            ("weather", path(s.mock.weather.as_deref())),
        ],
    );
    out
}

/// `mqtt.url`: a string, or an array for a failover list.
fn broker_url(url: &BrokerUrl) -> String {
    match url.endpoints() {
        [_, _, ..] => {
            let items: Vec<String> = url
                .endpoints()
                .iter()
                .map(|e| text(&e.to_string()))
                .collect();
            format!("[{}]", items.join(", "))
        }
        _ => text(&url.to_string()),
    }
}

/// A TOML string literal, escaped.
fn text(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn path(p: Option<&Path>) -> String {
    text(
        &p.map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

fn float(v: f64) -> String {
    Value::Float(v).to_string()
}

/// Whole seconds as an integer, otherwise a float.
fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        float(d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::Environment;
    use crate::config::load_str_with;

    fn env() -> Environment {
        Environment {
            credentials_dir: None,
            hostname: Some("pi".into()),
        }
    }

    #[test]
    fn defaults_render_to_toml_that_loads_back_to_the_same_settings() {
        let s = load_str_with("", &env()).unwrap();
        let text = render_effective(&s);
        assert!(text.contains("\n[mqtt]\nurl = \"embedded\"\n"), "{text}");
        assert!(text.contains("address = 0x23\n"), "{text}");
        assert!(text.contains("window = \"06:00-22:00\"\n"), "{text}");
        assert!(
            text.contains("\n[http]\nlisten = \"127.0.0.1:8080\"\n"),
            "{text}"
        );
        assert!(!text.contains("[[dli.tariff]]"), "{text}");
        assert_eq!(load_str_with(&text, &env()).unwrap(), s);
    }

    #[test]
    fn non_default_values_round_trip() {
        let input = r#"
            [device]
            id = "gh-2"
            name = "North \"house\""
            [mqtt]
            url = ["mqtt://[fd00::1]:1884", "mqtt://b.lan"]
            topic_prefix = "a/{device}"
            keepalive_s = 45
            qos = 0
            [sensor]
            source = "mqtt"
            address = 0x5c
            interval_s = 2.5
            topic = "x/lux"
            stale_after_s = 30
            [relay]
            gpio = 4
            active_low = true
            on_start = "restore"
            on_boot = "on"
            on_stop = "keep"
            [control]
            strategy = "dli"
            on_below_lux = 100.5
            off_above_lux = 300
            min_on_s = 0
            min_off_s = 1.5
            window = "12:00-04:30"
            on_sensor_failure = "keep"
            override_max_s = 600
            lamp_lux = 0
            [monitor]
            settle_s = 0.5
            lamp_min_rise_lux = 20
            [dli]
            target_mol = 17.5
            sun_umol_per_lux = 0.02
            lamp_ppfd = 180
            lamp_umol_per_lux = 0.015
            lamp_watts = 600
            carry_max_mol = 2
            default_price = 0.25
            [[dli.tariff]]
            from = "23:00"
            to = "24:00"
            price = 0.1
            [[dli.tariff]]
            from = "00:00"
            to = "06:30"
            price = 0.12
            [homeassistant]
            discovery = false
            discovery_prefix = "ha"
            status_topic = "ha/status"
            [http]
            listen = ""
            [mock]
            ambient = "300.5"
            lamp_lux = 0
            time_scale = 3600
        "#;
        let s = load_str_with(input, &env()).unwrap();
        let text = render_effective(&s);
        assert_eq!(load_str_with(&text, &env()).unwrap(), s, "{text}");
        assert!(
            text.contains("url = [\"mqtt://[fd00::1]:1884\", \"mqtt://b.lan:1883\"]"),
            "{text}"
        );
        assert!(text.contains("topic_prefix = \"a/gh-2\""), "{text}");
        assert!(
            text.contains("\n[[dli.tariff]]\nfrom = \"00:00\"\nto = \"06:30\"\nprice = 0.12\n"),
            "{text}"
        );
        assert!(text.contains("ambient = \"300.5\""), "{text}");
    }

    #[test]
    fn password_is_never_rendered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mqtt-password"), "hunter2-very-secret\n").unwrap();
        let env = Environment {
            credentials_dir: Some(dir.path().to_path_buf()),
            hostname: Some("pi".into()),
        };
        let s = load_str_with("[mqtt]\nusername = \"gh\"\n", &env).unwrap();
        assert_eq!(s.mqtt.password.as_deref(), Some("hunter2-very-secret"));
        let text = render_effective(&s);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("# password: \"<redacted>\""), "{text}");
        assert!(!format!("{s:?}").contains("hunter2"));
        // The rendered file still loads (the comment is ignored, the password file is named).
        assert_eq!(load_str_with(&text, &env).unwrap(), s);
    }
}
