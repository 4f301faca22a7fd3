//! Palisade's own policy bundle: one ConstraintTemplate per workload and exposure check of the
//! posture engine, with the same check ids, parameters and defaults, so that `palisade scan`
//! (audit) and admission (enforce) agree; plus the vulnerability gate (`image.vulnerabilities`).
//!
//! The templates live in `bundle/<check-id>/template.yaml` (each with its gator suite) and are
//! embedded in the binary. Their Rego shares the libraries in `bundle/lib`, copied into each
//! template's `libs` as Gatekeeper requires; a test keeps the copies identical.

use crate::constraint::EnforcementAction;
use palisade_kube::KubeObject;
use palisade_posture::PostureConfig;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

// Generated list of the templates under bundle/ (one per check id).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "container.allowed-ports",
        include_str!("../bundle/container.allowed-ports/template.yaml"),
    ),
    (
        "container.apparmor-profile",
        include_str!("../bundle/container.apparmor-profile/template.yaml"),
    ),
    (
        "container.apparmor-unconfined",
        include_str!("../bundle/container.apparmor-unconfined/template.yaml"),
    ),
    (
        "container.cap-sys-admin",
        include_str!("../bundle/container.cap-sys-admin/template.yaml"),
    ),
    (
        "container.capabilities-drop",
        include_str!("../bundle/container.capabilities-drop/template.yaml"),
    ),
    (
        "container.capabilities-not-allowed",
        include_str!("../bundle/container.capabilities-not-allowed/template.yaml"),
    ),
    (
        "container.capabilities-restricted-add",
        include_str!("../bundle/container.capabilities-restricted-add/template.yaml"),
    ),
    (
        "container.host-ports",
        include_str!("../bundle/container.host-ports/template.yaml"),
    ),
    (
        "container.privilege-escalation",
        include_str!("../bundle/container.privilege-escalation/template.yaml"),
    ),
    (
        "container.privileged",
        include_str!("../bundle/container.privileged/template.yaml"),
    ),
    (
        "container.proc-mount",
        include_str!("../bundle/container.proc-mount/template.yaml"),
    ),
    (
        "container.read-only-root-filesystem",
        include_str!("../bundle/container.read-only-root-filesystem/template.yaml"),
    ),
    (
        "container.resource-limits",
        include_str!("../bundle/container.resource-limits/template.yaml"),
    ),
    (
        "container.run-as-non-root",
        include_str!("../bundle/container.run-as-non-root/template.yaml"),
    ),
    (
        "container.run-as-user-root",
        include_str!("../bundle/container.run-as-user-root/template.yaml"),
    ),
    (
        "container.seccomp-required",
        include_str!("../bundle/container.seccomp-required/template.yaml"),
    ),
    (
        "container.seccomp-unconfined",
        include_str!("../bundle/container.seccomp-unconfined/template.yaml"),
    ),
    (
        "container.trusted-registry",
        include_str!("../bundle/container.trusted-registry/template.yaml"),
    ),
    (
        "container.user-group-ids",
        include_str!("../bundle/container.user-group-ids/template.yaml"),
    ),
    (
        "image.vulnerabilities",
        include_str!("../bundle/image.vulnerabilities/template.yaml"),
    ),
    (
        "ingress.http-only",
        include_str!("../bundle/ingress.http-only/template.yaml"),
    ),
    (
        "pod.automount-service-account-token",
        include_str!("../bundle/pod.automount-service-account-token/template.yaml"),
    ),
    (
        "pod.container-runtime-socket",
        include_str!("../bundle/pod.container-runtime-socket/template.yaml"),
    ),
    (
        "pod.default-namespace",
        include_str!("../bundle/pod.default-namespace/template.yaml"),
    ),
    (
        "pod.host-namespaces",
        include_str!("../bundle/pod.host-namespaces/template.yaml"),
    ),
    (
        "pod.host-network",
        include_str!("../bundle/pod.host-network/template.yaml"),
    ),
    (
        "pod.host-path",
        include_str!("../bundle/pod.host-path/template.yaml"),
    ),
    (
        "pod.selinux-options",
        include_str!("../bundle/pod.selinux-options/template.yaml"),
    ),
    (
        "pod.unsafe-sysctls",
        include_str!("../bundle/pod.unsafe-sysctls/template.yaml"),
    ),
    (
        "pod.volume-types",
        include_str!("../bundle/pod.volume-types/template.yaml"),
    ),
    (
        "pod.windows-host-process",
        include_str!("../bundle/pod.windows-host-process/template.yaml"),
    ),
    (
        "service.allowed-ports",
        include_str!("../bundle/service.allowed-ports/template.yaml"),
    ),
    (
        "service.denied-port-exposed",
        include_str!("../bundle/service.denied-port-exposed/template.yaml"),
    ),
];

