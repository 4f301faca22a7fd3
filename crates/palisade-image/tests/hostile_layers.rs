//! Hostile layers: each must end in a typed error or a skip with a warning — never a write to
//! disk, a hang, a crash or unbounded memory.

mod layer_support;

use layer_support::*;
use palisade_image::fs::EntryKind;
use palisade_image::layer::{LayerStats, apply_layer};
use palisade_image::{ImageError, ImageFs, Limits};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

const D: &str = "sha256:hostile";

fn apply(fs: &mut ImageFs, blob: Vec<u8>, limits: &Limits) -> Result<LayerStats, ImageError> {
    apply_layer(fs, D, reader(blob), &catalogers(), limits)
}

fn apply_ok(fs: &mut ImageFs, blob: Vec<u8>) -> LayerStats {
    apply(fs, blob, &Limits::default()).unwrap()
}

fn has_warning(stats: &LayerStats, needle: &str) -> bool {
    stats.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn traversal_paths_are_skipped_with_a_warning() {
    let mut fs = ImageFs::new(40);
    let blob = Tar::new()
        .file("../../etc/passwd.keep", b"evil")
        .file("a/../../../etc/shadow.keep", b"evil")
        .file("ok/../fine.keep", b"fine")
        .finish();
    let stats = apply_ok(&mut fs, blob);
    assert!(
        has_warning(&stats, "../../etc/passwd.keep"),
        "{:?}",
        stats.warnings
    );
    assert!(has_warning(&stats, "a/../../../etc/shadow.keep"));
    assert_eq!(stats.warnings.len(), 2);
    assert!(fs.entry("/etc/passwd.keep").is_none());
    assert!(fs.entry("/etc/shadow.keep").is_none());
    assert_eq!(text(&fs, "/fine.keep").as_deref(), Some("fine"));
    assert_eq!(
        fs.iter()
            .filter(|(_, e)| matches!(e.kind, EntryKind::File(_)))
            .count(),
        1
    );
}

#[test]
fn absolute_paths_are_relative_to_the_root() {
    let mut fs = ImageFs::new(40);
    let blob = Tar::new()
        .file("/etc/abs.keep", b"abs")
        .file("//usr///lib/./x.keep", b"x")
        .finish();
    let stats = apply_ok(&mut fs, blob);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    assert_eq!(text(&fs, "/etc/abs.keep").as_deref(), Some("abs"));
    assert_eq!(text(&fs, "/usr/lib/x.keep").as_deref(), Some("x"));
}

#[test]
fn writes_through_an_escaping_symlink_stay_in_the_memory_root() {
    let outside = tempfile::tempdir().unwrap();
    let abs = outside.path().to_str().unwrap().to_string();
    let mut fs = ImageFs::new(40);
    let blob = Tar::new()
        .symlink("evil", "../../../../../../")
        .symlink("evil2", &abs)
        .file("evil/pwned.keep", b"one")
        .file("evil2/pwned.keep", b"two")
        .finish();
    let stats = apply_ok(&mut fs, blob);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    // `evil` resolves to the image root; `evil2` to the same-named directory inside the image.
    assert_eq!(text(&fs, "/pwned.keep").as_deref(), Some("one"));
    assert_eq!(text(&fs, "/evil/pwned.keep").as_deref(), Some("one"));
    let inside = format!("{abs}/pwned.keep");
    assert_eq!(text(&fs, &inside).as_deref(), Some("two"));
    assert_eq!(text(&fs, "/evil2/pwned.keep").as_deref(), Some("two"));
    // Nothing reached the real file system.
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!std::path::Path::new("/pwned.keep").exists());
}

