//! The local broker (`mqtt.url = "embedded"`): rumqttd running in-process on its own threads, or the MQTT broker
//! that already answers on `mqtt.embedded_listen` (a Mosquitto system service, Home Assistant's broker).
//!
//! [`local_broker`] decides: a free port → host rumqttd there; a taken port whose owner answers an MQTT CONNECT
//! (any CONNACK, even a refusal) → use that broker as a client; a taken port that does not speak MQTT →
//! [`BrokerError::NotMqtt`] (exit 69). rumqttd binds its listener inside its server thread and only logs a bind
//! failure there, so the address is checked first. rumqttd has no stop API: the broker lives as long as the
//! process.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Starting the embedded broker failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "cannot host the embedded MQTT broker on {addr}: the port is already in use (another broker?). \
         Point mqtt.url at the existing broker (e.g. url = \"mqtt://127.0.0.1:{port}\") \
         or choose a free mqtt.embedded_listen",
        port = .addr.port()
    )]
    PortInUse { addr: SocketAddr },
    #[error(
        "cannot host the embedded MQTT broker on {addr}: the port is held by a program that does not answer \
         MQTT ({detail}). Find it with `ss -ltnp 'sport = :{port}'` and stop it, choose a free \
         mqtt.embedded_listen, or point mqtt.url at your broker",
        port = .addr.port()
    )]
    NotMqtt { addr: SocketAddr, detail: String },
    #[error(
        "cannot host the embedded MQTT broker on {addr}: {source}; check mqtt.embedded_listen"
    )]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the embedded MQTT broker thread")]
    Thread(#[source] io::Error),
    #[error(
        "the embedded MQTT broker did not accept connections on {addr} within {waited:?}; \
         see the log for rumqttd errors"
    )]
    NotReady { addr: SocketAddr, waited: Duration },
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    listen: SocketAddr,
    thread: thread::JoinHandle<()>,
}

/// Largest message the embedded broker accepts (bytes).
const MAX_PAYLOAD: usize = 256 * 1024;

impl EmbeddedBroker {
    /// The address the broker listens on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The address a local client connects to (a wildcard listen address becomes loopback).
    pub fn connect_addr(&self) -> SocketAddr {
        connect_addr(self.listen)
    }

