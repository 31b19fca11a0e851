//! The outbox between the core loop and the MQTT task: publishing never blocks or awaits.
//!
//! - Retained messages keep only the latest value per topic, and the whole set is published again after every
//!   (re)connect (`P/light`, `P/mode`, `P/health`, `P/state`, `P/status online` …), so the core loop never has to
//!   know about connections.
//! - Other messages (readings, alerts, errors) wait in a bounded FIFO; when it is full the oldest is dropped
//!   and counted. They are sent in order once connected.
//! - [`Outbox::close`] marks the end: the task sends what is queued (bounded in time), disconnects and ends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Default capacity of the FIFO of non-retained messages.
pub const DEFAULT_CAPACITY: usize = 1000;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

#[derive(Debug)]
struct Retained {
    payload: Vec<u8>,
    /// Sequence number of the last update (the order retained values are republished in).
    updated: u64,
    /// `Some(key)` while the value still has to be sent; lower keys go first. 0 = ahead of everything.
    pending: Option<u64>,
}

/// The queue state (pure; no I/O).
#[derive(Debug)]
pub(crate) struct Queue {
    seq: u64,
    retained: HashMap<String, Retained>,
    plain: VecDeque<(u64, Outgoing)>,
    capacity: usize,
    dropped: u64,
    closed: bool,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Queue {
            seq: 0,
            retained: HashMap::new(),
            plain: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            closed: false,
        }
    }

    /// Queue a message; `false` when the queue is closed (the message is discarded).
    pub(crate) fn push(&mut self, topic: String, payload: Vec<u8>, retain: bool) -> bool {
        if self.closed {
            return false;
        }
        self.seq += 1;
        let seq = self.seq;
        if retain {
            let entry = self.retained.entry(topic).or_insert(Retained {
                payload: Vec::new(),
                updated: seq,
                pending: None,
            });
            entry.payload = payload;
            entry.updated = seq;
            // An unsent older value keeps its place in the order; it goes out with the new value.
            entry.pending.get_or_insert(seq);
        } else {
            if self.plain.len() >= self.capacity {
                self.plain.pop_front();
                self.dropped += 1;
            }
            self.plain.push_back((
                seq,
                Outgoing {
                    topic,
                    payload,
                    retain: false,
                },
            ));
        }
        true
    }

    /// The next message to send, if any: queue order, with retained values marked for republishing first.
    pub(crate) fn pop(&mut self) -> Option<Outgoing> {
        let retained = self
            .retained
            .iter()
            .filter_map(|(t, r)| r.pending.map(|p| ((p, r.updated), t)))
            .min_by_key(|(k, _)| *k)
            .map(|(k, t)| (k, t.clone()));
        let plain = self.plain.front().map(|(s, _)| (*s, *s));
        let take_retained = match (&retained, plain) {
            (Some((rk, _)), Some(pk)) => *rk < pk,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if let (true, Some((_, topic))) = (take_retained, retained) {
            let r = self.retained.get_mut(&topic)?;
            r.pending = None;
            return Some(Outgoing {
                topic,
                payload: r.payload.clone(),
                retain: true,
            });
        }
        self.plain.pop_front().map(|(_, o)| o)
    }

    /// Put back a message that could not be handed to the client; it goes out first next time.
    pub(crate) fn unpop(&mut self, msg: Outgoing) {
        if msg.retain {
            if let Some(r) = self.retained.get_mut(&msg.topic) {
                r.pending = Some(0);
            }
        } else {
            self.plain.push_front((0, msg));
        }
    }

    /// Mark every retained value for republishing ahead of the FIFO (after a (re)connect).
    pub(crate) fn republish_retained(&mut self) {
        for r in self.retained.values_mut() {
            r.pending = Some(0);
        }
    }

    /// Number of non-retained messages dropped since the last call.
    pub(crate) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Nothing left to send.
    pub(crate) fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.retained.values().all(|r| r.pending.is_none())
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    pub(crate) notify: Notify,
    pub(crate) connected: AtomicBool,
    /// Cancelled by [`Outbox::close`]: ends the command connection at once (the publishing task sees the close
    /// through `notify`).
    pub(crate) closed: tokio_util::sync::CancellationToken,
    /// The command connection is subscribed (its SUBACK came): the publishing task announces `online` only then
    /// (or after a bound), so a client that sees `online` can send commands.
    pub(crate) commands_ready: AtomicBool,
    /// The publishing connection came up: the command connection retries at once instead of at its backoff.
    pub(crate) publisher_up: Notify,
}

/// Cheap, clonable handle to queue MQTT messages. Its methods never block on I/O or await.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub(crate) shared: Arc<Shared>,
}

