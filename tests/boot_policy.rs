//! `relay.on_boot` against `relay.on_start` at process level: the kernel's boot id (a file named by
//! `GREENHOUSED_BOOT_ID_FILE` here, standing in for /proc/sys/kernel/random/boot_id) saved with the relay state
//! tells the first start after a boot from a restart within the same boot.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::{Cfg, Daemon};
use common::{prefix, Mosquitto, Observer};

const T: Duration = Duration::from_secs(15);

/// Start the daemon with `cfg` in `state_dir` under boot id `boot`, wait for its start line, stop it; returns
/// the log.
async fn run_once(
    obs: &mut Observer,
    p: &str,
    cfg: &Cfg,
    state_dir: &Path,
    boot_file: &Path,
    boot: &str,
) -> String {
    std::fs::write(boot_file, format!("{boot}\n")).expect("write boot id");
    let mark = obs.mark();
    let mut daemon = Daemon::start_with_env(
        &cfg.render(),
        &[
            ("STATE_DIRECTORY", state_dir.as_os_str()),
            ("GREENHOUSED_BOOT_ID_FILE", boot_file.as_os_str()),
        ],
    );
    assert!(
        daemon.wait_log("relay opens", T).await,
        "no start line:\n{}",
        daemon.log()
    );
    // Running (signal handlers installed) once it said so on MQTT.
    obs.wait_after(mark, &format!("{p}/status"), |m| m.payload == "online", T)
        .await
        .expect("online");
    daemon.terminate(Duration::from_secs(5));
    daemon.log()
}

#[tokio::test]
async fn on_boot_after_a_boot_and_on_start_after_a_restart() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("boot-policy");
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).expect("state dir");
    let boot_file = dir.path().join("boot_id");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let cfg = Cfg::broker(broker.port(), &p)
        .set("relay.on_start", "\"on\"")
        .set("relay.on_boot", "\"off\"")
        .set("relay.on_stop", "\"keep\"");

    // Nothing saved yet: the first start after a boot.
    let log = run_once(&mut obs, &p, &cfg, &state_dir, &boot_file, "boot-1").await;
    assert!(
        log.contains("relay opens off (first start since the machine booted: relay.on_boot = off)"),
        "{log}"
    );
    let saved =
        std::fs::read_to_string(state_dir.join("relay-state")).expect("state saved at start");
    assert!(saved.contains("boot_id=boot-1"), "{saved}");

    // Same boot: a restart.
    let log = run_once(&mut obs, &p, &cfg, &state_dir, &boot_file, "boot-1").await;
    assert!(
        log.contains("relay opens on (restart within this boot: relay.on_start = on)"),
        "{log}"
    );

    // The machine rebooted (power cut): on_boot again.
    let log = run_once(&mut obs, &p, &cfg, &state_dir, &boot_file, "boot-2").await;
    assert!(
        log.contains("relay opens off (first start since the machine booted: relay.on_boot = off)"),
        "{log}"
    );
}

/// `on_boot = "restore"`: after a power cut the lamp comes back as it was; a file from an older version (the
/// level alone, no boot id) counts as a boot.
#[tokio::test]
async fn restore_at_boot_reads_the_saved_level() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = prefix("boot-restore");
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).expect("state dir");
    std::fs::write(state_dir.join("relay-state"), "on\n").expect("old-format state");
    let boot_file = dir.path().join("boot_id");
    let mut obs = Observer::connect(broker.port(), &p).await;
    let cfg = Cfg::broker(broker.port(), &p)
        .set("relay.on_start", "\"off\"")
        .set("relay.on_boot", "\"restore\"")
        .set("relay.on_stop", "\"keep\"");
    let log = run_once(&mut obs, &p, &cfg, &state_dir, &boot_file, "boot-7").await;
    assert!(
        log.contains(
            "relay opens on (first start since the machine booted: relay.on_boot = restore)"
        ),
        "{log}"
    );
    let log = run_once(&mut obs, &p, &cfg, &state_dir, &boot_file, "boot-7").await;
    assert!(
        log.contains("relay opens off (restart within this boot: relay.on_start = off)"),
        "{log}"
    );
}