#[test]
fn hardlinks_to_outside_or_missing_targets_are_skipped() {
    let mut fs = ImageFs::new(40);
    let blob = Tar::new()
        .file("real.keep", b"real")
        .hardlink("out.keep", "../../etc/shadow")
        .hardlink("abs.keep", "/etc/missing.keep")
        .hardlink("copy.keep", "real.keep")
        .hardlink("self.keep", "self.keep")
        .finish();
    let stats = apply_ok(&mut fs, blob);
    assert!(has_warning(
        &stats,
        "out.keep -> \"../../etc/shadow\": target leaves"
    ));
    assert!(has_warning(
        &stats,
        "abs.keep -> /etc/missing.keep: target not in this"
    ));
    assert!(has_warning(&stats, "self.keep"));
    assert_eq!(stats.warnings.len(), 3, "{:?}", stats.warnings);
    assert!(fs.entry("/out.keep").is_none());
    assert!(fs.entry("/abs.keep").is_none());
    assert_eq!(text(&fs, "/copy.keep").as_deref(), Some("real"));
}

#[test]
fn symlink_loops_are_bounded() {
    let mut fs = ImageFs::new(40);
    let blob = Tar::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("self", "self/self")
        .file("a/x.keep", b"x")
        .file("self/y.keep", b"y")
        .hardlink("z.keep", "a/x.keep")
        .finish();
    let start = Instant::now();
    let stats = apply_ok(&mut fs, blob);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        has_warning(&stats, "/a/x.keep: symlink loop"),
        "{:?}",
        stats.warnings
    );
    assert!(has_warning(&stats, "/self/y.keep: symlink loop"));
    assert!(has_warning(
        &stats,
        "hard link /z.keep -> /a/x.keep: symlink loop"
    ));
    assert_eq!(fs.resolve("/a/x.keep"), None);
    assert_eq!(fs.read("/self/y.keep"), None);
}

/// A tar holding one file of `size` zero bytes (header written by hand, data streamed).
fn zero_file_tar_gz(size: u64) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut t = Tar::new();
    t.entry("zeros.keep", b'0', b"", "", 0o644);
    // Patch the size field and checksum.
    let mut h = t.buf[..512].to_vec();
    let s = format!("{size:011o}\0");
    h[124..136].copy_from_slice(s.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    e.write_all(&h).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        e.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    e.write_all(&[0u8; 1024]).unwrap();
    e.finish().unwrap()
}

#[test]
fn decompression_bomb_hits_the_layer_cap_quickly() {
    let blob = zero_file_tar_gz(256 << 20);
    assert!(blob.len() < 1 << 20, "bomb is {} bytes", blob.len());
    let limits = Limits {
        max_layer_bytes: 4 << 20,
        ..Limits::default()
    };
    let mut fs = ImageFs::new(40);
    let start = Instant::now();
    let err = apply(&mut fs, blob.clone(), &limits).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    match err {
        ImageError::LimitExceeded { layer, limit } => {
            assert_eq!(layer, D);
            assert!(limit.contains("max_layer_bytes"), "{limit}");
        }
        other => panic!("unexpected {other}"),
    }
    // The same file is also over a small per-file cap: with a big layer cap the file is skipped
    // with a warning and its bytes are consumed without being held.
    let limits = Limits {
        max_kept_file_bytes: 1 << 20,
        ..Limits::default()
    };
    let stats = apply(&mut fs, blob, &limits).unwrap();
    assert!(
        has_warning(&stats, "over max_kept_file_bytes"),
        "{:?}",
        stats.warnings
    );
    assert_eq!(stats.decompressed_bytes, (256 << 20) + 512 + 1024);
    assert!(fs.entry("/zeros.keep").is_none());
}

#[test]
fn entry_floods_hit_the_entry_cap() {
    let mut t = Tar::new();
    for i in 0..5000 {
        t.file(&format!("f{i}"), b"");
    }
    let blob = gzip(&t.finish());
    let limits = Limits {
        max_layer_entries: 1000,
        ..Limits::default()
    };
    let err = apply(&mut ImageFs::new(40), blob, &limits).unwrap_err();
    assert!(
        matches!(&err, ImageError::LimitExceeded { limit, .. } if limit.contains("max_layer_entries")),
        "{err}"
    );
}

