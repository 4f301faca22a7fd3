//! Version ordering per ecosystem, exactly as each package manager orders versions.
//!
//! Each submodule re-implements one package manager's comparison (dpkg, apk-tools, rpmvercmp,
//! PEP 440, SemVer, Go, Maven `ComparableVersion`, `Gem::Version`, NuGet, Composer) so that an
//! installed version and an advisory's fixed version are ordered the way the package manager
//! itself would order them. Versions come from images and advisories, so every parser rejects
//! bad input with a [`VersionError`] and never panics; every loop is bounded by the input length
//! and inputs longer than [`MAX_VERSION_LEN`] are refused.

use palisade_core::Ecosystem;
use std::cmp::Ordering;
use thiserror::Error;

pub mod apk;
pub mod composer;
pub mod dpkg;
pub mod go;
pub mod maven;
pub mod nuget;
pub mod pep440;
pub mod rpm;
pub mod rubygems;
pub mod semver;

/// Longest version string any scheme accepts; real versions are far shorter, and the cap keeps
/// hostile input from costing more than a few microseconds.
pub const MAX_VERSION_LEN: usize = 256;

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
    /// Maven `ComparableVersion` ordering.
    Maven,
    /// `Gem::Version` ordering.
    RubyGems,
    /// NuGet: up to four numeric parts, case-insensitive prerelease labels.
    NuGet,
    /// Composer (Packagist).
    Composer,
}

impl VersionScheme {
    /// The ordering a package of `ecosystem` is versioned with.
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

impl VersionError {
    pub(crate) fn new(scheme: VersionScheme, version: &str, reason: impl Into<String>) -> Self {
        // Keep hostile input from bloating error messages.
        let version: String = version.chars().take(MAX_VERSION_LEN).collect();
        VersionError {
            scheme,
            version,
            reason: reason.into(),
        }
    }
}

/// Orders two versions of one scheme.
pub fn compare(scheme: VersionScheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    for v in [a, b] {
        if v.len() > MAX_VERSION_LEN {
            return Err(VersionError::new(
                scheme,
                v,
                format!("longer than {MAX_VERSION_LEN} bytes"),
            ));
        }
    }
    match scheme {
        VersionScheme::Dpkg => dpkg::compare(a, b),
        VersionScheme::Apk => apk::compare(a, b),
        VersionScheme::Rpm => rpm::compare(a, b),
        VersionScheme::Pep440 => pep440::compare(a, b),
        VersionScheme::Semver => semver::compare(a, b),
        VersionScheme::Go => go::compare(a, b),
        VersionScheme::Maven => maven::compare(a, b),
        VersionScheme::RubyGems => rubygems::compare(a, b),
        VersionScheme::NuGet => nuget::compare(a, b),
        VersionScheme::Composer => composer::compare(a, b),
    }
}

/// Compares two ASCII digit strings as unbounded non-negative integers (leading zeros ignored),
/// so no version number can overflow.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_zeros(a);
    let b = strip_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_compare_without_overflow() {
        assert_eq!(cmp_digits(b"007", b"7"), Ordering::Equal);
        assert_eq!(cmp_digits(b"10", b"9"), Ordering::Greater);
        assert_eq!(
            cmp_digits(b"99999999999999999999999", b"100000000000000000000000"),
            Ordering::Less
        );
        assert_eq!(cmp_digits(b"", b"0"), Ordering::Equal);
    }

    #[test]
    fn overlong_input_is_an_error() {
        let long = "1".repeat(MAX_VERSION_LEN + 1);
        for scheme in [
            VersionScheme::Dpkg,
            VersionScheme::Apk,
            VersionScheme::Rpm,
            VersionScheme::Pep440,
            VersionScheme::Semver,
            VersionScheme::Go,
            VersionScheme::Maven,
            VersionScheme::RubyGems,
            VersionScheme::NuGet,
            VersionScheme::Composer,
        ] {
            assert!(compare(scheme, &long, "1").is_err(), "{scheme:?}");
            assert!(compare(scheme, "1", &long).is_err(), "{scheme:?}");
        }
    }
}
