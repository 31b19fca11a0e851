//! Property-based fuzzing (proptest) of everything an operator or the network feeds the daemon as text: the
//! `P/light/set` command parser, the `P/mock/set` parser and the configuration loader. Any input must either
//! parse or be rejected with an error that renders; inputs known to be invalid must be rejected, inputs known to
//! be valid accepted. No panic.
//!
//! Cases per property: `GREENHOUSED_FUZZ_CASES` (default 20 000, the CI pass; the full run uses 1 000 000).
//! The coverage-guided twin of these targets is the cargo-fuzz crate in `fuzz/` (nightly; `scripts/fuzz-short.sh`).

use std::time::Duration;

use greenhoused::config::{load_str_with, Environment};
use greenhoused::control::Command;
use greenhoused::hw::mock::parse_mock_set;
use greenhoused::mqtt::command::{parse_light_set, CommandError};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn cases() -> u32 {
    std::env::var("GREENHOUSED_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 10_000,
        ..Config::default()
    }
}

// ---- P/light/set -------------------------------------------------------------------------------------------

/// Fragments that reach deep into the command grammar when glued together.
fn command_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("on".to_string()),
        Just("OFF".to_string()),
        Just("Toggle".to_string()),
        Just("auto".to_string()),
        Just("1".to_string()),
        Just("true".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"state\"".to_string()),
        Just("\"for_s\"".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        Just("null".to_string()),
        Just("1e309".to_string()),
        Just("-0".to_string()),
        Just("31622400.0000001".to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        "\\PC{0,8}",
    ]
}

fn word_with_noise() -> impl Strategy<Value = (String, Command)> {
    let words = prop_oneof![
        Just((
            "on",
            Command::Set {
                on: true,
                for_: None
            }
        )),
        Just((
            "1",
            Command::Set {
                on: true,
                for_: None
            }
        )),
        Just((
            "true",
            Command::Set {
                on: true,
                for_: None
            }
        )),
        Just((
            "off",
            Command::Set {
                on: false,
                for_: None
            }
        )),
        Just((
            "0",
            Command::Set {
                on: false,
                for_: None
            }
        )),
        Just((
            "false",
            Command::Set {
                on: false,
                for_: None
            }
        )),
        Just(("toggle", Command::Toggle { for_: None })),
        Just(("auto", Command::Auto)),
    ];
    (words, any::<u64>(), "[ \t\r\n]{0,3}", "[ \t\r\n]{0,3}").prop_map(
        |((w, cmd), case_bits, pre, post)| {
            let cased: String = w
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if case_bits >> (i % 64) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            (format!("{pre}{cased}{post}"), cmd)
        },
    )
}

#[test]
fn light_set_never_panics_on_any_bytes() {
    proptest!(config(cases()), |(payload in proptest::collection::vec(any::<u8>(), 0..1100))| {
        if let Err(e) = parse_light_set(&payload) {
            prop_assert!(!e.to_string().is_empty());
        }
    });
}

#[test]
fn light_set_never_panics_on_grammar_fragments() {
    proptest!(config(cases()), |(parts in proptest::collection::vec(command_fragment(), 0..12))| {
        let payload = parts.concat();
        match parse_light_set(payload.as_bytes()) {
            Ok(Command::Set { for_: Some(d), .. } | Command::Toggle { for_: Some(d) }) => {
                prop_assert!(d <= Duration::from_secs(366 * 24 * 3600), "for_s {d:?} accepted");
            }
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    });
}

#[test]
fn light_set_accepts_every_spelling_of_the_words() {
    proptest!(config(cases()), |((payload, want) in word_with_noise())| {
        prop_assert_eq!(parse_light_set(payload.as_bytes()), Ok(want));
    });
}

#[test]
fn light_set_json_for_s_is_checked() {
    let states = prop_oneof![Just("on"), Just("off"), Just("toggle")];
    proptest!(config(cases()), |(state in states, for_s in any::<f64>())| {
        let payload = format!("{{\"state\": \"{state}\", \"for_s\": {for_s:?}}}");
        let result = parse_light_set(payload.as_bytes());
        let valid = for_s.is_finite() && for_s > 0.0 && for_s <= 366.0 * 24.0 * 3600.0;
        if valid {
            prop_assert!(result.is_ok(), "{payload}: {result:?}");
        } else {
            // Non-finite values are not JSON at all; the rest is out of range.
            prop_assert!(
                matches!(result, Err(CommandError::BadDuration(_) | CommandError::BadJson(_))),
                "{payload}: {result:?}"
            );
        }
    });
}

#[test]
fn light_set_rejects_unknown_words() {
    proptest!(config(cases()), |(w in "[a-zA-Z0-9_]{1,20}")| {
        let known = ["on", "off", "toggle", "auto", "1", "0", "true", "false"];
        prop_assume!(!known.contains(&w.to_ascii_lowercase().as_str()));
        prop_assert!(matches!(parse_light_set(w.as_bytes()), Err(CommandError::Unknown(_))));
    });
}

// ---- P/mock/set --------------------------------------------------------------------------------------------

#[test]
fn mock_set_never_panics_on_any_bytes() {
    proptest!(config(cases()), |(payload in proptest::collection::vec(any::<u8>(), 0..512))| {
        if let Err(e) = parse_mock_set(&payload) {
            prop_assert!(!e.is_empty());
        }
    });
}

fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| if f.is_finite() {
            format!("{f:?}")
        } else {
            "1e999".to_string()
        }),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("null".to_string()),
        prop_oneof![
            Just("none"),
            Just("nack"),
            Just("stuck"),
            Just("saturated"),
            Just("NACK"),
            Just("")
        ]
        .prop_map(|s| format!("\"{s}\"")),
        "\\PC{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ]
}

