//! A vulnerability as reported to the user, merged over the databases that describe it.

use crate::Severity;
use serde::{Deserialize, Serialize};

/// One CVSS assessment from an advisory source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssScore {
    /// `"2.0"`, `"3.0"`, `"3.1"` or `"4.0"`.
    pub version: String,
    pub vector: String,
    /// Base score computed from the vector (not trusted from the source).
    pub base_score: f64,
}

/// What the user is told about one vulnerability. `id` is the preferred public id (the CVE when one
/// exists) and `aliases` every other id that names the same flaw (GHSA, PYSEC, RUSTSEC, GO, DSA, …),
/// so a flaw reported by several databases is shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Advisory {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cvss: Vec<CvssScore>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// RFC 3339 publication time, where the source gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Names of the databases this advisory was merged from (e.g. `osv:PyPI`, `debian`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}
