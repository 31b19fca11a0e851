//! A mosquitto with a caller-supplied configuration (persistence, TLS, passwords) that can be stopped with SIGKILL
//! or SIGTERM and started again on the same port; and fake brokers that accept TCP and then misbehave.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{free_port, wait_port_open};

/// How to stop the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: no goodbye, the persistent store keeps only what was autosaved.
    Kill,
    /// SIGTERM: mosquitto closes the connections and saves its store.
    Term,
}

/// mosquitto on a free loopback port with extra configuration lines; killed on drop.
pub struct Broker {
    port: u16,
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Start mosquitto with `listener PORT 127.0.0.1`, a log file, then `extra(dir)` (lines that may refer to
    /// files in the broker's temp dir). `None` (test skipped) when mosquitto is not installed.
    pub fn start(extra: impl FnOnce(&Path) -> String) -> Option<Broker> {
        Self::start_on_with(free_port(), extra)
    }

    /// As [`Broker::start`] on a given port.
    pub fn start_on_with(port: u16, extra: impl FnOnce(&Path) -> String) -> Option<Broker> {
        if !super::mosquitto_available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // mosquitto started as root drops to the `mosquitto` user: it must be able to write its log and store.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod broker dir");
        let conf = format!(
            "listener {port} 127.0.0.1\nlog_dest file {}\nlog_type all\n{}\n",
            dir.path().join("mosquitto.log").display(),
            extra(dir.path())
        );
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(&config, conf).expect("write mosquitto.conf");
        let mut b = Broker {
            port,
            dir,
            config,
            child: None,
        };
        b.start_again();
        Some(b)
    }

    /// Anonymous broker without persistence on a free port.
    pub fn anonymous() -> Option<Broker> {
        Self::anonymous_on(free_port())
    }

    /// Anonymous broker without persistence on `port`.
    pub fn anonymous_on(port: u16) -> Option<Broker> {
        Self::start_on_with(port, |_| {
            "allow_anonymous true\npersistence false\n".to_string()
        })
    }

    /// Anonymous broker with a persistent store saved on every change, so sessions (subscriptions and queued
    /// QoS 1 messages) survive a SIGKILL.
    pub fn persistent() -> Option<Broker> {
        Self::start(|dir| {
            format!(
                "allow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n\
                 autosave_on_changes true\n",
                dir.display()
            )
        })
    }

    /// Broker that requires `user`/`password` (made with `mosquitto_passwd`).
    pub fn with_password(user: &str, password: &str) -> Option<Broker> {
        Self::start(|dir| password_lines(dir, user, password))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Stop the broker with `how` and wait for it to exit.
    pub fn stop(&mut self, how: Stop) {
        if let Some(mut c) = self.child.take() {
            match how {
                Stop::Kill => {
                    let _ = c.kill();
                }
                Stop::Term => {
                    let _ = Command::new("kill")
                        .arg("-TERM")
                        .arg(c.id().to_string())
                        .status();
                }
            }
            let _ = c.wait();
        }
    }

    /// Kill the broker (SIGKILL) and wait for it to exit.
    pub fn kill(&mut self) {
        self.stop(Stop::Kill);
    }

    /// Start the broker (again) on the same port and wait until it accepts connections.
    pub fn start_again(&mut self) {
        self.stop(Stop::Kill);
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        assert!(
            wait_port_open(self.port, Duration::from_secs(5)),
            "mosquitto did not listen on port {}:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop(Stop::Kill);
    }
}

/// `allow_anonymous false` + a `password_file` in `dir` holding `user`/`password`.
pub fn password_lines(dir: &Path, user: &str, password: &str) -> String {
    let pw = dir.join("passwd");
    let st = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&pw)
        .arg(user)
        .arg(password)
        .status()
        .expect("run mosquitto_passwd");
    assert!(st.success(), "mosquitto_passwd failed");
    format!("allow_anonymous false\npassword_file {}\n", pw.display())
}

/// What a [`FakeBroker`] does with a connection.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Connections whose CONNECT carries `id`: the first `n` are dropped after CONNACK (counted in `dropped`),
    /// later ones forwarded to `upstream`; other clients' connections are forwarded at once.
    DropFirstOf {
        n: usize,
        id: Vec<u8>,
        dropped: Arc<AtomicUsize>,
        upstream: u16,
        /// When each of that client's connections came.
        times: Arc<Mutex<Vec<Instant>>>,
    },
    /// Read whatever arrives, never answer (a broker that hangs before CONNACK).
    Silent,
    /// Read the CONNECT, accept it (CONNACK 0), then hang up (a broker that drops the client at once, as one
    /// does when another client connects with the same client id).
    DropAfterConnack,
    /// Pass the connection through to the broker on this port.
    Forward(u16),
}

/// A TCP listener on a free loopback port that plays a broken broker; see the constructors.
pub struct FakeBroker {
    port: u16,
    accepts: Arc<(Mutex<Vec<Instant>>, Condvar)>,
    bytes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// [`FakeBroker::dropping_first_of`]: when each connection of that client came.
    client_times: Arc<Mutex<Vec<Instant>>>,
}

impl FakeBroker {
    /// Accepts TCP connections, reads whatever arrives and never answers.
    pub fn silent() -> FakeBroker {
        Self::start(|_| Behaviour::Silent)
    }

