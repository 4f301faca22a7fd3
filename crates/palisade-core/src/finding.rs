//! Findings: conditions that hold for a resource now, and can later be resolved.

use crate::{ResourceRef, Severity};
use serde::{Deserialize, Serialize};

/// Which engine a finding comes from; it decides how the surfaces group and deduplicate findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Vulnerability,
    Recommendation,
    Policy,
}

/// One state the user should know about: what (`rule_id`, `title`), where (`resource`), why
/// (`evidence`) and what to do (`remediation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// Stable identifier of the check or vulnerability (e.g. `CVE-2023-4863`).
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub resource: ResourceRef,
    /// The fields or versions that made the finding hold, for a person to verify it.
    pub evidence: serde_json::Value,
    pub remediation: String,
}
