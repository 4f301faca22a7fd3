#![no_main]
//! TODO(skeleton): fuzz target python_metadata.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
