#![no_main]
//! Python core metadata (METADATA / PKG-INFO) parser.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::python::{normalize_name, parse_metadata};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_metadata(data) {
        let _ = normalize_name(&m.name);
    }
});
