//! The sd_notify protocol against a fake `NOTIFY_SOCKET`: a child process (this test binary re-run with
//! `NOTIFY_SOCKET`/`WATCHDOG_USEC` set, since the environment is process-global) drives the helpers the way the
//! daemon does; the parent receives the datagrams and checks them.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use greenhoused::systemd::{self, Watchdog};

const SCENARIO_ENV: &str = "GREENHOUSED_NOTIFY_SCENARIO";
/// Watchdog timeout given to the child: pings every 100 ms of (simulated) loop time.
const WATCHDOG_USEC: &str = "200000";

/// Child side: runs the scenario named in the environment. No-op in a normal test run.
#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    match scenario.as_str() {
        "lifecycle" => lifecycle(),
        "foreign_pid" => foreign_pid(),
        "unsupervised" => unsupervised(),
        other => panic!("unknown scenario {other}"),
    }
}

/// Startup, a control loop ticking every 10 ms for 1 s of loop time, a real stall of twice the watchdog
/// timeout, recovery, reload and stop.
fn lifecycle() {
    systemd::ready("lux 412.5 | light off | mode auto | broker connecting").unwrap();
    let mut wd = Watchdog::from_env();
    let period = wd.period().expect("watchdog enabled by WATCHDOG_USEC");
    systemd::status(&format!("period {} ms", period.as_millis())).unwrap();

    let base = Instant::now();
    for ms in (0..1000).step_by(10) {
        wd.tick(base + Duration::from_millis(ms)).unwrap();
    }

    // The loop hangs: no tick, so no ping, however long it lasts.
    systemd::status("stall-begin").unwrap();
    std::thread::sleep(2 * watchdog_timeout());
    systemd::status("stall-end").unwrap();

    // The loop comes back: the overdue ping goes out at once, then the rate holds again.
    assert!(wd.tick(base + Duration::from_millis(1600)).unwrap());
    assert!(!wd.tick(base + Duration::from_millis(1650)).unwrap());

    systemd::reloading().unwrap();
    systemd::ready("reloaded\nsecond line").unwrap();
    systemd::stopping().unwrap();
}

/// `WATCHDOG_PID` names another process: the watchdog is not ours, so no pings.
fn foreign_pid() {
    assert_eq!(systemd::watchdog_interval(), None);
    let mut wd = Watchdog::from_env();
    let base = Instant::now();
    for ms in (0..1000).step_by(10) {
        assert!(!wd.tick(base + Duration::from_millis(ms)).unwrap());
    }
    systemd::stopping().unwrap();
}

/// No `NOTIFY_SOCKET`: every helper succeeds without doing anything.
fn unsupervised() {
    assert!(!systemd::is_supervised());
    systemd::ready("x").unwrap();
    systemd::status("x").unwrap();
    systemd::reloading().unwrap();
    systemd::stopping().unwrap();
    let mut wd = Watchdog::from_env();
    assert!(
        wd.tick(Instant::now()).unwrap(),
        "due, and sending is a no-op"
    );
}

fn watchdog_timeout() -> Duration {
    Duration::from_micros(WATCHDOG_USEC.parse().unwrap())
}

struct Manager {
    _dir: tempfile::TempDir,
    sock: UnixDatagram,
    child: Child,
}

/// Binds a fake NOTIFY_SOCKET and starts the child scenario with `env` added.
fn spawn(scenario: &str, env: &[(&str, &str)]) -> Manager {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO_ENV, scenario)
        .env("NOTIFY_SOCKET", &path)
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null());
    cmd.envs(env.iter().copied());
    let child = cmd.spawn().unwrap();
    Manager {
        _dir: dir,
        sock,
        child,
    }
}

impl Manager {
    /// Every datagram up to and including the one with `STOPPING=1`, with its arrival time; then the child's
    /// exit must be a success.
    fn collect(mut self) -> Vec<(Instant, String)> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.sock.recv(&mut buf).expect("datagram within 10 s");
            let text = String::from_utf8(buf[..n].to_vec()).unwrap();
            let done = text.contains("STOPPING=1");
            got.push((Instant::now(), text));
            if done {
                break;
            }
        }
        assert!(
            self.child.wait().unwrap().success(),
            "child scenario failed"
        );
        got
    }
}

#[test]
fn lifecycle_sends_ready_status_watchdog_at_rate_and_stopping() {
    let got = spawn("lifecycle", &[("WATCHDOG_USEC", WATCHDOG_USEC)]).collect();
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();

    let mut want = vec![
        "READY=1\nSTATUS=lux 412.5 | light off | mode auto | broker connecting\n".to_owned(),
        "STATUS=period 100 ms\n".to_owned(),
    ];
    // 1 s of loop time at one ping per 100 ms: exactly 10 pings, each its own datagram.
    want.extend(std::iter::repeat("WATCHDOG=1\n".to_owned()).take(10));
    want.push("STATUS=stall-begin\n".to_owned());
    want.push("STATUS=stall-end\n".to_owned());
    want.push("WATCHDOG=1\n".to_owned());
    assert_eq!(&texts[..want.len()], want, "{texts:#?}");

    let rest = &texts[want.len()..];
    assert_eq!(rest.len(), 3, "{rest:#?}");
    let (reloading, monotonic) = rest[0].split_once('\n').unwrap();
    assert_eq!(reloading, "RELOADING=1");
    let usec: u64 = monotonic
        .trim_end()
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert_eq!(rest[1], "READY=1\nSTATUS=reloaded second line\n");
    assert_eq!(rest[2], "STOPPING=1\n");

    // The stall really lasted longer than the watchdog timeout and nothing pinged through it.
    let at = |s: &str| got.iter().find(|(_, t)| t == s).map(|(i, _)| *i).unwrap();
    let stall = at("STATUS=stall-end\n") - at("STATUS=stall-begin\n");
    assert!(stall >= watchdog_timeout(), "stall of {stall:?}");
}

#[test]
fn watchdog_of_another_pid_is_not_pinged() {
    let got = spawn(
        "foreign_pid",
        &[("WATCHDOG_USEC", WATCHDOG_USEC), ("WATCHDOG_PID", "1")],
    )
    .collect();
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["STOPPING=1\n"]);
}

#[test]
fn helpers_are_no_ops_without_notify_socket() {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO_ENV, "unsupervised")
        .env_remove("NOTIFY_SOCKET")
        .env("WATCHDOG_USEC", WATCHDOG_USEC)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}
