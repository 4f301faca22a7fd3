#![no_main]
//! `~/.docker/config.json` parsing and credential lookup (helpers stubbed out) must never panic.
use libfuzzer_sys::fuzz_target;
use palisade_image::ImageError;
use palisade_image::registry::auth::{self, Credential};

fn no_helper(_: &str, _: &str) -> Result<Option<Credential>, ImageError> {
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = auth::parse_docker_config(data) {
        let mut hosts: Vec<String> = cfg.auths.keys().cloned().collect();
        hosts.extend(cfg.cred_helpers.keys().cloned());
        hosts.push("docker.io".into());
        for h in hosts.iter().take(64) {
            let _ = cfg.credential_for(h, &no_helper);
        }
    }
    let _ = auth::parse_helper_answer(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = auth::decode_auth_field(s);
    }
});
