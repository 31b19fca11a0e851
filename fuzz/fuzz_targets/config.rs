//! Configuration text: any input must load or be rejected with a list of problems, never panic.
//!
//! A fixed environment (no `$CREDENTIALS_DIRECTORY`, fixed host name) keeps runs reproducible. Inputs that name
//! files (`password_file`, `ca_file`, ...) read them relative to the working directory.
#![no_main]

use greenhoused::config::{load_str_with, Environment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = Environment {
        credentials_dir: None,
        hostname: Some("fuzz-host".to_string()),
    };
    match load_str_with(text, &env) {
        // What --check-config prints.
        Ok(settings) => {
            let _ = greenhoused::config::render_effective(&settings);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
