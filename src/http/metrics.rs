//! `/metrics`: the state snapshot in the OpenMetrics text format (which Prometheus scrapes natively), encoded by
//! the `prometheus-client` crate. A fresh registry per scrape, filled from the snapshot: the values live in the
//! core, the server only formats them.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::StateView;
use crate::core::monitor::Alert;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabel {
    alert: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// A gauge holding `v`.
fn gauge_f64(v: f64) -> Gauge<f64, AtomicU64> {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(v);
    g
}

fn gauge_i64(v: i64) -> Gauge {
    let g = Gauge::default();
    g.set(v);
    g
}

/// The sensor statuses of `P/state`.
const SENSOR_STATUSES: [&str; 4] = ["ok", "error", "stale", "saturated"];

/// The metrics text for one state.
pub fn encode_state(state: &StateView) -> Result<String, std::fmt::Error> {
    let mut r = Registry::with_prefix("greenhoused");
    if let Some(lux) = state.lux {
        r.register("lux", "Last valid BH1750 reading, lux", gauge_f64(lux));
    }
    if let Some(a) = state.ambient_lux {
        r.register(
            "ambient_lux",
            "Ambient light estimate (the reading without the lamp's share), lux",
            gauge_f64(a),
        );
    }
    r.register(
        "light_on",
        "1 when the relay reads back on",
        gauge_i64(i64::from(state.light == "on")),
    );
    r.register(
        "manual_mode",
        "1 in manual mode (an MQTT command overrides the rule)",
        gauge_i64(i64::from(state.mode == "manual")),
    );
    r.register(
        "window_open",
        "1 while the photoperiod window is open",
        gauge_i64(i64::from(state.window_open)),
    );
    if let Some(dli) = &state.dli {
        r.register(
            "dli_today_mol_per_m2",
            "Daily light integral of the light-day so far (sun and lamp), mol/m2",
            gauge_f64(dli.mol),
        );
        r.register(
            "dli_target_mol_per_m2",
            "Today's DLI target (0: accounting only), mol/m2",
            gauge_f64(dli.target_mol),
        );
        r.register(
            "lamp_energy_today_kwh",
            "Lamp energy of the light-day so far (0 without dli.lamp_watts), kWh",
            gauge_f64(dli.lamp_kwh),
        );
    }
    let on_seconds = Counter::<f64, AtomicU64>::default();
    on_seconds.inc_by(state.lamp_on_seconds_total);
    r.register_with_unit(
        "lamp_on",
        "Lamp on-time since the daemon started",
        Unit::Seconds,
        on_seconds,
    );
    let switches = Counter::<u64>::default();
    switches.inc_by(state.lamp_switches_total);
    r.register(
        "lamp_switches",
        "Relay switches confirmed by read-back since the daemon started",
        switches,
    );
    let alerts = Family::<AlertLabel, Gauge>::default();
    for a in Alert::ALL {
        let name = a.as_str();
        alerts
            .get_or_create(&AlertLabel { alert: name })
            .set(i64::from(state.alerts.iter().any(|x| x == name)));
    }
    r.register("alert_active", "1 while the named alert is raised", alerts);
    r.register(
        "broker_connected",
        "1 while connected to the MQTT broker",
        gauge_i64(i64::from(state.broker_connected)),
    );
    let sensor = Family::<StatusLabel, Gauge>::default();
    for s in SENSOR_STATUSES {
        sensor
            .get_or_create(&StatusLabel { status: s })
            .set(i64::from(state.sensor == s));
    }
    r.register("sensor_status", "1 for the sensor's current status", sensor);
    let info = Family::<VersionLabel, Gauge>::default();
    info.get_or_create(&VersionLabel {
        version: state.version.clone(),
    })
    .set(1);
    r.register("build_info", "The running version (always 1)", info);

    let mut text = String::new();
    encode(&mut text, &r)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dli::DliPayload;

    fn state() -> StateView {
        StateView {
            ts: "2026-06-01T12:00:00+02:00".into(),
            lux: Some(412.5),
            ambient_lux: Some(12.5),
            light: "on".into(),
            mode: "auto".into(),
            reason: "below_threshold".into(),
            sensor: "ok".into(),
            window_open: true,
            alerts: vec!["lamp_no_effect".into()],
            broker_connected: true,
            broker: Some("mqtt://127.0.0.1:1883".into()),
            dli: Some(DliPayload {
                mol: 7.25,
                target_mol: 12.0,
                ..DliPayload::default()
            }),
            lamp_on_seconds_total: 90.5,
            lamp_switches_total: 3,
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn names_values_and_types_follow_the_conventions() {
        let text = encode_state(&state()).unwrap();
        for line in [
            "# TYPE greenhoused_lux gauge",
            "greenhoused_lux 412.5",
            "greenhoused_ambient_lux 12.5",
            "greenhoused_light_on 1",
            "greenhoused_dli_today_mol_per_m2 7.25",
            "greenhoused_dli_target_mol_per_m2 12.0",
            "# TYPE greenhoused_lamp_on_seconds counter",
            "# UNIT greenhoused_lamp_on_seconds seconds",
            "greenhoused_lamp_on_seconds_total 90.5",
            "# TYPE greenhoused_lamp_switches counter",
            "greenhoused_lamp_switches_total 3",
            "greenhoused_alert_active{alert=\"lamp_no_effect\"} 1",
            "greenhoused_alert_active{alert=\"rule_mismatch\"} 0",
            "greenhoused_broker_connected 1",
            "greenhoused_sensor_status{status=\"ok\"} 1",
            "greenhoused_sensor_status{status=\"stale\"} 0",
            "greenhoused_build_info{version=\"0.1.0\"} 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("greenhoused_alert_active{"))
                .count(),
            Alert::ALL.len()
        );
    }

    #[test]
    fn no_reading_means_no_lux_sample() {
        let s = StateView {
            lux: None,
            ambient_lux: None,
            dli: None,
            ..state()
        };
        let text = encode_state(&s).unwrap();
        assert!(!text.contains("greenhoused_lux "), "{text}");
        assert!(!text.contains("dli_today"), "{text}");
        assert!(text.contains("greenhoused_light_on 1"));
    }
}
