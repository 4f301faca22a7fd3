#![no_main]
//! Manifest / index / config JSON parsing and platform selection must never panic, whatever
//! a registry or a layout hands us.
use libfuzzer_sys::fuzz_target;
use palisade_image::registry::manifest::{self, Manifest};
use palisade_image::registry::platform::Platform;

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some(manifest::OCI_INDEX),
    Some(manifest::DOCKER_MANIFEST),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    if let Ok(Manifest::Index(index)) = manifest::parse_manifest(body, content_type) {
        for wanted in [
            "linux/amd64",
            "linux/arm64",
            "linux/arm",
            "windows/amd64/v1",
        ] {
            let p = Platform::parse(wanted).ok();
            let _ = index.select("fuzz", p.as_ref());
        }
        let _ = index.select("fuzz", None);
    }
    if let Ok((_, info)) = manifest::parse_config(body) {
        let _ = manifest::check_config_platform(
            "fuzz",
            Platform::parse("linux/amd64").ok().as_ref(),
            &info,
        );
    }
    if let Ok(s) = std::str::from_utf8(body) {
        let _ = Platform::parse(s);
        let _ = palisade_image::registry::reference::ImageReference::parse(s);
        let _ = palisade_image::registry::parse_bearer_challenge(s);
    }
});