#[test]
fn kept_bytes_over_the_image_cap_fail() {
    let blob = Tar::new()
        .file("a.keep", &[b'a'; 600])
        .file("b.keep", &[b'b'; 600])
        .finish();
    let limits = Limits {
        max_total_kept_bytes: 1000,
        ..Limits::default()
    };
    let err = apply(&mut ImageFs::new(40), blob, &limits).unwrap_err();
    assert!(
        matches!(&err, ImageError::LimitExceeded { limit, .. } if limit.contains("max_total_kept_bytes")),
        "{err}"
    );
}

fn sample_tar() -> Vec<u8> {
    Tar::new()
        .dir("etc/")
        .file("etc/a.keep", &[b'a'; 3000])
        .file("etc/skipped", &[b's'; 5000])
        .file("etc/b.keep", b"b")
        .finish()
}

#[test]
fn truncated_gzip_is_a_layer_error() {
    let gz = gzip(&sample_tar());
    for cut in [gz.len() / 2, gz.len() - 4, 5] {
        let err = apply(
            &mut ImageFs::new(40),
            gz[..cut].to_vec(),
            &Limits::default(),
        )
        .unwrap_err();
        match err {
            ImageError::Layer { layer, message } => {
                assert_eq!(layer, D);
                assert!(!message.is_empty());
            }
            other => panic!("cut {cut}: unexpected {other}"),
        }
    }
}

#[test]
fn truncated_tar_is_a_layer_error() {
    let tar = sample_tar();
    // Inside the kept file's data, inside the skipped file's data, inside a header.
    for cut in [512 * 2 + 100, 512 * 9 + 10, 512 * 19 + 200] {
        let err = apply(
            &mut ImageFs::new(40),
            tar[..cut].to_vec(),
            &Limits::default(),
        );
        assert!(
            matches!(&err, Err(ImageError::Layer { layer, .. }) if layer == D),
            "cut {cut}: {err:?}"
        );
    }
    // Cut at an entry boundary: readable, but reported.
    let cut = 512 * 21;
    let mut fs = ImageFs::new(40);
    let stats = apply_ok(&mut fs, tar[..cut].to_vec());
    assert!(
        has_warning(&stats, "without an end-of-archive block"),
        "{:?}",
        stats.warnings
    );
    assert_eq!(text(&fs, "/etc/b.keep").as_deref(), Some("b"));
}

#[test]
fn garbage_is_a_layer_error() {
    let mut garbage = b"this is not a tar archive at all, just words. ".repeat(40);
    let err = apply(&mut ImageFs::new(40), garbage.clone(), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Layer { .. }), "{err}");
    // Gzip magic followed by junk.
    garbage.splice(0..0, [0x1f, 0x8b]);
    let err = apply(&mut ImageFs::new(40), garbage.clone(), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Layer { .. }), "{err}");
    // Zstd magic followed by junk.
    garbage.splice(0..2, [0x28, 0xb5, 0x2f, 0xfd]);
    let err = apply(&mut ImageFs::new(40), garbage, &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Layer { .. }), "{err}");
    // Trailing garbage after a complete gzip stream.
    let mut gz = gzip(&sample_tar());
    gz.extend_from_slice(b"trailing junk that is not a gzip member");
    let err = apply(&mut ImageFs::new(40), gz, &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Layer { .. }), "{err}");
}

#[test]
fn empty_blob_is_an_empty_layer_with_a_warning() {
    let stats = apply_ok(&mut ImageFs::new(40), Vec::new());
    assert_eq!(stats.entries, 0);
    assert!(has_warning(&stats, "without an end-of-archive block"));
}

