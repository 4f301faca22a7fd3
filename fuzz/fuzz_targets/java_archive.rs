#![no_main]
//! Java archive reader (zip, nested archives, manifests, pom.properties) under tight limits.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::java::{
    ArchiveLimits, parse_java_archive, parse_manifest, parse_pom_properties,
};

fuzz_target!(|data: &[u8]| {
    let limits = ArchiveLimits {
        max_total_bytes: 8 << 20,
        ..ArchiveLimits::default()
    };
    let _ = parse_java_archive("/fuzz.jar", data, &limits);
    let text = String::from_utf8_lossy(data);
    let _ = parse_manifest(&text);
    let _ = parse_pom_properties(&text);
});
