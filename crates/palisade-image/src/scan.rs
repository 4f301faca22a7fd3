//! TODO(skeleton, owner: layers): `scan_image(ResolvedImage, …) -> Sbom` — applies the layers in
//! order onto an ImageFs and runs the catalogers.
