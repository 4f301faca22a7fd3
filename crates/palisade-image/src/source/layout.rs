//! TODO(skeleton, owner: registry): OCI image layout directories. Contract signature only.

use crate::source::ResolvedImage;
use crate::{ImageError, Limits};
use std::path::Path;

/// Opens an OCI layout directory, choosing the manifest by tag/digest and platform.
pub fn open(
    path: &Path,
    reference: Option<&str>,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let _ = (path, reference, platform, limits);
    todo!("skeleton")
}
