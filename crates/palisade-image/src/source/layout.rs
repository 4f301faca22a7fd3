//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/…`), as written by
//! `skopeo copy oci:`, `buildah push oci:`, `umoci` and `docker buildx --output type=oci`.
//! The same resolution runs over the blobs of an OCI archive tarball (see [`super::archive`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::registry::digest::{Sha256Digest, VerifyingReader};
use crate::registry::manifest::{self, Descriptor, ImageIndex, Manifest};
use crate::registry::platform::Platform;
use crate::source::{LayerBlob, ResolvedImage};
use crate::{ImageError, Limits, ScanTarget};

/// Annotation naming an image (tag) in an index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd writes with the full image name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An opened file: a reader of exactly its bytes, and its size.
pub(crate) type OpenedFile = (Box<dyn Read + Send>, u64);

/// Somewhere blobs and the layout's top-level files can be read from: a directory, or a tar
/// archive indexed once.
pub(crate) trait BlobStore: Send + Sync {
    /// Opens a file by its path relative to the layout root; `Ok(None)` if absent. Returns a
    /// reader of exactly the file's bytes and the file's size.
    fn open_path(&self, rel: &str) -> Result<Option<OpenedFile>, ImageError>;
    /// Names the layout in messages.
    fn describe(&self) -> String;
}

/// A layout on disk.
struct DirStore {
    root: PathBuf,
}

impl BlobStore for DirStore {
    fn open_path(&self, rel: &str) -> Result<Option<OpenedFile>, ImageError> {
        let path = self.root.join(rel);
        let shown = path.display().to_string();
        // `metadata` follows symlinks: a blob that points at a device or FIFO is refused
        // rather than read forever.
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ImageError::io(shown, e)),
        };
        if !meta.is_file() {
            return Err(ImageError::Malformed {
                what: "OCI layout".into(),
                message: format!("{shown} is not a regular file"),
            });
        }
        let f = std::fs::File::open(&path).map_err(|e| ImageError::io(shown, e))?;
        Ok(Some((
            Box::new(std::io::BufReader::with_capacity(256 << 10, f)),
            meta.len(),
        )))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

fn malformed(store: &dyn BlobStore, message: impl Into<String>) -> ImageError {
    ImageError::Malformed {
        what: format!("OCI layout {}", store.describe()),
        message: message.into(),
    }
}

