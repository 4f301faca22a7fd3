//! Cgroup paths come from the host's cgroup tree, which containers can extend: container ids
//! parsed from any path are 64 lower-case hex digits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_sensor::attrib::parse_container_id;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data)
        && let Some((_, id)) = parse_container_id(path)
    {
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
});
