//! The daemon as a black box: `greenhoused --mock-hardware` as a separate process against a real mosquitto on a
//! free loopback port (and its embedded broker), observed only through MQTT and its log. The decisions behind
//! it (dwell, overrides, alerts) are tested on the Core with chosen times (src/core/tests.rs); the fault
//! scenarios through `P/mock/set` are in tests/fault_*.rs.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Cfg, Daemon};
use common::{free_port, prefix, wait_port_open, Mosquitto, Msg, Observer};
use serde_json::Value;

const T: Duration = Duration::from_secs(15);

/// A broker, an observer on `prefix/#` and the daemon.
struct Rig {
    broker: Mosquitto,
    obs: Observer,
    daemon: Daemon,
    p: String,
    /// Waits look at what arrived since the last action (command, mock change) or explicit mark.
    mark: usize,
}

impl Rig {
    /// Start a mosquitto, the observer, then the daemon with `cfg(defaults)`; waits for `P/status online`.
    async fn start(name: &str, cfg: impl FnOnce(Cfg) -> Cfg) -> Option<Rig> {
        let broker = Mosquitto::start()?;
        let p = prefix(name);
        let mut obs = Observer::connect(broker.port(), &p).await;
        let config = cfg(Cfg::broker(broker.port(), &p)).render();
        let daemon = Daemon::start(&config);
        obs.wait_payload(&format!("{p}/status"), "online", T)
            .await
            .expect("daemon publishes status online");
        let mut rig = Rig {
            broker,
            obs,
            daemon,
            p,
            mark: 0,
        };
        if !config.contains("source = \"mqtt\"") {
            // Start from a state that has seen the (simulated) sensor.
            rig.wait_state(|v| v["lux"].is_number()).await;
        }
        Some(rig)
    }

    fn t(&self, sub: &str) -> String {
        format!("{}/{sub}", self.p)
    }

    async fn send(&mut self, payload: &str) {
        self.mark = self.obs.mark();
        self.obs.publish(&self.t("light/set"), payload, false).await;
    }

    async fn mock(&mut self, json: &str) {
        self.mark = self.obs.mark();
        self.obs.publish(&self.t("mock/set"), json, false).await;
    }

    /// Wait for a `P/state` snapshot satisfying `pred`.
    async fn wait_state(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let topic = self.t("state");
        let m = self
            .obs
            .wait_after(
                self.mark,
                &topic,
                |m| {
                    serde_json::from_str::<Value>(&m.payload)
                        .map(|v| pred(&v))
                        .unwrap_or(false)
                },
                T,
            )
            .await
            .unwrap_or_else(|| panic!("no matching state; seen: {:?}", self.obs.payloads(&topic)));
        serde_json::from_str(&m.payload).expect("state is JSON")
    }

    /// Wait for the state to show `light` and `mode`.
    async fn wait_light(&mut self, light: &str, mode: &str) -> Value {
        self.wait_state(|v| v["light"] == light && v["mode"] == mode)
            .await
    }

    /// Wait for a `P/alert` event for `alert` with `active`.
    async fn wait_alert(&mut self, alert: &str, active: bool) -> Value {
        let topic = self.t("alert");
        let m = self
            .obs
            .wait_after(
                self.mark,
                &topic,
                |m| {
                    serde_json::from_str::<Value>(&m.payload)
                        .map(|v| v["alert"] == alert && v["active"] == active)
                        .unwrap_or(false)
                },
                T,
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no alert {alert} active={active}; seen: {:?}",
                    self.obs.payloads(&topic)
                )
            });
        serde_json::from_str(&m.payload).expect("alert is JSON")
    }

    /// How many `P/alert` events for `alert` with `active` were seen so far.
    fn alert_count(&self, alert: &str, active: bool) -> usize {
        self.obs
            .payloads(&self.t("alert"))
            .iter()
            .filter_map(|p| serde_json::from_str::<Value>(p).ok())
            .filter(|v| v["alert"] == alert && v["active"] == active)
            .count()
    }

    /// Wait for `P/health` to list exactly `alerts` (order as published).
    async fn wait_health(&mut self, alerts: &[&str]) {
        let topic = self.t("health");
        let want: Vec<Value> = alerts.iter().map(|a| Value::from(*a)).collect();
        let ok = alerts.is_empty();
        self.obs
            .wait_after(
                self.mark,
                &topic,
                |m| {
                    serde_json::from_str::<Value>(&m.payload)
                        .map(|v| v["ok"] == ok && v["alerts"].as_array() == Some(&want))
                        .unwrap_or(false)
                },
                T,
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "health never became {alerts:?}; seen: {:?}",
                    self.obs.payloads(&topic)
                )
            });
    }
}

