#![no_main]
//! composer.lock and vendor/composer/installed.json parsers.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::php::{parse_composer_lock, parse_installed_json};

fuzz_target!(|data: &[u8]| {
    let _ = parse_composer_lock(data);
    let _ = parse_installed_json(data);
});