/// The shared Rego libraries, in the order templates list them.
pub const LIBS: &[(&str, &str)] = &[
    ("pods", include_str!("../bundle/lib/pods.rego")),
    ("profiles", include_str!("../bundle/lib/profiles.rego")),
    ("quantity", include_str!("../bundle/lib/quantity.rego")),
];

/// The check id of the vulnerability gate (not a posture check: it reads scan results).
pub const VULNERABILITY_GATE: &str = "image.vulnerabilities";

/// Why the bundle could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serialise {what}: {message}")]
    Serialise { what: String, message: String },
}

/// One template of the bundle.
#[derive(Debug, Clone)]
pub struct BundleTemplate {
    pub check_id: &'static str,
    /// The template as written in `bundle/<check-id>/template.yaml`.
    pub yaml: &'static str,
    pub object: KubeObject,
}

impl BundleTemplate {
    /// The constraint kind (`PalisadeContainerPrivileged`).
    pub fn kind(&self) -> &str {
        self.object
            .get("spec.crd.spec.names.kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The posture severity the template carries.
    pub fn severity(&self) -> Option<&str> {
        self.object.annotation(crate::policy::SEVERITY_ANNOTATION)
    }

    /// The kinds a constraint of this template matches (Gatekeeper `match.kinds`).
    pub fn match_kinds(&self) -> Value {
        if self.check_id.starts_with("service.") {
            json!([{"apiGroups": [""], "kinds": ["Service"]}])
        } else if self.check_id.starts_with("ingress.") {
            json!([{"apiGroups": ["networking.k8s.io", "extensions"], "kinds": ["Ingress"]}])
        } else {
            json!([
                {"apiGroups": [""], "kinds": ["Pod", "ReplicationController", "PodTemplate"]},
                {"apiGroups": ["apps"], "kinds": ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"]},
                {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]}
            ])
        }
    }
}

fn parse(check_id: &'static str, yaml: &'static str) -> BundleTemplate {
    // The embedded templates are part of the binary, not input: a test parses every one.
    let value: Value = yaml_serde::from_str(yaml)
        .unwrap_or_else(|e| panic!("bundled template {check_id} is not YAML: {e}"));
    let object = KubeObject::from_value(value, None)
        .unwrap_or_else(|e| panic!("bundled template {check_id} is not an object: {e}"));
    BundleTemplate {
        check_id,
        yaml,
        object,
    }
}

/// Every template of the bundle.
pub fn templates() -> Vec<BundleTemplate> {
    TEMPLATES.iter().map(|(id, yaml)| parse(id, yaml)).collect()
}

/// The bundle's ConstraintTemplates as objects (for a [`crate::PolicySet`]).
pub fn bundle_objects() -> Vec<KubeObject> {
    templates().into_iter().map(|t| t.object).collect()
}

/// The check ids the bundle covers.
pub fn check_ids() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(id, _)| *id)
}

/// What [`export`] and [`constraints`] write besides the posture config.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// `spec.enforcementAction` of every constraint.
    pub enforcement_action: EnforcementAction,
    /// Parameters of a vulnerability-gate constraint (`minSeverity`, `deniedCves`, `exemptions`,
    /// `unscannedImages`); `None`: its template is exported, no constraint.
    pub vulnerability_gate: Option<Value>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            enforcement_action: EnforcementAction::Deny,
            vulnerability_gate: None,
        }
    }
}

/// `metadata.name` of a check's constraint: `palisade-container-privileged`.
pub fn constraint_name(check_id: &str) -> String {
    let mut name = String::from("palisade-");
    for ch in check_id.chars() {
        name.push(match ch {
            'a'..='z' | '0'..='9' | '-' => ch,
            'A'..='Z' => ch.to_ascii_lowercase(),
            _ => '-',
        });
    }
    name
}

/// The parameters of one check taken from a posture config: the keys the check reads (its
/// `CheckInfo::parameters`), unset optional ones left out so the template's default applies
/// exactly as posture's does.
pub fn check_parameters(
    config: &PostureConfig,
    check_id: &str,
) -> Result<Map<String, Value>, BundleError> {
    let all = serde_json::to_value(&config.parameters).map_err(|e| BundleError::Serialise {
        what: "posture parameters".into(),
        message: e.to_string(),
    })?;
    let names = palisade_posture::all_checks()
        .into_iter()
        .find(|c| c.id == check_id)
        .map(|c| c.parameters)
        .unwrap_or_default();
    let mut out = Map::new();
    for name in names {
        if let Some(v) = all.get(*name).filter(|v| !v.is_null()) {
            out.insert((*name).to_string(), v.clone());
        }
    }
    Ok(out)
}

