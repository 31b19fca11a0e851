//! The command line of the contract, through the real binary: `--check-config` exit codes and output, missing
//! files, `--version`.

use std::process::{Command, Output};

fn greenhoused(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenhoused"))
        .args(args)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("run greenhoused")
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_config_on_a_bad_file_exits_78_listing_every_problem() {
    let out = greenhoused(&[
        "--check-config",
        "--log-target",
        "stderr",
        "-c",
        &fixture("bad-many.toml"),
    ]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "device.id",
        "mqtt.url",
        "mqtt.qos",
        "sensor.address",
        "relay.gpio",
        "relay.on_start",
        "control.window",
        "monitor.settle_s",
        "mock.time_scale",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    assert!(err.contains("9 problems"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "no backtrace: {err}"
    );
    assert!(out.stdout.is_empty(), "nothing printed as configuration");
}

#[test]
fn check_config_thresholds_message_names_both_keys_and_values() {
    let out = greenhoused(&[
        "--check-config",
        "--log-target",
        "stderr",
        "-c",
        &fixture("bad-thresholds.toml"),
    ]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("control.off_above_lux") && err.contains("control.on_below_lux"),
        "{err}"
    );
}

#[test]
fn every_bad_fixture_exits_78() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("bad-") {
            let out = greenhoused(&["--check-config", "-c", path.to_str().expect("utf-8 path")]);
            assert_eq!(
                out.status.code(),
                Some(78),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} bad fixtures");
}

#[test]
fn check_config_on_a_good_file_prints_the_effective_config_without_secrets() {
    let out = greenhoused(&["--check-config", "-c", &fixture("good-full.toml")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let secret =
        std::fs::read_to_string(fixture("secrets/mqtt-password")).expect("password fixture");
    assert!(!text.contains(secret.trim()), "password printed:\n{text}");
    assert!(text.contains("<redacted>"));
    // What it prints is itself a valid configuration.
    let reparsed = greenhoused::config::load_str(&text).expect("effective config loads");
    assert_eq!(reparsed.mqtt.topic_prefix, "farm/greenhouse/north");
}

#[test]
fn the_example_config_checks_clean() {
    let example = format!("{}/config/greenhoused.toml", env!("CARGO_MANIFEST_DIR"));
    let out = greenhoused(&["--check-config", "-c", &example]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_explicit_missing_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let out = greenhoused(&["--check-config", "-c", missing.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn version_and_help_come_from_clap() {
    let out = greenhoused(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let help = String::from_utf8_lossy(&greenhoused(&["--help"]).stdout).to_string();
    for flag in [
        "--config",
        "--mock-hardware",
        "--check-config",
        "--log-target",
        "--verbose",
        "--quiet",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}
