//! Parser for `P/light/set` payloads: plain words (`on`, `off`, `toggle`, `auto`, `1`/`0`, `true`/`false`,
//! case-insensitive) or JSON `{"state": "on", "for_s": 1800}`.

use std::time::Duration;

use serde::Deserialize;

use crate::control::Command;

/// Largest accepted payload, in bytes.
pub const MAX_PAYLOAD: usize = 1024;

/// Why a `P/light/set` payload was rejected. `Display` is the reason published on `P/light/set/error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("empty payload: send on, off, toggle or auto")]
    Empty,
    #[error("payload too large ({0} bytes, at most 1024)")]
    TooLarge(usize),
    #[error("payload is not valid UTF-8 text")]
    NotUtf8,
    #[error("unknown command {0:?}: send on, off, toggle, auto, 1, 0, true, false or JSON {{\"state\": \"on\", \"for_s\": 1800}}")]
    Unknown(String),
    #[error("invalid JSON command: {0} (expected {{\"state\": \"on\"|\"off\"|\"toggle\"|\"auto\", \"for_s\": <seconds>}})")]
    BadJson(String),
    #[error("invalid for_s {0}: must be a positive number of seconds")]
    BadDuration(String),
    #[error("for_s cannot be combined with \"auto\"")]
    DurationWithAuto,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCommand {
    state: String,
    #[serde(default)]
    for_s: Option<serde_json::Value>,
}

/// Largest accepted `for_s` (one year): keeps `Duration::from_secs_f64` far from overflow.
const MAX_FOR_S: f64 = 366.0 * 24.0 * 3600.0;

/// Parse a `P/light/set` payload into a [`Command`].
pub fn parse_light_set(payload: &[u8]) -> Result<Command, CommandError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(CommandError::TooLarge(payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| CommandError::NotUtf8)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CommandError::Empty);
    }
    if text.starts_with('{') {
        return parse_json(text);
    }
    word(text, None).ok_or_else(|| CommandError::Unknown(shorten(text)))
}

fn parse_json(text: &str) -> Result<Command, CommandError> {
    let cmd: JsonCommand =
        serde_json::from_str(text).map_err(|e| CommandError::BadJson(e.to_string()))?;
    let for_ = match cmd.for_s {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(duration(&v)?),
    };
    let state = cmd.state.trim();
    if !matches!(
        state.to_ascii_lowercase().as_str(),
        "on" | "off" | "toggle" | "auto"
    ) {
        return Err(CommandError::BadJson(format!(
            "unknown state {:?}",
            shorten(state)
        )));
    }
    if for_.is_some() && state.eq_ignore_ascii_case("auto") {
        return Err(CommandError::DurationWithAuto);
    }
    word(state, for_).ok_or_else(|| CommandError::Unknown(shorten(state)))
}

fn duration(v: &serde_json::Value) -> Result<Duration, CommandError> {
    match v.as_f64() {
        Some(s) if s.is_finite() && s > 0.0 && s <= MAX_FOR_S => Ok(Duration::from_secs_f64(s)),
        _ => Err(CommandError::BadDuration(shorten(&v.to_string()))),
    }
}

/// A plain command word; JSON `state` values go through here too (only on/off/toggle/auto reach it).
fn word(text: &str, for_: Option<Duration>) -> Option<Command> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Some(Command::Set { on: true, for_ }),
        "off" | "0" | "false" => Some(Command::Set { on: false, for_ }),
        "toggle" => Some(Command::Toggle { for_ }),
        "auto" => Some(Command::Auto),
        _ => None,
    }
}

