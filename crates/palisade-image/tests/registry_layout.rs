//! OCI layout directories, `docker save`-style archives and OCI archives: built for real in a
//! temp dir (skopeo converts the layout into the archive formats), then resolved and read.

mod registry_support;

use std::io::Read;

use palisade_image::source::{archive, layout};
use palisade_image::{ImageError, Limits};
use registry_support::*;

#[test]
fn layout_by_tag_digest_and_platform() {
    let dir = tempfile::tempdir().unwrap();
    let (single, amd, arm, idx) = build_test_layout(dir.path(), "layout");
    let limits = Limits::default();

    let img = layout::open(dir.path(), Some("v1"), None, &limits).unwrap();
    assert_eq!(img.target.kind, "oci-layout");
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
    let media: Vec<&str> = img.layers.iter().map(|l| l.media_type.as_str()).collect();
    assert_eq!(
        media,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar"
        ]
    );
    let files = image_files(&img);
    assert_eq!(files["etc/marker"], b"layout");
    assert_eq!(files["usr/lib/zstd-layer.txt"], b"zstd layer content");
    assert_eq!(files["opt/plain.txt"], b"plain layer content");
    let cfg = img.config.as_ref().unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"][0], single.diff_ids[0].as_str());

    let by_digest = layout::open(dir.path(), Some(&single.manifest_digest), None, &limits).unwrap();
    assert_eq!(by_digest.target.layers, single.layer_digests);

    let multi = layout::open(dir.path(), Some("multi"), None, &limits).unwrap();
    assert_eq!(multi.target.digest.as_deref(), Some(idx.as_str()));
    assert_eq!(multi.target.layers, amd.layer_digests);
    assert_eq!(image_files(&multi)["etc/arch"], b"amd64");
    let multi_arm = layout::open(dir.path(), Some("multi"), Some("linux/arm64"), &limits).unwrap();
    assert_eq!(multi_arm.target.layers, arm.layer_digests);
    assert_eq!(multi_arm.target.platform.as_deref(), Some("linux/arm64/v8"));
    assert_eq!(image_files(&multi_arm)["etc/arch"], b"arm64");

    let err = layout::open(dir.path(), Some("multi"), Some("linux/s390x"), &limits).unwrap_err();
    assert!(matches!(err, ImageError::PlatformNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64/v8"),
        "{err}"
    );
    // A single-platform image asked for another platform is refused, not scanned.
    let err = layout::open(dir.path(), Some("v1"), Some("linux/arm64"), &limits).unwrap_err();
    assert!(matches!(err, ImageError::PlatformNotFound { .. }), "{err}");
    // Several images and no tag: the error names the tags.
    let err = layout::open(dir.path(), None, None, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("multi") && err.contains("v1"), "{err}");
    let err = layout::open(dir.path(), Some("nope"), None, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("available: multi, v1"), "{err}");
}

