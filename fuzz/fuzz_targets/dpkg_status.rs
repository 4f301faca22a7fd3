#![no_main]
//! dpkg status / status.d parsing: must never panic, and every installed entry must become a
//! package with a name.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::dpkg;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = dpkg::parse_status(data) {
        for p in dpkg::to_packages(&entries, dpkg::STATUS_PATH) {
            assert!(!p.name.is_empty());
        }
    }
});
