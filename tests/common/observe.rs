//! Waiting on an [`Observer`] for a message that may already have arrived (alerts and retained messages come in
//! no guaranteed order).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Msg, Observer};

/// How long the fault tests wait for an alert.
const LIMIT: Duration = Duration::from_secs(10);

/// A message payload as JSON (`Null` when it is not JSON).
pub fn json(m: &Msg) -> Value {
    serde_json::from_str(&m.payload).unwrap_or(Value::Null)
}

/// Wait for the alert event, which may already be among the messages seen since index `from` (several alerts
/// can change at once, in any order); returns the time from `since` until it was found (an upper bound).
pub async fn alert(
    obs: &mut Observer,
    from: usize,
    prefix: &str,
    name: &str,
    active: bool,
    since: Instant,
) -> Duration {
    let topic = format!("{prefix}/alert");
    obs.wait_after(
        from,
        &topic,
        |m| json(m)["alert"] == name && json(m)["active"] == active,
        LIMIT,
    )
    .await
    .unwrap_or_else(|| {
        panic!(
            "alert {name} active={active} not seen: {:?}",
            obs.payloads(&topic)
        )
    });
    since.elapsed()
}
