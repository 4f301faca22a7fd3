//! Palisade's image engine: from an image reference, an OCI layout, an archive or a root file system
//! to the list of packages inside (an SBOM), without unpacking anything to disk.
//!
//! The flow is `source` (resolve the image and its ordered layer blobs) → `layer` (read each layer
//! once as a stream, safely, keeping only the files catalogers asked for, applying whiteouts) →
//! [`fs::ImageFs`] (the merged in-memory view of those files) → `catalog` (package catalogers) →
//! [`sbom::Sbom`].

pub mod cache;
pub mod catalog;
pub mod error;
pub mod fs;
pub mod layer;
pub mod limits;
pub mod progress;
pub mod registry;
pub mod rootfs;
pub mod sbom;
pub mod scan;
pub mod source;

pub use error::ImageError;
pub use fs::{EntryKind, FileEntry, ImageFs};
pub use limits::Limits;
pub use sbom::{Sbom, ScanTarget};
