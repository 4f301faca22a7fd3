//! Image tarballs: `docker save` output (`manifest.json` + `<id>/layer.tar` or
//! `blobs/sha256/…`) and OCI archives (an OCI layout inside a tar), told apart by their
//! contents. The tar is indexed once (names → offsets); blobs are then read in place by seeking,
//! never extracted. Hostile archives (paths escaping the root, duplicate names, sizes beyond the
//! end of the file, entry floods, link loops) end in a clear error.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::layout::{self, BlobStore};
use crate::registry::digest::{Hasher, Sha256Digest, VerifyingReader};
use crate::registry::manifest;
use crate::registry::platform::{self, Platform};
use crate::source::{LayerBlob, ResolvedImage};
use crate::{ImageError, Limits, ScanTarget};

/// Most entries indexed in an image tarball (a few per layer in practice).
pub const MAX_ARCHIVE_ENTRIES: usize = 200_000;
/// Most symlink hops when resolving a name inside the archive.
const MAX_LINK_HOPS: usize = 16;
/// Most bytes read (not seeked over) while indexing: headers plus the pax / GNU long-name
/// records the tar reader loads into memory. Caps what a hostile metadata record can allocate.
const MAX_INDEX_READ: u64 = 128 << 20;

/// Counts bytes read through it and fails past a cap; seeks pass through uncounted.
struct CappedReader<R> {
    inner: R,
    read: u64,
    cap: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("tar metadata larger than {} bytes", self.cap),
            ));
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for CappedReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    size: u64,
}

/// Names in an image tarball mapped to where their bytes are.
#[derive(Debug)]
struct TarIndex {
    path: PathBuf,
    files: HashMap<String, Span>,
    links: HashMap<String, String>,
}

fn bad_archive(path: &Path, message: impl Into<String>) -> ImageError {
    ImageError::Malformed {
        what: format!("image archive {}", path.display()),
        message: message.into(),
    }
}

/// Normalises an archive member name (`./a//b/../c` → `a/c`); `None` if it is absolute or
/// climbs above the root.
fn normalize(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl TarIndex {
    fn build(path: &Path) -> Result<TarIndex, ImageError> {
        let shown = path.display().to_string();
        let mut file = File::open(path).map_err(|e| ImageError::io(shown.clone(), e))?;
        let file_len = file
            .metadata()
            .map_err(|e| ImageError::io(shown.clone(), e))?
            .len();
        let mut magic = [0u8; 4];
        let n = file
            .read(&mut magic)
            .map_err(|e| ImageError::io(shown.clone(), e))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(ImageError::Unsupported {
                what: "compressed image archive".into(),
                value: format!("{shown}: decompress it first (gunzip / zstd -d)"),
            });
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ImageError::io(shown.clone(), e))?;
        // No read buffer: file data is seeked over, and only what the tar reader really reads
        // (headers, metadata records) counts against the cap.
        let mut archive = tar::Archive::new(CappedReader {
            inner: file,
            read: 0,
            cap: MAX_INDEX_READ,
        });
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        let entries = archive
            .entries_with_seek()
            .map_err(|e| bad_archive(path, format!("not a tar archive: {e}")))?;
        for (count, entry) in entries.enumerate() {
            if count >= MAX_ARCHIVE_ENTRIES {
                return Err(bad_archive(
                    path,
                    format!("more than {MAX_ARCHIVE_ENTRIES} entries"),
                ));
            }
            let entry = entry.map_err(|e| bad_archive(path, format!("corrupt tar: {e}")))?;
            let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = normalize(&raw_name).ok_or_else(|| {
                bad_archive(path, format!("entry {raw_name:?} escapes the archive root"))
            })?;
            if name.is_empty() {
                continue;
            }
            let kind = entry.header().entry_type();
            let dup = || bad_archive(path, format!("duplicate entry {name:?}"));
            if kind.is_file() {
                let size = entry.size();
                let offset = entry.raw_file_position();
                if offset.checked_add(size).is_none_or(|end| end > file_len) {
                    return Err(bad_archive(
                        path,
                        format!("entry {name:?} claims {size} bytes beyond the end of the file"),
                    ));
                }
                if files.insert(name.clone(), Span { offset, size }).is_some()
                    || links.contains_key(&name)
                {
                    return Err(dup());
                }
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // Symlinks are relative to the entry's directory, hard links to the root.
                let joined = if kind.is_symlink() {
                    match name.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{target}"),
                        None => target.clone(),
                    }
                } else {
                    target.clone()
                };
                // A link escaping the root is recorded as dangling: harmless unless used.
                let resolved = normalize(&joined).unwrap_or_default();
                if links.insert(name.clone(), resolved).is_some() || files.contains_key(&name) {
                    return Err(dup());
                }
            }
            // Directories and special files are irrelevant to image archives.
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            files,
            links,
        })
    }

    /// Where the bytes of `name` are, following links inside the archive.
    fn lookup(&self, name: &str) -> Result<Option<Span>, ImageError> {
        let Some(mut cur) = normalize(name) else {
            return Err(bad_archive(
                &self.path,
                format!("{name:?} escapes the archive root"),
            ));
        };
        for _ in 0..MAX_LINK_HOPS {
            if let Some(span) = self.files.get(&cur) {
                return Ok(Some(*span));
            }
            match self.links.get(&cur) {
                Some(t) if t.is_empty() => {
                    return Err(bad_archive(
                        &self.path,
                        format!("{name:?} links outside the archive"),
                    ));
                }
                Some(t) => cur = t.clone(),
                None => return Ok(None),
            }
        }
        Err(bad_archive(&self.path, format!("link loop at {name:?}")))
    }

    fn open_span(&self, span: Span) -> Result<Box<dyn Read + Send>, ImageError> {
        let shown = self.path.display().to_string();
        let mut f = File::open(&self.path).map_err(|e| ImageError::io(shown.clone(), e))?;
        f.seek(SeekFrom::Start(span.offset))
            .map_err(|e| ImageError::io(shown, e))?;
        Ok(Box::new(
            BufReader::with_capacity(256 << 10, f).take(span.size),
        ))
    }
}

