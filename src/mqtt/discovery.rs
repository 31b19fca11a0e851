//! Home Assistant MQTT discovery, device-based (pure: settings in, messages out; no I/O, no clock).
//!
//! One retained message on `<discovery_prefix>/device/greenhoused_<device.id>/config` describes the device (`dev`),
//! this software (`o`), the availability topic (`P/status`) shared by every entity, and the entities (`cmps`),
//! each with a `unique_id` that never changes (`greenhoused_<device.id>_<component>`).
//!
//! Removing entities: Home Assistant keeps a component that simply disappears from a newer device payload. A
//! component published with nothing but its platform (`{"p": "sensor"}`) is removed (the entity and its registry
//! entry), so every component this version does not have ([`RETIRED`], and the lamp energy sensor while
//! `dli.lamp_watts` is 0) is sent that way. `discovery = false` sends every component that way: Home Assistant
//! removes all the entities and with them the device. (Not the empty payload Home Assistant also understands: an
//! empty retained message is not kept by the broker, so a Home Assistant that is down at that moment would never
//! see it, and one that no longer knows the device logs a warning for it on every reconnect.) See
//! docs/HOME_ASSISTANT.md.
//!
//! [`Announcer`] holds the timing: announce on every connect, and again 1–5 s ([`jitter`]) after Home Assistant
//! says `online` on `homeassistant.status_topic`, followed by the states. The core drives it (`src/core/mod.rs`).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::config::Settings;

/// What discovery needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverySettings {
    /// `homeassistant.discovery`: false = remove the device from Home Assistant.
    pub enabled: bool,
    /// `homeassistant.discovery_prefix`.
    pub discovery_prefix: String,
    /// `device.id` (`[a-z0-9_-]{1,64}`, valid in a discovery topic and a unique id as it is).
    pub device_id: String,
    /// `device.name`.
    pub device_name: String,
    /// `mqtt.topic_prefix` (P), `{device}` already replaced.
    pub topic_prefix: String,
    /// `dli.lamp_watts`: 0 = no energy figures, so no energy sensor.
    pub lamp_watts: f64,
}

impl DiscoverySettings {
    /// From the configuration.
    pub fn from_settings(settings: &Settings) -> Self {
        DiscoverySettings {
            enabled: settings.homeassistant.discovery,
            discovery_prefix: settings.homeassistant.discovery_prefix.clone(),
            device_id: settings.device.id.clone(),
            device_name: settings.device.name.clone(),
            topic_prefix: settings.mqtt.topic_prefix.clone(),
            lamp_watts: settings.dli.lamp_watts,
        }
    }

    /// `homeassistant.status_topic`.
    pub fn status_topic(settings: &Settings) -> String {
        settings.homeassistant.status_topic.clone()
    }
}

/// One retained MQTT message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub topic: String,
    /// The device config as JSON (with `discovery = false`: every component platform-only).
    pub payload: String,
}

/// Unit of the daily light integral. Home Assistant has no device class for it; with no device class any unit
/// is accepted without a warning.
pub const DLI_UNIT: &str = "mol/(m²·d)";

/// Components earlier versions announced that this one no longer has: (component id, platform). A component
/// never leaves this list, so an installation upgraded over several versions is cleaned up too.
pub const RETIRED: &[(&str, &str)] = &[];

/// Component id of the lamp energy sensor (announced only with `dli.lamp_watts` > 0).
const LAMP_ENERGY: &str = "lamp_energy";

/// Shortest and longest wait between Home Assistant's `online` and the re-announcement.
pub const REANNOUNCE_MIN: Duration = Duration::from_secs(1);
pub const REANNOUNCE_MAX: Duration = Duration::from_secs(5);

/// `<discovery_prefix>/device/greenhoused_<device.id>/config`.
pub fn config_topic(s: &DiscoverySettings) -> String {
    format!(
        "{}/device/greenhoused_{}/config",
        s.discovery_prefix, s.device_id
    )
}

/// The retained discovery message: the device config, or with discovery off the removal of every component.
pub fn announcement(s: &DiscoverySettings) -> Announcement {
    let payload = if s.enabled {
        device_config(s)
    } else {
        removal_config(s)
    }
    .to_string();
    Announcement {
        topic: config_topic(s),
        payload,
    }
}

/// The device config (`dev`, `o`, availability, `cmps`).
pub fn device_config(s: &DiscoverySettings) -> Value {
    device_config_retiring(s, RETIRED)
}

