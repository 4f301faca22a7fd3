//! The normalised advisory every importer produces and the DB stores.

use palisade_core::{CvssScore, Severity};
use serde::{Deserialize, Serialize};

/// One advisory as published by one source, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AdvisoryRecord {
    /// The source's own id (`GHSA-…`, `PYSEC-…`, `RUSTSEC-…`, `GO-…`, `CVE-…`, `DSA-…`).
    pub id: String,
    /// Every other id the source says names the same flaw (CVE, GHSA, …).
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    /// Qualitative severity given by the source (GHSA `database_specific.severity`, distro
    /// urgency), used when no CVSS vector is present.
    pub severity: Option<Severity>,
    /// CVSS vectors with base scores computed by [`crate::cvss`].
    pub cvss: Vec<CvssScore>,
    pub references: Vec<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
    /// Withdrawn advisories are kept out of matching (importers may drop them outright).
    pub withdrawn: bool,
    /// Which database this came from: `osv`, `debian-tracker`, `debian-dsa`, `debian-dla`,
    /// `alpine-secdb`.
    pub source: String,
    pub affected: Vec<AffectedPackage>,
}

/// The versions of one package an advisory affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AffectedPackage {
    /// Normalised ecosystem key, see [`crate::keys`]: `PyPI`, `npm`, `crates.io`, `Go`, `Maven`,
    /// `RubyGems`, `Packagist`, `NuGet`, or `<distro>:<release>` for OS packages
    /// (`debian:bookworm`, `alpine:v3.19`, `ubuntu:22.04`, `rhel:9`).
    pub ecosystem: String,
    /// Normalised package name (see [`crate::keys::normalize_name`]); source package for distros.
    pub name: String,
    pub ranges: Vec<AffectedRange>,
    /// Explicitly listed affected versions (OSV `versions`).
    pub versions: Vec<String>,
    /// Per-package severity where the source gives one (distro urgency).
    pub severity: Option<Severity>,
}

/// A range of affected versions as a sorted list of events (OSV semantics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedRange {
    pub kind: RangeKind,
    pub events: Vec<RangeEvent>,
}

/// How range event versions are ordered: `Semver` always by SemVer 2.0, `Ecosystem` by the
/// ecosystem's own scheme. (OSV `GIT` ranges are not importable: they name commits.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeKind {
    Semver,
    Ecosystem,
}

/// One OSV range event. `Introduced("0")` means "from the beginning".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}
