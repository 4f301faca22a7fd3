//! Where images come from: registries, OCI layout directories, `docker save` and OCI archive
//! tarballs. Each resolves to a [`ResolvedImage`]: ordered layer blobs that can be opened as
//! streams, plus the manifest and config identity. (Plain root file systems go through
//! [`crate::rootfs`] instead: they have no layers.)

use std::io::Read;

pub mod archive;
pub mod layout;

/// Opens the (possibly compressed) bytes of one layer blob.
pub type BlobOpener =
    Box<dyn Fn() -> Result<Box<dyn Read + Send>, crate::ImageError> + Send + Sync>;

/// One layer blob, base layer first in [`ResolvedImage::layers`].
pub struct LayerBlob {
    /// `sha256:…` of the blob as stored (compressed), which is what manifests name.
    pub digest: String,
    /// Manifest media type (tells gzip / zstd / uncompressed; readers also sniff magic bytes).
    pub media_type: String,
    pub size: u64,
    pub open: BlobOpener,
}

impl std::fmt::Debug for LayerBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerBlob")
            .field("digest", &self.digest)
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .finish()
    }
}

/// An image resolved to its layers, whatever it came from.
#[derive(Debug)]
pub struct ResolvedImage {
    pub target: crate::ScanTarget,
    /// The image config JSON (`config.diff_ids`, env, history) as fetched and digest-verified.
    pub config: Option<serde_json::Value>,
    pub layers: Vec<LayerBlob>,
}
