//! The logging backend end to end: the real `init` in a child process (journal detection through
//! `JOURNAL_STREAM`), the native journal protocol to a fake journal socket, syslog to a fake `/dev/log`, and the
//! stderr fallbacks when a socket is missing.
//!
//! The journal socket's path is fixed (`/run/systemd/journal/socket`), so the child runs in its own mount
//! namespace (`unshare --mount`, needs root) with a fresh tmpfs on `/run`: empty (no journal), or with the
//! test's own datagram socket bound there.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenhoused::cli::LogTarget;
use greenhoused::logging::{self, Levels, Options};
use log::{Level, Log, Record};

const CHILD_ENV: &str = "GREENHOUSED_LOGGING_CHILD";

/// The tests in this file run one at a time: in parallel, a syslog test now and then missed its datagram
/// (about 1 run in 70 with 8 threads, never in 300 serial runs); the cause was not found.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Child side of [`run_child`]: installs the real logger and logs one record per severity. No-op otherwise.
#[test]
fn child_entry() {
    let _serial = serial();
    let Ok(target) = std::env::var(CHILD_ENV) else {
        return;
    };
    let target = match target.as_str() {
        "auto" => LogTarget::Auto,
        "journald" => LogTarget::Journald,
        "stderr" => LogTarget::Stderr,
        other => panic!("unknown target {other}"),
    };
    logging::init(target, 0, false).unwrap();
    // Records as the daemon's own modules log them (other crates' records are filtered to warnings).
    log::error!(target: "greenhoused::test", ALERT = "sensor_error"; "an error");
    log::warn!(target: "greenhoused::test", "a warning");
    greenhoused::notice!("a notice");
    log::info!(target: "greenhoused::test", "an info");
    log::debug!(target: "greenhoused::test", "a debug line");
    log::info!(target: "rumqttd::router", "broker chatter that must not show");
    log::info!(target: "some_dependency", "dependency info that must not show");
    logging::log_with_fields(
        Level::Info,
        false,
        "light on (reason below_threshold)",
        &[("REASON", "below_threshold")],
        file!(),
        line!(),
    );
}

/// Whether this process may make mount namespaces (root with `unshare`): the journal tests need one.
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--mount", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs [`child_entry`] with stderr going to a file; `journal_stream` maps that file's identity to the value of
/// `JOURNAL_STREAM` (None: unset). Returns what the child wrote on stderr. When mount namespaces are available the
/// child sees a `/run` without a journal socket (deterministic on a machine that runs systemd too).
fn run_child(target: &str, journal_stream: impl Fn(u64, u64) -> Option<String>) -> String {
    run_child_with_journal(target, journal_stream, None)
}

/// [`run_child`], with `journal_dir` (holding a socket named `socket`) mounted on `/run/systemd/journal`.
fn run_child_with_journal(
    target: &str,
    journal_stream: impl Fn(u64, u64) -> Option<String>,
    journal_dir: Option<&Path>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if can_unshare() {
        let mut c = Command::new("unshare");
        c.args([
            "--mount",
            "sh",
            "-c",
            "set -e; mount -t tmpfs tmpfs /run; mkdir -p /run/systemd/journal; \
             if [ -n \"$1\" ]; then mount --bind \"$1\" /run/systemd/journal; fi; shift; exec \"$@\"",
            "sh",
        ])
        .arg(journal_dir.map(|d| d.as_os_str()).unwrap_or_default())
        .arg(&exe);
        c
    } else {
        assert!(
            journal_dir.is_none(),
            "a fake journal needs a mount namespace"
        );
        Command::new(&exe)
    };
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, target)
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(file);
    if let Some(value) = journal_stream(meta.dev(), meta.ino()) {
        cmd.env("JOURNAL_STREAM", value);
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "child failed: {status}");
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn auto_under_journal_writes_priority_prefixes_without_timestamps() {
    let _serial = serial();
    if !can_unshare() {
        eprintln!("skipped: needs `unshare --mount` (root) to hide the machine's journal socket");
        return;
    }
    // No journal socket in the child's /run: one warning, then the sd-daemon prefixes.
    let out = run_child("auto", |dev, ino| Some(format!("{dev}:{ino}")));
    let (first, rest) = out.split_once('\n').unwrap_or_default();
    assert!(
        first.starts_with("<4>journal socket /run/systemd/journal/socket unavailable"),
        "{out}"
    );
    assert_eq!(
        rest,
        "<3>an error\n<4>a warning\n<5>a notice\n<6>an info\n<6>light on (reason below_threshold)\n"
    );
}