#[test]
fn mock_set_objects_are_parsed_or_rejected_consistently() {
    let key = prop_oneof![
        Just("ambient_lux".to_string()),
        Just("sensor_fault".to_string()),
        Just("lamp_broken".to_string()),
        Just("relay_stuck".to_string()),
        Just("stall_loop_s".to_string()),
        "[a-z_]{1,12}",
    ];
    proptest!(config(cases()), |(fields in proptest::collection::vec((key, json_value()), 0..5))| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        let payload = format!("{{{}}}", body.join(", "));
        match parse_mock_set(payload.as_bytes()) {
            Ok(set) => {
                // Only the known keys can have been accepted, each with a value of its type.
                for (k, _) in &fields {
                    prop_assert!(
                        ["ambient_lux", "sensor_fault", "lamp_broken", "relay_stuck", "stall_loop_s"]
                            .contains(&k.as_str()),
                        "unknown key {k} accepted in {payload}"
                    );
                }
                if let Some(Some(lux)) = set.ambient_lux {
                    prop_assert!(lux.is_finite() && lux >= 0.0, "{payload}");
                }
                if let Some(s) = set.stall_loop_s {
                    prop_assert!(s > 0.0 && s <= 120.0, "{payload}");
                }
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    });
}

// ---- configuration -----------------------------------------------------------------------------------------

fn env() -> Environment {
    Environment {
        credentials_dir: None,
        hostname: Some("fuzz-host".to_string()),
    }
}

#[test]
fn config_never_panics_on_any_text() {
    proptest!(config(cases() / 4), |(text in "\\PC{0,300}")| {
        if let Err(e) = load_str_with(&text, &env()) {
            prop_assert!(!e.to_string().is_empty());
        }
    });
}

/// Every declared key with a value of a random type, except the file paths (`password_file`, `ca_file`,
/// `cert_file`, `key_file`, `weather`: they name files to read; src/config/validate.rs tests those), plus two
/// unknown keys.
fn config_line() -> impl Strategy<Value = (String, String)> {
    let files = [
        "mqtt.password_file",
        "mqtt.ca_file",
        "mqtt.cert_file",
        "mqtt.key_file",
        "mock.weather",
    ];
    let mut names: Vec<(&str, &str)> = greenhoused::config::keys::KEYS
        .iter()
        .filter(|k| !files.contains(&k.path))
        .map(|k| (k.section(), k.name()))
        .collect();
    names.extend([("bogus", "key"), ("control", "bogus")]);
    let keys = proptest::sample::select(names);
    let values = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| if f.is_nan() {
            "nan".into()
        } else if f.is_infinite() {
            "inf".into()
        } else {
            format!("{f:?}")
        }),
        any::<bool>().prop_map(|b| b.to_string()),
        prop_oneof![
            Just("embedded"),
            Just("mqtt://h:1883"),
            Just("mqtts://[::1]:8883"),
            Just("mqtt://u:p@h"),
            Just("06:00-22:00"),
            Just("22:00-06:00"),
            Just("24:00-25:61"),
            Just(""),
            Just("auto"),
            Just("restore"),
            Just("keep"),
            Just("day"),
            Just("300"),
            Just("-1"),
            Just("bh1750"),
            Just("mqtt"),
            Just("a/+/b"),
            Just("0.0.0.0:1883"),
            Just("127.0.0.1:99999"),
            Just("/dev/null"),
            Just("0x23"),
        ]
        .prop_map(|s| format!("{s:?}")),
        "\\PC{0,10}".prop_map(|s| format!("{s:?}")),
        Just("[1, 2]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("0x5c".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ];
    (keys, values)
        .prop_map(|((section, key), value)| (section.to_string(), format!("{key} = {value}")))
}

#[test]
fn config_schema_values_are_validated_without_panic() {
    proptest!(config(cases() / 4), |(lines in proptest::collection::vec(config_line(), 0..10))| {
        // Group by section (TOML forbids a table twice).
        let mut sections: Vec<(String, Vec<String>)> = Vec::new();
        for (s, l) in lines {
            match sections.iter_mut().find(|(name, _)| *name == s) {
                Some((_, ls)) => {
                    if !ls.iter().any(|x| x.split('=').next() == l.split('=').next()) {
                        ls.push(l);
                    }
                }
                None => sections.push((s, vec![l])),
            }
        }
        let text: String = sections
            .iter()
            .map(|(s, ls)| format!("[{s}]\n{}\n", ls.join("\n")))
            .collect();
        match load_str_with(&text, &env()) {
            Ok(settings) => {
                let rendered = greenhoused::config::render_effective(&settings);
                prop_assert!(!rendered.is_empty());
                prop_assert!(!text.contains("bogus"), "unknown section or key accepted:\n{text}");
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.is_empty());
            }
        }
    });
}
