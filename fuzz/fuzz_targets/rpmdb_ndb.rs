#![no_main]
//! TODO(skeleton): fuzz target rpmdb_ndb.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
