#![no_main]
//! Gemfile.lock and installed gemspec readers.
use libfuzzer_sys::fuzz_target;
use palisade_image::catalog::ruby::{parse_gemfile_lock, parse_gemspec};

fuzz_target!(|data: &[u8]| {
    let _ = parse_gemfile_lock(data);
    let _ = parse_gemspec(data);
});