#[test]
fn zstd_layers_are_read() {
    let mut fs = ImageFs::new(40);
    let stats = apply_ok(&mut fs, zstd(&sample_tar()));
    assert_eq!(stats.compression, palisade_image::layer::Compression::Zstd);
    assert_eq!(stats.kept_files, 2);
    assert_eq!(stats.skipped_files, 1);
    assert_eq!(text(&fs, "/etc/b.keep").as_deref(), Some("b"));
    // Truncated zstd fails.
    let z = zstd(&sample_tar());
    let err = apply(&mut fs, z[..z.len() - 3].to_vec(), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Layer { .. }), "{err}");
}

#[test]
fn whiteouts_and_opaque_dirs_apply_to_lower_layers_only() {
    let mut fs = ImageFs::new(40);
    apply_ok(
        &mut fs,
        gzip(
            &Tar::new()
                .dir("a/")
                .file("a/x.keep", b"x")
                .file("a/y.keep", b"y")
                .dir("b/")
                .file("b/old.keep", b"old")
                .dir("b/sub/")
                .file("b/sub/deep.keep", b"deep")
                .dir("c/")
                .dir("c/d/")
                .file("c/d/e.keep", b"e")
                .file("cc.keep", b"cc")
                .finish(),
        ),
    );
    let stats = apply_ok(
        &mut fs,
        gzip(
            &Tar::new()
                .file("a/.wh.x.keep", b"")
                // New content before the opaque marker of the same directory: it must stay.
                .file("b/new.keep", b"new")
                .file("b/.wh..wh..opq", b"")
                .file(".wh.c", b"")
                // Re-created in the same layer as its whiteout: stays.
                .file("a/x2.keep", b"x2")
                .file("a/.wh.x2.keep", b"")
                .file(".wh..wh.plnk", b"")
                .finish(),
        ),
    );
    assert_eq!(stats.whiteouts, 5);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    assert!(fs.entry("/a/x.keep").is_none());
    assert_eq!(text(&fs, "/a/y.keep").as_deref(), Some("y"));
    assert_eq!(text(&fs, "/a/x2.keep").as_deref(), Some("x2"));
    assert!(fs.entry("/b/old.keep").is_none());
    assert!(fs.entry("/b/sub/deep.keep").is_none());
    assert!(fs.entry("/b/sub").is_none());
    assert!(matches!(
        fs.entry("/b").map(|e| &e.kind),
        Some(EntryKind::Dir)
    ));
    assert_eq!(text(&fs, "/b/new.keep").as_deref(), Some("new"));
    assert!(fs.entry("/c").is_none());
    assert!(fs.entry("/c/d/e.keep").is_none());
    assert_eq!(text(&fs, "/cc.keep").as_deref(), Some("cc"));
    // A third layer whites out a directory through a parent symlink.
    apply_ok(&mut fs, Tar::new().symlink("link", "a").finish());
    apply_ok(&mut fs, Tar::new().file("link/.wh.y.keep", b"").finish());
    assert!(fs.entry("/a/y.keep").is_none());
    assert_eq!(text(&fs, "/a/x2.keep").as_deref(), Some("x2"));
}

#[test]
fn oversized_kept_files_are_skipped_and_consumed() {
    let limits = Limits {
        max_kept_file_bytes: 1000,
        ..Limits::default()
    };
    let blob = Tar::new()
        .file("big.keep", &[b'x'; 5000])
        .file("after.keep", b"after")
        .exe("big.bin", &[b'P'; 3000])
        .finish();
    let mut fs = ImageFs::new(40);
    let stats = apply(&mut fs, blob, &limits).unwrap();
    assert!(has_warning(
        &stats,
        "/big.keep: 5000 bytes is over max_kept_file_bytes"
    ));
    assert_eq!(stats.warnings.len(), 1);
    assert!(fs.entry("/big.keep").is_none());
    assert_eq!(text(&fs, "/after.keep").as_deref(), Some("after"));
    // Oversized analysed file (head accepted) is skipped with a warning too.
    let limits = Limits {
        max_analyzed_file_bytes: 100,
        ..Limits::default()
    };
    let mut data = b"PKG:left-pad\n".to_vec();
    data.resize(500, b' ');
    let stats = apply(&mut fs, Tar::new().exe("big.bin", &data).finish(), &limits).unwrap();
    assert!(
        has_warning(&stats, "over max_analyzed_file_bytes"),
        "{:?}",
        stats.warnings
    );
    assert!(fs.entry("/big.bin").is_none());
}

