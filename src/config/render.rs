//! The configuration rendered as TOML with each key's doc as comments, all from [`super::keys`]: the effective
//! configuration for `--check-config` (secrets redacted; it loads back to the same settings) and the shipped
//! example config/greenhoused.toml (every key at its default).

use std::fmt::Write as _;

use toml::Value;

use super::keys::{keys_of, Key, Kind, Reload, SECTIONS};
use super::Settings;

/// Shown instead of the MQTT password.
pub const REDACTED: &str = "<redacted>";

/// The head of config/greenhoused.toml.
const EXAMPLE_HEAD: &str = "\
# greenhoused configuration — installed as /etc/greenhoused/greenhoused.toml
#
# Every key is optional; the values below are the built-in defaults, so this file as shipped behaves exactly
# like having no file at all. Unknown keys and sections are errors (they are usually typos).
# Check a file and see the effective configuration (secrets redacted) with:
#     greenhoused --check-config -c /etc/greenhoused/greenhoused.toml
# After editing, `systemctl reload greenhoused` applies what is marked live ([control], [monitor], [dli]);
# other changes are logged as needing a restart (`systemctl restart greenhoused`).
# Relative file paths (password_file, ca_file, cert_file, key_file, weather) are relative to this file's
# directory.
# (Generated from the key declarations in src/config/keys.rs.)
";

/// The effective configuration (defaults applied) as TOML with the contract's key names and their docs, which
/// loads back to the same settings. The password never appears: only a `<redacted>` comment says that one is set.
pub fn render_effective(s: &Settings) -> String {
    let mut out = String::from(
        "# greenhoused effective configuration (defaults applied, secrets redacted)\n",
    );
    render(&mut out, |k| (k.get)(s), s.mqtt.password.is_some());
    out
}

/// config/greenhoused.toml: every key at its declared default, with its doc.
pub fn render_example() -> String {
    let mut out = String::from(EXAMPLE_HEAD);
    render(&mut out, |k| k.kind.default_value(), false);
    out
}

fn render(out: &mut String, value: impl Fn(&Key) -> Value, password_set: bool) {
    for section in SECTIONS {
        let _ = writeln!(out, "\n[{}]", section.name);
        comment(out, section.doc);
        let live = keys_of(section.name).all(|k| k.reload == Reload::Live);
        if live {
            comment(out, "Live: a reload (SIGHUP) applies changes here.");
        }
        let mut tables = Vec::new();
        for key in keys_of(section.name) {
            if let Kind::Tables(_) = key.kind {
                tables.push(key); // After the section's other keys: TOML puts later keys into the last entry.
                continue;
            }
            comment(out, key.doc);
            if let Some(bounds) = key.kind.bounds() {
                comment(out, &format!("Bounds: {bounds}."));
            }
            if key.reload == Reload::Live && !live {
                comment(out, "(live)");
            }
            let _ = writeln!(out, "{} = {}", key.name(), shown(key, &value(key)));
            if key.path == "mqtt.password_file" && password_set {
                let _ = writeln!(out, "# password: {}", Value::String(REDACTED.into()));
            }
        }
        for key in tables {
            comment(out, key.doc);
            let entries = value(key);
            let Kind::Tables(fields) = key.kind else {
                continue;
            };
            for entry in entries.as_array().into_iter().flatten() {
                let _ = writeln!(out, "\n[[{}]]", key.path);
                for (name, _) in fields {
                    if let Some(v) = entry.get(*name) {
                        let _ = writeln!(out, "{name} = {v}");
                    }
                }
            }
        }
    }
}

/// A value as TOML; the BH1750 address in hex.
fn shown(key: &Key, value: &Value) -> String {
    match (key.kind, value) {
        (Kind::Integer { hex: true, .. }, Value::Integer(i)) => format!("{i:#04x}"),
        _ => value.to_string(),
    }
}

fn comment(out: &mut String, doc: &str) {
    for line in doc.lines().filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "# {line}");
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
        assert!(text.contains("\nurl = \"embedded\"\n"), "{text}");
        assert!(text.contains("\naddress = 0x23\n"), "{text}");
        // Each key under its doc lines; live sections say so.
        assert!(
            text.contains("# midnight (\"20:00-02:00\"); \"\" = no window (light allowed at any time).\nwindow = \"06:00-22:00\"\n"),
            "{text}"
        );
        assert!(
            text.contains("\n[control]\n# Live: a reload (SIGHUP) applies changes here.\n"),
            "{text}"
        );
        assert!(text.contains("\nlisten = \"127.0.0.1:8080\"\n"), "{text}");
        assert!(!text.contains("\n[[dli.tariff]]\n"), "{text}");
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
