//! Configuration fixtures: the good files load to the expected values, every bad file reports every expected
//! key path at once, and the shipped example config loads cleanly to the defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use greenhoused::config::{
    load_str_with, load_with, render_effective, Ambient, BrokerUrl, ConfigError, Endpoint,
    Environment, FailurePolicy, LampLux, OnStart, OnStop, SensorSource, Settings, Strategy,
    TariffPeriod, Window,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn env() -> Environment {
    Environment {
        credentials_dir: None,
        hostname: Some("Fixture-Host".into()),
    }
}

fn load_fixture(name: &str) -> Result<Settings, ConfigError> {
    load_with(Some(&fixtures().join(name)), &env())
}

fn good(name: &str) -> Settings {
    match load_fixture(name) {
        Ok(s) => s,
        Err(e) => panic!("{name} should load:\n{e}"),
    }
}

/// Loads a bad fixture, asserts every `expected` key path is among its problems, returns the error.
fn bad(name: &str, expected: &[&str]) -> ConfigError {
    let e = match load_fixture(name) {
        Ok(s) => panic!("{name} should be rejected, loaded {s:?}"),
        Err(e) => e,
    };
    let keys: Vec<&str> = e.problems().iter().map(|p| p.key.as_str()).collect();
    for key in expected {
        assert!(
            keys.contains(key),
            "{name}: {key} missing from {keys:?}\n{e}"
        );
    }
    let text = e.to_string();
    assert!(
        text.contains(name),
        "{name}: the message does not name the file:\n{text}"
    );
    for p in e.problems() {
        assert!(
            text.contains(&p.to_string()),
            "{name}: problem not printed: {p}\n{text}"
        );
    }
    e
}

#[test]
fn good_minimal_keeps_defaults_for_the_rest() {
    let s = good("good-minimal.toml");
    let defaults = load_str_with("", &env()).unwrap();
    assert_eq!(
        s.mqtt.url,
        BrokerUrl::Remote(vec![Endpoint {
            host: "broker.lan".into(),
            port: 1883,
            tls: false
        }])
    );
    assert!(s.relay.active_low);
    assert_eq!(s.device, defaults.device);
    assert_eq!(s.device.id, "fixture-host");
    assert_eq!(s.sensor, defaults.sensor);
    assert_eq!(s.control, defaults.control);
    assert_eq!(s.monitor, defaults.monitor);
    assert_eq!(s.dli, defaults.dli);
    assert_eq!(s.homeassistant, defaults.homeassistant);
    assert_eq!(s.http, defaults.http);
    assert_eq!(s.mock, defaults.mock);
}

