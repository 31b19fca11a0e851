//! `P/mock/set` payloads: any bytes must parse or be rejected with an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = greenhoused::hw::mock::parse_mock_set(data);
});
