//! The relay state persisted for `relay.on_start`/`relay.on_boot = "restore"`, with the kernel's boot id that
//! tells a cold boot from a daemon restart: in `$STATE_DIRECTORY/relay-state` (systemd's `StateDirectory=`) or
//! `/var/lib/greenhoused/relay-state`, replaced atomically (write a temporary file, fsync, rename) so a power cut
//! never leaves half a file. Format: the level (`on`/`off`) on the first line, then `boot_id=<uuid>` (files
//! written before boot ids were stored hold the level alone: that reads as "no boot id", i.e. a cold boot).
//! The DLI day so far lives beside it in `dli-state.json` (its content is the core's [`crate::core::dli::DliState`]:
//! written and validated there; only the file I/O is here).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::OnStart;

/// The kernel's id of the running boot; a new one after every boot (power cut, reboot).
pub const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";
/// Environment variable that replaces [`BOOT_ID_FILE`] (tests simulate a reboot by changing the file).
pub const BOOT_ID_ENV: &str = "GREENHOUSED_BOOT_ID_FILE";

/// The running boot's id (from `$GREENHOUSED_BOOT_ID_FILE` or [`BOOT_ID_FILE`]); `None` when unreadable.
pub fn boot_id() -> Option<String> {
    let path = std::env::var_os(BOOT_ID_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BOOT_ID_FILE));
    let id = fs::read_to_string(path).ok()?.trim().to_string();
    (!id.is_empty()).then_some(id)
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub on: bool,
    /// The boot during which it was written (`None` in files of older versions).
    pub boot_id: Option<String>,
}

/// Which start policy applied and why, for the start log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// The first start since the machine booted (the saved boot id differs, or none was saved): `on_boot`.
    ColdBoot,
    /// A restart within the same boot: `on_start`.
    Restart,
}

/// Whether the relay state must be kept in the state file at every switch: only for a `restore` policy.
pub fn keeps_state(on_start: OnStart, on_boot: OnStart) -> bool {
    on_start == OnStart::Restore || on_boot == OnStart::Restore
}

/// Whether the state file is needed at all: for `restore`, or to tell a boot from a restart when the two
/// policies differ.
pub fn needs_state(on_start: OnStart, on_boot: OnStart) -> bool {
    keeps_state(on_start, on_boot) || on_start != on_boot
}

/// The level to open the relay with: `on_boot` at the first start after a boot, else `on_start` (`restore` =
/// the saved level, off when none). Pure: `saved` is the state file's content, `current_boot` the running boot.
/// An unreadable current boot id counts as a restart (nothing says the machine rebooted).
pub fn start_level(
    on_start: OnStart,
    on_boot: OnStart,
    saved: Option<&Saved>,
    current_boot: Option<&str>,
) -> (bool, StartKind) {
    let cold = match current_boot {
        Some(now) => saved.and_then(|s| s.boot_id.as_deref()) != Some(now),
        None => false,
    };
    let (policy, kind) = if cold {
        (on_boot, StartKind::ColdBoot)
    } else {
        (on_start, StartKind::Restart)
    };
    let on = match policy {
        OnStart::Off => false,
        OnStart::On => true,
        OnStart::Restore => saved.is_some_and(|s| s.on),
    };
    (on, kind)
}

/// Default state directory when `$STATE_DIRECTORY` is not set.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/greenhoused";
const FILE_NAME: &str = "relay-state";
const DLI_FILE_NAME: &str = "dli-state.json";

/// Where the relay state lives: the first directory of `$STATE_DIRECTORY` (systemd may pass several,
/// colon-separated), else [`DEFAULT_STATE_DIR`].
pub fn state_file(state_directory_env: Option<&str>) -> PathBuf {
    state_dir(state_directory_env).join(FILE_NAME)
}

/// Where the DLI day state lives (same directory as [`state_file`]).
pub fn dli_state_file(state_directory_env: Option<&str>) -> PathBuf {
    state_dir(state_directory_env).join(DLI_FILE_NAME)
}

fn state_dir(state_directory_env: Option<&str>) -> &Path {
    Path::new(
        state_directory_env
            .and_then(|v| v.split(':').find(|s| !s.is_empty()))
            .unwrap_or(DEFAULT_STATE_DIR),
    )
}

/// A text state file: `Ok(None)` when none was saved yet.
pub fn load_text(path: &Path) -> std::io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The persisted level: `Ok(None)` when no state was saved yet.
pub fn load(path: &Path) -> std::io::Result<Option<bool>> {
    Ok(load_saved(path)?.map(|s| s.on))
}

/// The persisted state with its boot id: `Ok(None)` when no state was saved yet.
pub fn load_saved(path: &Path) -> std::io::Result<Option<Saved>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let on = match lines.next().unwrap_or_default() {
        "on" => true,
        "off" => false,
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds {other:?}, expected \"on\" or \"off\"",
                    path.display()
                ),
            ))
        }
    };
    let boot_id = lines
        .find_map(|l| l.strip_prefix("boot_id="))
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty());
    Ok(Some(Saved { on, boot_id }))
}

