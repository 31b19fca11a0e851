//! The daemon shell's side of the dashboard: loads and writes the history file, runs the server, and publishes
//! snapshots of the core's view. Publishing is a `watch` send of a small struct per event; the history copy
//! (~100 kB at most) is made once per local minute. The file write happens when the core asks for it: at most
//! every [`crate::core::history::FLUSH_EVERY_MIN`] minutes (a few hundred bytes appended) and at stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDateTime;
use log::{info, warn};
use tokio::sync::watch;

use super::{load_history, write_history, HistoryView, Server, Snapshot, StateView, HISTORY_FILE};
use crate::core::history::{minute_of, History, Write};
use crate::core::View;

/// The history file and the HTTP server (when `http.listen` is set and the port was free).
pub struct Dashboard {
    file: Option<PathBuf>,
    tx: watch::Sender<Snapshot>,
    server: Option<Server>,
    /// The minute of the last history copy handed to the server.
    copied_minute: Option<i32>,
}

impl Dashboard {
    /// Load the history from `state_dir` (damage is logged and the good part kept; the core then rewrites the
    /// file) and start the server on `listen`. A port that cannot be bound is a warning: the daemon runs on
    /// without HTTP.
    pub fn start(listen: Option<SocketAddr>, state_dir: Option<PathBuf>) -> (Dashboard, History) {
        let file = state_dir.map(|d| d.join(HISTORY_FILE));
        let history = match &file {
            Some(path) => {
                let (h, problem) = load_history(path);
                if let Some(p) = problem {
                    warn!("{p}");
                }
                h
            }
            None => History::new(),
        };
        let (tx, rx) = watch::channel(Snapshot::default());
        let server = listen.and_then(|addr| match Server::start(addr, rx) {
            Ok(s) => {
                info!("dashboard on http://{}/ (metrics on /metrics)", s.local_addr());
                Some(s)
            }
            Err(e) => {
                warn!(
                    "cannot serve the dashboard on {addr} ({e}); running without HTTP. Free the port or set \
                     http.listen to another address (\"\" turns HTTP off)"
                );
                None
            }
        });
        let dashboard = Dashboard {
            file,
            tx,
            server,
            copied_minute: None,
        };
        (dashboard, history)
    }

    /// Hand the server the core's current view, and a fresh history copy when a new minute started.
    pub fn publish(&mut self, view: &View, history: &History, local: NaiveDateTime) {
        if self.server.is_none() {
            return;
        }
        let state = StateView::from_view(view);
        let minute = minute_of(local);
        let copy = (self.copied_minute != Some(minute)).then(|| {
            self.copied_minute = Some(minute);
            Arc::new(HistoryView::from_history(history, local))
        });
        self.tx.send_modify(|s| {
            s.state = state;
            if let Some(h) = copy {
                s.history = h;
            }
        });
    }

    /// Execute the core's `Persist::History`; `false` when it failed (logged; the core then rewrites the whole
    /// file next time).
    pub fn write(&self, w: &Write) -> bool {
        let Some(path) = &self.file else { return true };
        match write_history(path, w) {
            Ok(()) => true,
            Err(e) => {
                warn!("cannot write the history to {}: {e}", path.display());
                false
            }
        }
    }

    /// Stop the server.
    pub fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}