/// [`device_config`] with `retired` in place of [`RETIRED`].
fn device_config_retiring(s: &DiscoverySettings, retired: &[(&str, &str)]) -> Value {
    let p = &s.topic_prefix;
    let uid = |c: &str| format!("greenhoused_{}_{c}", s.device_id);
    let mut cmps = Map::new();
    let mut add = |id: &str, mut cfg: Value| {
        cfg["unique_id"] = json!(uid(id));
        // States are subscribed and commands published at QoS 1 (the root's `qos` is not inherited).
        cfg["qos"] = json!(1);
        cmps.insert(id.to_string(), cfg);
    };
    add(
        "lux",
        json!({
            "p": "sensor",
            "name": "Illuminance",
            "device_class": "illuminance",
            "unit_of_measurement": "lx",
            "state_class": "measurement",
            "state_topic": format!("{p}/state"),
            // `lux` is null while there is no valid reading: "None" makes the state unknown.
            "value_template": "{{ value_json.lux }}",
        }),
    );
    add(
        "light",
        json!({
            "p": "switch",
            "name": "Grow light",
            "icon": "mdi:lightbulb",
            "command_topic": format!("{p}/light/set"),
            "state_topic": format!("{p}/light"),
            "payload_on": "on",
            "payload_off": "off",
        }),
    );
    add(
        "auto",
        json!({
            "p": "button",
            "name": "Back to automatic",
            "icon": "mdi:autorenew",
            "command_topic": format!("{p}/light/set"),
            "payload_press": "auto",
        }),
    );
    add(
        "mode",
        json!({
            "p": "sensor",
            "name": "Mode",
            "device_class": "enum",
            "options": ["auto", "manual"],
            "state_topic": format!("{p}/mode"),
        }),
    );
    add(
        "dli",
        json!({
            "p": "sensor",
            "name": "Daily light integral",
            "icon": "mdi:white-balance-sunny",
            "unit_of_measurement": DLI_UNIT,
            "state_class": "measurement",
            "suggested_display_precision": 2,
            "state_topic": format!("{p}/dli"),
            "value_template": "{{ value_json.mol }}",
        }),
    );
    add(
        "dli_target",
        json!({
            "p": "number",
            "name": "Daily light integral target",
            "icon": "mdi:target",
            "unit_of_measurement": DLI_UNIT,
            "min": 0,
            "max": 100,
            "step": 0.5,
            "mode": "box",
            "state_topic": format!("{p}/dli"),
            "value_template": "{{ value_json.target_mol }}",
            "command_topic": format!("{p}/dli/target/set"),
        }),
    );
    add(
        "lamp_on_time",
        json!({
            "p": "sensor",
            "name": "Lamp on-time today",
            "device_class": "duration",
            "unit_of_measurement": "s",
            // Grows through the light-day and starts again from 0: a decrease is a new cycle.
            "state_class": "total_increasing",
            "state_topic": format!("{p}/dli"),
            "value_template": "{{ value_json.lamp_on_s }}",
        }),
    );
    if s.lamp_watts > 0.0 {
        add(
            LAMP_ENERGY,
            json!({
                "p": "sensor",
                "name": "Lamp energy today",
                "device_class": "energy",
                "unit_of_measurement": "kWh",
                // total_increasing: Home Assistant's energy dashboard takes it as a meter reset each light-day.
                "state_class": "total_increasing",
                "suggested_display_precision": 3,
                "state_topic": format!("{p}/dli"),
                "value_template": "{{ value_json.lamp_kwh }}",
            }),
        );
    }
    add(
        "problem",
        json!({
            "p": "binary_sensor",
            "name": "Problem",
            "device_class": "problem",
            "state_topic": format!("{p}/health"),
            "value_template": "{{ 'OFF' if value_json.ok else 'ON' }}",
            "json_attributes_topic": format!("{p}/health"),
            "json_attributes_template": "{{ {'alerts': value_json.alerts} | tojson }}",
        }),
    );
    // Components to remove from Home Assistant: just the platform.
    let mut removed: Vec<(&str, &str)> = retired.to_vec();
    if s.lamp_watts <= 0.0 {
        removed.push((LAMP_ENERGY, "sensor"));
    }
    for (id, platform) in removed {
        cmps.insert(id.to_string(), json!({ "p": platform }));
    }

    json!({
        "dev": {
            "ids": [format!("greenhoused_{}", s.device_id)],
            "name": s.device_name,
            "mf": "greenhoused",
            "mdl": "Grow-light controller (BH1750, relay)",
            "sw": env!("CARGO_PKG_VERSION"),
        },
        "o": {
            "name": "greenhoused",
            "sw": env!("CARGO_PKG_VERSION"),
        },
        // Shared by every component: all of them are unavailable while the daemon is offline.
        "availability_topic": format!("{p}/status"),
        "payload_available": "online",
        "payload_not_available": "offline",
        "cmps": cmps,
    })
}

