//! Workload and exposure checks on a generated inventory of 20,000 workloads (Deployments,
//! StatefulSets, DaemonSets, CronJobs and bare Pods, half hardened, half not) plus 2,000 Services
//! and 500 Ingresses. Criterion reports objects per second (target: ≥ 50,000 per core for the
//! workload checks).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_kube::{Inventory, KubeObject};
use palisade_posture::net::ExposureIndex;
use palisade_posture::{PostureConfig, exposure, workload};
use serde_json::{Value, json};
use std::hint::black_box;

const WORKLOADS: usize = 20_000;

fn container(i: usize, hardened: bool) -> Value {
    if hardened {
        json!({"name": "app", "image": format!("registry.example.com/team{}/app:1.{}.0", i % 40, i % 9),
            "ports": [{"containerPort": 8080}],
            "env": [{"name": "LOG_LEVEL", "value": "info"},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]})
    } else {
        json!({"name": "app", "image": format!("app{}:latest", i % 50),
            "ports": [{"containerPort": 8080}],
            "env": [{"name": "API_TOKEN", "value": "not-a-real-token"}],
            "securityContext": {"privileged": i.is_multiple_of(7), "capabilities": {"add": ["NET_ADMIN"]}}})
    }
}

fn pod_spec(i: usize, hardened: bool) -> Value {
    let mut spec = json!({
        "containers": [container(i, hardened)],
        "initContainers": [{"name": "init", "image": "registry.example.com/tools/init:2.0.1",
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}},
            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    });
    if hardened {
        spec["automountServiceAccountToken"] = json!(false);
        spec["securityContext"] = json!({"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001,
            "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"},
            "appArmorProfile": {"type": "RuntimeDefault"}});
    } else {
        spec["hostNetwork"] = json!(i.is_multiple_of(5));
        spec["volumes"] = json!([{"name": "tmp", "hostPath": {"path": "/var/lib/app"}}]);
    }
    spec
}

fn workload_object(i: usize, all_hardened: bool) -> Value {
    let hardened = all_hardened || i.is_multiple_of(2);
    let ns = format!("team{}", i % 40);
    let name = format!("app-{i}");
    let labels = json!({"app": name, "team": format!("team{}", i % 40)});
    let template = json!({"metadata": {"labels": labels}, "spec": pod_spec(i, hardened)});
    match i % 5 {
        0 | 1 => json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template}}),
        2 => json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"serviceName": name, "selector": {"matchLabels": labels}, "template": template}}),
        3 => json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        _ => json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": pod_spec(i, hardened)}),
    }
}

fn inventory(all_hardened: bool) -> Inventory {
    let mut objects = Vec::with_capacity(WORKLOADS + 2_500);
    for i in 0..WORKLOADS {
        objects.push(KubeObject::from_value(workload_object(i, all_hardened), None).unwrap());
    }
    for i in (0..WORKLOADS).step_by(10) {
        let ty = if i % 30 == 0 {
            "LoadBalancer"
        } else {
            "ClusterIP"
        };
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("app-{i}"), "namespace": format!("team{}", i % 40)},
            "spec": {"type": ty, "selector": {"app": format!("app-{i}")},
                "ports": [{"port": if i % 60 == 0 { 5432 } else { 443 }, "targetPort": 8080}]}});
        objects.push(KubeObject::from_value(svc, None).unwrap());
    }
    for i in (0..WORKLOADS).step_by(40) {
        let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": format!("app-{i}"), "namespace": format!("team{}", i % 40)},
            "spec": {"rules": [{"host": format!("app-{i}.example.com"), "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": format!("app-{i}"), "port": {"number": 443}}}}]}}]}});
        objects.push(KubeObject::from_value(ing, None).unwrap());
    }
    Inventory {
        cluster: Some("bench".into()),
        objects,
        warnings: Vec::new(),
    }
}

/// CPU time of this thread in nanoseconds (Linux), so the per-core figure holds on a busy machine.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Objects per CPU-second of one thread over a few passes.
fn per_core(label: &str, objects: usize, mut f: impl FnMut()) {
    // Follow criterion's name filter (`cargo bench -- index`), matched loosely on the label.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        let words = filter.replace('_', " ");
        if !label.contains(words.trim_end_matches(" 20k")) {
            return;
        }
    }
    let passes = 5;
    let (Some(start), wall) = (thread_cpu_ns(), std::time::Instant::now()) else {
        return;
    };
    for _ in 0..passes {
        f();
    }
    if let Some(end) = thread_cpu_ns() {
        let cpu = (end - start) as f64 / 1e9;
        eprintln!(
            "{label}: {:.0} objects per CPU-second ({:.1} ms CPU, {:.1} ms wall per pass)",
            (objects * passes) as f64 / cpu,
            cpu * 1e3 / passes as f64,
            wall.elapsed().as_secs_f64() * 1e3 / passes as f64
        );
    }
}

fn bench(c: &mut Criterion) {
    let inv = inventory(false);
    let hardened = inventory(true);
    let config = PostureConfig {
        excluded_namespaces: Vec::new(),
        ..PostureConfig::default()
    };
    let findings = workload::check(&inv, &config).len();
    let hardened_findings = workload::check(&hardened, &config).len();
    eprintln!(
        "inventory: {} objects ({} workloads), workload findings: {findings} (all hardened: {hardened_findings})",
        inv.objects.len(),
        WORKLOADS
    );

    per_core("workload checks, half hardened", WORKLOADS, || {
        black_box(workload::check(&inv, &config));
    });
    per_core("workload checks, all hardened", WORKLOADS, || {
        black_box(workload::check(&hardened, &config));
    });
    per_core(
        "exposure index: pod templates only",
        inv.objects.len(),
        || {
            let n = inv
                .objects
                .iter()
                .filter_map(palisade_posture::pod::PodTemplate::of)
                .filter(|t| !t.is_owned_pod())
                .map(|t| t.containers().count())
                .sum::<usize>();
            black_box(n);
        },
    );
    per_core("exposure index build", inv.objects.len(), || {
        black_box(ExposureIndex::build(&inv));
    });
    per_core(
        "exposure checks (index included)",
        inv.objects.len(),
        || {
            black_box(exposure::check(&inv, &config));
        },
    );

    let mut group = c.benchmark_group("posture");
    group.sample_size(10);
    group.throughput(Throughput::Elements(WORKLOADS as u64));
    group.bench_function("workload_checks_20k", |b| {
        b.iter(|| black_box(workload::check(black_box(&inv), &config)))
    });
    group.bench_function("workload_checks_20k_hardened", |b| {
        b.iter(|| black_box(workload::check(black_box(&hardened), &config)))
    });
    group.throughput(Throughput::Elements(inv.objects.len() as u64));
    group.bench_function("exposure_index_build", |b| {
        b.iter(|| black_box(ExposureIndex::build(black_box(&inv))))
    });
    group.bench_function("exposure_checks", |b| {
        b.iter(|| black_box(exposure::check(black_box(&inv), &config)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