#[test]
fn good_full_sets_every_key() {
    let s = good("good-full.toml");
    let secrets = fixtures().join("secrets");
    assert_eq!(s.device.id, "north-house_2");
    assert_eq!(s.device.name, "North greenhouse");
    let m = &s.mqtt;
    assert_eq!(
        m.url,
        BrokerUrl::Remote(vec![Endpoint {
            host: "fd00::10".into(),
            port: 8884,
            tls: true
        }])
    );
    assert_eq!(m.embedded_listen, "0.0.0.0:1884".parse().unwrap());
    assert_eq!(m.client_id, "gh-north");
    assert_eq!(m.topic_prefix, "farm/greenhouse/north");
    assert_eq!(m.username.as_deref(), Some("greenhoused"));
    assert_eq!(m.password_file, Some(secrets.join("mqtt-password")));
    assert_eq!(m.password.as_deref(), Some("fixture-password"));
    assert_eq!(m.ca_file, Some(secrets.join("ca.pem")));
    assert_eq!(m.cert_file, Some(secrets.join("client.pem")));
    assert_eq!(m.key_file, Some(secrets.join("client.key")));
    assert_eq!(m.keepalive, Duration::from_secs(60));
    assert_eq!(m.qos, 2);
    let sn = &s.sensor;
    assert_eq!(sn.source, SensorSource::Mqtt);
    assert_eq!(sn.i2c_bus, PathBuf::from("/dev/i2c-3"));
    assert_eq!(sn.address, 0x5c);
    assert_eq!(sn.interval, Duration::from_secs(2));
    assert_eq!(sn.topic, "farm/outdoor/luminosity");
    assert_eq!(sn.stale_after, Duration::from_millis(30_500));
    assert_eq!(s.relay.gpio, 27);
    assert!(s.relay.active_low);
    assert_eq!(s.relay.on_start, OnStart::Restore);
    assert_eq!(s.relay.on_boot, OnStart::On);
    assert_eq!(s.relay.on_stop, OnStop::Keep);
    let c = &s.control;
    assert_eq!(c.strategy, Strategy::Dli);
    assert_eq!(c.on_below_lux, 300.5);
    assert_eq!(c.off_above_lux, 700.0);
    assert_eq!(c.min_on, Duration::from_secs(120));
    assert_eq!(c.min_off, Duration::from_millis(90_500));
    assert_eq!(
        c.window,
        Some(Window {
            start_min: 22 * 60,
            end_min: 4 * 60 + 30
        })
    );
    assert_eq!(c.on_sensor_failure, FailurePolicy::On);
    assert_eq!(c.override_max, Some(Duration::from_secs(1800)));
    assert_eq!(c.lamp_lux, LampLux::Fixed(250.0));
    assert_eq!(s.monitor.settle, Duration::from_millis(7500));
    assert_eq!(s.monitor.lamp_min_rise_lux, 40.0);
    assert_eq!(s.mock.ambient, Ambient::Constant(300.0));
    assert_eq!(s.mock.lamp_lux, 350.0);
    assert_eq!(s.mock.time_scale, 60.0);
    assert_eq!(
        s.mock.weather,
        Some(fixtures().join("weather/two-days.csv"))
    );
    let d = &s.dli;
    assert_eq!(d.target_mol, 17.5);
    assert_eq!(d.sun_umol_per_lux, 0.02);
    assert_eq!(d.lamp_ppfd, 180.0);
    assert_eq!(d.lamp_umol_per_lux, 0.015);
    assert_eq!(d.lamp_watts, 600.0);
    assert_eq!(d.carry_max_mol, 2.0);
    assert_eq!(d.default_price, 0.25);
    // Sorted by start time.
    assert_eq!(
        d.tariff,
        vec![
            TariffPeriod {
                from: 17 * 60,
                to: 20 * 60,
                price: 0.4
            },
            TariffPeriod {
                from: 23 * 60,
                to: 6 * 60,
                price: 0.12
            },
        ]
    );
    assert!(!s.homeassistant.discovery);
    assert_eq!(s.homeassistant.discovery_prefix, "ha");
    assert_eq!(s.homeassistant.status_topic, "ha/status");
    assert_eq!(s.http.listen, Some("[::]:8081".parse().unwrap()));
}

#[test]
fn good_fleet_fails_over_in_order_under_its_own_prefix() {
    let s = good("good-fleet.toml");
    assert_eq!(
        s.mqtt.url,
        BrokerUrl::Remote(vec![
            Endpoint {
                host: "site-broker.lan".into(),
                port: 1883,
                tls: false
            },
            Endpoint {
                host: "fd00::20".into(),
                port: 1884,
                tls: false
            },
        ])
    );
    assert_eq!(
        s.mqtt.url.server_uris(),
        vec!["tcp://site-broker.lan:1883", "tcp://[fd00::20]:1884"]
    );
    assert_eq!(s.mqtt.topic_prefix, "greenhouses/house-07");
    assert_eq!(s.mqtt.client_id, "greenhoused-house-07");
    assert_eq!(s.sensor.topic, "greenhouses/house-07/luminosity");
    assert_eq!(s.http.listen, None);
    let text = render_effective(&s);
    assert!(
        text.contains("url = [\"mqtt://site-broker.lan:1883\", \"mqtt://[fd00::20]:1884\"]"),
        "{text}"
    );
    assert_eq!(load_str_with(&text, &env()).unwrap(), s, "{text}");
}