impl BlobStore for TarIndex {
    fn open_path(&self, rel: &str) -> Result<Option<layout::OpenedFile>, ImageError> {
        match self.lookup(rel)? {
            Some(span) => Ok(Some((self.open_span(span)?, span.size))),
            None => Ok(None),
        }
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// One image in a `docker save` `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Opens a `docker save` tarball or an OCI archive (auto-detected). An archive of several
/// images needs [`open_ref`] (or `platform`, when they differ by platform).
pub fn open(
    path: &Path,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    open_ref(path, None, platform, limits)
}

/// Like [`open`], choosing an image by `reference`: a tag or digest in an OCI archive's
/// `index.json`, or one of the `RepoTags` (full `repo:tag`, or just the tag) of a `docker save`.
pub fn open_ref(
    path: &Path,
    reference: Option<&str>,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let index = Arc::new(TarIndex::build(path)?);
    let name = path.display().to_string();
    if index.lookup("oci-layout")?.is_some() && index.lookup("index.json")?.is_some() {
        let store: Arc<dyn BlobStore> = index;
        return layout::resolve_layout(store, "oci-archive", &name, reference, platform, limits);
    }
    if index.lookup("manifest.json")?.is_some() {
        return open_docker_archive(index, &name, reference, platform, limits);
    }
    Err(bad_archive(
        path,
        "neither a docker save archive (no manifest.json) nor an OCI archive (no oci-layout/index.json)",
    ))
}

fn read_member(index: &TarIndex, name: &str, cap: u64) -> Result<Vec<u8>, ImageError> {
    let span = index
        .lookup(name)?
        .ok_or_else(|| bad_archive(&index.path, format!("{name:?} is missing")))?;
    if span.size > cap {
        return Err(ImageError::LimitExceeded {
            layer: format!("{}:{name}", index.path.display()),
            limit: format!("{} bytes, above the {cap}-byte limit", span.size),
        });
    }
    let mut buf = Vec::with_capacity(span.size as usize);
    index
        .open_span(span)?
        .read_to_end(&mut buf)
        .map_err(|e| ImageError::io(format!("{}:{name}", index.path.display()), e))?;
    Ok(buf)
}

fn open_docker_archive(
    index: Arc<TarIndex>,
    name: &str,
    reference: Option<&str>,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let wanted = platform.map(Platform::parse).transpose()?;
    let bytes = read_member(&index, "manifest.json", limits.max_manifest_bytes)?;
    let mut images: Vec<DockerArchiveImage> = serde_json::from_slice(&bytes)
        .map_err(|e| bad_archive(&index.path, format!("manifest.json: {e}")))?;
    if images.is_empty() {
        return Err(bad_archive(&index.path, "manifest.json lists no image"));
    }
    if let Some(r) = reference {
        let all_tags: Vec<String> = images
            .iter()
            .flat_map(|i| i.repo_tags.clone().unwrap_or_default())
            .collect();
        images.retain(|i| {
            i.repo_tags.as_ref().is_some_and(|tags| {
                tags.iter()
                    .any(|t| t == r || t.rsplit_once(':').is_some_and(|(_, tag)| tag == r))
            })
        });
        if images.is_empty() {
            return Err(ImageError::InvalidReference {
                reference: format!("{name}:{r}"),
                reason: format!(
                    "no such image in the archive; available: {}",
                    all_tags.join(", ")
                ),
            });
        }
    }
    if images.len() > manifest::MAX_INDEX_ENTRIES {
        return Err(bad_archive(
            &index.path,
            "manifest.json lists too many images",
        ));
    }
    // Load each image's config to learn its platform (needed to choose among several).
    let mut loaded = Vec::with_capacity(images.len());
    for img in &images {
        let cfg_bytes = read_member(&index, &img.config, limits.max_manifest_bytes)?;
        let cfg_digest = Sha256Digest::of(&cfg_bytes);
        // Config file names are the config digest (`<hex>.json` or `blobs/sha256/<hex>`).
        let stem = img
            .config
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".json");
        if stem.len() == 64
            && stem.bytes().all(|b| b.is_ascii_hexdigit())
            && stem != cfg_digest.hex()
        {
            return Err(ImageError::DigestMismatch {
                what: format!("config {} in {name}", img.config),
                expected: format!("sha256:{stem}"),
                actual: cfg_digest.to_string(),
            });
        }
        let (config, info) = manifest::parse_config(&cfg_bytes)?;
        loaded.push((img, cfg_digest, config, info));
    }
    let chosen = if loaded.len() == 1 {
        &loaded[0]
    } else {
        let entries: Vec<(Option<Platform>, usize)> = loaded
            .iter()
            .enumerate()
            .map(|(i, l)| (Some(l.3.platform.clone()), i))
            .collect();
        let matching = entries
            .iter()
            .filter(|(p, _)| {
                p.as_ref()
                    .is_some_and(|p| wanted.as_ref().is_none_or(|w| w.matches(p)))
            })
            .count();
        if wanted.is_none() || matching > 1 {
            let tags: Vec<String> = loaded
                .iter()
                .flat_map(|l| l.0.repo_tags.clone().unwrap_or_default())
                .collect();
            return Err(ImageError::Unsupported {
                what: "docker archive with several images".into(),
                value: format!(
                    "{name} holds {} images ({}); save one image per archive",
                    loaded.len(),
                    tags.join(", ")
                ),
            });
        }
        &loaded[*platform::select(name, &entries, wanted.as_ref())?]
    };
    let (img, cfg_digest, config, info) = chosen;
    manifest::check_config_platform(name, wanted.as_ref(), info)?;
    if img.layers.len() > manifest::MAX_LAYERS {
        return Err(bad_archive(&index.path, "too many layers"));
    }
    if info.diff_ids.len() != img.layers.len() {
        return Err(bad_archive(
            &index.path,
            format!(
                "config lists {} diff_ids for {} layers",
                info.diff_ids.len(),
                img.layers.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(img.layers.len());
    let mut total = 0u64;
    for (member, diff_id) in img.layers.iter().zip(&info.diff_ids) {
        let span = index
            .lookup(member)?
            .ok_or_else(|| bad_archive(&index.path, format!("layer {member:?} is missing")))?;
        total = total.saturating_add(span.size);
        if total > limits.max_image_bytes {
            return Err(ImageError::LimitExceeded {
                layer: name.to_string(),
                limit: format!("layers above max_image_bytes {}", limits.max_image_bytes),
            });
        }
        let mut head = [0u8; 4];
        let n = index
            .open_span(span)?
            .read(&mut head)
            .map_err(|e| ImageError::io(name.to_string(), e))?;
        let compressed =
            n >= 2 && head[..2] == [0x1f, 0x8b] || n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd];
        let (digest, media_type) = if compressed {
            // Some tools store compressed layers: their blob digest is not the diff_id, so
            // hash the blob once here and verify against that while streaming.
            let mut h = Hasher::new();
            let mut r = index.open_span(span)?;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let k = r
                    .read(&mut buf)
                    .map_err(|e| ImageError::io(name.to_string(), e))?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
            }
            let mt = if head[0] == 0x1f {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            };
            (h.finish(), mt)
        } else {
            (
                diff_id.clone(),
                "application/vnd.docker.image.rootfs.diff.tar",
            )
        };
        let idx = Arc::clone(&index);
        let d = digest.clone();
        let what = format!("layer {member} of {name}");
        layers.push(LayerBlob {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            size: span.size,
            open: Box::new(move || {
                Ok(Box::new(VerifyingReader::new(
                    idx.open_span(span)?,
                    what.clone(),
                    d.clone(),
                    Some(span.size),
                )) as Box<dyn Read + Send>)
            }),
        });
    }
    Ok(ResolvedImage {
        target: ScanTarget {
            kind: "docker-archive".into(),
            name: name.to_string(),
            digest: None,
            config_digest: Some(cfg_digest.to_string()),
            platform: Some(info.platform.to_string()).filter(|p| p != "/"),
            layers: layers.iter().map(|l| l.digest.clone()).collect(),
        },
        config: Some(config.clone()),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("/etc/passwd"), None);
        assert_eq!(normalize("a/../../x"), None);
    }

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            // Write the raw name so hostile names ("../x") survive.
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn write_tmp(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    #[test]
    fn indexes_files_and_follows_links() {
        use tar::EntryType as E;
        let (_d, p) = write_tmp(&tar_with(&[
            ("abc/layer.tar", E::Regular, b"0123456789", None),
            ("def/layer.tar", E::Symlink, b"", Some("../abc/layer.tar")),
            ("hard", E::Link, b"", Some("abc/layer.tar")),
            ("loop1", E::Symlink, b"", Some("loop2")),
            ("loop2", E::Symlink, b"", Some("loop1")),
            ("out", E::Symlink, b"", Some("../../etc/passwd")),
        ]));
        let idx = TarIndex::build(&p).unwrap();
        for n in ["abc/layer.tar", "def/layer.tar", "./hard"] {
            let (mut r, size) = idx.open_path(n).unwrap().unwrap();
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            assert_eq!((s.as_str(), size), ("0123456789", 10), "{n}");
        }
        assert!(idx.lookup("missing").unwrap().is_none());
        assert!(
            idx.lookup("loop1")
                .unwrap_err()
                .to_string()
                .contains("loop")
        );
        assert!(
            idx.lookup("out")
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
    }

    #[test]
    fn rejects_hostile_archives() {
        use tar::EntryType as E;
        let (_d, p) = write_tmp(&tar_with(&[("../evil", E::Regular, b"x", None)]));
        assert!(
            TarIndex::build(&p)
                .unwrap_err()
                .to_string()
                .contains("escapes")
        );
        let (_d, p) = write_tmp(&tar_with(&[
            ("a", E::Regular, b"x", None),
            ("./a", E::Regular, b"y", None),
        ]));
        assert!(
            TarIndex::build(&p)
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );
        // A header claiming far more data than the file holds.
        let mut bytes = tar_with(&[("big", E::Regular, b"x", None)]);
        let mut h = tar::Header::from_byte_slice(&bytes[..512]).clone();
        h.set_size(1 << 40);
        h.set_cksum();
        bytes[..512].copy_from_slice(h.as_bytes());
        let (_d, p) = write_tmp(&bytes);
        let err = TarIndex::build(&p).unwrap_err().to_string();
        assert!(
            err.contains("beyond the end") || err.contains("corrupt"),
            "{err}"
        );
        // A pax record claiming 200 MiB (sparse file): refused before it is held in memory.
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(E::XHeader);
        h.set_size(200 << 20);
        h.set_path("pax").unwrap();
        h.set_cksum();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pax.tar");
        let mut f = File::create(&p).unwrap();
        std::io::Write::write_all(&mut f, h.as_bytes()).unwrap();
        f.set_len(512 + (200 << 20) + 1024).unwrap();
        drop(f);
        let err = TarIndex::build(&p).unwrap_err().to_string();
        assert!(err.contains("metadata larger"), "{err}");
        let (_d, p) = write_tmp(&[0x1f, 0x8b, 8, 0, 0, 0]);
        assert!(matches!(
            TarIndex::build(&p),
            Err(ImageError::Unsupported { .. })
        ));
        let (_d, p) = write_tmp(&tar_with(&[("hello", E::Regular, b"x", None)]));
        let err = open(&p, None, &Limits::default()).unwrap_err().to_string();
        assert!(err.contains("neither"), "{err}");
    }
}