impl Outbox {
    /// An outbox whose FIFO of non-retained messages holds at most `capacity` messages.
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::new(capacity)),
                notify: Notify::new(),
                connected: AtomicBool::new(false),
                closed: tokio_util::sync::CancellationToken::new(),
                commands_ready: AtomicBool::new(false),
                publisher_up: Notify::new(),
            }),
        }
    }

    /// Queue a message. Retained: only the latest value per topic is kept and it is republished on every
    /// (re)connect. Not retained: kept in a bounded FIFO (oldest dropped when full). After [`Outbox::close`]
    /// messages are discarded.
    pub fn publish(&self, topic: impl Into<String>, payload: impl Into<Vec<u8>>, retain: bool) {
        let topic = topic.into();
        if !self.queue().push(topic.clone(), payload.into(), retain) {
            log::debug!("MQTT outbox closed, not publishing to {topic}");
            return;
        }
        self.shared.notify.notify_one();
    }

    /// No more messages: the MQTT task sends what is queued (bounded in time), disconnects cleanly and ends.
    pub fn close(&self) {
        self.queue().close();
        self.shared.notify.notify_one();
        self.shared.closed.cancel();
    }

    /// Whether the client is connected to the broker right now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// The queue; a poisoned lock is still usable (the queue has no invariant a panic could break halfway).
    pub(crate) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut Queue) -> Vec<(String, String, bool)> {
        std::iter::from_fn(|| q.pop())
            .map(|o| {
                (
                    o.topic,
                    String::from_utf8(o.payload).unwrap_or_default(),
                    o.retain,
                )
            })
            .collect()
    }

    fn t(topic: &str, payload: &str, retain: bool) -> (String, String, bool) {
        (topic.to_string(), payload.to_string(), retain)
    }

    #[test]
    fn keeps_publish_order_and_latest_retained_value() {
        let mut q = Queue::new(10);
        q.push("p/light".into(), b"on".to_vec(), true);
        q.push("p/luminosity".into(), b"1".to_vec(), false);
        q.push("p/light".into(), b"off".to_vec(), true);
        q.push("p/luminosity".into(), b"2".to_vec(), false);
        q.push("p/status".into(), b"online".to_vec(), true);
        assert_eq!(
            drain(&mut q),
            vec![
                t("p/light", "off", true),
                t("p/luminosity", "1", false),
                t("p/luminosity", "2", false),
                t("p/status", "online", true),
            ]
        );
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn fifo_is_bounded_and_counts_drops() {
        let mut q = Queue::new(3);
        for i in 0..5 {
            q.push("p/luminosity".into(), i.to_string().into_bytes(), false);
        }
        assert_eq!(q.take_dropped(), 2);
        assert_eq!(q.take_dropped(), 0);
        assert_eq!(
            drain(&mut q),
            vec![
                t("p/luminosity", "2", false),
                t("p/luminosity", "3", false),
                t("p/luminosity", "4", false),
            ]
        );
    }

    #[test]
    fn retained_republished_first_in_update_order_after_reconnect() {
        let mut q = Queue::new(10);
        q.push("p/status".into(), b"online".to_vec(), true);
        q.push("p/light".into(), b"on".to_vec(), true);
        assert_eq!(drain(&mut q).len(), 2);
        // Offline: a reading, then a light change.
        q.push("p/luminosity".into(), b"7".to_vec(), false);
        q.push("p/light".into(), b"off".to_vec(), true);
        q.republish_retained();
        assert_eq!(
            drain(&mut q),
            vec![
                t("p/status", "online", true),
                t("p/light", "off", true),
                t("p/luminosity", "7", false),
            ]
        );
    }

    #[test]
    fn unpop_puts_message_back_in_front() {
        let mut q = Queue::new(10);
        q.push("a".into(), b"1".to_vec(), false);
        q.push("b".into(), b"2".to_vec(), false);
        q.push("r".into(), b"x".to_vec(), true);
        let first = q.pop().unwrap();
        q.unpop(first);
        let r = {
            let _ = q.pop();
            let _ = q.pop();
            q.pop().unwrap()
        };
        assert_eq!(r.topic, "r");
        q.unpop(r);
        assert_eq!(drain(&mut q), vec![t("r", "x", true)]);
    }

    #[test]
    fn closed_queue_discards_new_messages_but_keeps_queued_ones() {
        let mut q = Queue::new(10);
        assert!(q.push("p/light".into(), b"off".to_vec(), true));
        q.close();
        assert!(q.is_closed());
        assert!(!q.push("p/luminosity".into(), b"1".to_vec(), false));
        assert_eq!(drain(&mut q), vec![t("p/light", "off", true)]);
    }

    #[test]
    fn handle_publish_and_close_wake_the_task() {
        let outbox = Outbox::new(4);
        outbox.publish("p/x", "1", false);
        assert!(!outbox.is_connected());
        assert_eq!(outbox.queue().pop().map(|o| o.payload), Some(b"1".to_vec()));
        outbox.close();
        outbox.publish("p/x", "2", false);
        assert!(outbox.queue().is_empty());
        assert!(outbox.queue().is_closed());
    }
}
