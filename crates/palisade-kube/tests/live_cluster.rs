//! Snapshots of a real kube-apiserver (scripts/infra/kube-apiserver.sh start).
//!
//! Set PALISADE_KUBECONFIG to the kubeconfig that script writes (contexts `ci`: admin, and
//! `ci-reader`: user palisade-reader without permissions of its own). Without it the test is
//! skipped, unless PALISADE_REQUIRE_KUBE=1. The test populates the cluster itself, with names
//! unique to the run, so a server can be reused.
#![cfg(feature = "live")]

use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use kube::{Client, Config};
use palisade_kube::{ClusterError, ClusterOptions, Inventory, snapshot};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const SECRET_VALUE: &str = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk"; // base64("super-secret-password")

fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os("PALISADE_KUBECONFIG") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            if std::env::var("PALISADE_REQUIRE_KUBE").as_deref() == Ok("1") {
                panic!("PALISADE_REQUIRE_KUBE=1 but PALISADE_KUBECONFIG is not set");
            }
            eprintln!("skipped: set PALISADE_KUBECONFIG to run the live-cluster test");
            None
        }
    }
}

async fn client(path: &Path, context: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = Kubeconfig::read_from(path).unwrap();
    let config = Config::from_custom_kubeconfig(
        kc,
        &KubeConfigOptions {
            context: Some(context.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

/// Creates any object through discovery (CronJob is batch/v1beta1 on 1.20: no typed struct).
async fn create(client: &Client, object: Value) {
    let api_version = object["apiVersion"].as_str().unwrap().to_string();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let kind = object["kind"].as_str().unwrap().to_string();
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (resource, caps) = discovery::pinned_kind(client, &gvk).await.unwrap();
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    let api: Api<DynamicObject> = match (&caps.scope, object.metadata.namespace.as_deref()) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        _ => Api::all_with(client.clone(), &resource),
    };
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"));
}

async fn delete(client: &Client, api_version: &str, kind: &str, name: &str) {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    if let Ok((resource, _)) = discovery::pinned_kind(client, &gvk).await {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
}

async fn populate(client: &Client, run: &str) {
    let (a, b) = (format!("{run}-a"), format!("{run}-b"));
    for ns in [&a, &b] {
        create(
            client,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
    }
    let pod_spec = json!({
        "serviceAccountName": "web",
        "containers": [{"name": "web", "image": "nginx:1.27",
                        "securityContext": {"privileged": true}}]
    });
    create(
        client,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "web", "namespace": a}}),
    )
    .await;
    create(
        client,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": a, "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}}),
    )
    .await;
    create(
        client,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "debug", "namespace": a},
        "spec": {"hostNetwork": true, "containers": [{"name": "sh", "image": "busybox"}]}}),
    )
    .await;
    let applied = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": a}, "data": {"password": SECRET_VALUE}});
    create(client, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": a,
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied.to_string(),
                                     "team": "payments"}},
        "type": "Opaque", "data": {"password": SECRET_VALUE}})).await;
    create(
        client,
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": a},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                 "ports": [{"port": 443, "targetPort": 8443}]}}),
    )
    .await;
    create(client, json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": a},
        "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 443}}}}]}}]}})).await;
    create(
        client,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": b},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
    )
    .await;
    create(
        client,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "secret-reader", "namespace": a},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
    )
    .await;
    create(client, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "web-secrets", "namespace": a},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": a}]})).await;
    create(client, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("{run}-aggregate")},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {format!("{run}/aggregate"): "true"}}]},
        "rules": []})).await;
    create(
        client,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("{run}-part"), "labels": {format!("{run}/aggregate"): "true"}},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]}),
    )
    .await;
    create(client, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("{run}-aggregate")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{run}-aggregate")},
        "subjects": [{"kind": "Group", "name": "developers", "apiGroup": "rbac.authorization.k8s.io"}]})).await;
    create(
        client,
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{run}.palisade.test")},
        "spec": {"group": format!("{run}.palisade.test"), "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
    )
    .await;
    create(client, json!({"apiVersion": "batch/v1beta1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": b},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "busybox"}]}}}}}})).await;
    for i in 0..7 {
        create(
            client,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": b}, "data": {"i": i.to_string()}}),
        )
        .await;
    }
    // The reader may list some kinds only.
    create(client, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("{run}-reader")},
        "rules": [{"apiGroups": [""], "resources": ["namespaces", "pods", "configmaps"], "verbs": ["list"]},
                  {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}]})).await;
    create(client, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("{run}-reader")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{run}-reader")},
        "subjects": [{"kind": "User", "name": "palisade-reader", "apiGroup": "rbac.authorization.k8s.io"}]})).await;
}

