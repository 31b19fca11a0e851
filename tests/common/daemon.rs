//! The daemon as a separate process: a config file in a temp dir, stderr captured to a file, signals by name.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `greenhoused --mock-hardware`, killed on drop.
pub struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    pub config: PathBuf,
    log: PathBuf,
}

/// A test configuration: TOML built from `section.key = value` pairs. [`Cfg::broker`] starts from the test
/// defaults: window always open, no dwell, 1 s settle, fast sensor, bright steady simulated light (light off).
#[derive(Debug, Clone, Default)]
pub struct Cfg {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Cfg {
    /// Defaults for a daemon on the mosquitto at `127.0.0.1:port` with topic prefix `prefix`.
    pub fn broker(port: u16, prefix: &str) -> Cfg {
        Cfg::default()
            .set("device.id", "\"test\"")
            .set("mqtt.url", &format!("\"mqtt://127.0.0.1:{port}\""))
            .set("mqtt.topic_prefix", &format!("\"{prefix}\""))
            .set("mqtt.keepalive_s", "5")
            .set(
                "mqtt.client_id",
                &format!("\"gh-{}\"", prefix.replace('/', "-")),
            )
            .set("sensor.interval_s", "0.75")
            .set("sensor.stale_after_s", "3")
            .set("control.window", "\"\"")
            .set("control.min_on_s", "0")
            .set("control.min_off_s", "0")
            .set("control.lamp_lux", "400")
            .set("monitor.settle_s", "1")
            .set("mock.ambient", "\"1000\"")
            .set("mock.lamp_lux", "400")
            // Parallel test daemons would all reach for the default 127.0.0.1:8080; HTTP tests set their own.
            .set("http.listen", "\"\"")
    }

    /// Set `section.key` to a TOML value (strings quoted by the caller).
    pub fn set(mut self, key: &str, value: &str) -> Cfg {
        let (section, name) = key.split_once('.').expect("key is section.name");
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(name.to_string(), value.to_string());
        self
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (section, keys) in &self.sections {
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in keys {
                out.push_str(&format!("{k} = {v}\n"));
            }
            out.push('\n');
        }
        out
    }
}

/// A config from raw sections: `[device] id = "test"`, `[mqtt]` with the body `mqtt`, HTTP off (unless `extra`
/// has an `[http]` section), then `extra` (more
/// sections, TOML text). For tests that spell their sections out; [`Cfg`] builds the usual ones key by key.
pub fn test_config(mqtt: &str, extra: &str) -> String {
    let http = if extra.contains("[http]") {
        ""
    } else {
        "[http]\nlisten = \"\"\n\n"
    };
    format!("[device]\nid = \"test\"\n\n[mqtt]\n{mqtt}\n\n{http}{extra}\n")
}

/// `[mqtt]` body for a mosquitto on `port` with topic prefix `prefix`.
pub fn mqtt_section(port: u16, prefix: &str) -> String {
    format!(
        "url = \"mqtt://127.0.0.1:{port}\"\ntopic_prefix = \"{prefix}\"\nkeepalive_s = 5\nclient_id = \"gh-{}\"",
        prefix.replace('/', "-")
    )
}

impl Daemon {
    /// Start the daemon with `config` (TOML text) on mock hardware.
    pub fn start(config: &str) -> Daemon {
        Self::start_with_env::<&str>(config, &[])
    }

    /// Start with extra environment variables (e.g. `STATE_DIRECTORY`).
    pub fn start_with_env<V: AsRef<OsStr>>(config: &str, env: &[(&str, V)]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("greenhoused.toml");
        std::fs::write(&config_path, config).expect("write config");
        Self::spawn(dir, config_path, env)
    }

    fn spawn<V: AsRef<OsStr>>(
        dir: tempfile::TempDir,
        config: PathBuf,
        env: &[(&str, V)],
    ) -> Daemon {
        let log = dir.path().join("stderr.log");
        let log_file = std::fs::File::create(&log).expect("create log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_greenhoused"));
        cmd.arg("--mock-hardware")
            .arg("-c")
            .arg(&config)
            .arg("--log-target")
            .arg("stderr")
            .arg("-v")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env("STATE_DIRECTORY", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn greenhoused");
        Daemon {
            child,
            dir,
            config,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Send a signal by name (`TERM`, `HUP`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let st = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{name} failed");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process to exit (bounded); `None` if it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then assert that the process exits with status 0 within `limit`; returns how long it took.
    pub fn terminate(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        self.signal("TERM");
        let status = self
            .wait_exit(limit)
            .unwrap_or_else(|| panic!("still running {limit:?} after SIGTERM:\n{}", self.log()));
        assert!(
            status.success(),
            "exit status {status:?} after SIGTERM:\n{}",
            self.log()
        );
        start.elapsed()
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (bounded); returns whether it appeared.
    pub async fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Replace the configuration file (for SIGHUP tests).
    pub fn rewrite_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("rewrite config");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- greenhoused log ----\n{}", self.log());
        }
    }
}
