//! Namespace-level checks: the guard rails a namespace should have before workloads run in it.

use crate::check::{Category, CheckInfo, Evidence, PostureFinding};
use crate::config::PostureConfig;
use crate::pod::WORKLOAD_KINDS;
use palisade_core::Severity;
use palisade_kube::Inventory;
use std::collections::HashMap;

const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

pub const NO_NETWORK_POLICY: CheckInfo = CheckInfo {
    id: "namespace.no-network-policy",
    title: "Namespace with workloads has no NetworkPolicy",
    severity: Severity::Medium,
    category: Category::Workload,
    remediation: "Add a default-deny NetworkPolicy (ingress and egress) to the namespace, then allow only the flows its workloads need; without one every pod accepts traffic from every other pod and reaches any destination, including the cloud metadata endpoint.",
    controls: &["CIS 5.3.2"],
    parameters: &[],
};

pub const NO_POD_SECURITY: CheckInfo = CheckInfo {
    id: "namespace.no-pod-security-enforcement",
    title: "Namespace does not enforce a Pod Security Standard",
    severity: Severity::Low,
    category: Category::Workload,
    remediation: "Label the namespace pod-security.kubernetes.io/enforce=restricted (or baseline where restricted is not yet possible) so the API server's Pod Security admission rejects pods that break the standard; or enforce the same rules with Palisade's admission webhook.",
    controls: &["CIS 5.2.1", "PSS: Pod Security admission"],
    parameters: &[],
};

/// The checks of this module.
pub const CHECKS: &[CheckInfo] = &[NO_NETWORK_POLICY, NO_POD_SECURITY];

/// Runs the namespace checks on the Namespace objects the inventory holds (namespaces that only
/// appear in other objects' metadata are not judged: their labels are unknown).
pub fn check(inventory: &Inventory, config: &PostureConfig) -> Vec<PostureFinding> {
    let cluster = inventory.cluster.as_deref();
    let mut workloads: HashMap<&str, usize> = HashMap::new();
    let mut policies: HashMap<&str, usize> = HashMap::new();
    for o in &inventory.objects {
        let Some(ns) = o.namespace.as_deref() else {
            continue;
        };
        if o.kind == "NetworkPolicy" {
            *policies.entry(ns).or_default() += 1;
        } else if WORKLOAD_KINDS.iter().any(|(k, _)| *k == o.kind) {
            *workloads.entry(ns).or_default() += 1;
        }
    }
    // A scanner that may not list NetworkPolicies cannot say a namespace has none.
    let policies_known = !inventory
        .warnings
        .iter()
        .any(|w| w.contains("NetworkPolicy") || w.contains("networkpolicies"));
    let mut out = Vec::new();
    for ns in inventory.of_kind("Namespace") {
        if config.is_excluded_namespace(Some(&ns.name)) {
            continue;
        }
        let running = workloads.get(ns.name.as_str()).copied().unwrap_or(0);
        if policies_known && running > 0 && !policies.contains_key(ns.name.as_str()) {
            out.push(NO_NETWORK_POLICY.finding(
                ns,
                cluster,
                None,
                format!(
                    "Namespace {} holds {running} workload object(s) and no NetworkPolicy: its pods are open to every other pod and can reach any destination",
                    ns.name
                ),
                vec![Evidence::new("metadata.name", ns.name.as_str())],
            ));
        }
        let labels = ns.labels();
        match labels.get(ENFORCE_LABEL).copied() {
            Some("baseline") | Some("restricted") => {}
            Some(level) => out.push(NO_POD_SECURITY.finding(
                ns,
                cluster,
                None,
                format!(
                    "Namespace {} sets {ENFORCE_LABEL}={level}: Pod Security admission lets any pod in",
                    ns.name
                ),
                vec![Evidence::new(format!("metadata.labels.{ENFORCE_LABEL}"), level)],
            )),
            None => out.push(NO_POD_SECURITY.finding(
                ns,
                cluster,
                None,
                format!(
                    "Namespace {} has no {ENFORCE_LABEL} label: Pod Security admission does not reject any pod",
                    ns.name
                ),
                vec![Evidence::new(
                    format!("metadata.labels.{ENFORCE_LABEL}"),
                    serde_json::Value::Null,
                )],
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_kube::KubeObject;
    use serde_json::{Value, json};

    fn inventory(objects: Vec<Value>) -> Inventory {
        Inventory {
            objects: objects
                .into_iter()
                .map(|v| KubeObject::from_value(v, None).unwrap())
                .collect(),
            ..Default::default()
        }
    }

    fn ids(inv: &Inventory) -> Vec<(String, String)> {
        check(inv, &PostureConfig::default())
            .into_iter()
            .map(|f| (f.check_id.into_owned(), f.resource.name.unwrap_or_default()))
            .collect()
    }

    fn deployment(ns: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": ns},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    }

    #[test]
    fn namespaces_without_guard_rails_are_reported() {
        let inv = inventory(vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "open"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "privileged",
                   "labels": {ENFORCE_LABEL: "privileged"}}}),
            deployment("open"),
        ]);
        let found = ids(&inv);
        assert!(found.contains(&("namespace.no-network-policy".into(), "open".into())));
        assert!(found.contains(&(
            "namespace.no-pod-security-enforcement".into(),
            "open".into()
        )));
        assert!(found.contains(&(
            "namespace.no-pod-security-enforcement".into(),
            "privileged".into()
        )));
        // No workloads in `privileged`: no NetworkPolicy finding there.
        assert!(!found.contains(&("namespace.no-network-policy".into(), "privileged".into())));
    }

    #[test]
    fn guarded_and_excluded_namespaces_are_quiet() {
        let mut inv = inventory(vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop",
                   "labels": {ENFORCE_LABEL: "restricted"}}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}),
            deployment("shop"),
            deployment("kube-system"),
        ]);
        assert!(ids(&inv).is_empty(), "{:?}", ids(&inv));
        // Unknown NetworkPolicies (not listable) are not reported as missing.
        inv.objects.retain(|o| o.kind != "NetworkPolicy");
        inv.warnings
            .push("networking.k8s.io/v1 NetworkPolicy: forbidden".into());
        assert!(ids(&inv).is_empty());
    }
}
