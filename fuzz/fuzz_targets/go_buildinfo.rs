#![no_main]
//! Go build info: whole binaries, bare build info blobs (inline and pointer formats), module info.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::golang::{
    AddressSpace, parse_buildinfo_blob, parse_go_binary, parse_modinfo, stdlib_version,
};

/// The fuzz input itself mapped at address 0, so pointers can land somewhere.
struct Flat<'a>(&'a [u8]);
impl AddressSpace for Flat<'_> {
    fn read(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.0.get(start..end)
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_go_binary(data);
    let mut blob = b"\xff Go buildinf:".to_vec();
    blob.extend_from_slice(data);
    if let Ok(info) = parse_buildinfo_blob(&blob, &Flat(data)) {
        let _ = stdlib_version(&info.go_version);
    }
    let _ = parse_modinfo(data);
});
