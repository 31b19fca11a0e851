//! What a configuration reload (SIGHUP) can apply live, and what needs a restart: each key's [`Reload`] class
//! in [`super::keys`]. Live: [control], [monitor] and [dli]; everything else needs a restart.

use super::keys::{Reload, KEYS};
use super::Settings;

/// Every key whose value differs between `old` and `new`, with its class, in declaration order. Derived values
/// count (a changed `mqtt.topic_prefix` also moves the default `sensor.topic`); a changed password counts as
/// `mqtt.password_file`.
pub fn changes(old: &Settings, new: &Settings) -> Vec<(&'static str, Reload)> {
    let mut changed: Vec<(&'static str, Reload)> = KEYS
        .iter()
        .filter(|k| (k.get)(old) != (k.get)(new))
        .map(|k| (k.path, k.reload))
        .collect();
    if old.mqtt.password != new.mqtt.password
        && !changed.iter().any(|(k, _)| *k == "mqtt.password_file")
    {
        let index = |path: &str| KEYS.iter().position(|k| k.path == path);
        let at = changed
            .iter()
            .position(|(k, _)| index(k) > index("mqtt.password_file"))
            .unwrap_or(changed.len());
        changed.insert(at, ("mqtt.password_file", Reload::Restart));
    }
    changed
}

/// Key paths whose value differs between `old` and `new` and that only take effect after a restart.
pub fn restart_required_changes(old: &Settings, new: &Settings) -> Vec<String> {
    changes(old, new)
        .into_iter()
        .filter(|(_, r)| *r == Reload::Restart)
        .map(|(k, _)| k.to_string())
        .collect()
}

/// Key paths whose value differs and that a reload applies.
pub fn live_changes(old: &Settings, new: &Settings) -> Vec<&'static str> {
    changes(old, new)
        .into_iter()
        .filter(|(_, r)| *r == Reload::Live)
        .map(|(k, _)| k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::Environment;
    use crate::config::load_str_with;

    fn load(text: &str) -> Settings {
        let env = Environment {
            credentials_dir: None,
            hostname: Some("pi".into()),
        };
        match load_str_with(text, &env) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn identical_settings_need_no_restart() {
        assert!(restart_required_changes(&load(""), &load("")).is_empty());
    }

    #[test]
    fn control_monitor_and_dli_changes_apply_live() {
        let new = load(
            "[control]\non_below_lux = 100\nwindow = \"\"\n[monitor]\nsettle_s = 9\n\
             [dli]\ntarget_mol = 12\nlamp_ppfd = 150\ndefault_price = 0.2\n\
             [[dli.tariff]]\nfrom = \"07:00\"\nto = \"23:00\"\nprice = 0.3\n",
        );
        assert_ne!(new, load(""));
        assert!(restart_required_changes(&load(""), &new).is_empty());
    }

    #[test]
    fn other_changes_are_listed_by_key_path() {
        let new = load(
            "[device]\nname = \"x\"\n[mqtt]\nurl = \"mqtt://b\"\nqos = 2\n[sensor]\ninterval_s = 3\n\
             [relay]\ngpio = 5\non_boot = \"restore\"\n[control]\nmin_on_s = 1\n\
             [homeassistant]\ndiscovery = false\n[http]\nlisten = \"\"\n[mock]\ntime_scale = 2\n",
        );
        assert_eq!(
            restart_required_changes(&load(""), &new),
            vec![
                "device.name",
                "mqtt.url",
                "mqtt.qos",
                "sensor.interval_s",
                "relay.gpio",
                "relay.on_boot",
                "homeassistant.discovery",
                "http.listen",
                "mock.time_scale"
            ]
        );
    }

    #[test]
    fn live_changes_are_listed_too() {
        let new = load(
            "[control]\nstrategy = \"dli\"\n[dli]\ntarget_mol = 12\n\
             [[dli.tariff]]\nfrom = \"22:00\"\nto = \"06:00\"\nprice = 0.1\n[http]\nlisten = \"\"\n",
        );
        assert_eq!(
            live_changes(&load(""), &new),
            vec!["control.strategy", "dli.target_mol", "dli.tariff"]
        );
        assert_eq!(
            restart_required_changes(&load(""), &new),
            vec!["http.listen"]
        );
    }

    #[test]
    fn a_changed_password_counts_as_the_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "one").unwrap();
        let text = format!(
            "[mqtt]\nusername = \"u\"\npassword_file = {:?}\nqos = 2\n",
            file.display()
        );
        let old = load(&text);
        std::fs::write(&file, "two").unwrap();
        let new = load(&text.replace("qos = 2", "qos = 0"));
        assert_eq!(
            restart_required_changes(&old, &new),
            vec!["mqtt.password_file", "mqtt.qos"]
        );
    }

    #[test]
    fn derived_defaults_count_as_changes() {
        // Changing the prefix also moves the default sensor topic.
        let new = load("[mqtt]\ntopic_prefix = \"gh\"\n");
        assert_eq!(
            restart_required_changes(&load(""), &new),
            vec!["mqtt.topic_prefix", "sensor.topic"]
        );
    }
}