#[test]
fn layout_detects_tampering_and_missing_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (single, _, _, _) = build_test_layout(dir.path(), "tamper");
    let limits = Limits::default();

    // Same-size corruption of a layer is caught while streaming, at EOF.
    let layer = blob_path(dir.path(), &single.layer_digests[2]);
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[600] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let img = layout::open(dir.path(), Some("v1"), None, &limits).unwrap();
    let err = (img.layers[2].open)()
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&single.layer_digests[2]), "{err}");

    // A missing layer fails at open time, naming the blob.
    std::fs::remove_file(blob_path(dir.path(), &single.layer_digests[1])).unwrap();
    let err = layout::open(dir.path(), Some("v1"), None, &limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing") && err.contains(&single.layer_digests[1]),
        "{err}"
    );

    // A tampered config is a digest mismatch.
    let cfg = blob_path(dir.path(), &single.config_digest);
    let mut c = std::fs::read(&cfg).unwrap();
    c[2] ^= 1;
    std::fs::write(&cfg, &c).unwrap();
    let err = layout::open(dir.path(), Some("v1"), None, &limits).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");

    // A blob replaced by a symlink to a device is refused, not read forever.
    let m = blob_path(dir.path(), &single.manifest_digest);
    std::fs::remove_file(&m).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &m).unwrap();
    let err = layout::open(dir.path(), Some("v1"), None, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");

    // Not a layout at all.
    let empty = tempfile::tempdir().unwrap();
    let err = layout::open(empty.path(), None, None, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no oci-layout"), "{err}");

    // Oversized manifests are refused by the limit.
    let dir2 = tempfile::tempdir().unwrap();
    build_test_layout(dir2.path(), "x");
    let tiny = Limits {
        max_manifest_bytes: 100,
        ..Limits::default()
    };
    let err = layout::open(dir2.path(), Some("v1"), None, &tiny).unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");
}

#[test]
fn docker_and_oci_archives_from_skopeo() {
    if !require_skopeo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layout");
    let (_, _, arm, _) = build_test_layout(&src, "archive");
    let limits = Limits::default();
    // Docker image formats cannot carry zstd layers: use a gzip + uncompressed image.
    let gz_src = dir.path().join("layout-gz");
    init_layout(&gz_src);
    let mut layers = standard_layers("archive");
    layers[1].compression = Compression::Gzip;
    let single = add_image(&gz_src, "linux", "amd64", None, &layers);
    write_index_json(
        &gz_src,
        &[(
            OCI_MANIFEST,
            &single.manifest_digest,
            single.manifest_size,
            "v1",
        )],
    );
    let src_v1 = format!("oci:{}:v1", gz_src.display());

    // docker save format (manifest.json + uncompressed layers named by diff_id).
    let docker_tar = dir.path().join("image-docker.tar");
    skopeo(&[
        "copy",
        &src_v1,
        &format!(
            "docker-archive:{}:example.com/test:v1",
            docker_tar.display()
        ),
    ]);
    let img = archive::open(&docker_tar, None, &limits).unwrap();
    assert_eq!(img.target.kind, "docker-archive");
    assert_eq!(
        img.target.config_digest.as_deref(),
        Some(single.config_digest.as_str())
    );
    assert_eq!(
        img.target.layers, single.diff_ids,
        "uncompressed layers are named by diff_id"
    );
    assert_eq!(img.target.platform.as_deref(), Some("linux/amd64"));
    let files = image_files(&img);
    assert_eq!(files["etc/marker"], b"archive");
    assert_eq!(files["usr/lib/zstd-layer.txt"], b"zstd layer content");
    assert_eq!(files["opt/plain.txt"], b"plain layer content");

    // OCI archive (a layout inside a tar), multi-platform.
    let oci_tar = dir.path().join("image-oci.tar");
    skopeo(&[
        "copy",
        "--all",
        &format!("oci:{}:multi", src.display()),
        &format!("oci-archive:{}:multi", oci_tar.display()),
    ]);
    let img = archive::open(&oci_tar, Some("linux/arm64/v8"), &limits).unwrap();
    assert_eq!(img.target.kind, "oci-archive");
    assert_eq!(img.target.layers, arm.layer_digests);
    assert_eq!(image_files(&img)["etc/arch"], b"arm64");

    // Tamper with one byte of a layer inside the docker archive: caught at EOF of that layer.
    let mut bytes = std::fs::read(&docker_tar).unwrap();
    let needle = b"plain layer content";
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("uncompressed layer content in the archive");
    bytes[pos] = b'P';
    std::fs::write(&docker_tar, &bytes).unwrap();
    let img = archive::open(&docker_tar, None, &limits).unwrap();
    let mut errors = 0;
    for l in &img.layers {
        if let Err(e) = (l.open)().unwrap().read_to_end(&mut Vec::new()) {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("digest mismatch"), "{e}");
            errors += 1;
        }
    }
    assert_eq!(errors, 1);

    // A truncated archive is refused with a clear error.
    let truncated = dir.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = archive::open(&truncated, None, &limits).unwrap_err();
    assert!(
        matches!(err, ImageError::Malformed { .. }),
        "unexpected error kind: {err}"
    );
}

