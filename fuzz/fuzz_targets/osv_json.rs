#![no_main]
//! TODO(skeleton): fuzz target osv_json.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
