//! The dashboard in a real browser: headless Chromium (Debian's `chromium` package) loads `/` from a daemon on
//! mock hardware, runs the page's own JavaScript, and the test compares what the page rendered with `/api/state`;
//! a screenshot is taken and checked to be a real, non-trivial PNG (kept in `target/http-browser/`).
//!
//! Without chromium the test is skipped, except under `CI=1` where it fails (CI must install `chromium`).

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::daemon::{Cfg, Daemon};
use common::http::{get, wait_json};

/// How long one chromium run may take (it is killed after that).
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    let candidate =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from);
    match Command::new(&candidate)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Some(candidate),
        other => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "chromium is required for this test under CI but cannot be run ({other:?}): \
                     apt-get install --no-install-recommends chromium"
                );
            }
            eprintln!("SKIPPED: chromium not available ({other:?}); apt-get install chromium to run this test");
            None
        }
    }
}

/// Run headless chromium on `url` with `args`, bounded by [`BROWSER_LIMIT`]; returns stdout.
fn run_chromium(bin: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            // Root in a container: the sandbox needs user namespaces we may not have.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            // Let the page's scripts (fetches, rendering) finish before the DOM dump or the screenshot.
            "--virtual-time-budget=15000",
            "--window-size=412,1500",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait chromium") {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if start.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().expect("reader thread")
}

/// The `data-value` of the element with `id` in the dumped DOM.
fn data_value(dom: &str, id: &str) -> String {
    let needle = format!("id=\"{id}\"");
    let at = dom
        .find(&needle)
        .unwrap_or_else(|| panic!("no element #{id} in the DOM"));
    let tag_end = at + dom[at..].find('>').expect("tag end");
    let tag = &dom[at..tag_end];
    let v = tag
        .split_once("data-value=\"")
        .unwrap_or_else(|| panic!("#{id} has no data-value: {tag}"))
        .1;
    v[..v.find('"').expect("closing quote")]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[test]
fn the_dashboard_renders_the_daemons_state_in_chromium() {
    let Some(browser) = chromium() else { return };
    let Some(broker) = Broker::anonymous() else {
        return;
    };
    let port = common::free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // Ambient 300 lx is below the band: the lamp goes on, the reading settles at 300 + 400 lx.
    let cfg = Cfg::broker(broker.port(), &common::prefix("browser"))
        .set("mock.ambient", "\"300\"")
        .set("http.listen", &format!("\"{addr}\""))
        .render();
    let mut daemon = Daemon::start(&cfg);

    // Wait until the daemon serves a settled state: light on, sensor ok, broker connected.
    let state = wait_json(
        &mut daemon,
        addr,
        "/api/state",
        Duration::from_secs(30),
        "no settled state from /api/state",
        |v| {
            v["light"] == "on"
                && v["sensor"] == "ok"
                && v["broker_connected"] == true
                && v["lux"] == 700.0
        },
    );

    let profile = tempfile::tempdir().expect("temp dir");
    let url = format!("http://{addr}/");
    let dom = run_chromium(&browser, profile.path(), &["--dump-dom"], &url);
    assert!(
        dom.contains("data-loaded=\"1\""),
        "the page's script did not finish a refresh:\n{dom:.3000}"
    );
    // The page's own rendering against the daemon's JSON (the state is steady: ambient and lamp constant).
    let after: serde_json::Value =
        serde_json::from_str(&get(addr, "/api/state").expect("/api/state").1).expect("JSON");
    for (id, key) in [
        ("lux", "lux"),
        ("ambient", "ambient_lux"),
        ("light", "light"),
        ("mode", "mode"),
        ("reason", "reason"),
        ("sensor", "sensor"),
        ("broker", "broker_connected"),
        ("window", "window_open"),
    ] {
        let page = data_value(&dom, id);
        match after[key].as_f64() {
            // Numbers compare as numbers (JavaScript writes 700 for JSON's 700.0).
            Some(n) => assert_eq!(
                page.parse::<f64>().ok(),
                Some(n),
                "#{id} on the page vs {key} in /api/state ({state})"
            ),
            None => assert_eq!(
                page,
                json_text(&after[key]),
                "#{id} on the page vs {key} in /api/state ({state})"
            ),
        }
    }
    let alerts: Vec<String> = after["alerts"]
        .as_array()
        .expect("alerts array")
        .iter()
        .map(json_text)
        .collect();
    assert_eq!(data_value(&dom, "alerts"), alerts.join(","));
    // Today's DLI panel (the target and status are steady; the integral grows with every reading).
    assert_eq!(
        data_value(&dom, "dlistatus"),
        json_text(&after["dli"]["status"])
    );
    assert_eq!(
        data_value(&dom, "target").parse::<f64>().ok(),
        after["dli"]["target_mol"].as_f64()
    );
    let mol_page: f64 = data_value(&dom, "dli").parse().expect("DLI on the page");
    let mol_api = after["dli"]["mol"].as_f64().expect("dli.mol");
    assert!(
        (0.0..=mol_api).contains(&mol_page),
        "{mol_page} vs {mol_api}"
    );
    assert_eq!(data_value(&dom, "light"), "on");
    assert_eq!(data_value(&dom, "lux"), "700");
    // The charts were drawn from /api/history (the page counts what it got).
    let (_, history) = get(addr, "/api/history?hours=48").expect("/api/history");
    let h: serde_json::Value = serde_json::from_str(&history).expect("JSON");
    let minutes_page: usize = data_value(&dom, "minutes").parse().expect("a count");
    let minutes_api = h["minutes"].as_array().expect("minutes").len();
    assert!(
        minutes_page <= minutes_api && minutes_api <= minutes_page + 1,
        "{minutes_page} vs {minutes_api}"
    );
    assert_eq!(
        data_value(&dom, "days"),
        h["days"].as_array().expect("days").len().to_string()
    );

    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("http-browser");
    std::fs::create_dir_all(&out_dir).expect("screenshot dir");
    let png = out_dir.join("dashboard.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &browser,
        profile.path(),
        &[&format!("--screenshot={}", png.display())],
        &url,
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank page compresses to a few hundred bytes; the dashboard with text and boxes is far larger.
    assert!(
        bytes.len() > 20_000,
        "suspiciously small screenshot: {} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {} ({} bytes)", png.display(), bytes.len());
    daemon.terminate(Duration::from_secs(5));
}