    /// Wait until the broker accepts TCP connections, polling for at most `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), BrokerError> {
        let start = Instant::now();
        let addr = self.connect_addr();
        loop {
            if self.thread.is_finished() {
                return Err(BrokerError::NotReady {
                    addr: self.listen,
                    waited: start.elapsed(),
                });
            }
            let left = timeout.saturating_sub(start.elapsed());
            if TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(10))).is_ok() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(BrokerError::NotReady {
                    addr: self.listen,
                    waited: timeout,
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The loopback address matching a wildcard listen address; other addresses unchanged.
pub fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn config(listen: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "greenhoused-embedded".to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 256,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    }
}

/// The broker `mqtt.url = "embedded"` ended up with.
#[derive(Debug)]
pub enum LocalBroker {
    /// Ours, in-process.
    Hosted(EmbeddedBroker),
    /// An MQTT broker that already listened on `embedded_listen`; the daemon is its client.
    Existing(SocketAddr),
}

/// How long [`local_broker`] waits for a CONNACK from whatever holds the port.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// `url = "embedded"`: host rumqttd on `listen` if the port is free, else use the MQTT broker that answers there
/// (logged at notice level); [`BrokerError::NotMqtt`] if the port's owner does not speak MQTT.
pub fn local_broker(listen: SocketAddr, client_id: &str) -> Result<LocalBroker, BrokerError> {
    match start_embedded(listen) {
        Err(BrokerError::PortInUse { addr }) => match probe_mqtt(connect_addr(addr), client_id) {
            Ok(()) => {
                crate::notice!(
                    "an MQTT broker already answers on {addr} (a system Mosquitto, Home Assistant's broker?): \
                     using it instead of hosting the embedded one"
                );
                Ok(LocalBroker::Existing(addr))
            }
            Err(detail) => Err(BrokerError::NotMqtt { addr, detail }),
        },
        other => other.map(LocalBroker::Hosted),
    }
}

/// Whether an MQTT broker answers on `addr`: a real CONNECT through paho (clean session, no will), bounded by
/// [`PROBE_TIMEOUT`]. Any CONNACK counts, a refusal too (a broker that wants a password is still a broker; the
/// daemon's own connection brings the credentials and reports a refusal clearly). `Err` says what happened instead.
pub fn probe_mqtt(addr: SocketAddr, client_id: &str) -> Result<(), String> {
    use paho_mqtt as paho;
    let create = paho::CreateOptionsBuilder::new_v3()
        .server_uri(format!("tcp://{addr}"))
        .client_id(format!("{client_id}-probe"))
        .persistence(paho::PersistenceType::None)
        .finalize();
    let client = paho::AsyncClient::new(create).map_err(|e| e.to_string())?;
    // Never destroy a paho client (see `client::PARKED`).
    crate::mqtt::client::park(&client);
    let opts = paho::ConnectOptionsBuilder::new_v3()
        .clean_session(true)
        .connect_timeout(PROBE_TIMEOUT)
        .finalize();
    match client
        .connect(opts)
        .wait_for(PROBE_TIMEOUT + Duration::from_millis(500))
    {
        Ok(_) => {
            let _ = client.disconnect(None).wait_for(Duration::from_millis(200));
            Ok(())
        }
        Err(paho::Error::ConnectReturn(_)) => Ok(()),
        Err(paho::Error::TcpConnectTimeout | paho::Error::Timeout) => Err(format!(
            "it accepted a TCP connection but sent no CONNACK within {PROBE_TIMEOUT:?}"
        )),
        Err(e) => Err(format!("an MQTT CONNECT failed: {e}")),
    }
}

/// Start rumqttd on `listen` (MQTT 3.1.1, plain TCP, anonymous). Returns once the listening thread is
/// started; use [`EmbeddedBroker::wait_ready`] to wait until it accepts connections.
pub fn start_embedded(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
    // rumqttd would only log a bind failure inside its thread: probe the address here.
    match TcpListener::bind(listen) {
        Ok(probe) => drop(probe),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(BrokerError::PortInUse { addr: listen })
        }
        Err(source) => {
            return Err(BrokerError::Bind {
                addr: listen,
                source,
            })
        }
    }
    let mut broker = Broker::new(config(listen));
    let thread = thread::Builder::new()
        .name("mqtt-broker".to_string())
        .spawn(move || {
            if let Err(e) = broker.start() {
                log::error!("embedded MQTT broker stopped: {e}");
            }
        })
        .map_err(BrokerError::Thread)?;
    log::info!("embedded MQTT broker listening on {listen}");
    Ok(EmbeddedBroker { listen, thread })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_connects_over_loopback() {
        let a: SocketAddr = "0.0.0.0:1883".parse().unwrap();
        assert_eq!(connect_addr(a), "127.0.0.1:1883".parse().unwrap());
        let a: SocketAddr = "[::]:1884".parse().unwrap();
        assert_eq!(connect_addr(a), "[::1]:1884".parse().unwrap());
        let a: SocketAddr = "192.168.1.5:1883".parse().unwrap();
        assert_eq!(connect_addr(a), a);
    }

    #[test]
    fn port_in_use_is_reported_with_the_fix() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = start_embedded(addr).unwrap_err();
        assert!(matches!(err, BrokerError::PortInUse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("already in use"), "{msg}");
        assert!(
            msg.contains(&format!("url = \"mqtt://127.0.0.1:{}\"", addr.port())),
            "{msg}"
        );
        assert!(msg.contains("mqtt.embedded_listen"), "{msg}");
    }

    fn free_addr() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    #[test]
    fn a_free_port_gets_the_embedded_broker_and_a_second_start_uses_it() {
        let addr = free_addr();
        let first = local_broker(addr, "probe-test").unwrap();
        let LocalBroker::Hosted(hosted) = first else {
            panic!("expected a hosted broker, got {first:?}")
        };
        hosted.wait_ready(Duration::from_secs(5)).unwrap();
        match local_broker(addr, "probe-test-2").unwrap() {
            LocalBroker::Existing(a) => assert_eq!(a, addr),
            other => panic!("expected the existing broker to be used, got {other:?}"),
        }
    }

    #[test]
    fn a_port_held_by_something_else_is_not_mqtt() {
        // Answers every connection like a web server would, then hangs up.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                use std::io::Write;
                let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let start = Instant::now();
        let err = local_broker(addr, "probe-test").unwrap_err();
        assert!(matches!(err, BrokerError::NotMqtt { .. }), "{err:?}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        let msg = err.to_string();
        assert!(msg.contains("does not answer MQTT"), "{msg}");
        assert!(msg.contains(&format!("sport = :{}", addr.port())), "{msg}");
    }

    #[test]
    fn a_silent_listener_is_not_mqtt_within_the_probe_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let start = Instant::now();
        let err = probe_mqtt(addr, "probe-test").unwrap_err();
        assert!(err.contains("no CONNACK"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        drop(listener);
    }
}
