//! The history journal on disk (shell side of [`crate::core::history`]): `history.bin` in the state directory.
//! Appends are written and fsynced; replacements go through a temporary file, fsync and rename, so a power cut
//! leaves either the old or the new file, or at worst a torn last append, which loading detects and reports.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::core::history::{History, Write};

/// The file name under the state directory.
pub const HISTORY_FILE: &str = "history.bin";

/// Load the history from `path`. A missing file is a fresh start; damage is returned as the problem (log it at
/// warning) together with what was good.
pub fn load_history(path: &Path) -> (History, Option<String>) {
    match fs::read(path) {
        Ok(bytes) => {
            let loaded = History::load(&bytes);
            let problem = loaded
                .problem
                .map(|p| format!("history file {}: {p}", path.display()));
            (loaded.history, problem)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (History::new(), None),
        Err(e) => (
            History::new(),
            Some(format!(
                "cannot read the history file {} ({e}); starting an empty history",
                path.display()
            )),
        ),
    }
}

/// Write what [`History::flush`] returned.
pub fn write_history(path: &Path, w: &Write) -> std::io::Result<()> {
    match w {
        Write::Append(bytes) => {
            // Never create the file here: a journal without its header would be unreadable. A missing file is an
            // error, and the core's next flush replaces the whole file.
            let mut f = fs::OpenOptions::new().append(true).open(path)?;
            f.write_all(bytes)?;
            f.sync_data()
        }
        Write::Replace(bytes) => crate::persist::save_bytes(path, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::history::Sample;
    use chrono::NaiveDate;

    #[test]
    fn written_files_load_back_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HISTORY_FILE);
        let (mut h, problem) = load_history(&path);
        assert_eq!(problem, None);
        let t0 = NaiveDate::from_ymd_opt(2026, 6, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        for round in 0..3 {
            for s in 0..600 {
                h.update(
                    t0 + chrono::Duration::seconds(round * 600 + s),
                    Sample {
                        lux: Some(s as f64),
                        ambient_lux: Some(s as f64),
                        light_on: s % 2 == 0,
                        window_open: true,
                    },
                );
            }
            let w = h
                .flush(t0 + chrono::Duration::seconds(round * 600 + 600))
                .unwrap();
            assert_eq!(matches!(w, Write::Replace(_)), round == 0);
            write_history(&path, &w).unwrap();
        }
        let (back, problem) = load_history(&path);
        assert_eq!(problem, None);
        assert_eq!(back.minutes(), h.minutes());
        assert!(!path.with_extension("tmp").exists());

        fs::write(&path, b"garbage").unwrap();
        let (back, problem) = load_history(&path);
        assert!(back.minutes().is_empty());
        let p = problem.unwrap();
        assert!(
            p.contains(HISTORY_FILE) && p.contains("not a greenhoused history file"),
            "{p}"
        );
    }
}