fn json(m: &Msg) -> Value {
    serde_json::from_str(&m.payload)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}: {}", m.topic, m.payload))
}

#[tokio::test]
async fn seed_compatible_payloads_and_retained_state() {
    let Some(mut rig) = Rig::start("seed", |c| c.set("mock.ambient", "\"300\"")).await else {
        return;
    };
    // 300 lx ambient is below 450: the rule switches the light on; the sensor then sees 300 + 400 (the lamp).
    let state = rig.wait_light("on", "auto").await;
    assert_eq!(state["reason"], "below_threshold");
    assert_eq!(state["sensor"], "ok");
    assert_eq!(state["window_open"], true);
    for key in [
        "lux",
        "ambient_lux",
        "light",
        "mode",
        "reason",
        "sensor",
        "window_open",
        "ts",
    ] {
        assert!(state.get(key).is_some(), "state lacks {key}: {state}");
    }
    chrono::DateTime::parse_from_rfc3339(state["ts"].as_str().expect("ts is a string"))
        .expect("ts is RFC 3339");

    // The seed's monitor does float(payload) on the luminosity topic.
    let lum = rig.t("luminosity");
    let reading = rig
        .obs
        .wait_for(&lum, |m| m.payload.parse::<f64>().is_ok(), T)
        .await
        .expect("a reading");
    assert!(!reading.retained, "readings are not retained");
    let lux: f64 = reading.payload.parse().expect("plain number");
    assert!(lux > 0.0 && lux < 2000.0, "simulated reading {lux}");

    // A newcomer gets the retained contract topics.
    let mut late = Observer::connect(rig.broker.port(), &rig.p).await;
    let light = late
        .wait_after(0, &rig.t("light"), |m| m.retained, T)
        .await
        .expect("retained light");
    assert_eq!(light.payload, "on");
    assert_eq!(
        late.wait_after(0, &rig.t("mode"), |m| m.retained, T)
            .await
            .expect("retained mode")
            .payload,
        "auto"
    );
    let status = late
        .wait_after(0, &rig.t("status"), |m| m.retained, T)
        .await
        .expect("retained status");
    assert_eq!(status.payload, "online");
    let health = late
        .wait_after(0, &rig.t("health"), |m| m.retained, T)
        .await
        .expect("retained health");
    assert_eq!(json(&health), serde_json::json!({"ok": true, "alerts": []}));
    let st = late
        .wait_after(0, &rig.t("state"), |m| m.retained, T)
        .await
        .expect("retained state");
    assert_eq!(json(&st)["light"], "on");
}

