//! The `log` backend: the native journal protocol, journald priority prefixes, human stderr lines, or syslog.
//!
//! Call [`init`] once at start. Log at notice level (between info and warning; the `log` crate has no such level)
//! with [`crate::notice!`], e.g. when an alert clears.
//!
//! | target | output |
//! |---|---|
//! | `auto` | `journald` when stderr is the journal stream (`JOURNAL_STREAM` names stderr's device:inode), else `stderr` |
//! | `journald` | the journal's native protocol (`/run/systemd/journal/socket`, crate `systemd-journal-logger`) with `PRIORITY`, `MESSAGE`, `CODE_FILE`, `CODE_LINE`, `CODE_MODULE`, `SYSLOG_IDENTIFIER=greenhoused` and the record's key/value fields (`ALERT=`, `REASON=`); stderr lines prefixed `<N>` (sd-daemon priority) when that socket is missing |
//! | `stderr` | `2024-05-01 12:00:00.123 WARN  message` in local time |
//! | `syslog` | `/dev/log`, facility daemon, ident `greenhoused`; stderr with one warning when the socket is missing |
//!
//! Structured fields: log with `log`'s key/value syntax (`log::warn!(ALERT = "sensor_error"; "…")`) or
//! [`log_with_fields`]; only the native journal keeps them (`journalctl ALERT=sensor_error`), the text outputs
//! show the message alone.
//!
//! Levels: info by default, `-v` debug, `-vv` trace, `-q` warnings and errors only. Other crates log at most at
//! info unless `-vv` is given.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::cli::LogTarget;

/// `log` target that marks a record as a notice; use [`crate::notice!`] rather than naming it.
pub const NOTICE_TARGET: &str = "notice";

/// The syslog socket of the system.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Ident used for syslog messages.
pub const SYSLOG_IDENT: &str = "greenhoused";

/// Logs at notice severity (journal `<5>`, syslog `LOG_NOTICE`); filtered like info.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)+) => {
        ::log::info!(target: $crate::logging::NOTICE_TARGET, $($arg)+)
    };
}

/// Severity of a line: the `log` levels plus notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
    Trace,
}

impl Severity {
    /// Severity of a record at `level` with `target` (notice when logged through [`crate::notice!`]).
    pub fn of(level: Level, target: &str) -> Self {
        match level {
            Level::Error => Self::Error,
            Level::Warn => Self::Warning,
            Level::Info if target == NOTICE_TARGET => Self::Notice,
            Level::Info => Self::Info,
            Level::Debug => Self::Debug,
            Level::Trace => Self::Trace,
        }
    }

    /// The sd-daemon / syslog priority number (3 error … 7 debug).
    pub fn priority(self) -> u8 {
        match self {
            Self::Error => 3,
            Self::Warning => 4,
            Self::Notice => 5,
            Self::Info => 6,
            Self::Debug | Self::Trace => 7,
        }
    }

    /// Label in human-readable lines.
    pub fn label(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Warning => "WARN",
            Self::Notice => "NOTICE",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
            Self::Trace => "TRACE",
        }
    }

    fn syslog(self) -> syslog::Severity {
        match self {
            Self::Error => syslog::Severity::LOG_ERR,
            Self::Warning => syslog::Severity::LOG_WARNING,
            Self::Notice => syslog::Severity::LOG_NOTICE,
            Self::Info => syslog::Severity::LOG_INFO,
            Self::Debug | Self::Trace => syslog::Severity::LOG_DEBUG,
        }
    }
}

/// How stderr lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `<N>message`: the journal takes the priority from the prefix and adds its own timestamp.
    Journal,
    /// `YYYY-MM-DD HH:MM:SS.mmm LEVEL message` in local time, for a terminal or a file.
    Human,
}

