//! `P/light/set` payloads: any bytes must parse or be rejected with an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = greenhoused::mqtt::command::parse_light_set(data) {
        // The reason is published on P/light/set/error: it must render.
        let _ = e.to_string();
    }
});
