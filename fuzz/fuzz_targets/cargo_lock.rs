#![no_main]
//! Cargo.lock parser, cargo-auditable JSON and binary section reader.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::cargo::{parse_audit_json, parse_auditable_binary, parse_cargo_lock};

fuzz_target!(|data: &[u8]| {
    let _ = parse_cargo_lock(data);
    let _ = parse_audit_json(data);
    let _ = parse_auditable_binary(data);
});
