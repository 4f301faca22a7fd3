#![no_main]
//! npm package-lock.json (v1–v3) and package.json parsers.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::npm::{parse_package_json, parse_package_lock};

fuzz_target!(|data: &[u8]| {
    let _ = parse_package_lock(data);
    let _ = parse_package_json(data);
});