/// One journal record: every line of `message` carries the `<N>` prefix so continuation lines keep the priority.
pub fn journal_line(severity: Severity, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 4);
    for line in message.trim_end_matches('\n').split('\n') {
        out.push('<');
        out.push(char::from(b'0' + severity.priority()));
        out.push('>');
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One human-readable record with its local `timestamp`; continuation lines are indented.
pub fn human_line(timestamp: chrono::NaiveDateTime, severity: Severity, message: &str) -> String {
    let mut out = format!(
        "{} {:<6} ",
        timestamp.format("%Y-%m-%d %H:%M:%S%.3f"),
        severity.label()
    );
    let mut lines = message.trim_end_matches('\n').split('\n');
    out.push_str(lines.next().unwrap_or_default());
    out.push('\n');
    for line in lines {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A record in `style`, timestamped now when human.
pub fn format_line(style: Style, severity: Severity, message: &str) -> String {
    match style {
        Style::Journal => journal_line(severity, message),
        Style::Human => human_line(chrono::Local::now().naive_local(), severity, message),
    }
}

/// Whether `JOURNAL_STREAM` (`"<dev>:<inode>"`) names the file with `dev` and `ino`.
pub fn journal_stream_matches(journal_stream: Option<&str>, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    matches!((d.parse::<u64>(), i.parse::<u64>()), (Ok(d), Ok(i)) if d == dev && i == ino)
}

/// Whether this process's stderr is connected to the journal (sd-daemon's check: `JOURNAL_STREAM` names it).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(meta) => journal_stream_matches(value.to_str(), meta.dev(), meta.ino()),
        Err(_) => false,
    }
}

/// Log levels: ours and those of other crates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// For greenhoused's own records (and notices).
    pub own: LevelFilter,
    /// For other crates' records.
    pub deps: LevelFilter,
}

/// The target under which paho-mqtt forwards the Paho C library's trace. Never enabled: paho-mqtt installs the C
/// trace callback only when this target is enabled at the first client's creation, and with the callback installed
/// a broker killed while publishing ended in heap corruption inside the C library (6 of 14 runs of that
/// experiment, 0 of 27 without it; see docs/RELIABILITY.md).
const PAHO_C_TRACE_TARGET: &str = "paho_mqtt_c";

impl Levels {
    /// Info by default, `-v` debug, `-vv` trace, `-q` warnings (quiet wins over verbose).
    pub fn from_flags(verbose: u8, quiet: bool) -> Self {
        let own = match (quiet, verbose) {
            (true, _) => LevelFilter::Warn,
            (false, 0) => LevelFilter::Info,
            (false, 1) => LevelFilter::Debug,
            (false, _) => LevelFilter::Trace,
        };
        // Other crates speak only when they warn (rumqttd and paho are chatty at info), or everything at -vv.
        let deps = if own == LevelFilter::Trace {
            own
        } else {
            own.min(LevelFilter::Warn)
        };
        Self { own, deps }
    }

    fn max(self) -> LevelFilter {
        self.own.max(self.deps)
    }

    fn allows(self, metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        let own = target == NOTICE_TARGET
            || target == env!("CARGO_CRATE_NAME")
            || target.starts_with(concat!(env!("CARGO_CRATE_NAME"), "::"));
        if target == PAHO_C_TRACE_TARGET {
            return false;
        }
        if !own && target.starts_with("rumqttd") && self.deps < LevelFilter::Trace {
            // The embedded broker logs its tracing spans (every packet) at error level: noise, not problems.
            return false;
        }
        metadata.level() <= if own { self.own } else { self.deps }
    }
}

/// Everything [`build`] needs, with the environment already looked at.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: LogTarget,
    pub levels: Levels,
    /// stderr is the journal stream (decides `auto` and the style of the syslog fallback).
    pub stderr_is_journal: bool,
    /// Syslog socket path ([`SYSLOG_SOCKET`] in production).
    pub syslog_socket: PathBuf,
    /// Use the native journal protocol when the journal is the target (`false`: `<N>`-prefixed stderr lines
    /// straight away, for tests that must not depend on the machine's journal).
    pub native_journal: bool,
}

impl Options {
    /// Options for this process: flags from the command line, the journal check on the real stderr, `/dev/log`.
    pub fn from_env(target: LogTarget, verbose: u8, quiet: bool) -> Self {
        Self {
            target,
            levels: Levels::from_flags(verbose, quiet),
            stderr_is_journal: stderr_is_journal(),
            syslog_socket: PathBuf::from(SYSLOG_SOCKET),
            native_journal: true,
        }
    }

    fn stderr_style(&self) -> Style {
        if self.stderr_is_journal {
            Style::Journal
        } else {
            Style::Human
        }
    }
}

/// The logger could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("the logger is already installed (logging::init called twice)")]
    AlreadyInstalled(#[from] log::SetLoggerError),
}

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

enum Sink {
    Stream(Style),
    /// The native journal protocol; `<N>`-prefixed stderr lines when a record cannot be sent.
    Journal(systemd_journal_logger::JournalLog),
    Syslog {
        logger: Syslog,
        path: PathBuf,
        fallback: Style,
    },
}