/// `discovery = false`: the device config with every component this or an earlier version announced (the energy
/// sensor included) reduced to its platform, which makes Home Assistant remove them all, and the device with them.
/// Retained: a Home Assistant that is down now does it when it starts.
pub fn removal_config(s: &DiscoverySettings) -> Value {
    let everything = DiscoverySettings {
        lamp_watts: s.lamp_watts.max(1.0),
        ..s.clone()
    };
    let mut v = device_config(&everything);
    if let Some(cmps) = v["cmps"].as_object_mut() {
        for c in cmps.values_mut() {
            *c = json!({ "p": c["p"].clone() });
        }
    }
    v
}

/// When to (re)announce.
///
/// The announcement is retained, so it is the shell's retained outbox that sends it after every (re)connect.
/// What this adds is the reaction to Home Assistant's birth message: `online` on `status_topic` (a restarted Home
/// Assistant) → announce again after a random 1–5 s, so a fleet does not answer all at once, then republish the
/// states so the entities get values at once.
#[derive(Debug, Clone)]
pub struct Announcer {
    status_topic: String,
    due: Option<Instant>,
}

/// What [`Announcer::on_message`] made of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMessage {
    /// Not the status topic.
    NotOurs,
    /// `online`: re-announcement scheduled at this time.
    Scheduled(Instant),
    /// `online` while a re-announcement is pending: it keeps its time.
    AlreadyPending(Instant),
    /// Another payload (`offline`), or a retained `online` (we announce on every connect anyway).
    Ignored,
}

impl Announcer {
    pub fn new(status_topic: impl Into<String>) -> Self {
        Announcer {
            status_topic: status_topic.into(),
            due: None,
        }
    }

    /// The topic to subscribe to.
    pub fn status_topic(&self) -> &str {
        &self.status_topic
    }

    /// A message arrived; `delay` is the caller's draw ([`jitter`]; clamped to 1–5 s). An `online` while a
    /// re-announcement is pending keeps the earlier time.
    pub fn on_message(
        &mut self,
        now: Instant,
        topic: &str,
        payload: &[u8],
        retained: bool,
        delay: Duration,
    ) -> StatusMessage {
        if topic != self.status_topic {
            return StatusMessage::NotOurs;
        }
        let online = std::str::from_utf8(payload)
            .map(|p| p.trim().eq_ignore_ascii_case("online"))
            .unwrap_or(false);
        if !online || retained {
            return StatusMessage::Ignored;
        }
        match self.due {
            Some(at) => StatusMessage::AlreadyPending(at),
            None => {
                let at = now + delay.clamp(REANNOUNCE_MIN, REANNOUNCE_MAX);
                self.due = Some(at);
                StatusMessage::Scheduled(at)
            }
        }
    }

    /// When the pending re-announcement is due.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.due
    }

    /// Whether the re-announcement is due now (then it is no longer pending): the caller publishes
    /// [`announcement`] again and then the retained states.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.due {
            Some(at) if now >= at => {
                self.due = None;
                true
            }
            _ => false,
        }
    }
}

