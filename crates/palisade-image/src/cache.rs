//! TODO(skeleton, owner: registry): content-addressed blob cache. Contract signatures only.

use crate::ImageError;
use std::path::PathBuf;

/// Layer blobs on disk, by digest.
#[derive(Debug)]
pub struct BlobCache {
    _dir: PathBuf,
}

impl BlobCache {
    pub fn new(dir: PathBuf) -> Result<BlobCache, ImageError> {
        let _ = dir;
        todo!("skeleton")
    }
    /// `<user cache>/palisade/blobs`.
    pub fn default_dir() -> Option<PathBuf> {
        todo!("skeleton")
    }
}
