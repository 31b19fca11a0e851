//! Security: TLS with a CA made by the test, broker passwords, secrets kept out of logs, and the embedded broker
//! bound to loopback by default.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::{password_lines, Broker};
use common::daemon::{test_config, Daemon};
use common::procfs::listening_sockets;

const USER: &str = "greenhouse";
const PASSWORD: &str = "s3cret-Pa55word-xyzzy";
const LIMIT: Duration = Duration::from_secs(15);

/// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Option<Pki> {
        if Command::new("openssl").arg("version").output().is_err() {
            if std::env::var_os("CI").is_some() {
                panic!("openssl is required for the TLS tests under CI");
            }
            eprintln!("SKIPPED: openssl not available");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            let subj = format!("/CN=greenhoused test {ca}");
            let (key, crt) = (format!("{ca}.key"), format!("{ca}.crt"));
            args.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
            run(&args);
        }
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&args);
        std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write san.ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        // mosquitto started as root runs as `mosquitto` and must read the key.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for f in ["ca.crt", "server.crt", "server.key"] {
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
        Some(Pki { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// mosquitto with a TLS listener and a password file.
fn tls_broker(pki: &Pki) -> Option<Broker> {
    Broker::start(|dir| {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n{}",
            pki.path("ca.crt").display(),
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
            password_lines(dir, USER, PASSWORD)
        )
    })
}

fn password_file(dir: &Path, password: &str) -> PathBuf {
    let p = dir.join("mqtt-password");
    std::fs::write(&p, format!("{password}\n")).expect("write password file");
    p
}

fn tls_config(port: u16, prefix: &str, ca: &Path, password_file: &Path) -> String {
    test_config(
        &format!(
            "url = \"mqtts://127.0.0.1:{port}\"\ntopic_prefix = \"{prefix}\"\nusername = \"{USER}\"\n\
             password_file = \"{}\"\nca_file = \"{}\"\nkeepalive_s = 5",
            password_file.display(),
            ca.display()
        ),
        "[sensor]\ninterval_s = 0.75\n",
    )
}

/// `greenhoused --check-config` on `config`: stdout + stderr.
fn check_config(config: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("greenhoused.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_greenhoused"))
        .arg("--check-config")
        .arg("-c")
        .arg(&path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run --check-config");
    assert!(out.status.success(), "--check-config failed: {out:?}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Subscribe over TLS with mosquitto_sub (right CA and credentials) and return the first `count` messages.
fn tls_sub(port: u16, ca: &Path, topic: &str, count: u32) -> String {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
        .arg(ca)
        .args([
            "-u",
            USER,
            "-P",
            PASSWORD,
            "-t",
            topic,
            "-v",
            "-C",
            &count.to_string(),
            "-W",
            "10",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run mosquitto_sub");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The right CA and credentials: the daemon connects over TLS and publishes; the password appears neither in its
/// log nor in `--check-config`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_password_connects_and_publishes() {
    let Some(pki) = Pki::generate() else { return };
    let Some(broker) = tls_broker(&pki) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let pw = password_file(dir.path(), PASSWORD);
    let prefix = common::prefix("tls");
    let config = tls_config(broker.port(), &prefix, &pki.path("ca.crt"), &pw);
    let t = Instant::now();
    let mut daemon = Daemon::start(&config);
    assert!(
        daemon
            .wait_log("MQTT connected to mqtts://127.0.0.1", LIMIT)
            .await,
        "no TLS connection:\n{}\nbroker:\n{}",
        daemon.log(),
        broker.log()
    );
    let connected = t.elapsed();
    let port = broker.port();
    let ca = pki.path("ca.crt");
    let topic = format!("{prefix}/#");
    let got = tokio::task::spawn_blocking(move || tls_sub(port, &ca, &topic, 6))
        .await
        .expect("join");
    assert!(
        got.contains(&format!("{prefix}/status online")),
        "retained status over TLS: {got}"
    );
    assert!(
        got.contains(&format!("{prefix}/luminosity ")) || got.contains(&format!("{prefix}/state ")),
        "{got}"
    );
    assert!(daemon.running());
    let log = daemon.log();
    assert!(
        !log.contains(PASSWORD),
        "password in the daemon log:\n{log}"
    );
    let checked = check_config(&config);
    assert!(
        !checked.contains(PASSWORD),
        "password in --check-config output:\n{checked}"
    );
    eprintln!("SECURITY tls: connected over TLS with password in {:.2} s; password absent from log and --check-config", connected.as_secs_f64());
}

/// A wrong password over TLS: refused, logged clearly once, retried with backoff, the daemon keeps running and
/// never logs the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_wrong_password_fails_cleanly() {
    let Some(pki) = Pki::generate() else { return };
    let Some(broker) = tls_broker(&pki) else {
        return;
    };
    let proxy = common::Proxy::start(broker.port()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong = "Wr0ng-Pa55word-plugh";
    let pw = password_file(dir.path(), wrong);
    let config = tls_config(proxy.port(), "tls-wrong-pw", &pki.path("ca.crt"), &pw);
    let mut daemon = Daemon::start(&config);
    assert!(
        daemon.wait_log("refused the connection", LIMIT).await,
        "no refusal in the log:\n{}",
        daemon.log()
    );
    let before = proxy.accepts();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let attempts = proxy.accepts() - before;
    let log = daemon.log();
    assert!(daemon.running(), "daemon exited:\n{log}");
    // At most 5 per connection (publishing and commands) with the backoff.
    assert!(
        (1..=10).contains(&attempts),
        "{attempts} attempts in 6 s: no backoff?"
    );
    assert!(log.contains("check mqtt.username, the password"), "{log}");
    assert!(!log.contains(wrong), "password in the log:\n{log}");
    assert!(
        !check_config(&config).contains(wrong),
        "password in --check-config"
    );
    eprintln!("SECURITY wrong password: refused, {attempts} attempts in 6 s, daemon running, password not logged");
}

/// A CA that did not sign the broker's certificate: the TLS handshake fails, the log says so, the daemon keeps
/// running and retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_wrong_ca_fails_cleanly() {
    let Some(pki) = Pki::generate() else { return };
    let Some(broker) = tls_broker(&pki) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let pw = password_file(dir.path(), PASSWORD);
    let config = tls_config(
        broker.port(),
        "tls-wrong-ca",
        &pki.path("other-ca.crt"),
        &pw,
    );
    let mut daemon = Daemon::start(&config);
    assert!(
        daemon.wait_log("cannot connect to mqtts://", LIMIT).await,
        "no connect failure in the log:\n{}",
        daemon.log()
    );
    // It keeps retrying (repeats of the same failure are logged at debug level, which the test daemon shows).
    assert!(
        daemon
            .wait_log("still cannot connect to mqtts://", LIMIT)
            .await,
        "no retry after the TLS failure:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(daemon.running(), "daemon exited:\n{log}");
    assert!(
        !log.contains("MQTT connected"),
        "connected with the wrong CA!\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log");
    let line = log
        .lines()
        .find(|l| l.contains("cannot connect to mqtts://"))
        .unwrap_or_default()
        .to_string();
    let broker_log = broker.log();
    assert!(
        broker_log.contains("OpenSSL Error")
            || broker_log.contains("certificate")
            || broker_log.contains("SSL"),
        "broker saw no TLS failure:\n{broker_log}"
    );
    eprintln!("SECURITY wrong CA: {line}");
}

/// With the defaults (embedded broker), the daemon listens on 127.0.0.1 only. Run in a private network namespace
/// (`unshare -rn`) so the default port 1883 is free whatever runs on this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_listens_on_loopback_only() {
    // The documented default, as the daemon resolves it.
    let defaults = check_config("");
    assert!(
        defaults.contains("embedded_listen = \"127.0.0.1:1883\""),
        "default embedded_listen is not loopback:\n{defaults}"
    );
    let probe = Command::new("unshare").args(["-rn", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        if std::env::var_os("CI").is_some() {
            panic!("unshare -rn (user + network namespace) is needed for this test under CI");
        }
        eprintln!("SKIPPED: cannot create a network namespace (unshare -rn)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("greenhoused.toml");
    std::fs::write(&config, "[device]\nid = \"test\"\n").expect("write config");
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new("unshare")
        .args(["-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_greenhoused"))
        .args(["--mock-hardware", "--log-target", "stderr", "-v", "-c"])
        .arg(&config)
        .env("STATE_DIRECTORY", dir.path())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("spawn unshare");
    let pid = child.id();
    let end = Instant::now() + LIMIT;
    let mut sockets = Vec::new();
    while Instant::now() < end {
        sockets = listening_sockets(pid);
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !sockets.is_empty() && log.contains("MQTT connected") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(!sockets.is_empty(), "the daemon listens nowhere:\n{log}");
    assert!(
        sockets.iter().all(|a| a.ip().is_loopback()),
        "listening beyond loopback: {sockets:?}"
    );
    assert!(sockets.iter().any(|a| a.port() == 1883), "{sockets:?}");
    eprintln!("SECURITY embedded broker: listening sockets {sockets:?} (loopback only)");
}
