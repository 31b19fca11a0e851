//! The daemon shell's side of the dashboard: owns the history file and the server, and publishes snapshots.
//! Everything here is cheap and non-blocking for the loop except the history write, which happens at most every
//! [`crate::history::FLUSH_EVERY_MIN`] minutes (a few kB appended) and at stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDateTime;
use log::{info, warn};
use tokio::sync::watch;

use super::{load_history, write_history, HistoryView, Server, Snapshot, StateView, HISTORY_FILE};
use crate::history::{minute_of, History, Sample};

/// The history, its file, and the HTTP server (when `http.listen` is set and the port was free).
pub struct Dashboard {
    history: History,
    file: Option<PathBuf>,
    tx: watch::Sender<Snapshot>,
    server: Option<Server>,
    /// The minute of the last history copy handed to the server.
    copied_minute: Option<i32>,
    /// Lamp time and switches since start, for `/metrics`.
    lamp_on_seconds: f64,
    switches: u64,
    last: Option<(NaiveDateTime, bool)>,
}

impl Dashboard {
    /// Load the history from `state_dir` (damage is logged and the good part kept) and start the server on
    /// `listen`. A port that cannot be bound is a warning: the daemon runs on without HTTP.
    pub fn start(listen: Option<SocketAddr>, state_dir: Option<PathBuf>) -> Dashboard {
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
        Dashboard {
            history,
            file,
            tx,
            server,
            copied_minute: None,
            lamp_on_seconds: 0.0,
            switches: 0,
            last: None,
        }
    }

    /// The address served, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::local_addr)
    }

    /// Feed the history with one update, publish `state`, and write the history when a flush is due.
    pub fn update(&mut self, local: NaiveDateTime, sample: Sample, mut state: StateView) {
        if let Some((prev, on)) = self.last {
            let dt = (local - prev).num_milliseconds() as f64 / 1000.0;
            if on && dt > 0.0 && dt <= crate::history::MAX_GAP_S {
                self.lamp_on_seconds += dt;
            }
            if on != sample.light_on {
                self.switches += 1;
            }
        }
        self.last = Some((local, sample.light_on));
        self.history.update(local, sample);
        state.lamp_on_seconds_total = self.lamp_on_seconds;
        state.lamp_switches_total = self.switches;
        let minute = minute_of(local);
        let history = (self.copied_minute != Some(minute)).then(|| {
            self.copied_minute = Some(minute);
            Arc::new(HistoryView::from_history(&self.history, local))
        });
        self.tx.send_modify(|s| {
            s.state = state;
            if let Some(h) = history {
                s.history = h;
            }
        });
        if self.history.flush_due(local) {
            self.flush(local);
        }
    }

    fn flush(&mut self, local: NaiveDateTime) {
        let Some(w) = self.history.flush(local) else {
            return;
        };
        if let Some(path) = &self.file {
            if let Err(e) = write_history(path, &w) {
                warn!("cannot write the history to {}: {e}", path.display());
            }
        }
    }

    /// Final write and server stop.
    pub fn stop(mut self, local: NaiveDateTime) {
        self.flush(local);
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}
