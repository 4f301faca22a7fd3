//! RBAC index, RBAC findings and control-plane checks on a generated inventory of 2,000 RBAC
//! objects among 20,000 others (the scale of a large multi-tenant cluster).

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_kube::{Inventory, KubeObject};
use palisade_posture::config::PostureConfig;
use palisade_posture::rbac::{self, RbacIndex, Subject};
use serde_json::{Value, json};
use std::hint::black_box;

const NAMESPACES: usize = 100;

fn obj(v: Value) -> KubeObject {
    KubeObject::from_value(v, None).expect("generated object")
}

/// 2,000 RBAC objects (500 ClusterRoles, 500 ClusterRoleBindings, 500 Roles, 500 RoleBindings)
/// and 20,000 others (Deployments, Services, ConfigMaps, ServiceAccounts).
pub fn inventory() -> Inventory {
    let mut inv = Inventory::new(Some("bench".into()));
    let verbs = [
        json!(["get", "list", "watch"]),
        json!(["create", "update", "patch", "delete"]),
        json!(["*"]),
    ];
    let resources = [
        json!(["pods", "pods/log"]),
        json!(["secrets"]),
        json!(["deployments", "deployments/scale"]),
        json!(["pods/exec", "pods/attach"]),
        json!(["configmaps", "services", "endpoints"]),
    ];
    for i in 0..500 {
        let rules: Vec<Value> = (0..4)
            .map(|r| {
                json!({"apiGroups": if r % 2 == 0 { json!([""]) } else { json!(["apps"]) },
                       "resources": resources[(i + r) % resources.len()],
                       "verbs": verbs[(i * 7 + r) % verbs.len()]})
            })
            .collect();
        let mut role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("cr-{i}"), "labels": {"team": format!("t{}", i % 20)}},
            "rules": rules});
        if i % 50 == 0 {
            role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"team": format!("t{}", (i / 50) % 20)}}]});
        }
        inv.objects.push(obj(role));
        inv.objects.push(obj(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("crb-{i}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("cr-{}", (i * 13) % 500)},
            "subjects": [
                {"kind": "User", "name": format!("user-{}", i % 300)},
                {"kind": "ServiceAccount", "name": format!("sa-{}", i % 40), "namespace": format!("ns-{}", i % NAMESPACES)},
            ]})));
        let ns = format!("ns-{}", i % NAMESPACES);
        inv.objects.push(obj(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("role-{i}"), "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": resources[i % resources.len()], "verbs": verbs[i % verbs.len()]}]})));
        let role_ref = if i % 3 == 0 {
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("cr-{}", i % 500)})
        } else {
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("role-{i}")})
        };
        inv.objects.push(obj(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("rb-{i}"), "namespace": ns},
            "roleRef": role_ref,
            "subjects": [
                {"kind": "Group", "name": format!("group-{}", i % 30)},
                {"kind": "ServiceAccount", "name": format!("sa-{}", i % 40), "namespace": ns},
            ]}),
        ));
    }
    for i in 0..20_000 {
        let ns = format!("ns-{}", i % NAMESPACES);
        let v = match i % 4 {
            0 => json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("app-{i}"), "namespace": ns},
                "spec": {"template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                  "spec": {"serviceAccountName": format!("sa-{}", i % 40),
                           "containers": [{"name": "app", "image": format!("registry.example.com/app-{}:1.0", i % 200),
                                           "args": ["--listen=:8080", "--profiling"]}]}}}}),
            1 => json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc-{i}"), "namespace": ns},
                "spec": {"selector": {"app": format!("app-{}", i - 1)}, "ports": [{"port": 80}]}}),
            2 => json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "namespace": ns},
                "data": {"config.yaml": "key: value"}}),
            _ => json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": format!("sa-{}", i % 40), "namespace": ns}}),
        };
        inv.objects.push(obj(v));
    }
    inv
}

/// CPU time of this thread in nanoseconds (Linux): the machine running the benchmarks is shared,
/// so wall-clock times overstate the work done.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cpu_time_per_iter<T>(iters: u32, mut f: impl FnMut() -> T) -> Option<f64> {
    let start = thread_cpu_ns()?;
    for _ in 0..iters {
        black_box(f());
    }
    Some((thread_cpu_ns()? - start) as f64 / f64::from(iters) / 1e6)
}

fn bench(c: &mut Criterion) {
    let inv = inventory();
    let config = PostureConfig::default();
    let index = RbacIndex::build(&inv);
    eprintln!(
        "objects: {}, grants: {}, subjects: {}",
        inv.objects.len(),
        index.grants().len(),
        index.subjects().count()
    );
    let rbac_only = Inventory {
        cluster: inv.cluster.clone(),
        objects: inv.objects[..2000].to_vec(),
        warnings: Vec::new(),
    };
    for (name, ms) in [
        (
            "index build, 2k RBAC objects only",
            cpu_time_per_iter(20, || RbacIndex::build(&rbac_only)),
        ),
        (
            "index build, 22k objects",
            cpu_time_per_iter(20, || RbacIndex::build(&inv)),
        ),
        (
            "who_can create pods/exec",
            cpu_time_per_iter(200, || {
                index.who_can("create", "", "pods/exec", Some("ns-7")).len()
            }),
        ),
        (
            "rbac findings incl. index, 22k objects",
            cpu_time_per_iter(5, || rbac::check(&inv, &config)),
        ),
        (
            "control-plane checks, 22k objects",
            cpu_time_per_iter(10, || palisade_posture::controlplane::check(&inv, &config)),
        ),
    ] {
        if let Some(ms) = ms {
            eprintln!("cpu time: {name}: {ms:.3} ms");
        }
    }
    c.bench_function("rbac index build (2k RBAC objects in 22k)", |b| {
        b.iter(|| RbacIndex::build(black_box(&inv)))
    });
    c.bench_function("rbac who_can create pods/exec ns-7", |b| {
        b.iter(|| index.who_can("create", "", "pods/exec", Some(black_box("ns-7"))))
    });
    let sa = Subject::service_account("ns-7", "sa-7");
    c.bench_function("rbac can (service account, via groups)", |b| {
        b.iter(|| index.can(black_box(&sa), "get", "", "secrets", Some("ns-7")))
    });
    c.bench_function("rbac findings incl. index (22k objects)", |b| {
        b.iter(|| rbac::check(black_box(&inv), &config))
    });
    c.bench_function("control-plane checks (22k objects)", |b| {
        b.iter(|| palisade_posture::controlplane::check(black_box(&inv), &config))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
