//! The relay state persisted for `relay.on_start = "restore"`: one word (`on`/`off`) in
//! `$STATE_DIRECTORY/relay-state` (systemd's `StateDirectory=`) or `/var/lib/greenhoused/relay-state`,
//! replaced atomically (write a temporary file, fsync, rename) so a power cut never leaves half a file.
//! The DLI day so far lives beside it in `dli-state.json` (its content is the core's [`crate::core::dli::DliState`]:
//! written and validated there; only the file I/O is here).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// The persisted state: `Ok(None)` when no state was saved yet.
pub fn load(path: &Path) -> std::io::Result<Option<bool>> {
    match fs::read_to_string(path) {
        Ok(text) => match text.trim() {
            "on" => Ok(Some(true)),
            "off" => Ok(Some(false)),
            other => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds {other:?}, expected \"on\" or \"off\"",
                    path.display()
                ),
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Save atomically.
pub fn save(path: &Path, on: bool) -> std::io::Result<()> {
    save_bytes(path, if on { b"on\n" } else { b"off\n" })
}

/// Replace `path` with `bytes` atomically (temporary file, fsync, rename, directory fsync).
pub fn save_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
    fn garbage_is_an_error_not_a_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-state");
        fs::write(&path, "maybe").unwrap();
        assert!(load(&path).is_err());
    }
}