/// Fails at EOF like the digest-verifying blob readers do on a mismatch.
struct BadDigest(io::Cursor<Vec<u8>>);

impl Read for BadDigest {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "digest mismatch: expected sha256:aaaa, got sha256:bbbb",
            ));
        }
        Ok(n)
    }
}

#[test]
fn digest_mismatch_at_end_of_stream_fails_the_layer() {
    // Plain tar with record padding after the end blocks, and gzip: the error only comes after
    // everything catalogers need was read, so the reader must read to the end.
    let mut plain = sample_tar();
    plain.extend(std::iter::repeat_n(0u8, 8192));
    for blob in [plain.clone(), gzip(&plain), zstd(&plain)] {
        let err = apply_layer(
            &mut ImageFs::new(40),
            D,
            Box::new(BadDigest(io::Cursor::new(blob))),
            &catalogers(),
            &Limits::default(),
        )
        .unwrap_err();
        match err {
            ImageError::Layer { message, .. } => {
                assert!(message.contains("digest mismatch"), "{message}")
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn nothing_is_ever_written_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().to_str().unwrap().to_string();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(before.is_empty());
    let mut t = Tar::new();
    t.file(&format!("{abs}/abs.keep"), b"1")
        .file(&format!("../../../../../..{abs}/up.keep"), b"2")
        .symlink("to-tmp", &abs)
        .file("to-tmp/through.keep", b"3")
        .symlink("rel", "../../../../../../../../..")
        .file(&format!("rel{abs}/rel.keep"), b"4")
        .hardlink("hl.keep", &format!("{abs}/abs.keep"))
        .dir(&format!("{abs}/newdir/"))
        .entry(&format!("{abs}/fifo"), b'6', b"", "", 0o644)
        .entry(&format!("{abs}/dev"), b'3', b"", "", 0o644);
    let blob = t.finish();
    for b in [blob.clone(), gzip(&blob), zstd(&blob)] {
        let mut fs = ImageFs::new(40);
        apply_ok(&mut fs, b);
        assert_eq!(text(&fs, &format!("{abs}/abs.keep")).as_deref(), Some("1"));
        assert_eq!(
            text(&fs, &format!("{abs}/through.keep")).as_deref(),
            Some("3")
        );
        assert_eq!(text(&fs, "/hl.keep").as_deref(), Some("1"));
    }
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(after.is_empty(), "something was created in {abs}");
}

/// Hands out at most 3 bytes per read (a slow or adversarial stream).
struct Trickle(io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(3);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn short_reads_do_not_confuse_sniffing() {
    for blob in [sample_tar(), gzip(&sample_tar()), zstd(&sample_tar())] {
        let mut fs = ImageFs::new(40);
        let stats = apply_layer(
            &mut fs,
            D,
            Box::new(Trickle(io::Cursor::new(blob.clone()))),
            &catalogers(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(stats.compressed_bytes, blob.len() as u64);
        assert_eq!(text(&fs, "/etc/b.keep").as_deref(), Some("b"));
    }
}

#[test]
fn warnings_of_a_flood_of_bad_entries_are_capped() {
    let mut t = Tar::new();
    for i in 0..5000 {
        t.file(&format!("../escape{i}"), b"");
    }
    let stats = apply_ok(&mut ImageFs::new(40), gzip(&t.finish()));
    assert_eq!(stats.entries, 5000);
    assert_eq!(
        stats.warnings.len(),
        palisade_image::layer::MAX_WARNINGS_PER_LAYER + 1
    );
    assert!(stats.warnings.last().unwrap().contains("suppressed"));
}