/// At most 40 characters of operator input in an error message.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(40).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn on(for_: Option<Duration>) -> Command {
        Command::Set { on: true, for_ }
    }
    fn off(for_: Option<Duration>) -> Command {
        Command::Set { on: false, for_ }
    }

    #[test]
    fn plain_words_case_insensitive_and_trimmed() {
        for (p, want) in [
            ("on", on(None)),
            ("ON", on(None)),
            (" On\n", on(None)),
            ("off", off(None)),
            ("\tOFF ", off(None)),
            ("toggle", Command::Toggle { for_: None }),
            ("Toggle", Command::Toggle { for_: None }),
            ("auto", Command::Auto),
            ("AUTO\r\n", Command::Auto),
            ("1", on(None)),
            ("0", off(None)),
            ("true", on(None)),
            ("False", off(None)),
        ] {
            assert_eq!(parse_light_set(p.as_bytes()), Ok(want), "payload {p:?}");
        }
    }

    #[test]
    fn json_forms() {
        assert_eq!(parse_light_set(br#"{"state": "on"}"#), Ok(on(None)));
        assert_eq!(
            parse_light_set(br#"{"state": "on", "for_s": 1800}"#),
            Ok(on(Some(Duration::from_secs(1800))))
        );
        assert_eq!(
            parse_light_set(br#" {"state":"OFF","for_s":0.5} "#),
            Ok(off(Some(Duration::from_millis(500))))
        );
        assert_eq!(
            parse_light_set(br#"{"state": "toggle", "for_s": 60}"#),
            Ok(Command::Toggle {
                for_: Some(Duration::from_secs(60))
            })
        );
        assert_eq!(parse_light_set(br#"{"state": "auto"}"#), Ok(Command::Auto));
        assert_eq!(
            parse_light_set(br#"{"state": "on", "for_s": null}"#),
            Ok(on(None))
        );
    }

    #[test]
    fn bad_for_s_rejected() {
        for p in [
            r#"{"state": "on", "for_s": 0}"#,
            r#"{"state": "on", "for_s": -5}"#,
            r#"{"state": "on", "for_s": "60"}"#,
            r#"{"state": "on", "for_s": true}"#,
            r#"{"state": "on", "for_s": 1e300}"#,
            r#"{"state": "on", "for_s": [1]}"#,
        ] {
            assert!(
                matches!(
                    parse_light_set(p.as_bytes()),
                    Err(CommandError::BadDuration(_))
                ),
                "payload {p} gave {:?}",
                parse_light_set(p.as_bytes())
            );
        }
        assert_eq!(
            parse_light_set(br#"{"state": "auto", "for_s": 10}"#),
            Err(CommandError::DurationWithAuto)
        );
    }

    #[test]
    fn bad_json_rejected() {
        for p in [
            r#"{"state": "on", "extra": 1}"#,
            r#"{"for_s": 10}"#,
            r#"{"state": "dim"}"#,
            r#"{"state": "1"}"#,
            r#"{"state": 1}"#,
            r#"{"state": "on""#,
            "{}",
        ] {
            assert!(
                matches!(parse_light_set(p.as_bytes()), Err(CommandError::BadJson(_))),
                "payload {p} gave {:?}",
                parse_light_set(p.as_bytes())
            );
        }
    }

    #[test]
    fn bad_plain_input_rejected() {
        assert_eq!(parse_light_set(b""), Err(CommandError::Empty));
        assert_eq!(parse_light_set(b"  \n\t"), Err(CommandError::Empty));
        assert_eq!(parse_light_set(&[0xff, 0xfe]), Err(CommandError::NotUtf8));
        assert_eq!(
            parse_light_set(&vec![b' '; MAX_PAYLOAD + 1]),
            Err(CommandError::TooLarge(MAX_PAYLOAD + 1))
        );
        for p in ["onn", "yes", "2", "o n", "[\"on\"]", "\"on\""] {
            assert!(
                matches!(parse_light_set(p.as_bytes()), Err(CommandError::Unknown(_))),
                "payload {p:?}"
            );
        }
        // Exactly at the limit is still parsed.
        let mut p = vec![b' '; MAX_PAYLOAD - 2];
        p.extend_from_slice(b"on");
        assert_eq!(parse_light_set(&p), Ok(on(None)));
    }

    #[test]
    fn error_messages_are_human_and_bounded() {
        let long = "x".repeat(500);
        let msg = parse_light_set(long.as_bytes()).unwrap_err().to_string();
        assert!(msg.starts_with("unknown command"), "{msg}");
        assert!(msg.len() < 250, "{msg}");
        assert!(msg.contains("on, off, toggle, auto"), "{msg}");
        let msg = parse_light_set(br#"{"state": "on", "for_s": -1}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "invalid for_s -1: must be a positive number of seconds"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x67_7265_656e);
        let alphabet = b"{}[]\":,. 01onfftruesautoglestate_for-e9\xff\xc3";
        for i in 0..20_000 {
            let len = rng.gen_range(0..if i % 100 == 0 { 1500 } else { 40 });
            let p: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| rng.gen()).collect()
            } else {
                (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            };
            if let Err(e) = parse_light_set(&p) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