/// The constraints a posture config asks for: one per enabled check (disabledChecks,
/// enabledChecks), matching the check's kinds outside excludedNamespaces, with the check's
/// parameters and severity override.
pub fn constraints(
    config: &PostureConfig,
    options: &ExportOptions,
) -> Result<Vec<KubeObject>, BundleError> {
    let mut out = Vec::new();
    for t in templates() {
        let gate = t.check_id == VULNERABILITY_GATE;
        let parameters = if gate {
            match &options.vulnerability_gate {
                Some(p) => p.clone(),
                None => continue,
            }
        } else {
            if !config.is_enabled(t.check_id) {
                continue;
            }
            Value::Object(check_parameters(config, t.check_id)?)
        };
        let severity = config
            .severity_overrides
            .get(t.check_id)
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .or_else(|| t.severity().map(Value::from))
            .unwrap_or(Value::Null);
        let mut spec = json!({
            "enforcementAction": options.enforcement_action.as_str(),
            "match": {"kinds": t.match_kinds()},
        });
        if !config.excluded_namespaces.is_empty() {
            spec["match"]["excludedNamespaces"] = json!(config.excluded_namespaces);
        }
        if parameters.as_object().is_some_and(|p| !p.is_empty()) {
            spec["parameters"] = parameters;
        }
        let value = json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": t.kind(),
            "metadata": {
                "name": constraint_name(t.check_id),
                "annotations": {
                    crate::policy::CHECK_ID_ANNOTATION: t.check_id,
                    crate::policy::SEVERITY_ANNOTATION: severity,
                },
            },
            "spec": spec,
        });
        let object = KubeObject::from_value(value, None).map_err(|e| BundleError::Serialise {
            what: format!("constraint of {}", t.check_id),
            message: e.to_string(),
        })?;
        out.push(object);
    }
    Ok(out)
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub templates: Vec<PathBuf>,
    pub constraints: Vec<PathBuf>,
}

