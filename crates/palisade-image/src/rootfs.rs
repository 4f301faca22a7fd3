//! TODO(skeleton, owner: layers): scanning a plain root file system. Contract signature only.

use crate::catalog::Cataloger;
use crate::{ImageError, Limits, Sbom};
use std::path::Path;

/// Catalogs a directory tree as a root file system.
pub fn scan_rootfs(
    root: &Path,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
) -> Result<Sbom, ImageError> {
    let _ = (root, catalogers, limits);
    todo!("skeleton")
}
