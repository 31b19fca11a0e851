//! Waiting on an [`Observer`] for a message that may already have arrived (alerts and retained messages come in
//! no guaranteed order).
#![allow(dead_code)]

use std::time::Duration;

use super::{Msg, Observer};

/// The first message at index ≥ `from` of `obs.seen` on `topic` satisfying `pred`, waiting for it if needed.
pub async fn seen_or_wait(
    obs: &mut Observer,
    from: usize,
    topic: &str,
    pred: impl Fn(&Msg) -> bool,
    limit: Duration,
) -> Option<Msg> {
    let start = from.min(obs.seen.len());
    if let Some(m) = obs.seen[start..]
        .iter()
        .find(|m| m.topic == topic && pred(m))
    {
        return Some(m.clone());
    }
    obs.wait_for(topic, pred, limit).await
}
