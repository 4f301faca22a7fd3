#![no_main]
//! rpm header blob decoding: every offset and count comes from the input.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::rpm::header;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = header::parse_header(data) {
        assert!(!h.name.is_empty());
        let _ = h.evr();
        let _ = h.source();
    }
});
