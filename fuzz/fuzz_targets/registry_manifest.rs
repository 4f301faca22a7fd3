#![no_main]
//! TODO(skeleton): fuzz target registry_manifest.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
