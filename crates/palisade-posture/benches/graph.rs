//! Security graph build plus every built-in attack path on a generated inventory of 20,000+
//! objects including 2,000 RBAC objects. Prints object counts, one timed run and peak RSS.

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_kube::{Inventory, KubeObject};
use palisade_posture::PostureConfig;
use palisade_posture::graph::{SecurityGraph, VulnIndex, attack_paths, query};
use palisade_posture::rbac::RbacIndex;
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Instant;

const APPS: usize = 2_300;
const APPS_PER_NAMESPACE: usize = 25;
const IMAGES: usize = 150;
const RBAC_OBJECTS: usize = 2_000;

fn push(inv: &mut Inventory, v: Value) {
    inv.objects
        .push(KubeObject::from_value(v, None).expect("generated object"));
}

fn generate() -> (Inventory, VulnIndex) {
    let mut inv = Inventory::new(Some("bench".into()));
    let namespaces = APPS.div_ceil(APPS_PER_NAMESPACE);
    for n in 0..namespaces {
        push(
            &mut inv,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}),
        );
        // Every other namespace denies egress by default, with an exception to the internet.
        if n % 2 == 0 {
            push(
                &mut inv,
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "egress", "namespace": format!("ns-{n}")},
                "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                         "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]}]}}),
            );
        }
    }
    for n in 0..50 {
        push(
            &mut inv,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{n}")}}),
        );
    }
    for a in 0..APPS {
        let ns = format!("ns-{}", a / APPS_PER_NAMESPACE);
        let name = format!("app-{a}");
        let image = format!(
            "registry.example.com/team-{}/svc-{}:1.{}",
            a % 7,
            a % IMAGES,
            a % 3
        );
        let labels = json!({"app": name, "tier": if a % 2 == 0 { "front" } else { "back" }});
        let pod_spec = json!({
            "serviceAccountName": name,
            "hostNetwork": a % 97 == 0,
            "containers": [{"name": "main", "image": image, "ports": [{"containerPort": 8080}],
                            "securityContext": {"privileged": a % 53 == 0},
                            "envFrom": [{"secretRef": {"name": format!("{name}-env")}}]},
                           {"name": "sidecar", "image": "envoyproxy/envoy:v1.30.1"}],
            "volumes": [{"name": "tls", "secret": {"secretName": format!("{name}-tls")}}]
        });
        push(
            &mut inv,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "uid": format!("d-{a}")},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}),
        );
        push(
            &mut inv,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{name}-5f7c"), "namespace": ns, "uid": format!("rs-{a}"),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": format!("d-{a}"), "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}),
        );
        for p in 0..2 {
            let mut spec = pod_spec.clone();
            spec["nodeName"] = json!(format!("node-{}", (a + p) % 50));
            push(
                &mut inv,
                json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-5f7c-{p}"), "namespace": ns, "labels": labels,
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-5f7c"), "uid": format!("rs-{a}"), "controller": true}]},
                "spec": spec,
                "status": {"containerStatuses": [{"name": "main", "imageID": format!("{image}@sha256:{:064x}", a % IMAGES)}]}}),
            );
        }
        let svc_type = if a % 5 == 0 {
            "LoadBalancer"
        } else {
            "ClusterIP"
        };
        push(
            &mut inv,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": svc_type, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        );
        if a % 10 == 3 {
            push(
                &mut inv,
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
                "spec": {"rules": [{"host": format!("{name}.example.com"), "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}}),
            );
        }
        push(
            &mut inv,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}),
        );
        push(
            &mut inv,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{name}-env"), "namespace": ns},
            "type": "Opaque", "data": {"DATABASE_URL": "cG9zdGdyZXM6Ly8="}}),
        );
        push(
            &mut inv,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"a": "b"}}),
        );
    }
    // 2,000 RBAC objects: Roles and RoleBindings per app, ClusterRoles and ClusterRoleBindings.
    let quarter = RBAC_OBJECTS / 4;
    for r in 0..quarter {
        let ns = format!("ns-{}", r % APPS.div_ceil(APPS_PER_NAMESPACE));
        let verbs = if r % 9 == 0 {
            json!(["get", "list"])
        } else {
            json!(["get"])
        };
        let resources = if r % 4 == 0 {
            json!(["secrets"])
        } else {
            json!(["configmaps", "pods"])
        };
        push(
            &mut inv,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("role-{r}"), "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": resources, "verbs": verbs}]}),
        );
        push(
            &mut inv,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("rb-{r}"), "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("role-{r}")},
            "subjects": [{"kind": "ServiceAccount", "name": format!("app-{}", r * 4 % APPS), "namespace": ns}]}),
        );
        let cluster_rules = match r % 50 {
            0 => json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            1 => {
                json!([{"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["create", "get"]}])
            }
            _ => {
                json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}])
            }
        };
        push(
            &mut inv,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("cr-{r}"), "labels": {"rbac.example.com/aggregate-to-view": "true"}},
            "rules": cluster_rules}),
        );
        push(
            &mut inv,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("crb-{r}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("cr-{r}")},
            "subjects": [{"kind": "ServiceAccount", "name": format!("app-{}", (r * 13) % APPS),
                          "namespace": format!("ns-{}", ((r * 13) % APPS) / APPS_PER_NAMESPACE)}]}),
        );
    }
    let mut vulns = VulnIndex::new();
    for i in 0..IMAGES {
        let findings: Vec<Value> = (0..40)
            .map(|v| {
                let (sev, vector, score) = match v % 10 {
                    0 => ("critical", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
                    1 | 2 => ("high", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:L/A:N", 7.1),
                    _ => ("medium", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:L", 5.3),
                };
                json!({"id": format!("CVE-2024-{:05}", i * 40 + v), "aliases": [],
                       "package": {"name": format!("pkg-{v}"), "version": "1.0"},
                       "installed_version": "1.0", "fixed_version": if v % 2 == 0 { json!("1.1") } else { Value::Null },
                       "status": "fixed", "severity": sev,
                       "cvss": [{"version": "3.1", "vector": vector, "base_score": score}]})
            })
            .collect();
        for minor in 0..3 {
            let report = json!({"schema": "palisade.scan/v1",
                "target": {"kind": "image", "name": format!("registry.example.com/team-{}/svc-{i}:1.{minor}", i % 7), "digest": null},
                "vulnerabilities": findings});
            vulns
                .add_json(&report.to_string())
                .expect("generated report");
        }
    }
    (inv, vulns)
}

fn bench(c: &mut Criterion) {
    let (inv, vulns) = generate();
    let rbac_count = inv
        .objects
        .iter()
        .filter(|o| o.group() == "rbac.authorization.k8s.io")
        .count();
    let config = PostureConfig::default();
    let start = Instant::now();
    let rbac = RbacIndex::build(&inv);
    let rbac_time = start.elapsed();
    let graph = SecurityGraph::build(&inv, &rbac, Some(&vulns), &config);
    let build_time = start.elapsed();
    let paths = attack_paths(&graph);
    let total = start.elapsed();
    eprintln!(
        "objects: {} ({} RBAC); graph: {} nodes, {} edges; {} attack paths",
        inv.objects.len(),
        rbac_count,
        graph.node_count(),
        graph.edge_count(),
        paths.len()
    );
    eprintln!(
        "one run: RBAC index {:?}, + graph build {:?}, + attack paths {:?} (total {:?})",
        rbac_time,
        build_time - rbac_time,
        total - build_time,
        total
    );
    if let Some(bytes) = palisade_testkit::peak_rss_bytes() {
        eprintln!("peak RSS (VmHWM): {:.1} MB", bytes as f64 / 1048576.0);
    }
    for q in query::BUILTIN {
        let start = Instant::now();
        let rows = query::run_text(&graph, q.name)
            .map(|r| r.rows.len())
            .unwrap_or(0);
        eprintln!("query {}: {rows} rows in {:?}", q.name, start.elapsed());
    }
    let mut group = c.benchmark_group("graph");
    group.sample_size(10);
    group.bench_function("rbac+build+attack_paths/20k", |b| {
        b.iter(|| {
            let rbac = RbacIndex::build(black_box(&inv));
            let g = SecurityGraph::build(&inv, &rbac, Some(&vulns), &config);
            black_box(attack_paths(&g).len())
        })
    });
    group.finish();
    if let Some(bytes) = palisade_testkit::peak_rss_bytes() {
        eprintln!(
            "peak RSS after benchmark (VmHWM): {:.1} MB",
            bytes as f64 / 1048576.0
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
