//! DNS payloads copied from a process's send buffer are attacker-controlled: parsing them yields a
//! question with a bounded, printable name or an error, never a panic or a loop.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_sensor::attrib::decode::parse_dns_payload;

fuzz_target!(|data: &[u8]| {
    if let Ok(question) = parse_dns_payload(data) {
        assert!(question.name.len() <= 255 * 4);
        assert!(question.name.chars().all(|c| c.is_ascii_graphic()));
    }
});