/// One journal datagram (native protocol) as field → values; length-encoded values (with newlines) included.
fn parse_journal(mut data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let nl = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            data = &data[(nl + 1).min(data.len())..];
        } else {
            // NAME\n, 64-bit little-endian length, value, \n
            let name = String::from_utf8_lossy(line).into_owned();
            let rest = &data[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.push((
                name,
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            ));
            data = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    fields
}

#[test]
fn journald_sends_native_records_with_priority_fields_and_code_location() {
    let _serial = serial();
    if !can_unshare() {
        eprintln!("skipped: needs `unshare --mount` (root) to put a fake journal socket in place");
        return;
    }
    let journal = tempfile::tempdir().unwrap();
    let sock = UnixDatagram::bind(journal.path().join("socket")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let stderr = run_child_with_journal("journald", |_, _| None, Some(journal.path()));
    assert_eq!(stderr, "", "nothing on stderr while the journal works");

    let mut records = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    sock.set_nonblocking(true).unwrap();
    while let Ok(n) = sock.recv(&mut buf) {
        if n > 0 {
            records.push(parse_journal(&buf[..n]));
        }
    }
    let get = |r: &Vec<(String, String)>, k: &str| {
        r.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone())
    };
    let messages: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                get(r, "PRIORITY").unwrap_or_default(),
                get(r, "MESSAGE").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        [
            ("3", "an error"),
            ("4", "a warning"),
            ("5", "a notice"),
            ("6", "an info"),
            ("6", "light on (reason below_threshold)"),
        ]
        .map(|(p, m)| (p.to_string(), m.to_string())),
        "{records:?}"
    );
    for r in &records {
        assert_eq!(
            get(r, "SYSLOG_IDENTIFIER").as_deref(),
            Some("greenhoused"),
            "{r:?}"
        );
        assert_eq!(
            get(r, "CODE_FILE").as_deref(),
            Some("tests/logging.rs"),
            "{r:?}"
        );
        assert!(
            get(r, "CODE_LINE").is_some_and(|l| l.parse::<u32>().is_ok()),
            "{r:?}"
        );
    }
    assert_eq!(get(&records[0], "ALERT").as_deref(), Some("sensor_error"));
    assert_eq!(
        get(&records[4], "REASON").as_deref(),
        Some("below_threshold")
    );
    assert_eq!(get(&records[1], "ALERT"), None);
}

#[test]
fn auto_with_foreign_journal_stream_writes_human_lines() {
    let _serial = serial();
    // JOURNAL_STREAM inherited from a parent whose stderr was the journal, but ours is a file: human format.
    let out = run_child("auto", |dev, ino| Some(format!("{dev}:{}", ino + 1)));
    assert_human(&out);
}

#[test]
fn auto_without_journal_writes_human_lines() {
    let _serial = serial();
    assert_human(&run_child("auto", |_, _| None));
}

#[test]
fn forced_targets_ignore_detection() {
    let _serial = serial();
    if can_unshare() {
        // No journal socket: the warning, then the five records with priority prefixes.
        let out = run_child("journald", |_, _| None);
        assert_eq!(out.lines().count(), 6, "{out}");
        assert!(out.lines().nth(1) == Some("<3>an error"), "{out}");
    }
    assert_human(&run_child("stderr", |dev, ino| {
        Some(format!("{dev}:{ino}"))
    }));
}