/// The `n`-th re-announcement delay of device `device_id`: pseudo-random in 1–5 s (millisecond steps), spread
/// over a fleet by the device id and over time by `n`. Deterministic, so a simulation or test replays exactly.
pub fn jitter(device_id: &str, n: u64) -> Duration {
    // FNV-1a over the id, then splitmix64 with the counter: cheap, stable across Rust versions, well mixed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in device_id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let (lo, hi) = (
        REANNOUNCE_MIN.as_millis() as u64,
        REANNOUNCE_MAX.as_millis() as u64,
    );
    Duration::from_millis(lo + z % (hi - lo + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DiscoverySettings {
        DiscoverySettings {
            enabled: true,
            discovery_prefix: "homeassistant".into(),
            device_id: "gh1".into(),
            device_name: "Greenhouse".into(),
            topic_prefix: "laboratory/greenhouse".into(),
            lamp_watts: 150.0,
        }
    }

    fn parsed(s: &DiscoverySettings) -> Value {
        let a = announcement(s);
        serde_json::from_str(&a.payload).expect("the announcement is valid JSON")
    }

    #[test]
    fn topic_is_device_based() {
        assert_eq!(
            announcement(&settings()).topic,
            "homeassistant/device/greenhoused_gh1/config"
        );
        let mut s = settings();
        s.discovery_prefix = "ha".into();
        s.device_id = "north-2".into();
        assert_eq!(config_topic(&s), "ha/device/greenhoused_north-2/config");
    }

    #[test]
    fn device_origin_and_availability() {
        let v = parsed(&settings());
        assert_eq!(v["dev"]["ids"], json!(["greenhoused_gh1"]));
        assert_eq!(v["dev"]["name"], "Greenhouse");
        assert_eq!(v["dev"]["sw"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["o"]["name"], "greenhoused");
        assert_eq!(v["o"]["sw"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["availability_topic"], "laboratory/greenhouse/status");
        assert_eq!(v["payload_available"], "online");
        assert_eq!(v["payload_not_available"], "offline");
    }

    #[test]
    fn every_entity_with_its_platform_class_unit_and_topics() {
        let v = parsed(&settings());
        let c = &v["cmps"];
        let expect = [
            // id, platform, device_class, unit, state topic
            ("lux", "sensor", json!("illuminance"), json!("lx"), "state"),
            ("light", "switch", Value::Null, Value::Null, "light"),
            ("mode", "sensor", json!("enum"), Value::Null, "mode"),
            ("dli", "sensor", Value::Null, json!(DLI_UNIT), "dli"),
            ("dli_target", "number", Value::Null, json!(DLI_UNIT), "dli"),
            (
                "lamp_on_time",
                "sensor",
                json!("duration"),
                json!("s"),
                "dli",
            ),
            (
                "lamp_energy",
                "sensor",
                json!("energy"),
                json!("kWh"),
                "dli",
            ),
            (
                "problem",
                "binary_sensor",
                json!("problem"),
                Value::Null,
                "health",
            ),
        ];
        for (id, platform, class, unit, state) in expect {
            let e = &c[id];
            assert_eq!(e["p"], platform, "{id}");
            assert_eq!(e["device_class"], class, "{id}");
            assert_eq!(e["unit_of_measurement"], unit, "{id}");
            assert_eq!(
                e["state_topic"],
                format!("laboratory/greenhouse/{state}"),
                "{id}"
            );
            assert_eq!(e["unique_id"], format!("greenhoused_gh1_{id}"), "{id}");
            assert!(
                e.get("object_id").is_none(),
                "{id}: object_id is deprecated"
            );
        }
        assert_eq!(c["auto"]["p"], "button");
        assert_eq!(c["auto"]["payload_press"], "auto");
        assert_eq!(
            c["auto"]["command_topic"],
            "laboratory/greenhouse/light/set"
        );
        assert_eq!(
            c["light"]["command_topic"],
            "laboratory/greenhouse/light/set"
        );
        assert_eq!(c["light"]["payload_on"], "on");
        assert_eq!(c["light"]["payload_off"], "off");
        assert_eq!(c["lux"]["state_class"], "measurement");
        assert_eq!(c["lamp_energy"]["state_class"], "total_increasing");
        assert_eq!(
            c["lamp_energy"]["value_template"],
            "{{ value_json.lamp_kwh }}"
        );
        assert_eq!(
            c["lamp_on_time"]["value_template"],
            "{{ value_json.lamp_on_s }}"
        );
        assert_eq!(c["dli"]["value_template"], "{{ value_json.mol }}");
        let t = &c["dli_target"];
        assert_eq!(t["command_topic"], "laboratory/greenhouse/dli/target/set");
        assert_eq!(t["value_template"], "{{ value_json.target_mol }}");
        assert_eq!(
            (&t["min"], &t["max"], &t["step"], &t["mode"]),
            (&json!(0), &json!(100), &json!(0.5), &json!("box"))
        );
        assert_eq!(c["mode"]["options"], json!(["auto", "manual"]));
        assert_eq!(c.as_object().map(|m| m.len()), Some(9), "{c:#}");
    }

    #[test]
    fn unique_ids_are_distinct_and_do_not_depend_on_names() {
        let a = parsed(&settings());
        let mut s = settings();
        s.device_name = "Tomatoes".into();
        s.topic_prefix = "greenhouses/gh1".into();
        let b = parsed(&s);
        let ids = |v: &Value| -> Vec<String> {
            v["cmps"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|c| c["unique_id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (ia, ib) = (ids(&a), ids(&b));
        assert_eq!(ia, ib);
        let mut dedup = ia.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), ia.len(), "{ia:?}");
    }

    #[test]
    fn without_lamp_watts_the_energy_sensor_is_removed_by_its_platform_alone() {
        let mut s = settings();
        s.lamp_watts = 0.0;
        let v = parsed(&s);
        assert_eq!(v["cmps"]["lamp_energy"], json!({"p": "sensor"}));
        assert_eq!(v["cmps"]["lamp_on_time"]["device_class"], "duration");
    }

    #[test]
    fn discovery_off_sends_every_component_platform_only() {
        let mut s = settings();
        s.enabled = false;
        s.lamp_watts = 0.0;
        let a = announcement(&s);
        assert_eq!(a.topic, "homeassistant/device/greenhoused_gh1/config");
        let v: Value = serde_json::from_str(&a.payload).expect("JSON");
        assert_eq!(v["dev"]["ids"], json!(["greenhoused_gh1"]));
        assert_eq!(v["o"]["name"], "greenhoused");
        let cmps = v["cmps"].as_object().expect("cmps");
        assert_eq!(cmps.len(), 9 + RETIRED.len(), "{cmps:?}");
        assert_eq!(cmps["lamp_energy"], json!({"p": "sensor"}));
        assert_eq!(cmps["light"], json!({"p": "switch"}));
        assert_eq!(cmps["problem"], json!({"p": "binary_sensor"}));
        assert!(cmps
            .values()
            .all(|c| c.as_object().map(|o| o.len()) == Some(1)));
    }

    #[test]
    fn retired_components_are_sent_with_their_platform_only() {
        let v = device_config_retiring(&settings(), &[("ambient", "sensor"), ("old", "switch")]);
        assert_eq!(v["cmps"]["ambient"], json!({"p": "sensor"}));
        assert_eq!(v["cmps"]["old"], json!({"p": "switch"}));
        assert_eq!(v["cmps"]["lux"]["p"], "sensor");
        // Retired ids never collide with current ones.
        let current = device_config_retiring(&settings(), &[]);
        for (id, _) in RETIRED {
            assert!(
                current["cmps"].get(*id).is_none(),
                "{id} is retired and current"
            );
        }
    }

    #[test]
    fn online_schedules_one_reannouncement_after_the_delay() {
        let t0 = Instant::now();
        let mut a = Announcer::new("homeassistant/status");
        assert_eq!(a.next_wakeup(), None);
        let s = Duration::from_secs;
        assert_eq!(
            a.on_message(t0, "other/topic", b"online", false, s(2)),
            StatusMessage::NotOurs
        );
        assert_eq!(
            a.on_message(t0, "homeassistant/status", b"offline", false, s(2)),
            StatusMessage::Ignored
        );
        assert_eq!(
            a.on_message(t0, "homeassistant/status", b"online", true, s(2)),
            StatusMessage::Ignored,
            "a retained online is the broker's memory, not a restart"
        );
        assert_eq!(
            a.on_message(t0, "homeassistant/status", b"online", false, s(2)),
            StatusMessage::Scheduled(t0 + s(2))
        );
        // A second online while pending keeps the first time.
        assert_eq!(
            a.on_message(t0 + s(1), "homeassistant/status", b"online", false, s(4)),
            StatusMessage::AlreadyPending(t0 + s(2))
        );
        assert_eq!(a.next_wakeup(), Some(t0 + s(2)));
        assert!(!a.poll(t0 + Duration::from_millis(1999)));
        assert!(a.poll(t0 + s(2)));
        assert!(!a.poll(t0 + s(3)), "once");
        assert_eq!(a.next_wakeup(), None);
    }

    #[test]
    fn delay_is_clamped_to_one_to_five_seconds() {
        let t0 = Instant::now();
        let mut a = Announcer::new("homeassistant/status");
        a.on_message(t0, "homeassistant/status", b"online", false, Duration::ZERO);
        assert_eq!(a.next_wakeup(), Some(t0 + REANNOUNCE_MIN));
        a.poll(t0 + REANNOUNCE_MIN);
        a.on_message(
            t0,
            "homeassistant/status",
            b"ONLINE\n",
            false,
            Duration::from_secs(60),
        );
        assert_eq!(a.next_wakeup(), Some(t0 + REANNOUNCE_MAX));
    }

    #[test]
    fn jitter_stays_in_range_and_spreads_over_devices_and_time() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..200 {
            let d = jitter("gh1", n);
            assert!((REANNOUNCE_MIN..=REANNOUNCE_MAX).contains(&d), "{d:?}");
            seen.insert(d.as_millis() / 500);
        }
        // 200 draws cover every half-second bucket of 1-5 s.
        assert!((2..=9).all(|b| seen.contains(&b)), "{seen:?}");
        assert_eq!(jitter("gh1", 3), jitter("gh1", 3), "deterministic");
        let fleet: std::collections::BTreeSet<_> = (0..50)
            .map(|i| jitter(&format!("gh{i}"), 0).as_millis())
            .collect();
        assert!(
            fleet.len() > 40,
            "50 devices get different delays: {fleet:?}"
        );
    }
}
