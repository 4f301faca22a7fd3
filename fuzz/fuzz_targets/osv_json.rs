#![no_main]
//! OSV JSON importer, and OSV zip archives when the input starts with the zip magic.
use libfuzzer_sys::fuzz_target;
use palisade_vuln::import::{Format, ImportStats, import_bytes, osv};

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"PK") {
        let mut stats = ImportStats::default();
        let _ = import_bytes("fuzz.zip", Format::Zip, data, &mut stats, &mut |_| {});
    } else {
        let _ = osv::parse_json(data);
    }
});