    /// Accepts every connection (CONNACK "accepted") and closes it right after.
    pub fn dropping_after_connack() -> FakeBroker {
        Self::start(|_| Behaviour::DropAfterConnack)
    }

    /// Drops the first `n` connections right after CONNACK, then forwards every connection to the broker on
    /// `upstream` (a broker that got well again).
    pub fn dropping_first(n: usize, upstream: u16) -> FakeBroker {
        Self::start(move |index| {
            if index < n {
                Behaviour::DropAfterConnack
            } else {
                Behaviour::Forward(upstream)
            }
        })
    }

    /// Drops the first `n` connections of the client `client_id` right after CONNACK and forwards everything else
    /// to the broker on `upstream` (the daemon's other connection is not disturbed).
    pub fn dropping_first_of(n: usize, client_id: &str, upstream: u16) -> FakeBroker {
        let dropped = Arc::new(AtomicUsize::new(0));
        let id = client_id.as_bytes().to_vec();
        let times = Arc::new(Mutex::new(Vec::new()));
        let t = times.clone();
        let mut fake = Self::start(move |_| Behaviour::DropFirstOf {
            n,
            id: id.clone(),
            dropped: dropped.clone(),
            upstream,
            times: t.clone(),
        });
        fake.client_times = times;
        fake
    }

    /// [`FakeBroker::dropping_first_of`]: when each connection of its client came.
    pub fn client_accept_times(&self) -> Vec<Instant> {
        self.client_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `behaviour(i)`: what to do with the `i`-th connection (from 0).
    fn start(behaviour: impl Fn(usize) -> Behaviour + Send + 'static) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let accepts = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let bytes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b, s) = (accepts.clone(), bytes.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let index = {
                            let mut times = a.0.lock().unwrap_or_else(PoisonError::into_inner);
                            times.push(Instant::now());
                            times.len() - 1
                        };
                        a.1.notify_all();
                        let (b, s) = (b.clone(), s.clone());
                        let behaviour = behaviour(index);
                        std::thread::spawn(move || match resolve(&conn, behaviour) {
                            Behaviour::Forward(upstream) => forward(conn, upstream),
                            behaviour => serve(conn, behaviour, &b, &s),
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FakeBroker {
            port,
            accepts,
            bytes,
            stop,
            client_times: Arc::default(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accept_times().len()
    }

    /// When each connection was accepted.
    pub fn accept_times(&self) -> Vec<Instant> {
        self.accepts
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Block until `n` connections were accepted (`false` after `limit`). Call from a blocking context.
    pub fn wait_accepts(&self, n: usize, limit: Duration) -> bool {
        let (times, accepted) = &*self.accepts;
        let times = times.lock().unwrap_or_else(PoisonError::into_inner);
        let (times, _) = accepted
            .wait_timeout_while(times, limit, |t| t.len() < n)
            .unwrap_or_else(PoisonError::into_inner);
        times.len() >= n
    }

    /// Bytes received so far (the CONNECT packets).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
}

/// Turn [`Behaviour::DropFirstOf`] into what to do with this connection, from its CONNECT (peeked, not read).
fn resolve(conn: &TcpStream, behaviour: Behaviour) -> Behaviour {
    let Behaviour::DropFirstOf {
        n,
        id,
        dropped,
        upstream,
        times,
    } = behaviour
    else {
        return behaviour;
    };
    let accepted = Instant::now();
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 1024];
    let end = Instant::now() + Duration::from_secs(2);
    let mut client_id = None;
    while Instant::now() < end && client_id.is_none() {
        let seen = conn.peek(&mut buf).unwrap_or(0);
        client_id = connect_client_id(&buf[..seen]);
    }
    let _ = conn.set_read_timeout(None);
    let ours = client_id.as_deref() == Some(id.as_slice());
    if ours {
        times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(accepted);
    }
    if ours && dropped.fetch_add(1, Ordering::SeqCst) < n {
        Behaviour::DropAfterConnack
    } else {
        Behaviour::Forward(upstream)
    }
}

/// The client id of an MQTT 3.1.1 CONNECT at the start of `data`, once enough of it has arrived.
fn connect_client_id(data: &[u8]) -> Option<Vec<u8>> {
    if data.first() != Some(&0x10) {
        return None;
    }
    // Remaining length: 1–4 bytes, 7 bits each.
    let mut i = 1;
    while *data.get(i)? & 0x80 != 0 {
        i += 1;
    }
    i += 1;
    // Protocol name (length-prefixed), level, flags, keep-alive.
    let name_len = u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]) as usize;
    i += 2 + name_len + 1 + 1 + 2;
    let id_len = u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]) as usize;
    data.get(i + 2..i + 2 + id_len).map(<[u8]>::to_vec)
}

/// One connection of a [`FakeBroker`]: read (counting bytes) until the peer or the fake goes away; with
/// `DropAfterConnack`, answer the first packet with CONNACK "accepted" and close.
fn serve(mut conn: TcpStream, behaviour: Behaviour, bytes: &AtomicUsize, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes.fetch_add(n, Ordering::SeqCst);
                if matches!(behaviour, Behaviour::DropAfterConnack) && buf[0] == 0x10 {
                    let _ = conn.write_all(&[0x20, 0x02, 0x00, 0x00]);
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

/// Copy bytes both ways between `client` and the broker on `upstream` until either side closes.
fn forward(client: TcpStream, upstream: u16) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    };
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || pipe(client2, server2));
    pipe(server, client);
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
