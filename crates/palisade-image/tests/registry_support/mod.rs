//! Shared helpers for the registry / layout / archive integration tests: build real OCI image
//! layouts (gzip, zstd and uncompressed tar layers; multi-platform indexes), push them with
//! skopeo, and read layer contents back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use palisade_image::progress::Progress;
use palisade_image::source::ResolvedImage;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Clone, Copy, Debug)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub struct LayerSpec {
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub compression: Compression,
}

/// What was written for one platform image.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
    pub diff_ids: Vec<String>,
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn init_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

pub fn write_blob(dir: &Path, bytes: &[u8]) -> (String, u64) {
    let d = sha256(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    (d, bytes.len() as u64)
}

pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(&digest[7..])
}

pub fn make_tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn compress(tar: &[u8], c: Compression) -> (Vec<u8>, &'static str) {
    match c {
        Compression::None => (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            (
                e.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Compression::Zstd => (
            zstd::encode_all(tar, 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// Writes config, layers and manifest blobs for one platform image.
pub fn add_image(
    dir: &Path,
    os: &str,
    arch: &str,
    variant: Option<&str>,
    layers: &[LayerSpec],
) -> BuiltImage {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    for l in layers {
        let tar = make_tar(&l.files);
        diff_ids.push(sha256(&tar));
        let (blob, mt) = compress(&tar, l.compression);
        let (d, size) = write_blob(dir, &blob);
        layer_digests.push(d.clone());
        descs.push(json!({"mediaType": mt, "digest": d, "size": size}));
    }
    let mut config = json!({
        "architecture": arch, "os": os,
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": []
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let (config_digest, config_size) = write_blob(dir, &config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descs,
    });
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let (manifest_digest, manifest_size) = write_blob(dir, &mbytes);
    BuiltImage {
        manifest_digest,
        manifest_size,
        config_digest,
        layer_digests,
        diff_ids,
    }
}

/// Writes an OCI index blob listing platform images; returns (digest, size).
pub fn add_index(dir: &Path, images: &[(&BuiltImage, &str, &str, Option<&str>)]) -> (String, u64) {
    let manifests: Vec<_> = images
        .iter()
        .map(|(img, os, arch, variant)| {
            let mut p = json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = json!(v);
            }
            json!({"mediaType": OCI_MANIFEST, "digest": img.manifest_digest, "size": img.manifest_size, "platform": p})
        })
        .collect();
    let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    write_blob(dir, &serde_json::to_vec(&idx).unwrap())
}

/// Writes `index.json` with `(media type, digest, size, tag)` entries.
pub fn write_index_json(dir: &Path, entries: &[(&str, &str, u64, &str)]) {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(mt, d, s, tag)| {
            json!({"mediaType": mt, "digest": d, "size": s,
                   "annotations": {"org.opencontainers.image.ref.name": tag}})
        })
        .collect();
    let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
}

/// The standard three-layer test image: gzip, zstd and uncompressed layers.
pub fn standard_layers(marker: &str) -> Vec<LayerSpec> {
    vec![
        LayerSpec {
            files: vec![
                ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n".to_vec()),
                ("etc/marker", marker.as_bytes().to_vec()),
            ],
            compression: Compression::Gzip,
        },
        LayerSpec {
            files: vec![("usr/lib/zstd-layer.txt", b"zstd layer content".to_vec())],
            compression: Compression::Zstd,
        },
        LayerSpec {
            files: vec![("opt/plain.txt", b"plain layer content".to_vec())],
            compression: Compression::None,
        },
    ]
}

/// A layout holding one single-platform image tagged `v1` and a two-platform index tagged
/// `multi` (amd64 and arm64/v8). Returns (single, amd64, arm64, index digest).
pub fn build_test_layout(dir: &Path, marker: &str) -> (BuiltImage, BuiltImage, BuiltImage, String) {
    init_layout(dir);
    let single = add_image(dir, "linux", "amd64", None, &standard_layers(marker));
    let amd = add_image(
        dir,
        "linux",
        "amd64",
        None,
        &[LayerSpec {
            files: vec![("etc/arch", b"amd64".to_vec())],
            compression: Compression::Gzip,
        }],
    );
    let arm = add_image(
        dir,
        "linux",
        "arm64",
        Some("v8"),
        &[LayerSpec {
            files: vec![("etc/arch", b"arm64".to_vec())],
            compression: Compression::Zstd,
        }],
    );
    let (idx, idx_size) = add_index(
        dir,
        &[
            (&amd, "linux", "amd64", None),
            (&arm, "linux", "arm64", Some("v8")),
        ],
    );
    write_index_json(
        dir,
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
    (single, amd, arm, idx)
}

/// Decompresses (by magic bytes) and lists the files of a layer stream, reading to EOF so
/// digest verification fires.
pub fn layer_files(mut r: Box<dyn Read + Send>) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut raw = Vec::new();
    r.read_to_end(&mut raw)?;
    let tar_bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        out
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::decode_all(&raw[..])?
    } else {
        raw
    };
    let mut files = BTreeMap::new();
    let mut a = tar::Archive::new(&tar_bytes[..]);
    for e in a.entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        files.insert(name, data);
    }
    Ok(files)
}

/// All files of an image, later layers overriding earlier ones.
pub fn image_files(img: &ResolvedImage) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    for l in &img.layers {
        let r = (l.open)().unwrap();
        all.extend(layer_files(r).unwrap());
    }
    all
}

/// Counts what the engine reported.
#[derive(Default)]
pub struct RecordingProgress {
    pub started: Mutex<Vec<(String, u64)>>,
    pub bytes: AtomicU64,
    pub finished: AtomicU64,
}

impl Progress for RecordingProgress {
    fn start(&self, task: &str, total: u64) {
        self.started.lock().unwrap().push((task.to_string(), total));
    }
    fn advance(&self, _task: &str, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn finish(&self, _task: &str) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether infrastructure-dependent tests may be skipped.
pub fn skip_allowed() -> bool {
    std::env::var("PALISADE_SKIP_INFRA_TESTS").is_ok_and(|v| v == "1")
}

/// Reads a required environment variable naming test infrastructure. Without it the test
/// fails (saying how to run it), unless PALISADE_SKIP_INFRA_TESTS=1.
pub fn infra_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if skip_allowed() => {
            eprintln!("skipping: {var} is not set and PALISADE_SKIP_INFRA_TESTS=1");
            None
        }
        _ => panic!(
            "{var} is not set: these tests need a real local registry. Run them through \
             scripts/test.sh (which starts docker-registry and exports PALISADE_TEST_REGISTRY \
             and PALISADE_TEST_REGISTRY_AUTH), or set PALISADE_SKIP_INFRA_TESTS=1 to skip them."
        ),
    }
}

/// Whether skopeo is available (required unless skipping is allowed).
pub fn require_skopeo() -> bool {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if skip_allowed() {
            eprintln!("skipping: skopeo not installed and PALISADE_SKIP_INFRA_TESTS=1");
            return false;
        }
        panic!("skopeo is required (apt-get install skopeo, or run scripts/test.sh)");
    }
    true
}

pub fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository name unique to this test run.
pub fn unique_repo(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("palisade-it/{prefix}-{}-{nanos}", std::process::id())
}
