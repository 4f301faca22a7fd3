//! Tests of the RBAC checks on real-shaped manifests and on a real API server's bootstrap RBAC.

use super::*;
use crate::config::PostureConfig;
use palisade_kube::{Inventory, KubeObject};
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub(crate) fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/rbac/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// Multi-document YAML to objects (the manifest loader lives in palisade-kube).
pub(crate) fn yaml_inventory(text: &str, cluster: Option<&str>) -> Inventory {
    let mut inv = Inventory::new(cluster.map(str::to_string));
    for doc in text.split("\n---\n") {
        let v: Value = yaml_serde::from_str(doc).unwrap();
        if v.is_null() {
            continue;
        }
        inv.objects.push(KubeObject::from_value(v, None).unwrap());
    }
    inv
}

fn recorded() -> Inventory {
    let mut inv = Inventory::new(Some("ci".into()));
    for f in [
        "clusterroles.json",
        "clusterrolebindings.json",
        "roles.json",
        "rolebindings.json",
    ] {
        let list: Value = serde_json::from_str(&fixture(f)).unwrap();
        let kind = list["kind"].as_str().unwrap().trim_end_matches("List");
        for item in list["items"].as_array().unwrap() {
            let mut item = item.clone();
            item["kind"] = json!(kind);
            item["apiVersion"] = list["apiVersion"].clone();
            inv.objects
                .push(KubeObject::from_value(item, None).unwrap());
        }
    }
    inv
}

fn ids(findings: &[crate::PostureFinding]) -> BTreeSet<&str> {
    findings.iter().map(|f| f.check_id.as_ref()).collect()
}

#[test]
fn every_check_fires_on_the_insecure_set_and_none_on_the_hardened_one() {
    let config = PostureConfig::default();
    let insecure = check(&yaml_inventory(&fixture("insecure.yaml"), None), &config);
    let hardened = check(&yaml_inventory(&fixture("hardened.yaml"), None), &config);
    let fired = ids(&insecure);
    for c in CHECKS {
        assert!(
            fired.contains(c.id),
            "{} does not fire on insecure.yaml",
            c.id
        );
    }
    assert!(hardened.is_empty(), "{hardened:#?}");
    // Every id is unique and in the rbac scope.
    let all: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
    assert_eq!(all.len(), CHECKS.len());
    assert!(CHECKS.iter().all(|c| c.id.starts_with("rbac.")));
}

#[test]
fn findings_name_the_subject_binding_role_and_rule() {
    let inv = yaml_inventory(&fixture("insecure.yaml"), None);
    let findings = check(&inv, &PostureConfig::default());
    let admin: Vec<_> = findings
        .iter()
        .filter(|f| f.check_id == "rbac.cluster-admin")
        .collect();
    assert_eq!(admin.len(), 1);
    let f = admin[0];
    assert_eq!(f.resource.kind.as_deref(), Some("User"));
    assert_eq!(f.resource.name.as_deref(), Some("alice@example.com"));
    assert_eq!(f.evidence[0].path, "ClusterRoleBinding/alice-admin");
    assert_eq!(f.evidence[0].value["role"], "ClusterRole/cluster-admin");
    assert_eq!(f.evidence[0].value["rule"]["verbs"], json!(["*"]));
    assert_eq!(f.controls, vec!["CIS 5.1.1"]);

    // One finding per (check, subject), however many rules give the capability.
    let mut seen = BTreeSet::new();
    for f in &findings {
        let key = (
            f.check_id.clone(),
            f.resource.kind.clone(),
            f.resource.namespace.clone(),
            f.resource.name.clone(),
        );
        assert!(
            seen.insert(key),
            "duplicate {} on {:?}",
            f.check_id,
            f.resource
        );
    }

    // edit in prod gives developers exec, secrets, pods, attach, port-forward, not cluster-wide secrets.
    let dev: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f.resource.name.as_deref() == Some("developers"))
        .map(|f| f.check_id.as_ref())
        .collect();
    assert_eq!(
        dev,
        BTreeSet::from([
            "rbac.create-pods",
            "rbac.impersonate",
            "rbac.pods-attach",
            "rbac.pods-exec",
            "rbac.pods-portforward",
            "rbac.secrets-read",
        ])
    );

    let wr = findings
        .iter()
        .find(|f| f.check_id == "rbac.wildcard-role")
        .unwrap();
    assert_eq!(wr.resource.kind.as_deref(), Some("ClusterRole"));
    assert_eq!(wr.resource.name.as_deref(), Some("ops-deployments"));
    assert_eq!(wr.evidence[0].path, "rules[0].verbs");
    assert!(wr.message.contains("Group ops"), "{}", wr.message);

    let mounted = findings
        .iter()
        .find(|f| f.check_id == "rbac.workload-dangerous-service-account")
        .unwrap();
    assert_eq!(mounted.resource.kind.as_deref(), Some("Deployment"));
    assert!(mounted.message.contains("create service account tokens"));
    assert_eq!(
        mounted.evidence[1].path,
        "spec.template.spec.automountServiceAccountToken"
    );
    assert_eq!(mounted.evidence[1].value, Value::Null);

    let default = findings
        .iter()
        .find(|f| f.check_id == "rbac.default-service-account")
        .unwrap();
    assert_eq!(default.resource.namespace.as_deref(), Some("prod"));
    assert_eq!(default.resource.name.as_deref(), Some("default"));
}