/// The `log::Log` implementation; writes whole lines with one `write_all` so threads do not interleave.
pub struct Logger {
    levels: Levels,
    inner: Mutex<(Sink, Box<dyn Write + Send>)>,
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("levels", &self.levels)
            .finish_non_exhaustive()
    }
}

fn syslog_formatter() -> syslog::Formatter3164 {
    syslog::Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        // Local socket: no hostname in the header, like glibc's syslog(3).
        hostname: None,
        process: SYSLOG_IDENT.to_owned(),
        pid: std::process::id(),
    }
}

fn syslog_send(logger: &mut Syslog, severity: Severity, message: &str) -> syslog::Result<()> {
    use syslog::LogFormat;
    logger
        .formatter
        .format(&mut logger.backend, severity.syslog(), message)
}

impl Logger {
    /// The maximum level any record can pass with.
    pub fn max_level(&self) -> LevelFilter {
        self.levels.max()
    }

    fn emit(&self, severity: Severity, message: &str) {
        self.emit_record(severity, message, None);
    }

    /// Write one record; `record` (with its fields, file and line) is used by the journal sink.
    fn emit_record(&self, severity: Severity, message: &str, record: Option<&Record<'_>>) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (sink, stderr) = &mut *guard;
        let style = match sink {
            Sink::Stream(style) => *style,
            Sink::Journal(journal) => {
                let sent = match record {
                    Some(record) => journal_send(journal, severity, record),
                    None => journal_send(
                        journal,
                        severity,
                        &Record::builder()
                            .target(env!("CARGO_CRATE_NAME"))
                            .args(format_args!("{message}"))
                            .build(),
                    ),
                };
                if sent.is_ok() {
                    return;
                }
                Style::Journal
            }
            Sink::Syslog {
                logger,
                path,
                fallback,
            } => {
                if syslog_send(logger, severity, message).is_ok() {
                    return;
                }
                // The syslog daemon may have restarted and recreated its socket: reconnect once.
                if let Ok(mut fresh) = syslog::unix_custom(syslog_formatter(), &*path) {
                    if syslog_send(&mut fresh, severity, message).is_ok() {
                        *logger = fresh;
                        return;
                    }
                }
                *fallback
            }
        };
        // Nowhere else to report a failing stderr.
        let _ = stderr.write_all(format_line(style, severity, message).as_bytes());
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.levels.allows(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let severity = Severity::of(record.level(), record.target());
        let message = record.args().to_string();
        self.emit_record(severity, &message, Some(record));
    }

    fn flush(&self) {
        if let Ok(mut guard) = self.inner.lock() {
            let _ = guard.1.flush();
        }
    }
}

/// Builds the logger for `options`, writing stderr output to `stderr`. When syslog was asked for and its socket
/// cannot be reached, the logger writes to `stderr` instead and has already written one warning line saying so.
pub fn build(options: &Options, stderr: Box<dyn Write + Send>) -> Logger {
    let sink = match options.target {
        LogTarget::Auto if options.stderr_is_journal => return build_journal(options, stderr),
        LogTarget::Auto => Sink::Stream(options.stderr_style()),
        LogTarget::Journald => return build_journal(options, stderr),
        LogTarget::Stderr => Sink::Stream(Style::Human),
        LogTarget::Syslog => {
            match syslog::unix_custom(syslog_formatter(), &options.syslog_socket) {
                Ok(logger) => Sink::Syslog {
                    logger,
                    path: options.syslog_socket.clone(),
                    fallback: options.stderr_style(),
                },
                Err(e) => {
                    let logger = Logger {
                        levels: options.levels,
                        inner: Mutex::new((Sink::Stream(options.stderr_style()), stderr)),
                    };
                    logger.emit(
                        Severity::Warning,
                        &syslog_unavailable(&options.syslog_socket, &e),
                    );
                    return logger;
                }
            }
        }
    };
    Logger {
        levels: options.levels,
        inner: Mutex::new((sink, stderr)),
    }
}

/// The native journal logger, or `<N>`-prefixed stderr lines (and one warning saying why) when the journal socket
/// cannot be reached (no systemd, a container without the socket mounted).
fn build_journal(options: &Options, stderr: Box<dyn Write + Send>) -> Logger {
    if !options.native_journal {
        return Logger {
            levels: options.levels,
            inner: Mutex::new((Sink::Stream(Style::Journal), stderr)),
        };
    }
    match systemd_journal_logger::JournalLog::empty() {
        Ok(journal) => Logger {
            levels: options.levels,
            inner: Mutex::new((
                Sink::Journal(journal.with_syslog_identifier(SYSLOG_IDENT.to_owned())),
                stderr,
            )),
        },
        Err(e) => {
            let logger = Logger {
                levels: options.levels,
                inner: Mutex::new((Sink::Stream(Style::Journal), stderr)),
            };
            logger.emit(
                Severity::Warning,
                &format!(
                    "journal socket {JOURNAL_SOCKET} unavailable ({e}); logging to stderr with priority prefixes"
                ),
            );
            logger
        }
    }
}

/// The socket of the native journal protocol (fixed in `systemd-journal-logger`).
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The `log` level `systemd-journal-logger` turns into the journal `PRIORITY` of `severity`: it maps
/// error 3, warn 4, info 5, debug 6, trace 7, one step off ours below warning (notice 5, info 6, debug 7).
fn journal_level(severity: Severity) -> Level {
    match severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warn,
        Severity::Notice => Level::Info,
        Severity::Info => Level::Debug,
        Severity::Debug | Severity::Trace => Level::Trace,
    }
}

