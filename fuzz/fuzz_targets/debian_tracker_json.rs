#![no_main]
//! TODO(skeleton): fuzz target debian_tracker_json.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