#[test]
fn bootstrap_rbac_of_a_real_api_server_has_no_findings() {
    let findings = check(&recorded(), &PostureConfig::default());
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn system_subjects_are_configurable_and_broad_groups_always_reported() {
    let text = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: oops}
subjects:
- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:authenticated}
- {kind: ServiceAccount, name: tiller, namespace: kube-system}
- {kind: ServiceAccount, name: replicaset-controller, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
"#;
    let inv = yaml_inventory(text, None);
    let subjects = |config: &PostureConfig| -> BTreeSet<String> {
        check(&inv, config)
            .into_iter()
            .filter(|f| f.check_id == "rbac.cluster-admin")
            .map(|f| f.resource.name.unwrap_or_default())
            .collect()
    };
    let mut config = PostureConfig::default();
    assert_eq!(
        subjects(&config),
        BTreeSet::from(["system:authenticated".to_string(), "tiller".to_string()])
    );
    config
        .rbac_system_subjects
        .push("ServiceAccount:kube-system/tiller".into());
    config.rbac_system_subjects.push("Group:system:*".into());
    assert_eq!(
        subjects(&config),
        BTreeSet::from(["system:authenticated".to_string()])
    );
    config.disabled_checks.push("rbac.cluster-admin".into());
    assert!(subjects(&config).is_empty());
}

#[test]
fn token_mounting_rules() {
    let base = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: apps}
subjects: [{kind: ServiceAccount, name: deployer, namespace: apps}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: apps}
automountServiceAccountToken: false
"#;
    let pod = |spec_extra: &str| {
        format!(
            "{base}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: apps}}\nspec:\n  serviceAccountName: deployer\n{spec_extra}  containers: [{{name: c, image: busybox:1.36}}]\n"
        )
    };
    let fires = |text: &str| {
        check(&yaml_inventory(text, None), &PostureConfig::default())
            .iter()
            .any(|f| f.check_id == "rbac.workload-dangerous-service-account")
    };
    // The service account opts out: not mounted.
    assert!(!fires(&pod("")));
    // The pod opts back in.
    assert!(fires(&pod("  automountServiceAccountToken: true\n")));
    // A projected token volume mounts it whatever automount says.
    assert!(fires(&pod(
        "  volumes:\n  - name: t\n    projected:\n      sources:\n      - serviceAccountToken: {path: token}\n"
    )));
    // Owned pods are reported through their controller.
    let owned = pod("  automountServiceAccountToken: true\n").replace(
        "metadata: {name: p, namespace: apps}",
        "metadata: {name: p, namespace: apps, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: u, controller: true}]}",
    );
    assert!(!fires(&owned));
    // Excluded namespaces are skipped like other workload checks.
    let sys = pod("  automountServiceAccountToken: true\n").replace("apps", "kube-system");
    assert!(!fires(&sys));
}

#[test]
fn glob_patterns() {
    let config = PostureConfig {
        rbac_system_subjects: vec!["ServiceAccount:kube-system/*-controller".into()],
        ..PostureConfig::default()
    };
    assert!(is_system_subject(
        &config,
        &Subject::service_account("kube-system", "job-controller")
    ));
    assert!(!is_system_subject(
        &config,
        &Subject::service_account("kube-system", "job-controller-x")
    ));
    assert!(!is_system_subject(
        &config,
        &Subject::service_account("prod", "job-controller")
    ));
    assert!(!is_system_subject(
        &PostureConfig::default(),
        &Subject::user(ANONYMOUS)
    ));
    assert!(is_system_subject(
        &PostureConfig::default(),
        &Subject::user("system:kube-scheduler")
    ));
}