/// Appends a file or symlink to a tar being built.
fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], link: Option<&str>) {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    if let Some(target) = link {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, name, target).unwrap();
    } else {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }
}

/// The classic `docker save` layout: `<id>/layer.tar`, `<config hex>.json`, `manifest.json`,
/// `repositories`, and a symlink for a layer that appears twice.
fn classic_docker_save(
    config_platform: (&str, &str),
    tamper_config: bool,
) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    let l1 = make_tar(&[("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n".to_vec())]);
    let l2 = make_tar(&[("app/VERSION", b"2".to_vec())]);
    let diff_ids = vec![sha256(&l1), sha256(&l2), sha256(&l1)];
    let config = serde_json::json!({
        "os": config_platform.0, "architecture": config_platform.1,
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    });
    let mut config_bytes = serde_json::to_vec(&config).unwrap();
    let config_hex = sha256(&config_bytes)[7..].to_string();
    if tamper_config {
        config_bytes.push(b' ');
    }
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": ["example/classic:1"],
        "Layers": ["aaaa/layer.tar", "bbbb/layer.tar", "cccc/layer.tar"]
    }]);
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "aaaa/VERSION", b"1.0", None);
    append(&mut b, "aaaa/layer.tar", &l1, None);
    append(&mut b, "bbbb/layer.tar", &l2, None);
    append(&mut b, "cccc/layer.tar", b"", Some("../aaaa/layer.tar"));
    append(&mut b, &format!("{config_hex}.json"), &config_bytes, None);
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
        None,
    );
    append(
        &mut b,
        "repositories",
        br#"{"example/classic":{"1":"aaaa"}}"#,
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("classic.tar");
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    (dir, p, diff_ids)
}

#[test]
fn classic_docker_save_with_shared_layer() {
    let limits = Limits::default();
    let (_d, p, diff_ids) = classic_docker_save(("linux", "amd64"), false);
    let img = archive::open(&p, None, &limits).unwrap();
    assert_eq!(img.target.kind, "docker-archive");
    assert_eq!(img.target.layers, diff_ids);
    assert_eq!(img.layers.len(), 3);
    let files = image_files(&img);
    assert_eq!(files["app/VERSION"], b"2");
    assert!(files["etc/os-release"].starts_with(b"ID=alpine"));
    // Asked for another platform: refused rather than scanning the wrong image.
    let err = archive::open(&p, Some("linux/arm64"), &limits).unwrap_err();
    assert!(matches!(err, ImageError::PlatformNotFound { .. }), "{err}");

    // The config file is named by its digest; a modified config is caught.
    let (_d, p, _) = classic_docker_save(("linux", "amd64"), true);
    let err = archive::open(&p, None, &limits).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn archive_image_chosen_by_tag() {
    if !require_skopeo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layout");
    let (single, _, _, _) = build_test_layout(&src, "by-tag");
    let oci_tar = dir.path().join("by-tag.tar");
    skopeo(&[
        "copy",
        "--preserve-digests",
        &format!("oci:{}:v1", src.display()),
        &format!("oci-archive:{}:v1", oci_tar.display()),
    ]);
    let limits = Limits::default();
    let img = archive::open_ref(&oci_tar, Some("v1"), None, &limits).unwrap();
    assert_eq!(
        img.target.digest.as_deref(),
        Some(single.manifest_digest.as_str())
    );
    assert_eq!(img.target.layers, single.layer_digests);
    assert_eq!(image_files(&img)["etc/marker"], b"by-tag");
    let err = archive::open_ref(&oci_tar, Some("nope"), None, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("available: v1"), "{err}");

    let (_d, classic, _) = classic_docker_save(("linux", "amd64"), false);
    assert!(archive::open_ref(&classic, Some("example/classic:1"), None, &limits).is_ok());
    assert!(archive::open_ref(&classic, Some("1"), None, &limits).is_ok());
    let err = archive::open_ref(&classic, Some("2"), None, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("available: example/classic:1"), "{err}");
}
