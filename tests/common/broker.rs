//! A mosquitto with a caller-supplied configuration (persistence, TLS, passwords) that can be stopped with SIGKILL
//! or SIGTERM and started again on the same port; and a "broker" that accepts TCP and never answers.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// Accepts TCP connections, reads whatever arrives and never answers (a broker that hangs before CONNACK).
pub struct SilentListener {
    port: u16,
    accepts: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl SilentListener {
    pub fn start() -> SilentListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let accepts = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b, s) = (accepts.clone(), bytes.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        let (b, s) = (b.clone(), s.clone());
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 4096];
                            while !s.load(Ordering::SeqCst) {
                                match conn.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => {
                                        b.fetch_add(n, Ordering::SeqCst);
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SilentListener {
            port,
            accepts,
            bytes,
            stop,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Bytes received so far (the CONNECT packets).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
