//! Validation. STUB.
use super::Settings;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration invalid")]
    Invalid(Vec<Problem>),
}

pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let _ = path;
    todo!()
}

pub fn load_str(text: &str) -> Result<Settings, ConfigError> {
    let _ = text;
    todo!()
}
