//! TODO(skeleton, owner: layers): `scan_image(ResolvedImage, …) -> Sbom`. Contract signature only.

use crate::catalog::Cataloger;
use crate::progress::Progress;
use crate::source::ResolvedImage;
use crate::{ImageError, Limits, Sbom};

/// Applies the layers in order onto an ImageFs and runs the catalogers.
pub fn scan_image(
    image: ResolvedImage,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<Sbom, ImageError> {
    let _ = (image, catalogers, limits, progress);
    todo!("skeleton")
}
