#![no_main]
//! Debian DSA/DLA list importer.
use libfuzzer_sys::fuzz_target;
use palisade_vuln::import::ImportStats;
use palisade_vuln::import::debian::{ListKind, import_list};

fuzz_target!(|data: &[u8]| {
    let mut stats = ImportStats::default();
    let _ = import_list(data, ListKind::Dsa, &mut stats, &mut |_| {});
});
