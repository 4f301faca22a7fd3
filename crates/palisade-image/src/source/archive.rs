//! TODO(skeleton, owner: registry): `docker save` / OCI archive tarballs. Contract signature only.

use crate::source::ResolvedImage;
use crate::{ImageError, Limits};
use std::path::Path;

/// Opens a docker-save or OCI archive tarball (auto-detected).
pub fn open(
    path: &Path,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let _ = (path, platform, limits);
    todo!("skeleton")
}
