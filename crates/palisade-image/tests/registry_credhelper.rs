//! Credentials from a docker credential helper (`credHelpers` / `credsStore` in config.json),
//! run for real as `docker-credential-<name> get` against the htpasswd registry. This file is
//! its own test binary because it puts the helper on PATH for the whole process.

mod registry_support;

use std::sync::Arc;

use palisade_image::cache::BlobCache;
use palisade_image::progress::NoProgress;
use palisade_image::registry::{self, RegistryOptions};
use palisade_image::{ImageError, Limits};
use registry_support::*;

const HELPER: &str = r#"#!/bin/sh
[ "$1" = get ] || exit 2
read server
case "$server" in
  "$EXPECTED_SERVER") echo '{"ServerURL":"'"$server"'","Username":"ciuser","Secret":"cipass"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#;

#[tokio::test(flavor = "multi_thread")]
async fn credential_helper_supplies_credentials() {
    let Some(reg) = infra_env("PALISADE_TEST_REGISTRY_AUTH") else {
        return;
    };
    if !require_skopeo() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-palisadetest");
    std::fs::write(&helper, HELPER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: the only test in this binary, and it sets the environment before starting any
    // thread of its own that reads it.
    unsafe {
        std::env::set_var("PATH", path);
        std::env::set_var("EXPECTED_SERVER", &reg);
    }

    let repo = unique_repo("helper");
    let dir = tempfile::tempdir().unwrap();
    let (single, _, _, _) = build_test_layout(dir.path(), &repo);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        "--dest-creds",
        "ciuser:cipass",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("docker://{reg}/{repo}:v1"),
    ]);

    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.json");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path().to_path_buf()).unwrap();
    let limits = Limits::default();
    let reference = format!("{reg}/{repo}:v1");
    let opts = RegistryOptions {
        insecure: true,
        docker_config: Some(cfg.clone()),
        ..RegistryOptions::default()
    };

    // credHelpers entry for this registry.
    std::fs::write(
        &cfg,
        format!(r#"{{"credHelpers":{{"{reg}":"palisadetest"}}}}"#),
    )
    .unwrap();
    let img = registry::resolve(&reference, &opts, &cache, &limits, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(img.target.layers, single.layer_digests);
    assert_eq!(image_files(&img)["etc/marker"], repo.as_bytes());

    // credsStore for everything; the helper knows nothing for this server name → anonymous →
    // the registry demands authentication.
    unsafe {
        std::env::set_var("EXPECTED_SERVER", "some-other-registry.example");
    }
    std::fs::write(&cfg, r#"{"credsStore":"palisadetest"}"#).unwrap();
    let err = registry::resolve(&reference, &opts, &cache, &limits, Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("authentication required"), "{err}");

    // A helper that is not installed is named in the error.
    std::fs::write(
        &cfg,
        format!(r#"{{"credHelpers":{{"{reg}":"palisade-missing"}}}}"#),
    )
    .unwrap();
    let err = registry::resolve(&reference, &opts, &cache, &limits, Arc::new(NoProgress))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("docker-credential-palisade-missing"), "{err}");
}
