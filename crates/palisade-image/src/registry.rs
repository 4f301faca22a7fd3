//! TODO(skeleton, owner: registry): OCI distribution client (oci-client), auth, platform selection.
//! Contract signatures only (from CONTRACTS.md) so the CLI compiles; bodies come from "registry".

use crate::cache::BlobCache;
use crate::progress::Progress;
use crate::source::ResolvedImage;
use crate::{ImageError, Limits};
use std::path::PathBuf;
use std::sync::Arc;

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub insecure: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: Option<String>,
    pub docker_config: Option<PathBuf>,
    pub max_concurrent_downloads: usize,
}

/// Resolves a registry reference to its layers.
pub async fn resolve(
    reference: &str,
    opts: &RegistryOptions,
    cache: &BlobCache,
    limits: &Limits,
    progress: Arc<dyn Progress>,
) -> Result<ResolvedImage, ImageError> {
    let _ = (reference, opts, cache, limits, progress);
    todo!("skeleton")
}
