//! Configuration errors: one [`Problem`] per bad key, all of them collected into one [`ConfigError`].

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with the configuration, tied to its key path (e.g. `control.off_above_lux`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path; empty for problems of the whole file (TOML syntax).
    pub key: String,
    /// What is wrong, phrased to follow the key: `(400) must be greater than control.on_below_lux (450)`.
    pub reason: String,
}

impl Problem {
    /// A problem of `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{} {}", self.key, self.reason)
        }
    }
}

/// How to fix a configuration error; printed under every list of problems.
const HINT: &str = "Every key, its default and what it does are documented in the example config/greenhoused.toml \
(installed as /etc/greenhoused/greenhoused.toml) and in the README; check a file with \
`greenhoused --check-config -c PATH`.";

/// Why no [`super::Settings`] could be produced. The daemon exits 78 (`EX_CONFIG`) on any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file given explicitly (`-c PATH`) does not exist.
    #[error(
        "configuration file {} does not exist; create it (start from the example config/greenhoused.toml) \
         or leave out -c to use /etc/greenhoused/greenhoused.toml, or the built-in defaults when that is absent",
        path.display()
    )]
    NotFound { path: PathBuf },
    /// The file exists but could not be read (permissions, a directory, not UTF-8).
    #[error(
        "cannot read configuration file {}: {error}; make it a readable UTF-8 text file for the daemon's user",
        path.display()
    )]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The text was read but is not a valid configuration; every problem found is listed.
    #[error("{}", render_invalid(origin, problems))]
    Invalid {
        /// The file (or "built-in defaults", "configuration text") the problems are in.
        origin: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The individual problems (empty for [`ConfigError::NotFound`] / [`ConfigError::Unreadable`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render_invalid(origin: &str, problems: &[Problem]) -> String {
    let count = match problems.len() {
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    let mut out = format!("invalid configuration in {origin} ({count}):\n");
    for p in problems {
        out.push_str("  - ");
        out.push_str(&p.to_string());
        out.push('\n');
    }
    out.push_str(HINT);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_joins_key_and_reason() {
        let p = Problem::new(
            "control.off_above_lux",
            "(400) must be greater than control.on_below_lux (450)",
        );
        assert_eq!(
            p.to_string(),
            "control.off_above_lux (400) must be greater than control.on_below_lux (450)"
        );
        assert_eq!(
            Problem::new("", "TOML syntax error").to_string(),
            "TOML syntax error"
        );
    }

    #[test]
    fn invalid_display_has_header_one_line_per_problem_and_hint() {
        let e = ConfigError::Invalid {
            origin: "/etc/x.toml".into(),
            problems: vec![
                Problem::new("a.b", "is bad"),
                Problem::new("c.d", "is worse"),
            ],
        };
        let text = e.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "invalid configuration in /etc/x.toml (2 problems):"
        );
        assert_eq!(lines[1], "  - a.b is bad");
        assert_eq!(lines[2], "  - c.d is worse");
        assert!(lines[3].contains("config/greenhoused.toml"));
        assert_eq!(e.problems().len(), 2);
    }

    #[test]
    fn not_found_names_the_path_and_the_fix() {
        let e = ConfigError::NotFound {
            path: "/nope/g.toml".into(),
        };
        let text = e.to_string();
        assert!(text.contains("/nope/g.toml"));
        assert!(text.contains("does not exist"));
        assert!(e.problems().is_empty());
    }
}
