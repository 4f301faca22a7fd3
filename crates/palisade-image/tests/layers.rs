//! Layer reading and the scan drivers on well-formed input: what is kept, analysed, skipped and
//! merged, and that the parallel image scan equals applying the layers one by one.

mod layer_support;

use layer_support::*;
use palisade_image::fs::EntryKind;
use palisade_image::layer::{Compression, apply_layer};
use palisade_image::progress::{NoProgress, Progress};
use palisade_image::rootfs::{RootfsOptions, read_rootfs, scan_rootfs};
use palisade_image::scan::{merge_layers, scan_image};
use palisade_image::source::{LayerBlob, ResolvedImage};
use palisade_image::{ImageError, ImageFs, Limits, ScanTarget};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

fn blob(digest: &str, data: Vec<u8>) -> LayerBlob {
    let size = data.len() as u64;
    LayerBlob {
        digest: digest.to_string(),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size,
        open: Box::new(move || Ok(reader(data.clone()))),
    }
}

fn three_layers() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "sha256:base".into(),
            gzip(
                &Tar::new()
                    .dir("usr/")
                    .dir("usr/lib/")
                    .symlink("lib", "usr/lib")
                    .file("usr/lib/os.keep", b"base-os")
                    .exe("usr/bin/app.bin", b"PKG:express\nPKG:lodash\n")
                    .exe("usr/bin/other.bin", b"ELF not ours")
                    .file("usr/share/doc/README", &[b'r'; 10_000])
                    .dir("opt/")
                    .dir("opt/old/")
                    .file("opt/old/gone.keep", b"gone")
                    .finish(),
            ),
        ),
        (
            "sha256:middle".into(),
            zstd(
                &Tar::new()
                    // Overwrites the analysed binary with something nobody analyses.
                    .exe("usr/bin/app.bin", b"not a package binary")
                    .file("lib/through-link.keep", b"through")
                    .file("opt/old", b"a file replacing a directory")
                    .hardlink("usr/bin/app2.bin", "usr/bin/app.bin")
                    .finish(),
            ),
        ),
        (
            "sha256:top".into(),
            Tar::new()
                .exe("srv/tool.bin", b"PKG:left-pad\n")
                .hardlink("srv/tool-copy.bin", "srv/tool.bin")
                .file("usr/lib/.wh.os.keep", b"")
                .file("etc/top.keep", b"top")
                .finish(),
        ),
    ]
}