fn blob_path(digest: &Sha256Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Reads a whole small file, refusing anything above `cap` bytes.
fn read_small(store: &dyn BlobStore, rel: &str, cap: u64) -> Result<Option<Vec<u8>>, ImageError> {
    let Some((r, size)) = store.open_path(rel)? else {
        return Ok(None);
    };
    if size > cap {
        return Err(ImageError::LimitExceeded {
            layer: format!("{}/{rel}", store.describe()),
            limit: format!("{size} bytes, above the {cap}-byte limit for manifests and configs"),
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ImageError::io(format!("{}/{rel}", store.describe()), e))?;
    Ok(Some(buf))
}

/// Opens a blob as a digest- and size-verifying stream.
fn open_blob(store: &dyn BlobStore, desc: &Descriptor) -> Result<Box<dyn Read + Send>, ImageError> {
    let rel = blob_path(&desc.digest);
    let Some((r, size)) = store.open_path(&rel)? else {
        return Err(malformed(store, format!("blob {} is missing", desc.digest)));
    };
    if size != desc.size {
        return Err(malformed(
            store,
            format!(
                "blob {} has {size} bytes but its descriptor says {}",
                desc.digest, desc.size
            ),
        ));
    }
    Ok(Box::new(VerifyingReader::new(
        r,
        format!("blob {}", desc.digest),
        desc.digest.clone(),
        Some(desc.size),
    )))
}

/// Reads a small blob (manifest, config) whole, verified.
fn read_blob(store: &dyn BlobStore, desc: &Descriptor, cap: u64) -> Result<Vec<u8>, ImageError> {
    if desc.size > cap {
        return Err(ImageError::LimitExceeded {
            layer: desc.digest.to_string(),
            limit: format!(
                "{} bytes, above the {cap}-byte limit for manifests and configs",
                desc.size
            ),
        });
    }
    let mut buf = Vec::with_capacity(desc.size as usize);
    open_blob(store, desc)?
        .read_to_end(&mut buf)
        .map_err(|e| ImageError::DigestMismatch {
            what: format!("blob {} in {}", desc.digest, store.describe()),
            expected: desc.digest.to_string(),
            actual: e.to_string(),
        })?;
    Ok(buf)
}

fn names_of(d: &Descriptor) -> Vec<&str> {
    [REF_NAME, CONTAINERD_NAME]
        .iter()
        .filter_map(|k| d.annotations.get(*k).map(String::as_str))
        .collect()
}

/// Whether an index entry carries the name `wanted` (a tag like `1.0`, or a full name).
fn has_name(d: &Descriptor, wanted: &str) -> bool {
    names_of(d).iter().any(|n| {
        *n == wanted
            || n.rsplit_once(':')
                .is_some_and(|(_, tag)| !tag.contains('/') && tag == wanted)
    })
}

/// Resolves an image inside a layout (directory or archive).
pub(crate) fn resolve_layout(
    store: Arc<dyn BlobStore>,
    kind: &str,
    name: &str,
    reference: Option<&str>,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let wanted = platform.map(Platform::parse).transpose()?;
    let s = store.as_ref();
    let layout = read_small(s, "oci-layout", 64 << 10)?
        .ok_or_else(|| malformed(s, "not an OCI image layout: no oci-layout file"))?;
    #[derive(serde::Deserialize)]
    struct LayoutFile {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let lf: LayoutFile =
        serde_json::from_slice(&layout).map_err(|e| malformed(s, format!("oci-layout: {e}")))?;
    if !lf.version.starts_with("1.") {
        return Err(ImageError::Unsupported {
            what: "OCI layout version".into(),
            value: lf.version,
        });
    }
    let index_bytes = read_small(s, "index.json", limits.max_manifest_bytes)?
        .ok_or_else(|| malformed(s, "no index.json"))?;
    let Manifest::Index(index) = manifest::parse_manifest(&index_bytes, Some(manifest::OCI_INDEX))?
    else {
        return Err(malformed(s, "index.json is not an image index"));
    };

    let candidates: Vec<Descriptor> = match reference {
        Some(r) if r.starts_with("sha256:") => {
            let d = Sha256Digest::parse(r)?;
            index
                .manifests
                .iter()
                .filter(|m| m.digest == d)
                .cloned()
                .collect()
        }
        Some(r) => index
            .manifests
            .iter()
            .filter(|m| has_name(m, r))
            .cloned()
            .collect(),
        None => index.manifests.clone(),
    };
    let mut names: Vec<&str> = index.manifests.iter().flat_map(names_of).collect();
    names.sort_unstable();
    names.dedup();
    if candidates.is_empty() {
        let available = if names.is_empty() {
            format!("{} unnamed entries", index.manifests.len())
        } else {
            names.join(", ")
        };
        return Err(ImageError::InvalidReference {
            reference: format!("{name}:{}", reference.unwrap_or("")),
            reason: format!("no such image in {}; available: {available}", s.describe()),
        });
    }
    let shown = match reference {
        Some(r) => format!("{name}:{r}"),
        None => name.to_string(),
    };
    let top = if let [only] = candidates.as_slice() {
        only.clone()
    } else if reference.is_none()
        && candidates.iter().any(|c| c.platform.is_none())
        && names.len() > 1
    {
        return Err(ImageError::InvalidReference {
            reference: name.to_string(),
            reason: format!(
                "the layout holds several images ({}); name one as PATH:TAG",
                names.join(", ")
            ),
        });
    } else {
        let sub = ImageIndex {
            media_type: manifest::OCI_INDEX.into(),
            manifests: candidates,
        };
        sub.select(&shown, wanted.as_ref())?.clone()
    };

    let mut desc = top.clone();
    let mut depth = 0;
    let image_manifest = loop {
        let bytes = read_blob(s, &desc, limits.max_manifest_bytes)?;
        match manifest::parse_manifest(&bytes, Some(&desc.media_type))? {
            Manifest::Image(m) => break m,
            Manifest::Index(idx) => {
                depth += 1;
                if depth > manifest::MAX_INDEX_DEPTH {
                    return Err(malformed(s, "indexes nested too deeply"));
                }
                desc = idx.select(&shown, wanted.as_ref())?.clone();
            }
        }
    };
    let config_bytes = read_blob(s, &image_manifest.config, limits.max_manifest_bytes)?;
    let (config, info) = manifest::parse_config(&config_bytes)?;
    manifest::check_config_platform(&shown, wanted.as_ref(), &info)?;
    if !info.diff_ids.is_empty() && info.diff_ids.len() != image_manifest.layers.len() {
        return Err(malformed(
            s,
            format!(
                "config lists {} diff_ids for {} layers",
                info.diff_ids.len(),
                image_manifest.layers.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(image_manifest.layers.len());
    for l in &image_manifest.layers {
        // Fail now (not mid-scan) if a layer is missing or has the wrong size.
        drop(open_blob(s, l)?);
        let st = Arc::clone(&store);
        let d = l.clone();
        layers.push(LayerBlob {
            digest: l.digest.to_string(),
            media_type: l.media_type.clone(),
            size: l.size,
            open: Box::new(move || open_blob(st.as_ref(), &d)),
        });
    }
    Ok(ResolvedImage {
        target: ScanTarget {
            kind: kind.to_string(),
            name: shown,
            digest: Some(top.digest.to_string()),
            config_digest: Some(image_manifest.config.digest.to_string()),
            platform: Some(info.platform.to_string()).filter(|p| p != "/"),
            layers: image_manifest
                .layers
                .iter()
                .map(|l| l.digest.to_string())
                .collect(),
        },
        config: Some(config),
        layers,
    })
}

/// Opens an OCI image layout directory. `reference` picks an image by tag
/// (`org.opencontainers.image.ref.name`) or manifest digest; without one, the layout must hold a
/// single image (possibly multi-platform, then `platform` or `linux/amd64` picks).
pub fn open(
    path: &Path,
    reference: Option<&str>,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let meta =
        std::fs::metadata(path).map_err(|e| ImageError::io(path.display().to_string(), e))?;
    if !meta.is_dir() {
        return Err(ImageError::Malformed {
            what: "OCI layout".into(),
            message: format!("{} is not a directory", path.display()),
        });
    }
    let store: Arc<dyn BlobStore> = Arc::new(DirStore {
        root: path.to_path_buf(),
    });
    resolve_layout(
        store,
        "oci-layout",
        &path.display().to_string(),
        reference,
        platform,
        limits,
    )
}
