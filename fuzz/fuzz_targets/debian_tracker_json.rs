#![no_main]
//! Debian security tracker JSON export importer.
use libfuzzer_sys::fuzz_target;
use palisade_vuln::import::ImportStats;
use palisade_vuln::import::debian::import_tracker_json;

fuzz_target!(|data: &[u8]| {
    let mut stats = ImportStats::default();
    let _ = import_tracker_json(data, &mut stats, &mut |_| {});
});
