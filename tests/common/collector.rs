//! An MQTT client that survives broker restarts: persistent session (clean_session = false), automatic
//! reconnect, re-subscribe on every connect, and a timestamped record of every message it receives.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use paho_mqtt as paho;

/// One received message.
#[derive(Debug, Clone)]
pub struct Rec {
    pub at: Instant,
    pub topic: String,
    pub payload: String,
    /// Delivered from the retained store (on (re)subscribe), not live.
    pub retained: bool,
}

/// See the module doc. Records are kept in arrival order.
pub struct Collector {
    client: paho::AsyncClient,
    records: Arc<Mutex<Vec<Rec>>>,
}

impl Collector {
    /// Connect to `127.0.0.1:port` and subscribe to `filter` at QoS 1 (bounded in time).
    pub async fn connect(port: u16, filter: &str) -> Collector {
        let id = format!("collector-{:08x}", rand::random::<u32>());
        let client = paho::CreateOptionsBuilder::new_v3()
            .server_uri(format!("tcp://127.0.0.1:{port}"))
            .client_id(id)
            .persistence(paho::PersistenceType::None)
            .create_client()
            .expect("create collector client");
        // Never destroyed: see greenhoused::mqtt::client::park.
        greenhoused::mqtt::client::park(&client);
        let filter_owned = filter.to_string();
        client.set_connected_callback(move |c| {
            // Resubscribe every time: a SIGKILLed broker may have lost the session.
            drop(c.subscribe(filter_owned.as_str(), 1));
        });
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        client.set_message_callback(move |_, msg| {
            if let Some(m) = msg {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Rec {
                        at: Instant::now(),
                        topic: m.topic().to_string(),
                        payload: m.payload_str().into_owned(),
                        retained: m.retained(),
                    });
            }
        });
        let opts = paho::ConnectOptionsBuilder::new_v3()
            .clean_session(false)
            .keep_alive_interval(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(5))
            .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200))
            .finalize();
        tokio::time::timeout(Duration::from_secs(10), client.connect(opts))
            .await
            .expect("collector connect timed out")
            .expect("collector connect");
        let c = Collector { client, records };
        // The subscription is made in the connected callback; wait until the broker confirms it by a round trip.
        let probe = match filter.trim_end_matches('#').trim_end_matches('/') {
            "" => "__probe".to_string(),
            base => format!("{base}/__probe"),
        };
        c.publish(&probe, "probe").await;
        assert!(
            c.wait(0, |r| r.topic == probe, Duration::from_secs(5))
                .await
                .is_some(),
            "collector did not receive its own probe on {probe}"
        );
        c
    }

    /// A copy of everything received so far.
    pub fn records(&self) -> Vec<Rec> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Number of records so far (an index to wait from).
    pub fn len(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Wait for a record at index ≥ `from` satisfying `pred` (bounded); returns its index and a copy.
    pub async fn wait(
        &self,
        from: usize,
        pred: impl Fn(&Rec) -> bool,
        limit: Duration,
    ) -> Option<(usize, Rec)> {
        let end = Instant::now() + limit;
        loop {
            {
                let recs = self.records.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((i, r)) = recs.iter().enumerate().skip(from).find(|(_, r)| pred(r)) {
                    return Some((i, r.clone()));
                }
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Wait for a live (not retained) message on `topic` with `payload` at index ≥ `from`.
    pub async fn wait_live(
        &self,
        from: usize,
        topic: &str,
        payload: &str,
        limit: Duration,
    ) -> Option<(usize, Rec)> {
        self.wait(
            from,
            |r| !r.retained && r.topic == topic && r.payload == payload,
            limit,
        )
        .await
    }

    /// Publish at QoS 1 and wait for the acknowledgement (retries while reconnecting, bounded).
    pub async fn publish(&self, topic: &str, payload: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let msg = paho::Message::new(topic, payload, 1);
            match tokio::time::timeout(Duration::from_secs(5), self.client.publish(msg)).await {
                Ok(Ok(())) => return,
                other if Instant::now() < end => {
                    let _ = other;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("collector publish to {topic} failed: {other:?}"),
            }
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        drop(self.client.disconnect(None));
    }
}
