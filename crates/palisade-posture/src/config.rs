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

/// Parameters of the parameterised workload and exposure checks (the `parameters` key of the
/// config file). Every field has a default; an empty list means what its doc says (for
/// `allowedRegistries`: the check is off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameters {
    /// Image registries (or registry/path prefixes: `registry.example.com/team/`) images may come
    /// from. Docker Hub images are `docker.io/...` (`nginx` is `docker.io/library/nginx`).
    /// Default: empty, and `container.trusted-registry` does not run until this is set.
    pub allowed_registries: Vec<String>,
    /// Capabilities containers may add (without the `CAP_` prefix). Default: the Pod Security
    /// Standards baseline list (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
    /// NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).
    pub allowed_capabilities: Vec<String>,
    /// Capabilities every container must drop. Default: `[ALL]`.
    pub required_drop_capabilities: Vec<String>,
    /// hostPath prefixes pods may mount; with `readOnly: true` every mount of the volume must be
    /// read-only. Default: none (no hostPath volume is allowed).
    pub allowed_host_paths: Vec<AllowedHostPath>,
    /// Host ports containers may bind. Default: none (no host port is allowed).
    pub host_port_range: Option<PortRange>,
    /// Ports Services may listen on, and containers may declare. Default: empty (any port).
    pub allowed_service_ports: Vec<u16>,
    /// Ports that must not be reachable from outside the cluster through a LoadBalancer, NodePort
    /// or external-IP Service (as `port` or `targetPort`). Default: SSH, telnet, Docker API, etcd,
    /// MySQL, PostgreSQL, Redis, Elasticsearch, kubelet, memcached and MongoDB ports
    /// (22, 23, 2375, 2376, 2379, 2380, 3306, 5432, 6379, 9200, 10250, 10255, 11211, 27017).
    pub denied_service_ports: Vec<u16>,
    /// Largest CPU limit a container may set, as a Kubernetes quantity (`500m`, `2`). Default: none
    /// (only the presence of a limit is checked).
    pub max_cpu: Option<String>,
    /// Largest memory limit a container may set, as a Kubernetes quantity (`512Mi`, `2G`, `1e9`).
    /// Default: none (only the presence of a limit is checked).
    pub max_memory: Option<String>,
    /// AppArmor profiles containers may use: `runtime/default`, `localhost/<name>` (`localhost/*`
    /// for any local profile), `unconfined`. The `appArmorProfile` field's types map to these
    /// names (`RuntimeDefault` → `runtime/default`, `Localhost` → `localhost/<profile>`).
    /// Default: `runtime/default`, `localhost/*`.
    pub allowed_app_armor_profiles: Vec<String>,
    /// User ids containers may run as. Default: rule `MustRunAsNonRoot`.
    pub run_as_user: IdRule,
    /// Primary group ids. Default: rule `MustRunAs` with range 1–65535 (a group must be set, and it
    /// must not be root); `MustRunAs` needs at least one range.
    pub run_as_group: IdRule,
    /// Supplemental group ids. Default: rule `MayRunAs` with range 1–65535.
    pub supplemental_groups: IdRule,
    /// fsGroup ids. Default: rule `MayRunAs` with range 1–65535.
    pub fs_group: IdRule,
}

/// A hostPath prefix pods may mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedHostPath {
    /// Allowed path prefix, matched on whole path components (`/var/log` allows `/var/log/pods`,
    /// not `/var/logs`).
    pub path_prefix: String,
    /// Whether every mount of such a volume must be read-only. Default: false.
    #[serde(default)]
    pub read_only: bool,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

/// An inclusive id range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    pub min: i64,
    pub max: i64,
}

/// How ids are constrained (the PodSecurityPolicy / Gatekeeper `allowed-users` rule names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdRuleKind {
    /// The id must be set and within one of the ranges.
    MustRunAs,
    /// The id may be unset; when set it must be within one of the ranges.
    MayRunAs,
    /// Users only: `runAsNonRoot: true` or a non-zero `runAsUser` is required.
    MustRunAsNonRoot,
    /// No constraint.
    RunAsAny,
}

/// A rule on user or group ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdRule {
    pub rule: IdRuleKind,
    #[serde(default)]
    pub ranges: Vec<IdRange>,
}

impl IdRule {
    fn non_root_ranges(rule: IdRuleKind) -> IdRule {
        IdRule {
            rule,
            ranges: vec![IdRange { min: 1, max: 65535 }],
        }
    }

    /// Whether an id is within one of the ranges.
    pub fn in_ranges(&self, id: i64) -> bool {
        self.ranges.iter().any(|r| r.min <= id && id <= r.max)
    }
}

/// The Pod Security Standards baseline capability list.
pub const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Default `deniedServicePorts`.
pub const DEFAULT_DENIED_SERVICE_PORTS: &[u16] = &[
    22, 23, 2375, 2376, 2379, 2380, 3306, 5432, 6379, 9200, 10250, 10255, 11211, 27017,
];

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            allowed_registries: Vec::new(),
            allowed_capabilities: BASELINE_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
            required_drop_capabilities: vec!["ALL".to_string()],
            allowed_host_paths: Vec::new(),
            host_port_range: None,
            allowed_service_ports: Vec::new(),
            denied_service_ports: DEFAULT_DENIED_SERVICE_PORTS.to_vec(),
            max_cpu: None,
            max_memory: None,
            allowed_app_armor_profiles: vec!["runtime/default".into(), "localhost/*".into()],
            run_as_user: IdRule {
                rule: IdRuleKind::MustRunAsNonRoot,
                ranges: Vec::new(),
            },
            run_as_group: IdRule::non_root_ranges(IdRuleKind::MustRunAs),
            supplemental_groups: IdRule::non_root_ranges(IdRuleKind::MayRunAs),
            fs_group: IdRule::non_root_ranges(IdRuleKind::MayRunAs),
        }
    }
}

impl Parameters {
    /// Checks what serde cannot: quantities parse, ranges are ordered, `MustRunAs` has a range.
    pub fn validate(&self) -> Result<(), String> {
        for (name, q) in [("maxCpu", &self.max_cpu), ("maxMemory", &self.max_memory)] {
            if let Some(q) = q
                && crate::quantity::parse_quantity(q).is_none()
            {
                return Err(format!(
                    "parameters.{name}: `{q}` is not a Kubernetes quantity"
                ));
            }
        }
        if let Some(r) = self.host_port_range
            && r.min > r.max
        {
            return Err("parameters.hostPortRange: min is above max".to_string());
        }
        for (name, rule) in [
            ("runAsUser", &self.run_as_user),
            ("runAsGroup", &self.run_as_group),
            ("supplementalGroups", &self.supplemental_groups),
            ("fsGroup", &self.fs_group),
        ] {
            if matches!(rule.rule, IdRuleKind::MustRunAs | IdRuleKind::MayRunAs)
                && rule.ranges.is_empty()
            {
                return Err(format!(
                    "parameters.{name}: rule {:?} needs at least one range",
                    rule.rule
                ));
            }
            if rule.ranges.iter().any(|r| r.min > r.max) {
                return Err(format!("parameters.{name}: a range has min above max"));
            }
            if name != "runAsUser" && rule.rule == IdRuleKind::MustRunAsNonRoot {
                return Err(format!(
                    "parameters.{name}: MustRunAsNonRoot applies to runAsUser only"
                ));
            }
        }
        Ok(())
    }
}

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
        let config: PostureConfig = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
        config.parameters.validate()?;
        Ok(config)
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
            if let Some(s) = self.severity_overrides.get(f.check_id.as_ref()) {
                f.severity = *s;
            }
        }
    }
}
