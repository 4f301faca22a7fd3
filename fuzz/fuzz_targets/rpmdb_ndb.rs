#![no_main]
//! ndb Packages.db reader (slots, blobs, checksums), then header decoding of
//! whatever blobs come out. Must end in Ok or Err: no panic, hang or huge allocation.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::rpm;

fuzz_target!(|data: &[u8]| {
    if let Ok(blobs) = rpm::ndb::read_packages(data) {
        for (_, blob) in blobs {
            let _ = rpm::header::parse_header(&blob);
        }
    }
});
