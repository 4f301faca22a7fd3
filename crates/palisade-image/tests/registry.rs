//! Pulls from REAL local registries (Debian's docker-registry): anonymous on
//! `$PALISADE_TEST_REGISTRY`, htpasswd (ciuser/cipass) on `$PALISADE_TEST_REGISTRY_AUTH`.
//! Each test builds its own small images and pushes them with skopeo, so it depends only on the
//! registries running. Run through scripts/test.sh, which starts them; without the variables
//! these tests fail unless PALISADE_SKIP_INFRA_TESTS=1.

mod registry_support;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use palisade_image::cache::BlobCache;
use palisade_image::progress::NoProgress;
use palisade_image::registry::{self, RegistryOptions};
use palisade_image::{ImageError, Limits};
use registry_support::*;

fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn insecure() -> RegistryOptions {
    RegistryOptions {
        insecure: true,
        // Never pick up the developer's own docker config in tests.
        docker_config: Some("/nonexistent/palisade-test/config.json".into()),
        ..RegistryOptions::default()
    }
}

/// Builds the test layout and pushes `v1` (and `multi` with --all) to `registry/repo`.
fn push_test_images(
    registry: &str,
    repo: &str,
    creds: Option<&str>,
) -> (
    BuiltImage,
    BuiltImage,
    BuiltImage,
    String,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let (single, amd, arm, idx) = build_test_layout(dir.path(), repo);
    for (tag, all) in [("v1", false), ("multi", true)] {
        let src = format!("oci:{}:{tag}", dir.path().display());
        let dst = format!("docker://{registry}/{repo}:{tag}");
        let mut args = vec!["copy", "--dest-tls-verify=false", "--preserve-digests"];
        if all {
            args.push("--all");
        }
        if let Some(c) = creds {
            args.push("--dest-creds");
            args.push(c);
        }
        args.push(&src);
        args.push(&dst);
        skopeo(&args);
    }
    (single, amd, arm, idx, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_verifies_and_caches_layers() {
    let Some(reg) = infra_env("PALISADE_TEST_REGISTRY") else {
        return;
    };
    if !require_skopeo() {
        return;
    }
    install_tls();
    let repo = unique_repo("pull");
    let (single, _, _, _, _dir) = push_test_images(&reg, &repo, None);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path().to_path_buf()).unwrap();
    let limits = Limits::default();
    let reference = format!("{reg}/{repo}:v1");

    let progress = Arc::new(RecordingProgress::default());
    let img = registry::resolve(&reference, &insecure(), &cache, &limits, progress.clone())
        .await
        .unwrap();
    assert_eq!(img.target.kind, "image");
    assert_eq!(img.target.name, reference);
    assert_eq!(
        img.target.digest.as_deref(),
        Some(single.manifest_digest.as_str())
    );
    assert_eq!(
        img.target.config_digest.as_deref(),
        Some(single.config_digest.as_str())
    );
    assert_eq!(img.target.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(img.target.layers, single.layer_digests);
    // Every layer was downloaded once, with progress for its full size.
    let started = progress.started.lock().unwrap().clone();
    assert_eq!(started.len(), 3, "{started:?}");
    let sizes: u64 = img.layers.iter().map(|l| l.size).sum();
    assert_eq!(progress.bytes.load(Ordering::Relaxed), sizes);
    assert_eq!(progress.finished.load(Ordering::Relaxed), 3);
    let files = image_files(&img);
    assert_eq!(files["etc/marker"], repo.as_bytes());
    assert_eq!(files["usr/lib/zstd-layer.txt"], b"zstd layer content");
    assert_eq!(files["opt/plain.txt"], b"plain layer content");
    assert_eq!(img.config.as_ref().unwrap()["os"], "linux");

    // Warm: nothing downloaded again; by digest works too.
    let progress = Arc::new(RecordingProgress::default());
    let pinned = format!("{reg}/{repo}@{}", single.manifest_digest);
    let again = registry::resolve(&pinned, &insecure(), &cache, &limits, progress.clone())
        .await
        .unwrap();
    assert!(progress.started.lock().unwrap().is_empty());
    assert_eq!(again.target.layers, single.layer_digests);

    // A same-size corruption of a cached layer: the verifying opener reports it at EOF and
    // evicts the entry; the next resolve fetches it again and it reads cleanly.
    let victim = cache_dir
        .path()
        .join("sha256")
        .join(&single.layer_digests[0][7..]);
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    let err = (again.layers[0].open)()
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&single.layer_digests[0]), "{err}");
    assert!(!victim.exists());
    let progress = Arc::new(RecordingProgress::default());
    let refetched = registry::resolve(&reference, &insecure(), &cache, &limits, progress.clone())
        .await
        .unwrap();
    assert_eq!(progress.started.lock().unwrap().len(), 1);
    assert_eq!(image_files(&refetched)["etc/marker"], repo.as_bytes());

    // Serial downloads into a fresh cache give the same result.
    let cache2_dir = tempfile::tempdir().unwrap();
    let cache2 = BlobCache::new(cache2_dir.path().to_path_buf()).unwrap();
    let serial = RegistryOptions {
        max_concurrent_downloads: 1,
        ..insecure()
    };
    let img2 = registry::resolve(&reference, &serial, &cache2, &limits, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(image_files(&img2), files);
}

#[tokio::test(flavor = "multi_thread")]
async fn selects_platform_from_index() {
    let Some(reg) = infra_env("PALISADE_TEST_REGISTRY") else {
        return;
    };
    if !require_skopeo() {
        return;
    }
    install_tls();
    let repo = unique_repo("multi");
    let (_, amd, arm, idx, _dir) = push_test_images(&reg, &repo, None);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path().to_path_buf()).unwrap();
    let limits = Limits::default();
    let reference = format!("{reg}/{repo}:multi");

    let img = registry::resolve(
        &reference,
        &insecure(),
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(img.target.digest.as_deref(), Some(idx.as_str()));
    assert_eq!(img.target.layers, amd.layer_digests);
    assert_eq!(image_files(&img)["etc/arch"], b"amd64");

    let opts = RegistryOptions {
        platform: Some("linux/arm64".into()),
        ..insecure()
    };
    let img = registry::resolve(&reference, &opts, &cache, &limits, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(img.target.layers, arm.layer_digests);
    assert_eq!(img.target.platform.as_deref(), Some("linux/arm64/v8"));
    assert_eq!(image_files(&img)["etc/arch"], b"arm64");

    let opts = RegistryOptions {
        platform: Some("linux/s390x".into()),
        ..insecure()
    };
    let err = registry::resolve(&reference, &opts, &cache, &limits, Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::PlatformNotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("available: linux/amd64, linux/arm64/v8"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_what_to_do() {
    let Some(reg) = infra_env("PALISADE_TEST_REGISTRY") else {
        return;
    };
    if !require_skopeo() {
        return;
    }
    install_tls();
    let repo = unique_repo("errors");
    push_test_images(&reg, &repo, None);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path().to_path_buf()).unwrap();
    let limits = Limits::default();

    let err = registry::resolve(
        &format!("{reg}/{repo}:missing"),
        &insecure(),
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("not found") && err.contains("manifest unknown"),
        "{err}"
    );

    // Plain-HTTP registry without --insecure: TLS fails and the hint says what to pass.
    let secure = RegistryOptions {
        insecure: false,
        ..insecure()
    };
    let err = registry::resolve(
        &format!("{reg}/{repo}:v1"),
        &secure,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("--insecure"), "{err}");

    // Manifest above the size limit.
    let tiny = Limits {
        max_manifest_bytes: 64,
        ..Limits::default()
    };
    let err = registry::resolve(
        &format!("{reg}/{repo}:v1"),
        &insecure(),
        &cache,
        &tiny,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");

    // Nothing listens on the port.
    let err = registry::resolve(
        "127.0.0.1:9/x:1",
        &insecure(),
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot connect"), "{err}");

    // A layer budget smaller than the image.
    let small = Limits {
        max_image_bytes: 10,
        ..Limits::default()
    };
    let err = registry::resolve(
        &format!("{reg}/{repo}:v1"),
        &insecure(),
        &cache,
        &small,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_registry() {
    let Some(reg) = infra_env("PALISADE_TEST_REGISTRY_AUTH") else {
        return;
    };
    if !require_skopeo() {
        return;
    }
    install_tls();
    let repo = unique_repo("auth");
    let (single, _, _, _, _dir) = push_test_images(&reg, &repo, Some("ciuser:cipass"));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path().to_path_buf()).unwrap();
    let limits = Limits::default();
    let reference = format!("{reg}/{repo}:v1");

    let err = registry::resolve(
        &reference,
        &insecure(),
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImageError::Auth { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("authentication required for {reg}")),
        "{msg}"
    );
    assert!(msg.contains("--username/--password"), "{msg}");

    let wrong = RegistryOptions {
        username: Some("ciuser".into()),
        password: Some("wrong".into()),
        ..insecure()
    };
    let err = registry::resolve(&reference, &wrong, &cache, &limits, Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("rejected"), "{err}");

    let half = RegistryOptions {
        username: Some("ciuser".into()),
        ..insecure()
    };
    assert!(
        registry::resolve(&reference, &half, &cache, &limits, Arc::new(NoProgress))
            .await
            .is_err()
    );

    let good = RegistryOptions {
        username: Some("ciuser".into()),
        password: Some("cipass".into()),
        ..insecure()
    };
    let img = registry::resolve(&reference, &good, &cache, &limits, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(img.target.layers, single.layer_digests);
    assert_eq!(image_files(&img)["opt/plain.txt"], b"plain layer content");

    // Credentials from a docker config.json (`auths` with base64 `auth`), into a fresh cache
    // so the layers really come through the authenticated path.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"http://{reg}/v2/":{{"auth":"Y2l1c2VyOmNpcGFzcw=="}}}}}}"#),
    )
    .unwrap();
    let cache2_dir = tempfile::tempdir().unwrap();
    let cache2 = BlobCache::new(cache2_dir.path().to_path_buf()).unwrap();
    let from_file = RegistryOptions {
        docker_config: Some(cfg.clone()),
        ..insecure()
    };
    let img = registry::resolve(
        &reference,
        &from_file,
        &cache2,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(image_files(&img)["etc/marker"], repo.as_bytes());

    // A malformed docker config is reported, naming the file.
    std::fs::write(&cfg, "{not json").unwrap();
    let err = registry::resolve(
        &reference,
        &from_file,
        &cache2,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("config.json"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_schema2_manifest_and_list() {
    let Some(reg) = infra_env("PALISADE_TEST_REGISTRY") else {
        return;
    };
    if !require_skopeo() {
        return;
    }
    install_tls();
    let repo = unique_repo("v2s2");
    // Docker schema 2 cannot carry zstd: gzip + uncompressed layers.
    let dir = tempfile::tempdir().unwrap();
    init_layout(dir.path());
    // Unique layer contents: skopeo's blob-info cache would otherwise substitute the zstd
    // blob pushed by another test for the same diff_id.
    let mut layers = standard_layers(&repo);
    layers[1] = LayerSpec {
        files: vec![("usr/lib/gz.txt", format!("gzip {repo}").into_bytes())],
        compression: Compression::Gzip,
    };
    layers[2].files[0].1 = format!("plain {repo}").into_bytes();
    let single = add_image(dir.path(), "linux", "amd64", None, &layers);
    let arm = add_image(
        dir.path(),
        "linux",
        "arm64",
        Some("v8"),
        &[LayerSpec {
            files: vec![("etc/arch", format!("arm64 {repo}").into_bytes())],
            compression: Compression::Gzip,
        }],
    );
    let (idx, idx_size) = add_index(
        dir.path(),
        &[
            (&single, "linux", "amd64", None),
            (&arm, "linux", "arm64", Some("v8")),
        ],
    );
    write_index_json(
        dir.path(),
        &[
            (
                OCI_MANIFEST,
                &single.manifest_digest,
                single.manifest_size,
                "v1",
            ),
            (OCI_INDEX, &idx, idx_size, "multi"),
        ],
    );
    for (tag, all) in [("v1", false), ("multi", true)] {
        let src = format!("oci:{}:{tag}", dir.path().display());
        let dst = format!("docker://{reg}/{repo}:{tag}");
        let mut args = vec!["copy", "--dest-tls-verify=false", "--format", "v2s2"];
        if all {
            args.push("--all");
        }
        args.push(&src);
        args.push(&dst);
        skopeo(&args);
    }
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path().to_path_buf()).unwrap();
    let limits = Limits::default();
    let img = registry::resolve(
        &format!("{reg}/{repo}:v1"),
        &insecure(),
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert!(
        img.layers.iter().all(|l| l
            .media_type
            .starts_with("application/vnd.docker.image.rootfs.diff.tar")),
        "{:?}",
        img.layers
    );
    let files = image_files(&img);
    assert_eq!(files["etc/marker"], repo.as_bytes());
    assert_eq!(files["opt/plain.txt"], format!("plain {repo}").as_bytes());
    assert_eq!(files["usr/lib/gz.txt"], format!("gzip {repo}").as_bytes());

    let opts = RegistryOptions {
        platform: Some("linux/arm64/v8".into()),
        ..insecure()
    };
    let img = registry::resolve(
        &format!("{reg}/{repo}:multi"),
        &opts,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(
        image_files(&img)["etc/arch"],
        format!("arm64 {repo}").as_bytes()
    );
}
