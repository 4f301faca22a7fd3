//! What a check is and what it reports.

use palisade_core::{Finding, FindingKind, ResourceRef, Severity};
use palisade_kube::{KubeObject, SourceLocation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// The family a check belongs to; tables group by it and `--category` filters on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Pod and container settings (Defender data-plane recommendations, Pod Security Standards).
    Workload,
    /// Services, Ingresses and databases reachable from outside the cluster.
    Exposure,
    /// Who can do what.
    Rbac,
    /// kube-apiserver, controller-manager, scheduler, etcd and kubelet settings.
    ControlPlane,
    /// A chain of conditions in the security graph.
    AttackPath,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Workload => "workload",
            Category::Exposure => "exposure",
            Category::Rbac => "rbac",
            Category::ControlPlane => "control-plane",
            Category::AttackPath => "attack-path",
        }
    }
}

/// The fixed description of one check. Ids are stable (`pod.privileged`, `rbac.wildcard-verbs`,
/// `K8S_ExposedPostgresTrustAuth`): exceptions, config overrides and the admission bundle name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub category: Category,
    /// What to change, in a sentence or two a person can act on.
    pub remediation: &'static str,
    /// Benchmarks and standards it implements: `CIS 5.2.2`, `PSS baseline: Privileged Containers`,
    /// `Defender: Privileged containers should be avoided`.
    pub controls: &'static [&'static str],
    /// Names of the `parameters` keys of the config file this check reads (empty if none).
    pub parameters: &'static [&'static str],
}

/// Declares `pub const NAME: CheckInfo` in a module's check table, so the tables read as data:
/// `declare_check!(Category::Workload; NAME, "id", "title", Medium, "remediation", [controls], [parameters]);`
macro_rules! declare_check {
    ($category:expr; $name:ident, $id:literal, $title:literal, $sev:ident, $remediation:literal, [$($c:literal),* $(,)?], [$($p:literal),* $(,)?]) => {
        pub const $name: $crate::check::CheckInfo = $crate::check::CheckInfo {
            id: $id,
            title: $title,
            severity: palisade_core::Severity::$sev,
            category: $category,
            remediation: $remediation,
            controls: &[$($c),*],
            parameters: &[$($p),*],
        };
    };
}
pub(crate) use declare_check;

impl CheckInfo {
    /// A check without parameters (RBAC and control-plane tables build theirs with this).
    pub const fn without_parameters(
        id: &'static str,
        title: &'static str,
        severity: Severity,
        category: Category,
        remediation: &'static str,
        controls: &'static [&'static str],
    ) -> CheckInfo {
        CheckInfo {
            id,
            title,
            severity,
            category,
            remediation,
            controls,
            parameters: &[],
        }
    }

    /// A finding of this check on `object` (and one of its containers, if the check is per container).
    pub fn finding(
        &'static self,
        object: &KubeObject,
        cluster: Option<&str>,
        container: Option<&str>,
        message: impl Into<String>,
        evidence: Vec<Evidence>,
    ) -> PostureFinding {
        let mut resource = object.resource_ref(cluster);
        resource.container = container.map(str::to_string);
        PostureFinding {
            check_id: Cow::Borrowed(self.id),
            title: Cow::Borrowed(self.title),
            severity: self.severity,
            category: self.category,
            resource,
            message: message.into(),
            evidence,
            remediation: Cow::Borrowed(self.remediation),
            controls: self.controls.iter().map(|c| Cow::Borrowed(*c)).collect(),
            source: object.source.clone(),
        }
    }
}

/// One field that made a finding hold: its path in the object (`spec.template.spec.containers[0].securityContext.privileged`)
/// and its value there (`null` when the problem is that the field is missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub path: String,
    pub value: Value,
}

impl Evidence {
    pub fn new(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Evidence {
            path: path.into(),
            value: value.into(),
        }
    }
}

/// A recommendation that holds for one resource now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostureFinding {
    pub check_id: Cow<'static, str>,
    /// Borrowed from the check's static description in the common case: a large inventory has
    /// hundreds of thousands of findings, and these texts would otherwise be copied into each.
    pub title: Cow<'static, str>,
    pub severity: Severity,
    pub category: Category,
    pub resource: ResourceRef,
    /// What is wrong with this resource in particular.
    pub message: String,
    pub evidence: Vec<Evidence>,
    pub remediation: Cow<'static, str>,
    pub controls: Vec<Cow<'static, str>>,
    /// File and line for objects loaded from manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceLocation>,
}

impl PostureFinding {
    /// Most severe first, then by resource and check, so reports are stable from run to run.
    pub fn order(a: &PostureFinding, b: &PostureFinding) -> Ordering {
        b.severity
            .cmp(&a.severity)
            .then_with(|| resource_key(&a.resource).cmp(&resource_key(&b.resource)))
            .then_with(|| a.check_id.cmp(&b.check_id))
            .then_with(|| a.message.cmp(&b.message))
    }

    /// The engine-neutral form the store and the other surfaces use.
    pub fn to_finding(&self) -> Finding {
        Finding {
            kind: FindingKind::Recommendation,
            rule_id: self.check_id.to_string(),
            title: self.title.to_string(),
            severity: self.severity,
            resource: self.resource.clone(),
            evidence: serde_json::json!({
                "message": self.message,
                "fields": self.evidence,
                "controls": self.controls,
            }),
            remediation: self.remediation.to_string(),
        }
    }
}

fn resource_key(r: &ResourceRef) -> (&str, &str, &str, &str) {
    (
        r.namespace.as_deref().unwrap_or(""),
        r.kind.as_deref().unwrap_or(""),
        r.name.as_deref().unwrap_or(""),
        r.container.as_deref().unwrap_or(""),
    )
}
