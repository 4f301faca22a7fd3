//! Version ordering per ecosystem, exactly as each package manager orders versions.
//!
//! TODO(skeleton, owner: versions): the bodies. The signatures below are the contract the matcher
//! codes against.

use palisade_core::Ecosystem;
use std::cmp::Ordering;
use thiserror::Error;

/// How versions of one ecosystem are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionScheme {
    /// Debian/Ubuntu: epoch, upstream, revision, `~` sorts before everything.
    Dpkg,
    /// Alpine apk: `1.2.3_rc1-r4`.
    Apk,
    /// rpm: epoch, version, release with rpmvercmp.
    Rpm,
    /// PyPI, PEP 440.
    Pep440,
    /// SemVer 2.0 (npm, crates.io; OSV `SEMVER` ranges).
    Semver,
    /// Go modules: SemVer with a `v` prefix, pseudo-versions; `go1.21.3` toolchain versions.
    Go,
    Maven,
    RubyGems,
    NuGet,
    /// Composer (Packagist).
    Composer,
}

impl VersionScheme {
    pub fn for_ecosystem(ecosystem: Ecosystem) -> VersionScheme {
        match ecosystem {
            Ecosystem::Deb => VersionScheme::Dpkg,
            Ecosystem::Apk => VersionScheme::Apk,
            Ecosystem::Rpm => VersionScheme::Rpm,
            Ecosystem::PyPI => VersionScheme::Pep440,
            Ecosystem::Npm | Ecosystem::Cargo => VersionScheme::Semver,
            Ecosystem::Go => VersionScheme::Go,
            Ecosystem::Maven => VersionScheme::Maven,
            Ecosystem::RubyGems => VersionScheme::RubyGems,
            Ecosystem::NuGet => VersionScheme::NuGet,
            Ecosystem::Packagist => VersionScheme::Composer,
        }
    }
}

/// A version string the scheme cannot order.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {scheme:?} version {version:?}: {reason}")]
pub struct VersionError {
    pub scheme: VersionScheme,
    pub version: String,
    pub reason: String,
}

/// Orders two versions of one scheme.
pub fn compare(scheme: VersionScheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    let _ = (scheme, a, b);
    todo!("skeleton")
}
