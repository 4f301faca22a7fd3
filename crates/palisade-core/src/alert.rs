//! Alerts: things that happened at a time, mapped to MITRE ATT&CK.

use crate::{ResourceRef, Severity};
use serde::{Deserialize, Serialize};

/// A MITRE ATT&CK tactic (the "why" of an attacker's step), by its ATT&CK id and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tactic {
    pub id: String,
    pub name: String,
}

/// A MITRE ATT&CK technique (the "how"), e.g. `T1610` Deploy Container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Technique {
    pub id: String,
    pub name: String,
}

/// One detection: the alert id of the catalog (`K8S_*`, `K8S.NODE_*`), when it happened, on what,
/// with the events that triggered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub title: String,
    pub severity: Severity,
    /// RFC 3339 time of the triggering event.
    pub time: String,
    pub resource: ResourceRef,
    pub tactics: Vec<Tactic>,
    pub techniques: Vec<Technique>,
    pub evidence: serde_json::Value,
    pub remediation: String,
}
