//! The result of cataloging: what was scanned and the packages in it.
//!
//! CycloneDX and SPDX renderings live in [`cyclonedx`] and [`spdx`].

pub mod cyclonedx;
pub mod spdx;

use crate::catalog::{CatalogContext, Cataloger};
use crate::fs::ImageFs;
use palisade_core::{Distro, Package};
use serde::{Deserialize, Serialize};

/// What was scanned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanTarget {
    /// `image`, `oci-layout`, `docker-archive`, `oci-archive` or `filesystem`.
    pub kind: String,
    /// The reference or path as the user gave it.
    pub name: String,
    /// Manifest digest (`sha256:…`) for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// `os/arch[/variant]` of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Layer blob digests, base first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// A software bill of materials: the packages of one target and the OS they run on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sbom {
    pub target: ScanTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    pub packages: Vec<Package>,
    /// Problems that did not stop the scan (a corrupt database, a skipped oversized file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Runs every cataloger over a merged view: detects the distro, collects packages, fills in the
/// layer each package was found in, and qualifies OS package purls with the distro.
pub fn catalog_fs(
    target: ScanTarget,
    fs: &ImageFs,
    catalogers: &[Box<dyn Cataloger>],
    mut warnings: Vec<String>,
) -> Sbom {
    let distro = crate::catalog::os::detect(fs);
    let ctx = CatalogContext {
        distro: distro.clone(),
    };
    let mut packages = Vec::new();
    for c in catalogers {
        let out = c.catalog(fs, &ctx);
        warnings.extend(out.errors.into_iter().map(|e| e.to_string()));
        packages.extend(out.packages);
    }
    for p in &mut packages {
        if p.location.layer_digest.is_none()
            && let Some(entry) = fs.entry(&p.location.path)
        {
            p.location.layer_digest = entry.layer.as_deref().map(str::to_string);
        }
        if let Some(d) = &distro {
            p.qualify_os_purl(d);
        }
    }
    Sbom {
        target,
        distro,
        packages,
        warnings,
    }
}