#[tokio::test]
async fn every_command_form_is_obeyed() {
    let Some(mut rig) = Rig::start("commands", |c| c).await else {
        return;
    };
    rig.wait_light("off", "auto").await;
    // Each step changes the light or the mode, so a matching state snapshot proves it was applied.
    let steps = [
        ("on", "on", "manual"),
        ("OFF", "off", "manual"),
        ("toggle", "on", "manual"),
        ("Toggle", "off", "manual"),
        ("1", "on", "manual"),
        ("0", "off", "manual"),
        ("true", "on", "manual"),
        ("FALSE", "off", "manual"),
        (" auto\n", "off", "auto"),
        (r#"{"state": "on"}"#, "on", "manual"),
        (r#"{"state": "auto"}"#, "off", "auto"),
        (r#"{"state": "toggle", "for_s": 600}"#, "on", "manual"),
        ("Auto", "off", "auto"),
    ];
    for (payload, light, mode) in steps {
        rig.send(payload).await;
        let s = rig.wait_light(light, mode).await;
        let reason = if mode == "manual" {
            "manual"
        } else {
            "above_threshold"
        };
        assert_eq!(s["reason"], reason, "after {payload:?}: {s}");
    }
    // P/light and P/mode follow on change.
    let lights = rig.obs.payloads(&rig.t("light"));
    assert_eq!(
        lights.iter().filter(|p| *p == "on").count(),
        6,
        "{lights:?}"
    );
    assert_eq!(
        rig.obs.payloads(&rig.t("mode")).last().map(String::as_str),
        Some("auto")
    );
}

#[tokio::test]
async fn bad_commands_are_rejected_and_leave_the_light_alone() {
    let Some(mut rig) = Rig::start("badcmd", |c| c).await else {
        return;
    };
    rig.wait_light("off", "auto").await;
    let err_topic = rig.t("light/set/error");
    let long = "o".repeat(2000);
    let bad: Vec<&[u8]> = vec![
        b"maybe",
        b"",
        b"{\"state\": \"purple\"}",
        b"{\"state\": \"on\", \"for_s\": -5}",
        b"{\"state\": \"on\", \"colour\": 1}",
        b"{not json",
        &[0xff, 0xfe, 0x6f, 0x6e],
        long.as_bytes(),
    ];
    for payload in &bad {
        let mark = rig.obs.mark();
        rig.obs
            .publish_bytes(&rig.t("light/set"), payload, false)
            .await;
        let reason = rig
            .obs
            .wait_after(mark, &err_topic, |_| true, T)
            .await
            .unwrap_or_else(|| panic!("no error published for {payload:?}"))
            .payload;
        assert!(
            !reason.is_empty() && reason.len() < 400,
            "reason: {reason:?}"
        );
    }
    assert_eq!(rig.obs.payloads(&err_topic).len(), bad.len());
    // A good command after them still works, and nothing before it touched the light.
    rig.send("on").await;
    rig.wait_light("on", "manual").await;
    let lights = rig.obs.payloads(&rig.t("light"));
    assert_eq!(
        lights.iter().filter(|p| *p == "on").count(),
        1,
        "{lights:?}"
    );
    let modes = rig.obs.payloads(&rig.t("mode"));
    assert_eq!(
        modes.iter().filter(|p| *p == "manual").count(),
        1,
        "{modes:?}"
    );
    assert!(
        rig.daemon.log().contains("rejected command"),
        "warnings logged"
    );
}

#[tokio::test]
async fn retained_command_is_ignored_with_a_warning() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("retained");
    let mut obs = Observer::connect(broker.port(), &p).await;
    obs.publish(&format!("{p}/light/set"), "on", true).await;
    let daemon = Daemon::start(&Cfg::broker(broker.port(), &p).render());
    assert!(
        daemon.wait_log("ignoring a retained command", T).await,
        "log: {}",
        daemon.log()
    );
    // The daemon has handled the retained message; the rule (1000 lx) keeps the light off in auto.
    let s = obs
        .wait_for(
            &format!("{p}/state"),
            |m| m.payload.contains("\"sensor\":\"ok\"") && m.payload.contains("lux"),
            T,
        )
        .await
        .expect("a state after a reading");
    assert_eq!(json(&s)["light"], "off");
    assert_eq!(json(&s)["mode"], "auto");
    assert!(!obs
        .payloads(&format!("{p}/light"))
        .contains(&"on".to_string()));
    obs.publish_bytes(&format!("{p}/light/set"), b"", true)
        .await; // clear it
}

#[tokio::test]
async fn broker_restart_republishes_state_and_the_daemon_keeps_running() {
    let Some(mut rig) = Rig::start("restart", |c| c).await else {
        return;
    };
    rig.send("on").await;
    rig.wait_light("on", "manual").await;
    rig.broker.kill();
    rig.broker.restart(); // persistence off: the new broker knows nothing
    assert!(rig.daemon.running(), "daemon survived the broker loss");
    let mut obs = Observer::connect(rig.broker.port(), &rig.p).await;
    // Retained topics on a blank broker can only come from the daemon republishing after reconnect.
    for (sub, want) in [("status", "online"), ("light", "on"), ("mode", "manual")] {
        let m = obs
            .wait_after(
                0,
                &rig.t(sub),
                |m| m.payload == want,
                Duration::from_secs(30),
            )
            .await;
        assert!(
            m.is_some(),
            "{sub} = {want} not republished; seen {:?}",
            obs.seen
        );
    }
    obs.wait_after(0, &rig.t("health"), |_| true, T)
        .await
        .expect("health republished");
    obs.wait_after(0, &rig.t("state"), |_| true, T)
        .await
        .expect("state republished");
    // Commands work on the new connection (resubscribed).
    obs.publish(&rig.t("light/set"), "off", false).await;
    obs.wait_payload(&rig.t("light"), "off", T)
        .await
        .expect("command after reconnect");
    assert!(rig.daemon.running());
}

#[tokio::test]
async fn broker_absent_at_start_then_appearing() {
    let port = free_port();
    let p = prefix("absent");
    let daemon = Daemon::start(&Cfg::broker(port, &p).render());
    assert!(
        daemon.wait_log("started", T).await,
        "the daemon runs without a broker: {}",
        daemon.log()
    );
    let Some(_broker) = Mosquitto::start_on(port) else {
        return;
    };
    let mut obs = Observer::connect(port, &p).await;
    obs.wait_payload(&format!("{p}/status"), "online", Duration::from_secs(40))
        .await
        .expect("connected later");
    obs.wait_for(
        &format!("{p}/luminosity"),
        |m| m.payload.parse::<f64>().is_ok(),
        T,
    )
    .await
    .expect("readings");
}

#[tokio::test]
async fn sigterm_puts_the_relay_at_on_stop_publishes_offline_and_exits_0() {
    let Some(mut rig) = Rig::start("sigterm", |c| c.set("relay.on_stop", "\"on\"")).await else {
        return;
    };
    rig.wait_light("off", "auto").await;
    let took = rig.daemon.terminate(Duration::from_secs(5));
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    rig.obs
        .wait_payload(&rig.t("status"), "offline", T)
        .await
        .expect("offline");
    // relay.on_stop = "on": the final P/light is on, published before offline.
    let order: Vec<(String, String)> = rig
        .obs
        .seen
        .iter()
        .filter(|m| m.topic == rig.t("light") || m.topic == rig.t("status"))
        .map(|m| {
            (
                m.topic.rsplit('/').next().unwrap_or_default().to_string(),
                m.payload.clone(),
            )
        })
        .collect();
    let tail: Vec<_> = order.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(
        tail,
        vec![
            ("light".into(), "on".into()),
            ("status".into(), "offline".into())
        ],
        "{order:?}"
    );
}

#[tokio::test]
async fn sensor_error_and_stale_alerts_raise_and_clear() {
    let Some(mut rig) = Rig::start("sensorerr", |c| c).await else {
        return;
    };
    rig.wait_state(|v| v["sensor"] == "ok").await;
    rig.mock(r#"{"sensor_fault": "nack"}"#).await;
    let a = rig.wait_alert("sensor_error", true).await;
    assert!(
        a["detail"].as_str().unwrap_or_default().contains("0x23"),
        "detail names the sensor: {a}"
    );
    rig.wait_alert("sensor_stale", true).await;
    rig.wait_state(|v| v["sensor"] != "ok").await;
    rig.wait_health(&["sensor_error", "sensor_stale"]).await;
    rig.mock(r#"{"sensor_fault": "none"}"#).await;
    rig.wait_alert("sensor_error", false).await;
    rig.wait_alert("sensor_stale", false).await;
    rig.wait_health(&[]).await;
    rig.wait_state(|v| v["sensor"] == "ok").await;
    for (alert, active) in [
        ("sensor_error", true),
        ("sensor_error", false),
        ("sensor_stale", true),
        ("sensor_stale", false),
    ] {
        assert_eq!(
            rig.alert_count(alert, active),
            1,
            "{alert} active={active} exactly once"
        );
    }
    let log = rig.daemon.log();
    assert!(
        log.contains("alert sensor_error raised") && log.contains("alert sensor_error cleared"),
        "{log}"
    );
}

#[tokio::test]
async fn sighup_applies_control_changes_and_rejects_a_bad_file() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("sighup");
    let base = Cfg::broker(broker.port(), &p).set("mock.ambient", "\"500\"");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let daemon = Daemon::start(&base.render());
    // 500 lx is inside 450..550: in band, the light stays off.
    let s = obs
        .wait_for(
            &format!("{p}/state"),
            |m| m.payload.contains("\"reason\":\"in_band\""),
            T,
        )
        .await
        .expect("in band");
    assert_eq!(json(&s)["light"], "off");
    let pid = daemon.pid();

    // Raise the band above 500: the light must come on, live, without a restart.
    daemon.rewrite_config(
        &base
            .clone()
            .set("control.on_below_lux", "600")
            .set("control.off_above_lux", "700")
            .set("mqtt.keepalive_s", "7")
            .render(),
    );
    daemon.signal("HUP");
    assert!(
        daemon.wait_log("configuration reloaded", T).await,
        "{}",
        daemon.log()
    );
    obs.wait_payload(&format!("{p}/light"), "on", T)
        .await
        .expect("reload applied live");
    assert!(
        daemon.log().contains("mqtt.keepalive_s changed"),
        "restart-only change logged"
    );

    // An invalid file is rejected, the running configuration stays.
    daemon.rewrite_config("[control]\non_below_lux = 800\noff_above_lux = 100\n");
    daemon.signal("HUP");
    assert!(
        daemon.wait_log("reload rejected", T).await,
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("control.off_above_lux"),
        "the problem is named"
    );
    obs.publish(&format!("{p}/light/set"), "off", false).await;
    obs.wait_payload(&format!("{p}/light"), "off", T)
        .await
        .expect("still serving");
    let mut daemon = daemon;
    assert!(daemon.running());
    assert_eq!(daemon.pid(), pid);
}

#[tokio::test]
async fn mqtt_sensor_source_follows_the_hysteresis_band() {
    let Some(mut rig) = Rig::start("mqttsensor", |c| {
        c.set("sensor.source", "\"mqtt\"")
            .set("sensor.topic", "\"remote/photosensor/lux\"")
            .set("sensor.stale_after_s", "30")
            .set("control.lamp_lux", "0")
    })
    .await
    else {
        return;
    };
    let remote = "remote/photosensor/lux";
    // (reading, expected light, expected reason)
    let steps = [
        ("300", "on", "below_threshold"),
        ("500", "on", "in_band"),
        ("600", "off", "above_threshold"),
        ("500", "off", "in_band"),
        ("449.5", "on", "below_threshold"),
        ("550", "on", "in_band"),
        ("550.5", "off", "above_threshold"),
    ];
    for (reading, light, reason) in steps {
        let want: f64 = reading.parse().expect("number");
        // The photosensor publishes periodically; the rule holds a switch against readings that may predate it
        // (< 1 s), so keep publishing like the seed's script does until the rule has acted on this value.
        let deadline = Instant::now() + T;
        let state = loop {
            rig.obs.publish(remote, reading, false).await;
            let topic = rig.t("state");
            let got = rig
                .obs
                .wait_for(
                    &topic,
                    |m| {
                        serde_json::from_str::<Value>(&m.payload)
                            .map(|v| v["lux"].as_f64() == Some(want) && v["reason"] == reason)
                            .unwrap_or(false)
                    },
                    Duration::from_millis(400),
                )
                .await;
            if let Some(m) = got {
                break json(&m);
            }
            assert!(
                Instant::now() < deadline,
                "{reading} never gave {reason}: {:?}",
                rig.obs.payloads(&topic)
            );
        };
        assert_eq!(state["light"], light, "after {reading}: {state}");
    }
    rig.obs.publish(remote, "bright", false).await;
    assert!(rig.daemon.wait_log("rejected reading", T).await);
    let lum: Vec<String> = rig.obs.payloads(&rig.t("luminosity"));
    assert_eq!(
        lum.last().map(String::as_str),
        Some("550.5"),
        "readings are republished on P/luminosity"
    );
}

#[tokio::test]
async fn embedded_broker_serves_the_daemon_and_other_clients() {
    let port = free_port();
    let p = prefix("embedded");
    let cfg = Cfg::broker(port, &p)
        .set("mqtt.url", "\"embedded\"")
        .set("mqtt.embedded_listen", &format!("\"127.0.0.1:{port}\""));
    let daemon = Daemon::start(&cfg.render());
    assert!(
        wait_port_open(port, T),
        "embedded broker listens: {}",
        daemon.log()
    );
    let mut obs = Observer::connect(port, &p).await;
    obs.wait_for(
        &format!("{p}/luminosity"),
        |m| m.payload.parse::<f64>().is_ok(),
        T,
    )
    .await
    .expect("readings");
    obs.publish(&format!("{p}/light/set"), "on", false).await;
    obs.wait_payload(&format!("{p}/light"), "on", T)
        .await
        .expect("command echo");
    // An ordinary client (mosquitto_sub) gets the retained status.
    let out = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            &format!("{p}/status"),
            "-C",
            "1",
            "-W",
            "10",
        ])
        .output()
        .expect("run mosquitto_sub");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "online");
}