/// Save atomically, with the running boot's id ([`boot_id`]).
pub fn save(path: &Path, on: bool) -> std::io::Result<()> {
    save_with_boot(path, on, boot_id().as_deref())
}

/// Save atomically, with `boot` as the boot id (none: the level alone).
pub fn save_with_boot(path: &Path, on: bool, boot: Option<&str>) -> std::io::Result<()> {
    let mut text = String::from(if on { "on\n" } else { "off\n" });
    if let Some(id) = boot {
        text.push_str(&format!("boot_id={id}\n"));
    }
    save_bytes(path, text.as_bytes())
}

/// Replace `path` with `bytes` atomically (its directory created if missing; temporary file, fsync, rename, directory
/// fsync).
pub fn save_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Outside systemd (no StateDirectory=) the default directory may not exist yet, e.g. on a first run by hand.
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Persist the rename itself; a directory that cannot be opened for sync is not worth failing for.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_uses_first_state_directory() {
        assert_eq!(state_file(Some("/a:/b")), PathBuf::from("/a/relay-state"));
        assert_eq!(
            state_file(None),
            PathBuf::from("/var/lib/greenhoused/relay-state")
        );
        assert_eq!(
            state_file(Some("")),
            PathBuf::from("/var/lib/greenhoused/relay-state")
        );
    }

    #[test]
    fn save_then_load_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-state");
        assert_eq!(load(&path).unwrap(), None);
        save(&path, true).unwrap();
        assert_eq!(load(&path).unwrap(), Some(true));
        save(&path, false).unwrap();
        assert_eq!(load(&path).unwrap(), Some(false));
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn the_dli_state_file_sits_beside_the_relay_state_and_round_trips() {
        assert_eq!(
            dli_state_file(Some("/a:/b")),
            PathBuf::from("/a/dli-state.json")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dli-state.json");
        assert_eq!(load_text(&path).unwrap(), None);
        save_bytes(&path, b"{}").unwrap();
        assert_eq!(load_text(&path).unwrap().as_deref(), Some("{}"));
    }

    #[test]
    fn boot_id_is_stored_with_the_level_and_old_files_read_as_no_boot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-state");
        save_with_boot(&path, true, Some("b1")).unwrap();
        assert_eq!(
            load_saved(&path).unwrap(),
            Some(Saved {
                on: true,
                boot_id: Some("b1".into())
            })
        );
        fs::write(&path, "off\n").unwrap();
        assert_eq!(
            load_saved(&path).unwrap(),
            Some(Saved {
                on: false,
                boot_id: None
            })
        );
    }

    #[test]
    fn on_boot_applies_after_a_boot_and_on_start_after_a_restart() {
        use OnStart::*;
        let saved = |on: bool, boot: Option<&str>| Saved {
            on,
            boot_id: boot.map(String::from),
        };
        // Same boot: on_start.
        let s = saved(false, Some("b1"));
        assert_eq!(
            start_level(On, Off, Some(&s), Some("b1")),
            (true, StartKind::Restart)
        );
        // Another boot: on_boot.
        assert_eq!(
            start_level(On, Off, Some(&s), Some("b2")),
            (false, StartKind::ColdBoot)
        );
        // No state, or a state without a boot id: a cold boot.
        assert_eq!(
            start_level(On, Off, None, Some("b1")),
            (false, StartKind::ColdBoot)
        );
        assert_eq!(
            start_level(Off, On, Some(&saved(false, None)), Some("b1")),
            (true, StartKind::ColdBoot)
        );
        // restore takes the saved level, whichever policy applies; off when nothing was saved.
        let on_b1 = saved(true, Some("b1"));
        assert_eq!(
            start_level(Restore, Off, Some(&on_b1), Some("b1")),
            (true, StartKind::Restart)
        );
        assert_eq!(
            start_level(Off, Restore, Some(&on_b1), Some("b2")),
            (true, StartKind::ColdBoot)
        );
        assert_eq!(
            start_level(Off, Restore, None, Some("b2")),
            (false, StartKind::ColdBoot)
        );
        // The running boot id unreadable: nothing says it rebooted, on_start.
        assert_eq!(start_level(On, Off, None, None), (true, StartKind::Restart));
    }

    #[test]
    fn state_is_needed_for_restore_or_differing_policies() {
        use OnStart::*;
        assert!(!needs_state(Off, Off));
        assert!(needs_state(On, Off));
        assert!(needs_state(Restore, Restore));
        assert!(keeps_state(Off, Restore));
        assert!(!keeps_state(On, Off));
    }

    #[test]
    fn boot_id_comes_from_the_kernel() {
        // Not overridden in unit tests: the real kernel file (a UUID) where it exists.
        if std::env::var_os(BOOT_ID_ENV).is_none() && Path::new(BOOT_ID_FILE).exists() {
            let id = boot_id().unwrap();
            assert_eq!(id.len(), 36, "{id}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-state");
        fs::write(&path, "maybe").unwrap();
        assert!(load(&path).is_err());
    }
}
