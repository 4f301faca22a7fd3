//! The shipped scanner RBAC is read-only, grants no Secrets, and covers what a snapshot lists.

use palisade_kube::{ManifestLimits, load_manifests};
use serde_json::Value;
use std::path::PathBuf;

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn scanner_cluster_role_is_least_privilege() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/scanner-rbac.yaml");
    let loaded = load_manifests(&[path], &ManifestLimits::default()).unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert!(
        loaded.inventory.warnings.is_empty(),
        "{:?}",
        loaded.inventory.warnings
    );
    let inv = &loaded.inventory;
    let kinds: Vec<_> = inv.objects.iter().map(|o| o.key()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace/palisade-system",
            "ServiceAccount/palisade-system/palisade-scanner",
            "ClusterRole/palisade-scanner",
            "ClusterRoleBinding/palisade-scanner"
        ]
    );
    // Only ClusterRoles grant here: no Roles that could add something unseen.
    assert_eq!(inv.of_kind("Role").count(), 0);

    let role = inv.find("ClusterRole", None, "palisade-scanner").unwrap();
    assert!(role.get("aggregationRule").is_none());
    let mut granted = Vec::new();
    for rule in role.get("rules").and_then(Value::as_array).unwrap() {
        let verbs = strings(rule.get("verbs"));
        for verb in &verbs {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str()),
                "write or special verb {verb}"
            );
        }
        assert!(rule.get("nonResourceURLs").is_none());
        assert!(rule.get("resourceNames").is_none());
        for group in strings(rule.get("apiGroups")) {
            assert_ne!(group, "*");
            for resource in strings(rule.get("resources")) {
                assert_ne!(resource, "*");
                assert!(!resource.contains('/'), "subresource {resource}");
                assert_ne!(
                    resource, "secrets",
                    "secrets must not be granted by default"
                );
                granted.push((group.clone(), resource));
            }
        }
    }

    let binding = inv
        .find("ClusterRoleBinding", None, "palisade-scanner")
        .unwrap();
    assert_eq!(
        binding.get("roleRef.name"),
        Some(&Value::from("palisade-scanner"))
    );
    let subjects = binding.get("subjects").and_then(Value::as_array).unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["namespace"], "palisade-system");

    // Every kind a snapshot lists (but Secrets) is granted in its group.
    #[cfg(feature = "live")]
    for (group, kind) in palisade_kube::live::snapshot_kinds() {
        if kind == "Secret" {
            continue;
        }
        let lower = kind.to_ascii_lowercase();
        let plural = if lower.ends_with('y') {
            format!("{}ies", &lower[..lower.len() - 1])
        } else if lower.ends_with('s') {
            format!("{lower}es")
        } else {
            format!("{lower}s")
        };
        assert!(
            granted.contains(&(group.to_string(), plural.clone())),
            "{group}/{plural} not granted"
        );
    }
}