#[tokio::test]
async fn embedded_broker_port_taken_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cfg = Cfg::broker(port, "test/taken")
        .set("mqtt.url", "\"embedded\"")
        .set("mqtt.embedded_listen", &format!("\"127.0.0.1:{port}\""));
    let mut daemon = Daemon::start(&cfg.render());
    let status = daemon.wait_exit(T).expect("exits");
    assert_eq!(status.code(), Some(69));
    let log = daemon.log();
    assert!(
        log.contains(&port.to_string()) && log.contains("mqtt.url"),
        "{log}"
    );
    drop(listener);
}

#[tokio::test]
async fn relay_state_is_restored_across_restarts() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("restore");
    let state_dir = tempfile::tempdir().expect("tempdir");
    let cfg = Cfg::broker(broker.port(), &p)
        .set("relay.on_start", "\"restore\"")
        .set("relay.on_stop", "\"keep\"");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let mut first = Daemon::start_with_env(&cfg.render(), &[("STATE_DIRECTORY", state_dir.path())]);
    obs.wait_payload(&format!("{p}/status"), "online", T)
        .await
        .expect("online");
    obs.publish(&format!("{p}/light/set"), "on", false).await;
    obs.wait_payload(&format!("{p}/light"), "on", T)
        .await
        .expect("on");
    first.signal("TERM");
    assert_eq!(first.wait_exit(T).and_then(|s| s.code()), Some(0));
    // The level on the first line, then the boot it was written in.
    let saved = std::fs::read_to_string(state_dir.path().join("relay-state")).expect("saved");
    assert_eq!(saved.lines().next(), Some("on"), "{saved}");
    assert!(saved.contains("boot_id="), "{saved}");

    let second = Daemon::start_with_env(&cfg.render(), &[("STATE_DIRECTORY", state_dir.path())]);
    assert!(
        second.wait_log("started: relay on", T).await,
        "{}",
        second.log()
    );
}
