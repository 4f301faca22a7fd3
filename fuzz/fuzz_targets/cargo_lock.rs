#![no_main]
//! TODO(skeleton): fuzz target cargo_lock.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