fn check_merged(fs: &ImageFs) {
    // Base layer content that survived.
    assert!(fs.entry("/usr/lib/os.keep").is_none(), "whited out in top");
    assert!(
        matches!(fs.entry("/lib").map(|e| &e.kind), Some(EntryKind::Symlink(t)) if t == "usr/lib")
    );
    // Written through the /lib symlink: lands in /usr/lib.
    assert_eq!(
        text(fs, "/usr/lib/through-link.keep").as_deref(),
        Some("through")
    );
    assert!(fs.entry("/lib/through-link.keep").is_none());
    // The analysed binary was overwritten by an unanalysed file: its packages are gone.
    assert!(fs.entry("/usr/bin/app.bin").is_none());
    assert!(fs.entry("/usr/bin/app2.bin").is_none());
    // Skipped files are not stored at all.
    assert!(fs.entry("/usr/share/doc/README").is_none());
    assert!(fs.entry("/usr/bin/other.bin").is_none());
    // A file replaced the directory /opt/old and its children.
    assert!(fs.entry("/opt/old/gone.keep").is_none());
    assert!(fs.entry("/opt/old").is_none());
    // Analysed in the top layer, and copied by a hard link with its own path.
    match &fs.entry("/srv/tool.bin").unwrap().kind {
        EntryKind::Analyzed(found) => {
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].0, "test");
            assert_eq!(found[0].1[0].name, "left-pad");
            assert_eq!(found[0].1[0].location.path, "/srv/tool.bin");
            assert_eq!(
                found[0].1[0].location.layer_digest.as_deref(),
                Some("sha256:top")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match &fs.entry("/srv/tool-copy.bin").unwrap().kind {
        EntryKind::Analyzed(found) => assert_eq!(found[0].1[0].location.path, "/srv/tool-copy.bin"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        fs.entry("/etc/top.keep").unwrap().layer.as_deref(),
        Some("sha256:top")
    );
}

#[test]
fn layers_applied_one_by_one() {
    let mut fs = ImageFs::new(40);
    let cats = catalogers();
    let mut all = Vec::new();
    for (digest, data) in three_layers() {
        all.push(apply_layer(&mut fs, &digest, reader(data), &cats, &Limits::default()).unwrap());
    }
    check_merged(&fs);
    let base = &all[0];
    assert_eq!(base.compression, Compression::Gzip);
    assert_eq!(base.entries, 10);
    assert_eq!(base.kept_files, 2);
    assert_eq!(base.analyzed_files, 1);
    assert_eq!(base.skipped_files, 2);
    assert!(base.decompressed_bytes > 10_000);
    assert!(base.compressed_bytes > 0 && base.compressed_bytes < base.decompressed_bytes);
    assert_eq!(all[1].compression, Compression::Zstd);
    assert_eq!(all[2].compression, Compression::None);
    assert_eq!(all[2].whiteouts, 1);
    assert!(all.iter().all(|s| s.warnings.is_empty()), "{all:?}");
}

#[derive(Default)]
struct Recorder {
    bytes: AtomicU64,
    tasks: Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn start(&self, task: &str, _total: u64) {
        self.tasks.lock().unwrap().push(format!("start {task}"));
    }
    fn advance(&self, _task: &str, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn finish(&self, task: &str) {
        self.tasks.lock().unwrap().push(format!("finish {task}"));
    }
}

#[test]
fn scan_image_merges_layers_in_order_and_catalogs() {
    let layers = three_layers();
    let total: u64 = layers.iter().map(|(_, d)| d.len() as u64).sum();
    let image = ResolvedImage {
        target: ScanTarget {
            kind: "oci-layout".into(),
            name: "test".into(),
            ..ScanTarget::default()
        },
        config: None,
        layers: layers.into_iter().map(|(d, data)| blob(&d, data)).collect(),
    };
    let progress = Recorder::default();
    let sbom = scan_image(image, &catalogers(), &Limits::default(), &progress).unwrap();
    assert_eq!(
        sbom.target.layers,
        ["sha256:base", "sha256:middle", "sha256:top"]
    );
    assert_eq!(progress.bytes.load(Ordering::Relaxed), total);
    assert_eq!(progress.tasks.lock().unwrap().len(), 6);
    let mut names: Vec<_> = sbom
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.location.path.as_str(),
                p.location.layer_digest.as_deref().unwrap_or(""),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("left-pad", "/srv/tool-copy.bin", "sha256:top"),
            ("left-pad", "/srv/tool.bin", "sha256:top"),
            ("through", "/usr/lib/through-link.keep", "sha256:middle"),
            ("top", "/etc/top.keep", "sha256:top"),
        ]
    );
}

#[test]
fn parallel_merge_equals_sequential_apply() {
    // Many layers so several workers run at once.
    let mut layers = Vec::new();
    for i in 0..12 {
        let mut t = Tar::new();
        t.file(&format!("l{i}.keep"), format!("pkg{i}").as_bytes());
        if i > 0 {
            t.file(&format!(".wh.l{}.keep", i - 1), b"");
        }
        t.exe(
            &format!("bin/t{i}.bin"),
            format!("PKG:tool{i}\n").as_bytes(),
        );
        t.file("shared.keep", format!("shared{i}").as_bytes());
        layers.push((format!("sha256:{i:02}"), gzip(&t.finish())));
    }
    let cats = catalogers();
    let mut seq = ImageFs::new(40);
    for (d, data) in &layers {
        apply_layer(&mut seq, d, reader(data.clone()), &cats, &Limits::default()).unwrap();
    }
    let blobs: Vec<_> = layers
        .iter()
        .map(|(d, data)| blob(d, data.clone()))
        .collect();
    let merged = merge_layers(&blobs, &cats, &Limits::default(), &NoProgress).unwrap();
    let a: Vec<_> = seq
        .iter()
        .map(|(p, e)| (p.to_string(), e.clone()))
        .collect();
    let b: Vec<_> = merged
        .fs
        .iter()
        .map(|(p, e)| (p.to_string(), e.clone()))
        .collect();
    assert_eq!(a, b);
    assert_eq!(merged.stats.len(), 12);
    assert_eq!(
        text(&merged.fs, "/shared.keep").as_deref(),
        Some("shared11")
    );
    assert_eq!(text(&merged.fs, "/l11.keep").as_deref(), Some("pkg11"));
    assert!(merged.fs.entry("/l10.keep").is_none());
}

#[test]
fn scan_image_fails_on_a_bad_layer_and_on_the_image_byte_cap() {
    let mut blobs: Vec<_> = three_layers()
        .into_iter()
        .map(|(d, data)| blob(&d, data))
        .collect();
    blobs.insert(
        1,
        blob("sha256:broken", b"garbage garbage garbage".repeat(100)),
    );
    let image = ResolvedImage {
        target: ScanTarget::default(),
        config: None,
        layers: blobs,
    };
    let err = scan_image(image, &catalogers(), &Limits::default(), &NoProgress).unwrap_err();
    assert!(
        matches!(&err, ImageError::Layer { layer, .. } if layer == "sha256:broken"),
        "{err}"
    );

    // Each layer fits the layer cap, together they do not fit the image cap.
    let blobs: Vec<_> = (0..4)
        .map(|i| {
            blob(
                &format!("sha256:{i}"),
                gzip(&Tar::new().file("f", &[0u8; 40_000]).finish()),
            )
        })
        .collect();
    let limits = Limits {
        max_layer_bytes: 50_000,
        max_image_bytes: 100_000,
        ..Limits::default()
    };
    let err = merge_layers(&blobs, &catalogers(), &limits, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, ImageError::LimitExceeded { limit, .. } if limit.contains("max_image_bytes")),
        "{err}"
    );
    // A blob that cannot be opened.
    let bad = LayerBlob {
        digest: "sha256:missing".into(),
        media_type: String::new(),
        size: 0,
        open: Box::new(|| {
            Err(ImageError::io(
                "blobs/sha256/missing",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ))
        }),
    };
    let err = merge_layers(&[bad], &catalogers(), &Limits::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, ImageError::Io { .. }), "{err}");
}

