//! A bare HTTP/1.1 GET for the dashboard tests, and a bounded wait for a JSON answer that satisfies a check.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::daemon::Daemon;

/// GET `path`: the status code and the body, or `None` when the server did not answer.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n")?.1.to_string()))
}

/// Poll `path` every 200 ms until a 200 answer's JSON passes `ready`; panics (with the daemon's log) when the
/// daemon exits or `limit` passes, naming `what` was awaited.
pub fn wait_json(
    daemon: &mut Daemon,
    addr: SocketAddr,
    path: &str,
    limit: Duration,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((200, body)) = get(addr, path) {
            let v: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e})"));
            if ready(&v) {
                return v;
            }
        }
        assert!(daemon.running(), "the daemon exited:\n{}", daemon.log());
        assert!(Instant::now() < deadline, "{what}:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}