async fn cleanup(client: &Client, run: &str) {
    let rbac = "rbac.authorization.k8s.io/v1";
    for name in [
        format!("{run}-aggregate"),
        format!("{run}-part"),
        format!("{run}-reader"),
    ] {
        delete(client, rbac, "ClusterRole", &name).await;
        delete(client, rbac, "ClusterRoleBinding", &name).await;
    }
    delete(
        client,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &format!("widgets.{run}.palisade.test"),
    )
    .await;
    for ns in [format!("{run}-a"), format!("{run}-b")] {
        delete(client, "v1", "Namespace", &ns).await;
    }
}

fn in_run<'a>(
    inv: &'a Inventory,
    kind: &'a str,
    run: &'a str,
) -> impl Iterator<Item = &'a palisade_kube::KubeObject> + 'a {
    inv.of_kind(kind).filter(move |o| {
        o.namespace.as_deref().is_some_and(|n| n.starts_with(run)) || o.name.contains(run)
    })
}

fn options(path: &Path, context: &str) -> ClusterOptions {
    ClusterOptions {
        kubeconfig: Some(path.to_path_buf()),
        context: Some(context.into()),
        page_size: 3,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_a_real_api_server() {
    let Some(path) = kubeconfig() else { return };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let run = format!(
        "pal{:x}",
        (nanos ^ u128::from(std::process::id())) & 0xff_ffff_ffff
    );
    let admin = client(&path, "ci").await;
    populate(&admin, &run).await;
    let result = std::panic::AssertUnwindSafe(check(&path, &run));
    let outcome = futures::FutureExt::catch_unwind(result).await;
    cleanup(&admin, &run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn check(path: &Path, run: &str) {
    let (a, b) = (format!("{run}-a"), format!("{run}-b"));

    // Everything, as the admin, three objects per page.
    let inv = snapshot(&options(path, "ci")).await.unwrap();
    eprintln!(
        "admin: {} objects; warnings: {:?}",
        inv.objects.len(),
        inv.warnings
    );
    assert_eq!(inv.cluster.as_deref(), Some("ci"));
    assert!(
        !inv.warnings.iter().any(|w| w.contains("not allowed")),
        "{:?}",
        inv.warnings
    );
    let deployment = inv.find("Deployment", Some(&a), "web").unwrap();
    assert_eq!(deployment.api_version, "apps/v1");
    assert_eq!(
        deployment.get("spec.template.spec.containers").unwrap()[0]["securityContext"]["privileged"],
        json!(true)
    );
    assert!(deployment.get("metadata.managedFields").is_none());
    assert!(deployment.uid().is_some());
    let pod = inv.find("Pod", Some(&a), "debug").unwrap();
    assert_eq!(
        (pod.api_version.as_str(), pod.get("spec.hostNetwork")),
        ("v1", Some(&json!(true)))
    );
    let configmaps: Vec<_> = inv
        .of_kind("ConfigMap")
        .filter(|o| o.namespace.as_deref() == Some(b.as_str()) && o.name.starts_with("cm-"))
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        configmaps,
        ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-5", "cm-6"]
    );
    assert_eq!(
        inv.find("CronJob", Some(&b), "nightly")
            .unwrap()
            .api_version,
        "batch/v1beta1"
    );
    assert_eq!(
        inv.find("Ingress", Some(&a), "web").unwrap().api_version,
        "networking.k8s.io/v1"
    );
    assert_eq!(
        inv.find("Service", Some(&a), "web")
            .unwrap()
            .get("spec.type"),
        Some(&json!("LoadBalancer"))
    );
    assert!(inv.find("NetworkPolicy", Some(&b), "deny-all").is_some());
    assert!(inv.find("ServiceAccount", Some(&a), "web").is_some());
    assert!(inv.find("Role", Some(&a), "secret-reader").is_some());
    assert!(inv.find("RoleBinding", Some(&a), "web-secrets").is_some());
    let aggregate = inv
        .find("ClusterRole", None, &format!("{run}-aggregate"))
        .unwrap();
    assert!(
        aggregate
            .get("aggregationRule.clusterRoleSelectors")
            .is_some()
    );
    assert!(
        inv.find("ClusterRole", None, &format!("{run}-part"))
            .is_some()
    );
    assert!(
        inv.find("ClusterRoleBinding", None, &format!("{run}-aggregate"))
            .is_some()
    );
    assert!(inv.find("ClusterRole", None, "cluster-admin").is_some());
    assert!(
        inv.find(
            "CustomResourceDefinition",
            None,
            &format!("widgets.{run}.palisade.test")
        )
        .is_some()
    );
    assert!(
        inv.find("Namespace", None, &a).is_some()
            && inv.find("Namespace", None, "kube-system").is_some()
    );
    // ReplicationControllers, DaemonSets, webhooks, nodes: listed, none exist on this server.
    assert!(
        !inv.warnings
            .iter()
            .any(|w| w.contains("replicationcontrollers") || w.contains("nodes"))
    );

    // The Secret: metadata only, nothing of its data anywhere.
    let secret = inv.find("Secret", Some(&a), "db").unwrap();
    assert_eq!(secret.api_version, "v1");
    assert_eq!(secret.annotation("team"), Some("payments"));
    assert!(secret.get("data").is_none() && secret.get("stringData").is_none());
    assert!(
        secret
            .annotation("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );
    let serialized = serde_json::to_string(&inv).unwrap();
    assert!(!serialized.contains(SECRET_VALUE));
    assert!(!serialized.contains("managedFields"));

    // One namespace: namespaced kinds from it only, cluster-scoped kinds still listed.
    let mut one = options(path, "ci");
    one.namespace = Some(a.clone());
    one.cluster_name = Some("prod-eu".into());
    let inv = snapshot(&one).await.unwrap();
    assert_eq!(inv.cluster.as_deref(), Some("prod-eu"));
    assert!(
        inv.objects
            .iter()
            .all(|o| o.namespace.is_none() || o.namespace.as_deref() == Some(a.as_str()))
    );
    assert!(inv.find("Deployment", Some(&a), "web").is_some());
    assert!(inv.find("Namespace", None, &b).is_some());
    assert!(
        inv.find("ClusterRole", None, &format!("{run}-aggregate"))
            .is_some()
    );

    // The reader may list namespaces, pods, configmaps and deployments only: the rest are warnings.
    let inv = snapshot(&options(path, "ci-reader")).await.unwrap();
    eprintln!(
        "reader: {} objects; warnings: {:#?}",
        inv.objects.len(),
        inv.warnings
    );
    assert_eq!(inv.cluster.as_deref(), Some("ci-reader"));
    assert!(inv.find("Deployment", Some(&a), "web").is_some());
    assert!(inv.find("Pod", Some(&a), "debug").is_some());
    assert_eq!(in_run(&inv, "ConfigMap", run).count(), 7);
    assert_eq!(inv.of_kind("Secret").count(), 0);
    assert_eq!(inv.of_kind("ClusterRole").count(), 0);
    for plural in [
        "secrets",
        "clusterroles",
        "rolebindings",
        "cronjobs",
        "customresourcedefinitions",
        "ingresses",
    ] {
        assert!(
            inv.warnings
                .iter()
                .any(|w| w.starts_with(&format!("{plural} (")) && w.contains("not allowed")),
            "no warning for {plural}: {:?}",
            inv.warnings
        );
    }
    for plural in ["pods (", "configmaps (", "deployments (", "namespaces ("] {
        assert!(
            !inv.warnings.iter().any(|w| w.starts_with(plural)),
            "{:?}",
            inv.warnings
        );
    }

    // Wrong credentials and an unreachable server are errors.
    let mut kc = Kubeconfig::read_from(path).unwrap();
    for user in &mut kc.auth_infos {
        if let Some(info) = user.auth_info.as_mut() {
            info.token = Some("wrong-token".to_string().into());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-token");
    std::fs::write(&bad, yaml_serde::to_string(&kc).unwrap()).unwrap();
    match snapshot(&options(&bad, "ci")).await {
        Err(ClusterError::Unauthorized { .. }) => {}
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    for cluster in &mut kc.clusters {
        if let Some(c) = cluster.cluster.as_mut() {
            c.server = Some("https://127.0.0.1:9".into());
        }
    }
    let down = dir.path().join("down");
    std::fs::write(&down, yaml_serde::to_string(&kc).unwrap()).unwrap();
    match snapshot(&options(&down, "ci")).await {
        Err(ClusterError::Connection { .. }) => {}
        other => panic!("expected Connection, got {other:?}"),
    }
}