fn assert_human(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for (line, (label, msg)) in lines.iter().zip([
        ("ERROR", "an error"),
        ("WARN", "a warning"),
        ("NOTICE", "a notice"),
        ("INFO", "an info"),
        ("INFO", "light on (reason below_threshold)"),
    ]) {
        // "YYYY-MM-DD HH:MM:SS.mmm LABEL  message"
        let (date, rest) = line.split_at(23);
        assert!(
            chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M:%S%.3f").is_ok(),
            "{line}"
        );
        let rest: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(rest.first(), Some(&label), "{line}");
        assert_eq!(rest[1..].join(" "), msg, "{line}");
    }
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn syslog_options(socket: &Path, stderr_is_journal: bool) -> Options {
    Options {
        target: LogTarget::Syslog,
        levels: Levels::from_flags(0, false),
        stderr_is_journal,
        syslog_socket: socket.to_path_buf(),
        native_journal: false,
    }
}

fn emit(logger: &dyn Log, level: Level, target: &str, msg: &str) {
    logger.log(
        &Record::builder()
            .level(level)
            .target(target)
            .args(format_args!("{msg}"))
            .build(),
    );
}

fn fake_dev_log(path: &Path) -> UnixDatagram {
    let sock = UnixDatagram::bind(path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("syslog datagram within 5 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn syslog_sends_daemon_facility_with_ident_and_severity() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sock = fake_dev_log(&path);
    let stderr = Buf::default();
    let logger = logging::build(&syslog_options(&path, false), Box::new(stderr.clone()));

    emit(
        &logger,
        Level::Warn,
        "greenhoused::monitor",
        "alert raised: rule_mismatch",
    );
    emit(
        &logger,
        Level::Info,
        logging::NOTICE_TARGET,
        "alert cleared: rule_mismatch",
    );
    emit(
        &logger,
        Level::Debug,
        "greenhoused::monitor",
        "filtered out",
    );
    emit(&logger, Level::Error, "greenhoused", "last");

    let ident = format!("greenhoused[{}]: ", std::process::id());
    // daemon = 3 << 3; warning 4, notice 5, error 3.
    for (prio, msg) in [
        (28, "alert raised: rule_mismatch"),
        (29, "alert cleared: rule_mismatch"),
        (27, "last"),
    ] {
        let got = recv(&sock);
        assert!(got.starts_with(&format!("<{prio}>")), "{got}");
        assert!(got.ends_with(&format!("{ident}{msg}")), "{got}");
    }
    assert_eq!(stderr.text(), "", "nothing on stderr while syslog works");
}

#[test]
fn syslog_missing_socket_falls_back_to_stderr_with_one_warning() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("no-such-log");
    let stderr = Buf::default();
    let logger = logging::build(&syslog_options(&path, true), Box::new(stderr.clone()));
    emit(&logger, Level::Warn, "greenhoused", "first");
    emit(&logger, Level::Info, "greenhoused", "second");

    let text = stderr.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("<4>syslog socket "), "{text}");
    assert!(lines[0].contains(&path.display().to_string()), "{text}");
    assert_eq!(lines[0].matches("unavailable").count(), 1);
    assert_eq!(&lines[1..], ["<4>first", "<6>second"]);
}

#[test]
fn syslog_reconnects_after_the_daemon_recreates_its_socket() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let first = fake_dev_log(&path);
    let stderr = Buf::default();
    let logger = logging::build(&syslog_options(&path, false), Box::new(stderr.clone()));
    emit(&logger, Level::Warn, "greenhoused", "before");
    assert!(recv(&first).ends_with("before"));

    drop(first);
    std::fs::remove_file(&path).unwrap();
    let second = fake_dev_log(&path);
    emit(&logger, Level::Warn, "greenhoused", "after");
    assert!(recv(&second).ends_with("after"));
    assert_eq!(stderr.text(), "");
}

#[test]
fn syslog_gone_for_good_writes_to_stderr() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sock = fake_dev_log(&path);
    let stderr = Buf::default();
    let logger = logging::build(&syslog_options(&path, true), Box::new(stderr.clone()));
    drop(sock);
    std::fs::remove_file(&path).unwrap();
    emit(&logger, Level::Error, "greenhoused", "still reported");
    assert_eq!(stderr.text(), "<3>still reported\n");
}
