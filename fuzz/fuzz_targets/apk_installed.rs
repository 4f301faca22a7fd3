#![no_main]
//! apk installed database parsing: must never panic.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::apk;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = apk::parse_installed(data) {
        for p in apk::to_packages(&entries, "/lib/apk/db/installed") {
            assert!(!p.name.is_empty() && !p.version.is_empty());
        }
    }
});