#[test]
fn long_names_pax_paths_and_warnings_reach_the_sbom() {
    let long = format!("{}/deep.keep", "d".repeat(150));
    let data = Tar::new()
        .long_file(&long, b"long-name-pkg")
        .pax_file("pax/very/long/path/name.keep", b"pax-pkg")
        .file("../escape.keep", b"x")
        .finish();
    let image = ResolvedImage {
        target: ScanTarget::default(),
        config: None,
        layers: vec![blob("sha256:one", data)],
    };
    let sbom = scan_image(image, &catalogers(), &Limits::default(), &NoProgress).unwrap();
    let mut names: Vec<_> = sbom
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.location.path.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("long-name-pkg".to_string(), format!("/{long}")),
            (
                "pax-pkg".to_string(),
                "/pax/very/long/path/name.keep".to_string()
            ),
        ]
    );
    assert_eq!(sbom.warnings.len(), 1, "{:?}", sbom.warnings);
    assert!(sbom.warnings[0].contains("sha256:one") && sbom.warnings[0].contains("escape.keep"));
}

#[test]
fn rootfs_scan_keeps_analyses_and_does_not_follow_symlinks() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("outside.keep"), "outside").unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/lib")).unwrap();
    std::fs::create_dir_all(r.join("srv")).unwrap();
    std::fs::write(r.join("usr/lib/os.keep"), "rootpkg").unwrap();
    std::fs::write(r.join("srv/app.bin"), "PKG:express\n").unwrap();
    std::fs::write(r.join("srv/other.bin"), "not ours").unwrap();
    std::fs::write(r.join("srv/big.keep"), vec![b'b'; 5000]).unwrap();
    std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
    std::os::unix::fs::symlink(outside.path(), r.join("out")).unwrap();
    std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();

    let limits = Limits {
        max_kept_file_bytes: 1000,
        ..Limits::default()
    };
    let (fs, warnings) = read_rootfs(r, &catalogers(), &limits, &RootfsOptions::default()).unwrap();
    assert_eq!(text(&fs, "/lib/os.keep").as_deref(), Some("rootpkg"));
    assert!(matches!(
        fs.entry("/out").map(|e| &e.kind),
        Some(EntryKind::Symlink(_))
    ));
    // The link points outside: resolved inside the memory root it leads nowhere.
    assert_eq!(fs.read("/out/outside.keep"), None);
    assert!(fs.iter().all(|(p, _)| !p.contains("outside.keep")));
    assert!(fs.entry("/srv/other.bin").is_none());
    assert!(fs.entry("/srv/big.keep").is_none());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("/srv/big.keep"));
    assert!(fs.iter().all(|(_, e)| e.layer.is_none()));

    let sbom = scan_rootfs(r, &catalogers(), &Limits::default()).unwrap();
    assert_eq!(sbom.target.kind, "filesystem");
    let mut paths: Vec<_> = sbom
        .packages
        .iter()
        .map(|p| p.location.path.as_str())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/srv/app.bin", "/srv/big.keep", "/usr/lib/os.keep"]);
    assert!(sbom.packages.iter().any(|p| p.name == "express"));
    assert!(sbom.packages.iter().any(|p| p.name == "rootpkg"));
    assert!(
        sbom.packages
            .iter()
            .all(|p| p.location.layer_digest.is_none())
    );
}