/// Send `record` at `severity`'s priority, with its fields, file, line and module.
fn journal_send(
    journal: &systemd_journal_logger::JournalLog,
    severity: Severity,
    record: &Record<'_>,
) -> io::Result<()> {
    journal.journal_send(
        &Record::builder()
            .level(journal_level(severity))
            .target(record.target())
            .args(*record.args())
            .file(record.file())
            .line(record.line())
            .module_path(record.module_path())
            .key_values(record.key_values())
            .build(),
    )
}

/// Log `line` at `severity` with structured `fields` (the core's `Effect::Log`); `file`/`line_no` as in
/// [`log_with_fields`].
pub fn log_severity(
    severity: Severity,
    line: &str,
    fields: &[(&str, &str)],
    file: &'static str,
    line_no: u32,
) {
    let level = match severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warn,
        Severity::Notice | Severity::Info => Level::Info,
        Severity::Debug => Level::Debug,
        Severity::Trace => Level::Trace,
    };
    log_with_fields(
        level,
        severity == Severity::Notice,
        line,
        fields,
        file,
        line_no,
    );
}

/// Log `line` at `level` (`notice`: at notice severity, see [`crate::notice!`]) with structured `fields`
/// (e.g. `[("ALERT", "sensor_error")]`): the shell's way to log the core's `Effect::Log`. `file`/`line_no` are
/// the code location the journal's `CODE_FILE`/`CODE_LINE` name.
pub fn log_with_fields(
    level: Level,
    notice: bool,
    line: &str,
    fields: &[(&str, &str)],
    file: &'static str,
    line_no: u32,
) {
    let target = if notice && level == Level::Info {
        NOTICE_TARGET
    } else {
        env!("CARGO_CRATE_NAME")
    };
    let metadata = Metadata::builder().level(level).target(target).build();
    let logger = log::logger();
    if !logger.enabled(&metadata) {
        return;
    }
    logger.log(
        &Record::builder()
            .metadata(metadata)
            .args(format_args!("{line}"))
            .file_static(Some(file))
            .line(Some(line_no))
            .module_path_static(Some(module_path!()))
            .key_values(&fields)
            .build(),
    );
}

fn syslog_unavailable(path: &Path, error: &syslog::Error) -> String {
    let cause = match error {
        syslog::Error::Initialization(inner) => inner.to_string(),
        other => other.to_string(),
    };
    format!(
        "syslog socket {} unavailable ({cause}); logging to stderr instead. Start a syslog daemon or use \
         --log-target journald|stderr",
        path.display()
    )
}

