//! The `P/mock/set` payload: a JSON object with any subset of `ambient_lux`, `sensor_fault`, `lamp_broken`,
//! `relay_stuck`, and `stall_loop_s` (blocks the daemon's control loop, to prove the systemd watchdog catches a
//! hung loop).

use serde_json::Value;

use super::world::SensorFault;

const KEYS: &str = "ambient_lux, sensor_fault, lamp_broken, relay_stuck, stall_loop_s";

/// Longest control-loop stall `stall_loop_s` may ask for.
pub const MAX_STALL_S: f64 = 120.0;

/// A parsed `P/mock/set` command; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MockSet {
    /// `Some(Some(lux))` forces the ambient light; `Some(None)` (JSON `null`) returns to `mock.ambient`.
    pub ambient_lux: Option<Option<f64>>,
    /// `sensor_fault`: none, nack, stuck or saturated.
    pub sensor_fault: Option<SensorFault>,
    /// `lamp_broken`: the relay switches but the lamp gives no light.
    pub lamp_broken: Option<bool>,
    /// `relay_stuck`: the pin ignores writes.
    pub relay_stuck: Option<bool>,
    /// `stall_loop_s`: block the control loop this long (0 < s ≤ [`MAX_STALL_S`]), as a hung daemon would.
    pub stall_loop_s: Option<f64>,
}

/// Parse a `P/mock/set` payload. An empty object is valid and changes nothing. The error says what is wrong.
pub fn parse_mock_set(payload: &[u8]) -> Result<MockSet, String> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("not valid JSON ({e}); expected an object with {KEYS}"))?;
    let Value::Object(map) = value else {
        return Err(format!(
            "expected a JSON object with {KEYS}, e.g. {{\"ambient_lux\": 300}}"
        ));
    };
    let mut set = MockSet::default();
    for (key, v) in &map {
        match key.as_str() {
            "ambient_lux" => {
                set.ambient_lux = Some(match v {
                    Value::Null => None,
                    Value::Number(n) => match n.as_f64() {
                        Some(lux) if lux.is_finite() && lux >= 0.0 => Some(lux),
                        _ => return Err(format!("ambient_lux must be 0 or more lux, got {n}")),
                    },
                    other => {
                        return Err(format!(
                            "ambient_lux must be a number of lux or null, got {other}"
                        ))
                    }
                });
            }
            "sensor_fault" => {
                let Value::String(s) = v else {
                    return Err(format!(
                        "sensor_fault must be a string (none, nack, stuck or saturated), got {v}"
                    ));
                };
                set.sensor_fault = Some(s.parse()?);
            }
            "lamp_broken" => set.lamp_broken = Some(bool_field(key, v)?),
            "relay_stuck" => set.relay_stuck = Some(bool_field(key, v)?),
            "stall_loop_s" => match v.as_f64() {
                Some(s) if s > 0.0 && s <= MAX_STALL_S => set.stall_loop_s = Some(s),
                _ => {
                    return Err(format!(
                        "stall_loop_s must be a number of seconds above 0 and at most {MAX_STALL_S}, got {v}"
                    ))
                }
            },
            other => return Err(format!("unknown key {other:?} (expected {KEYS})")),
        }
    }
    Ok(set)
}

fn bool_field(key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{key} must be true or false, got {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> MockSet {
        parse_mock_set(s.as_bytes()).unwrap()
    }

    fn err(s: &str) -> String {
        parse_mock_set(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_every_field_and_subsets() {
        assert_eq!(
            ok(
                r#"{"ambient_lux": 12.5, "sensor_fault": "stuck", "lamp_broken": true, "relay_stuck": false, "stall_loop_s": 2}"#
            ),
            MockSet {
                ambient_lux: Some(Some(12.5)),
                sensor_fault: Some(SensorFault::Stuck),
                lamp_broken: Some(true),
                relay_stuck: Some(false),
                stall_loop_s: Some(2.0),
            }
        );
        assert!(parse_mock_set(br#"{"stall_loop_s": 0}"#).is_err());
        assert!(parse_mock_set(br#"{"stall_loop_s": 1000}"#).is_err());
        assert_eq!(
            ok(r#"{"ambient_lux": 150000}"#).ambient_lux,
            Some(Some(150_000.0))
        );
        assert_eq!(ok(r#"{"ambient_lux": null}"#).ambient_lux, Some(None));
        assert_eq!(
            ok(r#"{"sensor_fault": "nack"}"#).sensor_fault,
            Some(SensorFault::Nack)
        );
        assert_eq!(
            ok(r#"{"sensor_fault": "none"}"#).sensor_fault,
            Some(SensorFault::None)
        );
        assert_eq!(
            ok(r#"{"sensor_fault": "saturated"}"#).sensor_fault,
            Some(SensorFault::Saturated)
        );
        assert_eq!(
            ok(r#"{"relay_stuck": true}"#),
            MockSet {
                relay_stuck: Some(true),
                ..MockSet::default()
            }
        );
        assert_eq!(ok("{}"), MockSet::default());
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(err("ambient_lux=3").contains("not valid JSON"));
        assert!(err("[1]").contains("expected a JSON object"));
        assert!(err("300").contains("expected a JSON object"));
        assert!(err(r#"{"ambient": 3}"#).contains("unknown key \"ambient\""));
        assert!(err(r#"{"ambient_lux": "300"}"#).contains("ambient_lux must be a number"));
        assert!(err(r#"{"ambient_lux": -1}"#).contains("0 or more"));
        assert!(err(r#"{"sensor_fault": "broken"}"#).contains("unknown sensor_fault \"broken\""));
        assert!(err(r#"{"sensor_fault": 1}"#).contains("must be a string"));
        assert!(err(r#"{"lamp_broken": "yes"}"#).contains("lamp_broken must be true or false"));
        assert!(err(r#"{"relay_stuck": 1}"#).contains("relay_stuck must be true or false"));
        assert!(parse_mock_set(&[0xff, 0xfe])
            .unwrap_err()
            .contains("not valid JSON"));
    }
}
