#![no_main]
//! TODO(skeleton): fuzz target ruby_gemfile_lock.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