#[test]
fn rootfs_errors_are_typed() {
    let err = scan_rootfs(
        std::path::Path::new("/nonexistent/palisade-root"),
        &catalogers(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::Io { .. }), "{err}");
    let f = tempfile::NamedTempFile::new().unwrap();
    let err = scan_rootfs(f.path(), &catalogers(), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Unsupported { .. }), "{err}");
    // Entry cap.
    let root = tempfile::tempdir().unwrap();
    for i in 0..50 {
        std::fs::write(root.path().join(format!("f{i}")), "").unwrap();
    }
    let limits = Limits {
        max_layer_entries: 10,
        ..Limits::default()
    };
    let err = scan_rootfs(root.path(), &catalogers(), &limits).unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");
}

#[test]
fn layer_cache_makes_warm_scans_skip_the_blobs() {
    use palisade_image::layer::LayerCache;
    use palisade_image::scan::merge_layers_with;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    let dir = tempfile::tempdir().unwrap();
    let cache = LayerCache::new(dir.path().join("changes"), "test-salt").unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    let blobs = || -> Vec<LayerBlob> {
        three_layers()
            .into_iter()
            .map(|(d, data)| {
                let opened = opened.clone();
                LayerBlob {
                    digest: d,
                    media_type: String::new(),
                    size: data.len() as u64,
                    open: Box::new(move || {
                        opened.fetch_add(1, Ordering::SeqCst);
                        Ok(reader(data.clone()))
                    }),
                }
            })
            .collect()
    };
    let cats = catalogers();
    let cold = merge_layers_with(
        &blobs(),
        &cats,
        &Limits::default(),
        &NoProgress,
        Some(&cache),
    )
    .unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 3);
    assert!(cold.stats.iter().all(|s| !s.from_cache));
    let warm = merge_layers_with(
        &blobs(),
        &cats,
        &Limits::default(),
        &NoProgress,
        Some(&cache),
    )
    .unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 3, "warm scan opened a blob");
    assert!(warm.stats.iter().all(|s| s.from_cache));
    check_merged(&warm.fs);
    let a: Vec<_> = cold
        .fs
        .iter()
        .map(|(p, e)| (p.to_string(), e.clone()))
        .collect();
    let b: Vec<_> = warm
        .fs
        .iter()
        .map(|(p, e)| (p.to_string(), e.clone()))
        .collect();
    assert_eq!(a, b);
    // Other limits or another salt: a different key, so the blobs are read again.
    let limits = Limits {
        max_kept_file_bytes: 1 << 20,
        ..Limits::default()
    };
    merge_layers_with(&blobs(), &cats, &limits, &NoProgress, Some(&cache)).unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 6);
    let other = LayerCache::new(dir.path().join("changes"), "other-salt").unwrap();
    merge_layers_with(
        &blobs(),
        &cats,
        &Limits::default(),
        &NoProgress,
        Some(&other),
    )
    .unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 9);
    // Damaged cache files are misses, not errors.
    for f in std::fs::read_dir(dir.path().join("changes")).unwrap() {
        let p = f.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&p, bytes).unwrap();
    }
    let again = merge_layers_with(
        &blobs(),
        &cats,
        &Limits::default(),
        &NoProgress,
        Some(&cache),
    )
    .unwrap();
    check_merged(&again.fs);
    assert_eq!(opened.load(Ordering::SeqCst), 12);
    // Cached layers still count against the image caps.
    let limits = Limits {
        max_image_bytes: 1000,
        ..Limits::default()
    };
    let err = merge_layers_with(&blobs(), &cats, &limits, &NoProgress, Some(&cache)).unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");
}
