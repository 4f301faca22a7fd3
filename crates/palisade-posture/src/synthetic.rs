//! Generated inventories of realistic shape and any size, for benchmarks and load tests.
//!
//! Deterministic (no randomness): the same sizes give the same objects, so figures compare across
//! runs and machines. The mix follows what a production cluster holds: mostly Deployments with
//! their Services and ConfigMaps, some exposed, some privileged, a share of RBAC objects with
//! aggregation and bindings to service accounts.

use palisade_kube::{Inventory, KubeObject};
use serde_json::{Value, json};

/// Namespaces the objects are spread over.
const NAMESPACES: usize = 50;

fn object(v: Value) -> Option<KubeObject> {
    KubeObject::from_value(v, None).ok()
}

/// A workload object number `i` in namespace `ns` (Deployments mostly, every kind present).
fn workload(i: usize, ns: &str) -> Value {
    let name = format!("app-{i}");
    let privileged = i.is_multiple_of(17);
    let root = i.is_multiple_of(5);
    let container = json!({
        "name": "app",
        "image": if i.is_multiple_of(7) { format!("docker.io/library/nginx:1.{}", i % 25) }
                 else { format!("registry.example.com/team{}/svc-{}@sha256:{:064x}", i % 13, i % 101, i) },
        "ports": [{"containerPort": 8080}],
        "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("db-{}", i % 40), "key": "password"}}}],
        "resources": if i.is_multiple_of(3) { json!({}) } else { json!({"limits": {"cpu": "500m", "memory": "512Mi"}}) },
        "securityContext": if privileged { json!({"privileged": true}) }
            else if root { json!({"runAsUser": 0}) }
            else { json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                          "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}) },
    });
    let pod_spec = json!({
        "serviceAccountName": format!("sa-{}", i % 60),
        "hostNetwork": i.is_multiple_of(97),
        "containers": [container, {"name": "sidecar", "image": "registry.example.com/mesh/proxy:2.1.0",
                                    "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}}}],
        "volumes": if i.is_multiple_of(41) { json!([{"name": "host", "hostPath": {"path": "/var/run/docker.sock"}}]) }
                   else { json!([{"name": "cfg", "configMap": {"name": format!("cfg-{i}")}}]) },
    });
    let labels = json!({"app": name});
    let template = json!({"metadata": {"labels": labels}, "spec": pod_spec});
    let meta = json!({"name": name, "namespace": ns, "labels": labels});
    match i % 20 {
        0 => json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
                    "spec": {"serviceName": name, "selector": {"matchLabels": labels}, "template": template}}),
        1 => json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
                    "spec": {"selector": {"matchLabels": labels}, "template": template}}),
        2 => json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                    "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        3 => json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}),
        _ => json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                    "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template}}),
    }
}

/// About `objects` non-RBAC objects (a third workloads, then Services, ConfigMaps, Ingresses,
/// NetworkPolicies, Secrets and Namespaces) and `rbac` RBAC objects.
pub fn inventory(objects: usize, rbac: usize) -> Inventory {
    let mut out: Vec<Value> = Vec::with_capacity(objects + rbac + NAMESPACES);
    for n in 0..NAMESPACES {
        out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}));
    }
    let workloads = objects / 3;
    for i in 0..workloads {
        let ns = format!("ns-{}", i % NAMESPACES);
        out.push(workload(i, &ns));
    }
    let mut i = 0;
    while out.len() < objects + NAMESPACES {
        let ns = format!("ns-{}", i % NAMESPACES);
        let app = format!("app-{}", i % workloads.max(1));
        let v = match i % 8 {
            0 | 1 => json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc-{i}"), "namespace": ns},
                "spec": {"type": if i.is_multiple_of(11) { "LoadBalancer" } else if i.is_multiple_of(13) { "NodePort" } else { "ClusterIP" },
                         "selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}}),
            2 => json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": format!("ing-{i}"), "namespace": ns},
                "spec": {"rules": [{"host": format!("h{i}.example.com"), "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": format!("svc-{}", i.saturating_sub(2)), "port": {"number": 80}}}}]}}]}}),
            3 => json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": format!("np-{i}"), "namespace": ns},
                "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress", "Egress"],
                         "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]}]}}),
            4 => json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": format!("db-{}", i % 40), "namespace": ns}}),
            _ => json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cfg-{i}"), "namespace": ns},
                "data": {"app.properties": format!("listen=8080\nworkers={}\n", i % 9)}}),
        };
        out.push(v);
        i += 1;
    }
    for r in 0..rbac {
        let ns = format!("ns-{}", r % NAMESPACES);
        let v = match r % 6 {
            0 => json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": format!("sa-{}", r % 60), "namespace": ns}}),
            1 => json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": format!("role-{r}"), "namespace": ns},
                "rules": [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list", "watch"]},
                          {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": if r.is_multiple_of(5) { json!(["*"]) } else { json!(["get"]) }}]}),
            2 => json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": format!("rb-{r}"), "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("role-{}", r - 1)},
                "subjects": [{"kind": "ServiceAccount", "name": format!("sa-{}", r % 60), "namespace": ns},
                             {"kind": "User", "name": format!("dev{}@example.com", r % 200)}]}),
            3 => json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": format!("cr-{r}"), "labels": {"rbac.example.com/aggregate-to-ops": "true"}},
                "rules": [{"apiGroups": [""], "resources": if r.is_multiple_of(9) { json!(["secrets"]) } else { json!(["nodes"]) }, "verbs": ["get", "list"]}]}),
            4 => json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": format!("ops-{r}")},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-ops": "true"}}]},
                "rules": []}),
            _ => json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": format!("crb-{r}")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": if r.is_multiple_of(61) { "cluster-admin".to_string() } else { format!("cr-{}", r - 2) }},
                "subjects": [{"kind": "ServiceAccount", "name": format!("sa-{}", r % 60), "namespace": ns}]}),
        };
        out.push(v);
    }
    out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "cluster-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}));
    Inventory {
        cluster: Some("synthetic".into()),
        objects: out.into_iter().filter_map(object).collect(),
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_as_asked() {
        let inv = super::inventory(3000, 300);
        assert!(
            inv.objects.len() >= 3300 && inv.objects.len() <= 3300 + 60,
            "{}",
            inv.objects.len()
        );
        assert!(inv.of_kind("Deployment").count() > 500);
        assert!(inv.of_kind("ClusterRoleBinding").count() >= 50);
        assert_eq!(
            super::inventory(100, 10).objects,
            super::inventory(100, 10).objects
        );
    }
}
