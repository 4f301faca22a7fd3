#![no_main]
//! OSV YAML importer (PyPA encoding), with its nesting guard.
use libfuzzer_sys::fuzz_target;
use palisade_vuln::import::osv;

fuzz_target!(|data: &[u8]| {
    let _ = osv::parse_yaml(data);
});