/// Writes the bundle to `dir`: `templates/<check-id>.yaml` (every template, as embedded) and
/// `constraints/<check-id>.yaml` (see [`constraints`]). Apply the templates first
/// (`kubectl apply -f dir/templates`), then the constraints once their CRDs exist.
pub fn export(
    dir: &Path,
    config: &PostureConfig,
    options: &ExportOptions,
) -> Result<ExportSummary, BundleError> {
    let write = |path: PathBuf, text: &str| -> Result<PathBuf, BundleError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| BundleError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| BundleError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let mut summary = ExportSummary::default();
    for (id, yaml) in TEMPLATES {
        summary.templates.push(write(
            dir.join("templates").join(format!("{id}.yaml")),
            yaml,
        )?);
    }
    for c in constraints(config, options)? {
        let id = c
            .annotation(crate::policy::CHECK_ID_ANNOTATION)
            .unwrap_or(c.name.as_str())
            .to_string();
        let text = yaml_serde::to_string(&c.value).map_err(|e| BundleError::Serialise {
            what: format!("constraint {}", c.name),
            message: e.to_string(),
        })?;
        summary.constraints.push(write(
            dir.join("constraints").join(format!("{id}.yaml")),
            &text,
        )?);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_posture::all_checks;

    #[test]
    fn every_template_parses_and_names_its_check() {
        for t in templates() {
            assert_eq!(
                t.object.annotation(crate::policy::CHECK_ID_ANNOTATION),
                Some(t.check_id),
                "{}",
                t.check_id
            );
            assert!(t.kind().starts_with("Palisade"), "{}", t.check_id);
            assert_eq!(t.object.name, t.kind().to_ascii_lowercase());
        }
    }

    #[test]
    fn templates_follow_posture_checks() {
        for t in templates() {
            if t.check_id == VULNERABILITY_GATE {
                continue;
            }
            let info = all_checks()
                .into_iter()
                .find(|c| c.id == t.check_id)
                .unwrap_or_else(|| panic!("{} is not a posture check", t.check_id));
            let severity = serde_json::to_value(info.severity).unwrap();
            assert_eq!(t.severity(), severity.as_str(), "{}", t.check_id);
            // The schema declares exactly the check's parameters.
            let schema = t
                .object
                .get("spec.crd.spec.validation.openAPIV3Schema.properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            let mut expected: Vec<String> = info.parameters.iter().map(|s| s.to_string()).collect();
            expected.sort();
            let mut got = schema;
            got.sort();
            assert_eq!(got, expected, "{}", t.check_id);
            assert_eq!(
                t.object.annotation("palisade.io/remediation"),
                Some(info.remediation),
                "{}",
                t.check_id
            );
        }
    }

    #[test]
    fn every_data_plane_recommendation_is_covered() {
        // The Defender data-plane recommendations (catalog) and their posture checks.
        for id in [
            "container.resource-limits",
            "container.trusted-registry",
            "container.capabilities-not-allowed",
            "container.capabilities-drop",
            "container.apparmor-profile",
            "container.allowed-ports",
            "service.allowed-ports",
            "pod.host-network",
            "container.host-ports",
            "pod.host-path",
            "container.privilege-escalation",
            "pod.host-namespaces",
            "container.read-only-root-filesystem",
            "ingress.http-only",
            "pod.automount-service-account-token",
            "pod.default-namespace",
            "container.cap-sys-admin",
            "container.privileged",
            "container.user-group-ids",
            "container.run-as-non-root",
        ] {
            assert!(check_ids().any(|c| c == id), "{id} has no template");
        }
    }

    #[test]
    fn libs_in_templates_are_the_shared_libs() {
        for t in templates() {
            let libs = t
                .object
                .get("spec.targets")
                .and_then(|v| v.get(0))
                .and_then(|v| v.get("libs"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            assert!(
                !libs.is_empty() || t.check_id == VULNERABILITY_GATE,
                "{}",
                t.check_id
            );
            for lib in libs {
                let text = lib.as_str().unwrap();
                assert!(
                    LIBS.iter().any(|(_, l)| *l == text),
                    "{}: a lib differs from bundle/lib (regenerate the template)",
                    t.check_id
                );
            }
        }
    }

    #[test]
    fn constraints_follow_the_posture_config() {
        let config = PostureConfig::from_yaml(
            "excludedNamespaces: [kube-*, infra]\ndisabledChecks: [pod.default-namespace]\n\
             severityOverrides: {container.privileged: high}\n\
             parameters:\n  maxCpu: '2'\n  allowedRegistries: [ghcr.io/acme/]\n  hostPortRange: {min: 8000, max: 8100}\n",
        )
        .unwrap();
        let options = ExportOptions {
            enforcement_action: EnforcementAction::Warn,
            vulnerability_gate: None,
        };
        let cs = constraints(&config, &options).unwrap();
        assert!(
            !cs.iter()
                .any(|c| c.name == "palisade-pod-default-namespace")
        );
        assert!(
            !cs.iter()
                .any(|c| c.name == "palisade-image-vulnerabilities")
        );
        let limits = cs
            .iter()
            .find(|c| c.name == "palisade-container-resource-limits")
            .unwrap();
        assert_eq!(limits.get("spec.parameters"), Some(&json!({"maxCpu": "2"})));
        assert_eq!(limits.get("spec.enforcementAction"), Some(&json!("warn")));
        assert_eq!(
            limits.get("spec.match.excludedNamespaces"),
            Some(&json!(["kube-*", "infra"]))
        );
        let privileged = cs
            .iter()
            .find(|c| c.name == "palisade-container-privileged")
            .unwrap();
        assert_eq!(privileged.annotation("palisade.io/severity"), Some("high"));
        assert!(privileged.get("spec.parameters").is_none());
        let ports = cs
            .iter()
            .find(|c| c.name == "palisade-container-host-ports")
            .unwrap();
        assert_eq!(
            ports.get("spec.parameters.hostPortRange"),
            Some(&json!({"min": 8000, "max": 8100}))
        );
        // Enabled checks only.
        let only = PostureConfig::from_yaml("enabledChecks: [container.privileged]").unwrap();
        assert_eq!(constraints(&only, &options).unwrap().len(), 1);
    }

    #[test]
    fn export_writes_templates_and_constraints() {
        let dir = tempfile::tempdir().unwrap();
        let summary = export(
            dir.path(),
            &PostureConfig::default(),
            &ExportOptions::default(),
        )
        .unwrap();
        assert_eq!(summary.templates.len(), TEMPLATES.len());
        assert!(!summary.constraints.is_empty());
        let text =
            std::fs::read_to_string(dir.path().join("constraints/container.privileged.yaml"))
                .unwrap();
        assert!(text.contains("kind: PalisadeContainerPrivileged"), "{text}");
        assert!(text.contains("enforcementAction: deny"), "{text}");
    }
}
