//! Loading: pick the file (explicit, default path, or built-in defaults), read it, parse and validate it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use super::validate::validate;
use super::{ConfigError, Settings, DEFAULT_PATH};

/// What the process environment contributes to the defaults; injectable so tests need not touch env vars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`): its `mqtt-password` is the default password file.
    pub credentials_dir: Option<PathBuf>,
    /// The host name, the source of the default `device.id`.
    pub hostname: Option<String>,
}

impl Environment {
    /// The real environment: `$CREDENTIALS_DIRECTORY` and the kernel's host name.
    pub fn from_process() -> Self {
        Environment {
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            hostname: read_hostname(),
        }
    }
}

/// The host name from `/proc/sys/kernel/hostname`, else `/etc/hostname`.
fn read_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
}

/// Loads the configuration: `path` if given (it must exist), else [`DEFAULT_PATH`], else (when that does not
/// exist) the built-in defaults.
pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
    load_with(path, &Environment::from_process())
}

/// [`load`] with an explicit [`Environment`]. Relative file paths inside the file (`mqtt.password_file`,
/// `mqtt.ca_file`, ...) are resolved against the file's directory.
pub fn load_with(path: Option<&Path>, env: &Environment) -> Result<Settings, ConfigError> {
    load_file(path, Path::new(DEFAULT_PATH), env)
}

fn load_file(
    path: Option<&Path>,
    default: &Path,
    env: &Environment,
) -> Result<Settings, ConfigError> {
    let file = path.unwrap_or(default);
    match fs::read_to_string(file) {
        Ok(text) => {
            // Relative paths inside the file are relative to its directory, made absolute so that the effective
            // configuration does not depend on the working directory.
            let dir = file.parent().map(|d| {
                let d = if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                };
                std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf())
            });
            load_text(&text, &file.display().to_string(), dir.as_deref(), env)
        }
        Err(e) if e.kind() == ErrorKind::NotFound && path.is_none() => load_text(
            "",
            &format!("the built-in defaults (no {})", default.display()),
            None,
            env,
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(ConfigError::NotFound {
            path: file.to_path_buf(),
        }),
        Err(error) => Err(ConfigError::Unreadable {
            path: file.to_path_buf(),
            error,
        }),
    }
}

/// Parses and validates configuration text (relative paths in it are relative to the working directory).
pub fn load_str(text: &str) -> Result<Settings, ConfigError> {
    load_str_with(text, &Environment::from_process())
}

/// [`load_str`] with an explicit [`Environment`].
pub fn load_str_with(text: &str, env: &Environment) -> Result<Settings, ConfigError> {
    load_text(text, "the configuration text", None, env)
}

fn load_text(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
    env: &Environment,
) -> Result<Settings, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        origin: origin.to_string(),
        problems,
    };
    let (raw, mut problems) = RawConfig::parse(text).map_err(|p| invalid(vec![p]))?;
    match validate(&raw, base_dir, env) {
        Ok(settings) if problems.is_empty() => Ok(settings),
        Ok(_) => Err(invalid(problems)),
        Err(more) => {
            problems.extend(more);
            Err(invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment {
            credentials_dir: None,
            hostname: Some("host".into()),
        }
    }

    #[test]
    fn explicit_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        match load_with(Some(&missing), &env()) {
            Err(ConfigError::NotFound { path }) => assert_eq!(path, missing),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn missing_default_file_gives_built_in_defaults_and_existing_one_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("greenhoused.toml");
        let s = load_file(None, &default, &env()).unwrap();
        assert_eq!(s, load_str_with("", &env()).unwrap());
        fs::write(&default, "[relay]\ngpio = 22\n").unwrap();
        assert_eq!(load_file(None, &default, &env()).unwrap().relay.gpio, 22);
        fs::write(&default, "[relay]\ngpio = 99\n").unwrap();
        let e = load_file(None, &default, &env()).unwrap_err();
        assert!(
            e.to_string().contains(&default.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn unreadable_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_with(Some(dir.path()), &env());
        assert!(matches!(e, Err(ConfigError::Unreadable { .. })), "{e:?}");
    }

    #[test]
    fn relative_paths_resolve_against_the_file_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pw"), "secret\n").unwrap();
        let file = dir.path().join("g.toml");
        fs::write(&file, "[mqtt]\nusername = \"u\"\npassword_file = \"pw\"\n").unwrap();
        let s = load_with(Some(&file), &env()).unwrap();
        assert_eq!(s.mqtt.password.as_deref(), Some("secret"));
        assert_eq!(s.mqtt.password_file, Some(dir.path().join("pw")));
    }

    #[test]
    fn raw_and_value_problems_are_reported_together() {
        let e = load_str_with(
            "[mqtt]\nqos = \"1\"\nurl = \"ftp://x\"\ncolour = 1\n",
            &env(),
        )
        .unwrap_err();
        let keys: Vec<&str> = e.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["mqtt.qos", "mqtt.colour", "mqtt.url"]);
        let text = e.to_string();
        assert!(
            text.starts_with("invalid configuration in the configuration text (3 problems):"),
            "{text}"
        );
    }

    #[test]
    fn mistyped_keys_cause_no_follow_up_problems() {
        let text = "[control]\non_below_lux = 600\noff_above_lux = \"x\"\n\
                    [sensor]\ninterval_s = 20\nstale_after_s = \"5\"\n\
                    [mqtt]\nurl = 1\nca_file = \"Cargo.toml\"\n";
        let e = load_str_with(text, &env()).unwrap_err();
        let keys: Vec<&str> = e.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["mqtt.url", "sensor.stale_after_s", "control.off_above_lux"],
            "{e}"
        );
        assert!(
            e.problems().iter().all(|p| p.reason.contains("must be a")),
            "{e}"
        );
    }

    #[test]
    fn hostname_is_read_from_the_system() {
        // Every Linux system has one of the two files; the value only needs to be non-empty.
        assert!(read_hostname().is_some_and(|h| !h.is_empty()));
    }

    #[test]
    fn empty_text_gives_the_defaults() {
        let s = load_str_with("", &env()).unwrap();
        assert_eq!(s.device.id, "host");
    }
}
