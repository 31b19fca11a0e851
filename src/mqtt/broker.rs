//! The embedded broker (`mqtt.url = "embedded"`): rumqttd running in-process on its own threads.
//!
//! rumqttd binds its listener inside its server thread and only logs a bind failure there, so
//! [`start_embedded`] checks that the address is free first and reports a taken port as
//! [`BrokerError::PortInUse`]. rumqttd has no stop API: the broker lives as long as the process.

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
}