/// Installs the process-wide logger for the command-line flags. Call once, first thing in `main`.
pub fn init(target: LogTarget, verbose: u8, quiet: bool) -> Result<(), LoggingError> {
    let options = Options::from_env(target, verbose, quiet);
    let logger = build(&options, Box::new(io::stderr()));
    let max = logger.max_level();
    log::set_boxed_logger(Box::new(logger))?;
    log::set_max_level(max);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ts() -> chrono::NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
            .and_then(|d| d.and_hms_milli_opt(6, 7, 8, 9))
            .unwrap()
    }

    #[test]
    fn journal_prefix_for_every_severity() {
        let cases = [
            (Level::Error, "x", "<3>m\n"),
            (Level::Warn, "x", "<4>m\n"),
            (Level::Info, NOTICE_TARGET, "<5>m\n"),
            (Level::Info, "x", "<6>m\n"),
            (Level::Debug, "x", "<7>m\n"),
            (Level::Trace, "x", "<7>m\n"),
        ];
        for (level, target, want) in cases {
            assert_eq!(
                journal_line(Severity::of(level, target), "m"),
                want,
                "{level} {target}"
            );
        }
    }

    #[test]
    fn notice_only_from_info_on_notice_target() {
        assert_eq!(Severity::of(Level::Warn, NOTICE_TARGET), Severity::Warning);
        assert_eq!(
            Severity::of(Level::Info, "greenhoused::monitor"),
            Severity::Info
        );
    }

    #[test]
    fn journal_multiline_keeps_priority_on_every_line() {
        assert_eq!(journal_line(Severity::Warning, "a\nb\n"), "<4>a\n<4>b\n");
    }

    #[test]
    fn human_format_has_local_timestamp_and_label() {
        assert_eq!(
            human_line(ts(), Severity::Warning, "relay stuck"),
            "2024-05-01 06:07:08.009 WARN   relay stuck\n"
        );
        assert_eq!(
            human_line(ts(), Severity::Notice, "cleared"),
            "2024-05-01 06:07:08.009 NOTICE cleared\n"
        );
        assert_eq!(
            human_line(ts(), Severity::Error, "a\nb"),
            "2024-05-01 06:07:08.009 ERROR  a\n    b\n"
        );
    }

    #[test]
    fn journal_stream_matching() {
        assert!(journal_stream_matches(Some("8:12345"), 8, 12345));
        assert!(!journal_stream_matches(Some("8:12345"), 8, 1));
        assert!(!journal_stream_matches(Some("garbage"), 8, 12345));
        assert!(!journal_stream_matches(None, 8, 12345));
    }

    #[test]
    fn levels_from_flags() {
        assert_eq!(
            Levels::from_flags(0, false),
            Levels {
                own: LevelFilter::Info,
                deps: LevelFilter::Warn
            }
        );
        assert_eq!(
            Levels::from_flags(1, false),
            Levels {
                own: LevelFilter::Debug,
                deps: LevelFilter::Warn
            }
        );
        assert_eq!(
            Levels::from_flags(2, false),
            Levels {
                own: LevelFilter::Trace,
                deps: LevelFilter::Trace
            }
        );
        assert_eq!(
            Levels::from_flags(2, true),
            Levels {
                own: LevelFilter::Warn,
                deps: LevelFilter::Warn
            }
        );
    }

    #[test]
    fn paho_c_trace_is_never_enabled() {
        let meta = |level, target| Metadata::builder().level(level).target(target).build();
        for levels in [Levels::from_flags(0, false), Levels::from_flags(2, false)] {
            assert!(
                !levels.allows(&meta(Level::Error, "paho_mqtt_c")),
                "{levels:?}"
            );
            assert!(levels.allows(&meta(Level::Warn, "paho_mqtt")), "{levels:?}");
        }
        assert!(Levels::from_flags(2, false).allows(&meta(Level::Trace, "paho_mqtt")));
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

    fn log(logger: &Logger, level: Level, target: &str, msg: &str) {
        logger.log(
            &Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("{msg}"))
                .build(),
        );
    }

    #[test]
    fn auto_follows_journal_detection_and_filters_levels() {
        let buf = Buf::default();
        let options = Options {
            target: LogTarget::Auto,
            levels: Levels::from_flags(0, false),
            stderr_is_journal: true,
            syslog_socket: PathBuf::from("/nonexistent"),
            native_journal: false,
        };
        let logger = build(&options, Box::new(buf.clone()));
        log(&logger, Level::Warn, "greenhoused::app", "w");
        log(&logger, Level::Info, NOTICE_TARGET, "n");
        log(&logger, Level::Debug, "greenhoused::app", "d");
        log(&logger, Level::Debug, "paho_mqtt", "dep");
        assert_eq!(buf.text(), "<4>w\n<5>n\n");
    }

    #[test]
    fn quiet_drops_notice_and_info() {
        let buf = Buf::default();
        let options = Options {
            target: LogTarget::Journald,
            levels: Levels::from_flags(0, true),
            stderr_is_journal: false,
            syslog_socket: PathBuf::from("/nonexistent"),
            native_journal: false,
        };
        let logger = build(&options, Box::new(buf.clone()));
        log(&logger, Level::Info, NOTICE_TARGET, "n");
        log(&logger, Level::Info, "greenhoused", "i");
        log(&logger, Level::Error, "greenhoused", "e");
        assert_eq!(buf.text(), "<3>e\n");
    }
}
