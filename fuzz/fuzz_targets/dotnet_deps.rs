#![no_main]
//! .NET *.deps.json parser.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::dotnet::parse_deps_json;

fuzz_target!(|data: &[u8]| {
    let _ = parse_deps_json(data);
});
