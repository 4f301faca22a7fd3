//! Caps that keep hostile images from exhausting memory, disk or time.

use serde::{Deserialize, Serialize};

/// Bounds applied while reading layers. Exceeding a per-file cap skips that file with a warning;
/// exceeding a per-layer or per-image cap aborts the scan with [`crate::ImageError::LimitExceeded`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Decompressed bytes read from one layer stream (decompression bombs).
    pub max_layer_bytes: u64,
    /// Decompressed bytes over all layers of one image.
    pub max_image_bytes: u64,
    /// Tar entries in one layer (entry floods).
    pub max_layer_entries: u64,
    /// Size of one file kept in memory for a cataloger (package databases, manifests).
    pub max_kept_file_bytes: u64,
    /// Size of one binary or archive analysed in-stream (Go/Rust binaries, jars).
    pub max_analyzed_file_bytes: u64,
    /// Total bytes kept in memory over the whole image.
    pub max_total_kept_bytes: u64,
    /// Symlink hops when resolving a path inside the image root (loops).
    pub max_symlink_hops: u32,
    /// Nesting depth of archives inside archives (jars in wars in ears).
    pub max_archive_depth: u32,
    /// Size of a manifest, index or config document fetched from a registry.
    pub max_manifest_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_layer_bytes: 16 << 30,
            max_image_bytes: 64 << 30,
            max_layer_entries: 2_000_000,
            max_kept_file_bytes: 256 << 20,
            max_analyzed_file_bytes: 512 << 20,
            max_total_kept_bytes: 2 << 30,
            max_symlink_hops: 40,
            max_archive_depth: 4,
            max_manifest_bytes: 4 << 20,
        }
    }
}
