//! The RBAC index on the bootstrap RBAC objects of a real kube-apiserver (v1.20), recorded from
//! `GET /apis/rbac.authorization.k8s.io/v1/{clusterroles,clusterrolebindings,roles,rolebindings}`.
//! The cluster-role aggregation controller was not running, so the served `admin`, `edit` and
//! `view` have no rules: the index must compute them from the aggregation selectors.

use palisade_kube::{Inventory, KubeObject};
use palisade_posture::rbac::{RbacIndex, Subject};
use serde_json::{Value, json};

fn load_list(file: &str) -> Vec<KubeObject> {
    let path = format!("{}/tests/fixtures/rbac/{file}", env!("CARGO_MANIFEST_DIR"));
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kind = list["kind"]
        .as_str()
        .unwrap()
        .strip_suffix("List")
        .unwrap()
        .to_string();
    let api_version = list["apiVersion"].as_str().unwrap().to_string();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let mut item = item.clone();
            item["kind"] = json!(kind);
            item["apiVersion"] = json!(api_version);
            KubeObject::from_value(item, None).unwrap()
        })
        .collect()
}

fn recorded() -> Inventory {
    let mut inv = Inventory::new(Some("ci".into()));
    for f in [
        "clusterroles.json",
        "clusterrolebindings.json",
        "roles.json",
        "rolebindings.json",
    ] {
        inv.objects.extend(load_list(f));
    }
    inv
}

fn binding(kind: &str, ns: Option<&str>, name: &str, role: &str, subject: Value) -> KubeObject {
    let mut metadata = json!({"name": name});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    KubeObject::from_value(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": [subject]}),
        None,
    )
    .unwrap()
}

#[test]
fn aggregated_roles_are_computed() {
    let inv = recorded();
    let served_admin = inv.find("ClusterRole", None, "admin").unwrap();
    assert!(served_admin.get("rules").is_none_or(Value::is_null));
    let idx = RbacIndex::build(&inv);
    let admin = &idx.role("ClusterRole/admin").unwrap().rules;
    let edit = &idx.role("ClusterRole/edit").unwrap().rules;
    let view = &idx.role("ClusterRole/view").unwrap().rules;
    assert!(!view.is_empty());
    // admin ⊇ edit ⊇ view, each strictly larger.
    assert!(view.iter().all(|r| edit.contains(r)));
    assert!(edit.iter().all(|r| admin.contains(r)));
    assert!(edit.len() > view.len() && admin.len() > edit.len());
    assert!(idx.warnings().is_empty(), "{:?}", idx.warnings());
}

#[test]
fn bootstrap_permissions() {
    let mut inv = recorded();
    inv.objects.push(binding(
        "RoleBinding",
        Some("prod"),
        "alice-admin",
        "admin",
        json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}),
    ));
    inv.objects.push(binding(
        "RoleBinding",
        Some("prod"),
        "viewer",
        "view",
        json!({"kind": "ServiceAccount", "name": "dash", "namespace": "prod"}),
    ));
    let idx = RbacIndex::build(&inv);

    let masters = Subject::group("system:masters");
    assert!(idx.is_cluster_admin(&masters));
    assert_eq!(
        idx.cluster_admin_grants(&masters)[0].binding,
        "ClusterRoleBinding/cluster-admin"
    );

    let alice = Subject::user("alice");
    assert!(idx.can(&alice, "create", "", "pods/exec", Some("prod")));
    assert!(idx.can(
        &alice,
        "create",
        "rbac.authorization.k8s.io",
        "rolebindings",
        Some("prod")
    ));
    assert!(idx.can(&alice, "update", "apps", "deployments/scale", Some("prod")));
    assert!(!idx.can(&alice, "create", "", "pods/exec", Some("dev")));
    assert!(!idx.is_cluster_admin(&alice));

    let dash = Subject::service_account("prod", "dash");
    assert!(idx.can(&dash, "list", "", "pods", Some("prod")));
    assert!(!idx.can(&dash, "get", "", "secrets", Some("prod")));
    assert!(!idx.can(&dash, "create", "", "pods/exec", Some("prod")));
    // Every service account may read the issuer discovery documents (system:serviceaccounts).
    assert!(idx.can_url(&dash, "get", "/.well-known/openid-configuration"));
    // Every authenticated user may create SelfSubjectAccessReviews (system:basic-user).
    assert!(idx.can(
        &Subject::user("palisade-reader"),
        "create",
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        None
    ));
    assert!(!idx.can(
        &Subject::user("palisade-reader"),
        "list",
        "",
        "secrets",
        None
    ));

    let who: Vec<String> = idx
        .who_can("create", "", "pods/exec", Some("prod"))
        .into_iter()
        .map(|(s, _)| s.to_string())
        .collect();
    assert_eq!(who, vec!["User alice", "Group system:masters"]);

    let who_secrets: Vec<String> = idx
        .who_can("list", "", "secrets", None)
        .into_iter()
        .map(|(s, _)| s.to_string())
        .collect();
    assert!(who_secrets.contains(&"Group system:masters".to_string()));
    assert!(who_secrets.contains(&"User system:kube-controller-manager".to_string()));
    assert!(!who_secrets.contains(&"User alice".to_string()));

    // Controller service accounts hold exactly their bootstrap roles.
    let ns_controller = Subject::service_account("kube-system", "namespace-controller");
    assert!(idx.can(&ns_controller, "delete", "", "namespaces", None));
    assert!(!idx.can(&ns_controller, "create", "", "pods", Some("prod")));
}
