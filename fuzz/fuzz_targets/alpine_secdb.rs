#![no_main]
//! Alpine secdb JSON importer.
use libfuzzer_sys::fuzz_target;
use palisade_vuln::import::ImportStats;
use palisade_vuln::import::alpine::import_secdb;

fuzz_target!(|data: &[u8]| {
    let mut stats = ImportStats::default();
    let _ = import_secdb(data, &mut stats, &mut |_| {});
});
