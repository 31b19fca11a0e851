//! What a configuration reload (SIGHUP) can apply live, and what needs a restart.

use super::Settings;

/// Key paths whose value differs between `old` and `new` and that only take effect after a restart: every key
/// outside `[control]`, `[monitor]` and `[dli]` (those apply live). A changed password counts as
/// `mqtt.password_file`.
pub fn restart_required_changes(old: &Settings, new: &Settings) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |key: &str, differs: bool| {
        if differs {
            changed.push(key.to_string());
        }
    };
    let (o, n) = (&old.device, &new.device);
    check("device.id", o.id != n.id);
    check("device.name", o.name != n.name);

    let (o, n) = (&old.mqtt, &new.mqtt);
    check("mqtt.url", o.url != n.url);
    check(
        "mqtt.embedded_listen",
        o.embedded_listen != n.embedded_listen,
    );
    check("mqtt.client_id", o.client_id != n.client_id);
    check("mqtt.topic_prefix", o.topic_prefix != n.topic_prefix);
    check("mqtt.username", o.username != n.username);
    check(
        "mqtt.password_file",
        o.password_file != n.password_file || o.password != n.password,
    );
    check("mqtt.ca_file", o.ca_file != n.ca_file);
    check("mqtt.cert_file", o.cert_file != n.cert_file);
    check("mqtt.key_file", o.key_file != n.key_file);
    check("mqtt.keepalive_s", o.keepalive != n.keepalive);
    check("mqtt.qos", o.qos != n.qos);

    let (o, n) = (&old.sensor, &new.sensor);
    check("sensor.source", o.source != n.source);
    check("sensor.i2c_bus", o.i2c_bus != n.i2c_bus);
    check("sensor.address", o.address != n.address);
    check("sensor.interval_s", o.interval != n.interval);
    check("sensor.topic", o.topic != n.topic);
    check("sensor.stale_after_s", o.stale_after != n.stale_after);

    let (o, n) = (&old.relay, &new.relay);
    check("relay.gpio", o.gpio != n.gpio);
    check("relay.active_low", o.active_low != n.active_low);
    check("relay.on_start", o.on_start != n.on_start);
    check("relay.on_boot", o.on_boot != n.on_boot);
    check("relay.on_stop", o.on_stop != n.on_stop);

    let (o, n) = (&old.homeassistant, &new.homeassistant);
    check("homeassistant.discovery", o.discovery != n.discovery);
    check(
        "homeassistant.discovery_prefix",
        o.discovery_prefix != n.discovery_prefix,
    );
    check(
        "homeassistant.status_topic",
        o.status_topic != n.status_topic,
    );
    check("http.listen", old.http.listen != new.http.listen);

    let (o, n) = (&old.mock, &new.mock);
    check("mock.ambient", o.ambient != n.ambient);
    check("mock.lamp_lux", o.lamp_lux != n.lamp_lux);
    check("mock.time_scale", o.time_scale != n.time_scale);
    check("mock.weather", o.weather != n.weather);
    changed
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
    fn derived_defaults_count_as_changes() {
        // Changing the prefix also moves the default sensor topic.
        let new = load("[mqtt]\ntopic_prefix = \"gh\"\n");
        assert_eq!(
            restart_required_changes(&load(""), &new),
            vec!["mqtt.topic_prefix", "sensor.topic"]
        );
    }
}
