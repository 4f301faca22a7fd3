//! Posture configuration: parameters of the parameterised checks, excluded namespaces, disabled
//! checks and severity overrides. Read from YAML (`--config`); every field has a default.

use crate::check::PostureFinding;
use palisade_core::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read posture config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid posture config {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The whole configuration. Unknown keys are an error, so a typo does not silently disable a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PostureConfig {
    /// Namespaces whose workloads the workload and exposure checks skip (exact names or `prefix*`).
    pub excluded_namespaces: Vec<String>,
    /// Check ids not to run.
    pub disabled_checks: Vec<String>,
    /// Severity per check id, replacing the built-in one.
    pub severity_overrides: BTreeMap<String, Severity>,
    /// Only report checks of these ids (empty: all).
    pub enabled_checks: Vec<String>,
    pub parameters: Parameters,
    /// Subjects the RBAC checks treat as part of Kubernetes itself and do not report, as
    /// `User:<name>`, `Group:<name>` or `ServiceAccount:<namespace>/<name>`; `*` matches any run of
    /// characters. The broad groups `system:authenticated`, `system:unauthenticated`,
    /// `system:serviceaccounts[:<ns>]` and the user `system:anonymous` are always reported.
    pub rbac_system_subjects: Vec<String>,
}

/// The default [`PostureConfig::rbac_system_subjects`]: control-plane users and groups, and the
/// service accounts of kube-controller-manager's controllers and of the stock kube-system add-ons.
pub const DEFAULT_RBAC_SYSTEM_SUBJECTS: &[&str] = &[
    "User:system:*",
    "Group:system:masters",
    "Group:system:nodes",
    "Group:system:monitoring",
    "Group:system:bootstrappers*",
    "ServiceAccount:kube-system/*-controller",
    "ServiceAccount:kube-system/*-controller-manager",
    "ServiceAccount:kube-system/generic-garbage-collector",
    "ServiceAccount:kube-system/horizontal-pod-autoscaler",
    "ServiceAccount:kube-system/persistent-volume-binder",
    "ServiceAccount:kube-system/pod-garbage-collector",
    "ServiceAccount:kube-system/root-ca-cert-publisher",
    "ServiceAccount:kube-system/bootstrap-signer",
    "ServiceAccount:kube-system/token-cleaner",
    "ServiceAccount:kube-system/cloud-provider",
    "ServiceAccount:kube-system/kube-scheduler",
    "ServiceAccount:kube-system/kube-proxy",
    "ServiceAccount:kube-system/kube-dns",
    "ServiceAccount:kube-system/coredns",
];

impl Default for PostureConfig {
    fn default() -> Self {
        PostureConfig {
            excluded_namespaces: [
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "gatekeeper-system",
                "palisade-system",
            ]
            .map(String::from)
            .to_vec(),
            disabled_checks: Vec::new(),
            severity_overrides: BTreeMap::new(),
            enabled_checks: Vec::new(),
            parameters: Parameters::default(),
            rbac_system_subjects: DEFAULT_RBAC_SYSTEM_SUBJECTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Parameters of the parameterised checks. Filled in by the workload module's owner; see its docs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameters {}

impl PostureConfig {
    /// Reads a YAML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses YAML text (an empty document is the default config).
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(PostureConfig::default());
        }
        yaml_serde::from_str(text).map_err(|e| e.to_string())
    }

    /// Whether a namespace is excluded from workload and exposure checks.
    pub fn is_excluded_namespace(&self, namespace: Option<&str>) -> bool {
        let Some(ns) = namespace else { return false };
        self.excluded_namespaces
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => ns.starts_with(prefix),
                None => ns == pattern,
            })
    }

    /// Whether a check should run at all.
    pub fn is_enabled(&self, check_id: &str) -> bool {
        !self.disabled_checks.iter().any(|d| d == check_id)
            && (self.enabled_checks.is_empty() || self.enabled_checks.iter().any(|e| e == check_id))
    }

    /// Drops findings of disabled checks and applies severity overrides.
    pub fn apply_overrides(&self, findings: &mut Vec<PostureFinding>) {
        findings.retain(|f| self.is_enabled(&f.check_id));
        for f in findings.iter_mut() {
            if let Some(s) = self.severity_overrides.get(&f.check_id) {
                f.severity = *s;
            }
        }
    }
}