#[test]
fn good_dli_has_a_target_and_a_tariff() {
    let s = good("good-dli.toml");
    assert_eq!(s.control.strategy, Strategy::Dli);
    assert_eq!(s.dli.target_mol, 17.0);
    assert_eq!(s.dli.tariff.len(), 2);
    // 22:00-07:00 wraps midnight; 11:00-15:00 is the cheap noon; the rest costs default_price.
    assert_eq!(s.dli.price_at(3 * 60), 0.15);
    assert_eq!(s.dli.price_at(12 * 60), 0.10);
    assert_eq!(s.dli.price_at(18 * 60), 0.30);
    let text = render_effective(&s);
    assert_eq!(load_str_with(&text, &env()).unwrap(), s, "{text}");
}

#[test]
fn bad_dli_reports_every_problem_with_its_key_path() {
    let e = bad(
        "bad-dli.toml",
        &[
            "control.window",
            "dli.target_mol",
            "dli.lamp_ppfd",
            "dli.lamp_watts",
            "dli.carry_max_mol",
            "dli.default_price",
            "dli.tariff[0].from",
            "dli.tariff[1].price",
            "dli.tariff[2]",
            "dli.tariff[3].price",
            "dli.tariff[5]",
        ],
    );
    assert_eq!(e.problems().len(), 11, "{e}");
    let text = e.to_string();
    for expected in [
        "control.window (\"04:00-23:00\") leaves 5 h of darkness",
        "dli.target_mol (0) must be greater than 0 with control.strategy = \"dli\"",
        "dli.tariff[5] (05:00-08:00) overlaps dli.tariff[4] (22:00-06:00)",
        "dli.tariff[1].price is missing",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn bad_dli_always_needs_a_dark_period() {
    let e = bad("bad-dli-always.toml", &["control.window"]);
    assert_eq!(e.problems().len(), 1);
    assert!(e.to_string().contains("at least 6 h"), "{e}");
}

#[test]
fn bad_fleet_url_lists_and_prefixes() {
    let e = bad(
        "bad-fleet.toml",
        &["mqtt.url[1]", "mqtt.url[2]", "mqtt.topic_prefix"],
    );
    assert_eq!(e.problems().len(), 3, "{e}");
    let text = e.to_string();
    assert!(text.contains("can only be used alone"), "{text}");
    assert!(text.contains("the same broker as mqtt.url[0]"), "{text}");
    assert!(
        text.contains("(\"greenhouses/{device}/\", with {device} = \"fixture-host\")"),
        "{text}"
    );
    let e = bad(
        "bad-fleet-placeholder.toml",
        &["mqtt.url", "mqtt.topic_prefix"],
    );
    assert_eq!(e.problems().len(), 2, "{e}");
    assert!(e.to_string().contains("drop TLS"), "{e}");
    assert!(e.to_string().contains("unknown placeholder"), "{e}");
}

#[test]
fn bad_new_keys() {
    let e = bad(
        "bad-new-keys.toml",
        &[
            "relay.on_boot",
            "control.strategy",
            "homeassistant.discovery",
            "homeassistant.discovery_prefix",
            "homeassistant.status_topic",
            "http.listen",
            "mock.weather",
        ],
    );
    assert_eq!(e.problems().len(), 7, "{e}");
    assert!(e.to_string().contains("does-not-exist.csv"), "{e}");
}

#[test]
fn good_full_renders_without_the_password_and_loads_back() {
    let s = good("good-full.toml");
    let text = render_effective(&s);
    assert!(!text.contains("fixture-password"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert_eq!(load_str_with(&text, &env()).unwrap(), s, "{text}");
}

#[test]
fn example_config_loads_cleanly_to_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/greenhoused.toml");
    let s = match load_with(Some(&example), &env()) {
        Ok(s) => s,
        Err(e) => panic!("config/greenhoused.toml does not load:\n{e}"),
    };
    assert_eq!(s, load_str_with("", &env()).unwrap());
}

/// config/greenhoused.toml is generated from the key declarations (src/config/keys.rs): every key, its default and
/// its doc. After adding or changing a key, regenerate it with
/// `GREENHOUSED_BLESS=1 cargo test --test config_fixtures example`.
#[test]
fn example_config_is_generated_from_the_key_declarations() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/greenhoused.toml");
    let expected = greenhoused::config::render_example();
    if std::env::var_os("GREENHOUSED_BLESS").is_some() {
        std::fs::write(&example, &expected).expect("write config/greenhoused.toml");
    }
    let text = std::fs::read_to_string(&example).expect("read config/greenhoused.toml");
    assert!(
        text == expected,
        "config/greenhoused.toml differs from the key declarations; regenerate it with \
         `GREENHOUSED_BLESS=1 cargo test --test config_fixtures example`"
    );
    // Every key appears in it (tables as a commented example).
    let table: toml::Table = text.parse().expect("the example parses");
    for key in greenhoused::config::keys::KEYS {
        let present = table
            .get(key.section())
            .and_then(|v| v.as_table())
            .is_some_and(|t| t.contains_key(key.name()));
        assert!(
            present || text.contains(&format!("# [[{}]]", key.path)),
            "config/greenhoused.toml lacks {}",
            key.path
        );
    }
}

#[test]
fn bad_thresholds() {
    let e = bad(
        "bad-thresholds.toml",
        &[
            "control.off_above_lux",
            "control.lamp_lux",
            "monitor.lamp_min_rise_lux",
        ],
    );
    let text = e.to_string();
    assert!(
        text.contains(
            "control.off_above_lux (400) must be greater than control.on_below_lux (450)"
        ),
        "{text}"
    );
}

#[test]
fn bad_window() {
    let e = bad("bad-window.toml", &["control.window"]);
    assert_eq!(e.problems().len(), 1);
}

#[test]
fn bad_prefix() {
    let e = bad("bad-prefix.toml", &["mqtt.topic_prefix", "sensor.topic"]);
    assert_eq!(e.problems().len(), 2);
}

#[test]
fn bad_unknown_key() {
    let e = bad(
        "bad-unknown-key.toml",
        &["mqtt.pasword_file", "sensors", "control.on_below"],
    );
    assert_eq!(e.problems().len(), 3);
    assert!(
        e.to_string().contains("did you mean mqtt.password_file?"),
        "{e}"
    );
}

#[test]
fn bad_address() {
    let e = bad("bad-address.toml", &["sensor.address"]);
    assert!(
        e.to_string().contains("sensor.address (0x24) must be 0x23"),
        "{e}"
    );
}

#[test]
fn bad_interval() {
    let e = bad(
        "bad-interval.toml",
        &["sensor.interval_s", "sensor.stale_after_s"],
    );
    assert!(
        e.to_string().contains(
            "sensor.interval_s (0.5) must be at least 0.75 s to leave room for the worst-case auto-ranged BH1750 conversion"
        ),
        "{e}"
    );
}

#[test]
fn bad_types() {
    let e = bad(
        "bad-types.toml",
        &[
            "device.name",
            "mqtt.qos",
            "mqtt.keepalive_s",
            "sensor.interval_s",
            "relay.gpio",
            "relay.active_low",
            "control.window",
        ],
    );
    assert_eq!(e.problems().len(), 7);
}

#[test]
fn bad_many_reports_every_problem_at_once() {
    let e = bad(
        "bad-many.toml",
        &[
            "device.id",
            "mqtt.url",
            "mqtt.qos",
            "sensor.address",
            "relay.gpio",
            "relay.on_start",
            "control.window",
            "monitor.settle_s",
            "mock.time_scale",
        ],
    );
    assert_eq!(e.problems().len(), 9, "{e}");
    assert!(e.to_string().contains("(9 problems)"), "{e}");
}

#[test]
fn bad_password_file() {
    let e = bad("bad-password-file.toml", &["mqtt.password_file"]);
    assert_eq!(e.problems().len(), 1);
    assert!(e.to_string().contains("does-not-exist"), "{e}");
}

#[test]
fn bad_syntax_is_one_problem_with_its_position() {
    let e = bad("bad-syntax.toml", &[]);
    assert_eq!(e.problems().len(), 1);
    let reason = &e.problems()[0].reason;
    assert!(
        reason.starts_with("TOML syntax error at line 2, column"),
        "{reason}"
    );
}

#[test]
fn explicit_missing_file_is_an_error() {
    match load_fixture("no-such-file.toml") {
        Err(e @ ConfigError::NotFound { .. }) => {
            assert!(e.to_string().contains("no-such-file.toml"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
