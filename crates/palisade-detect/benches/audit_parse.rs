//! Audit parsing throughput: what a single core spends turning audit JSON into events before
//! any rule runs. Inputs are real-shaped: metadata-level get/list/watch by system components
//! (most of a cluster's audit volume), a RequestResponse pod create with its full request
//! object, a 90/10 mix as a JSON-lines stream, and an EKS CloudWatch payload.
//! Target: ≥ 1M simple events/s (the whole pipeline's budget is ≥ 300k events/s parsed and
//! evaluated).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_detect::audit::{AuditSchema, InputFormat, ParseStats, parse_document, parse_reader};
use palisade_detect::event::{Event, EventSchema};
use serde_json::json;
use std::hint::black_box;

fn metadata_event(i: usize) -> String {
    let (verb, user, resource, agent) = match i % 4 {
        0 => (
            "get",
            "system:kube-controller-manager",
            "leases",
            "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/leader-election",
        ),
        1 => (
            "list",
            "system:serviceaccount:kube-system:coredns",
            "endpointslices",
            "coredns/v1.11.1 (linux/amd64) kubernetes/0d4e1b5",
        ),
        2 => (
            "watch",
            "system:node:ip-10-0-12-34.ec2.internal",
            "configmaps",
            "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350",
        ),
        _ => (
            "update",
            "system:kube-scheduler",
            "leases",
            "kube-scheduler/v1.30.2 (linux/amd64) kubernetes/3968350/leader-election",
        ),
    };
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("5d3f3c1e-8c0b-4a53-9f5e-{i:012}"), "stage": "ResponseComplete",
        "requestURI": format!("/apis/coordination.k8s.io/v1/namespaces/kube-system/{resource}/kube-controller-manager?timeout=5s"),
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.12.34"], "userAgent": agent,
        "objectRef": {"resource": resource, "namespace": "kube-system", "name": "kube-controller-manager",
                      "apiGroup": "coordination.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.123456Z",
        "stageTimestamp": "2024-05-01T10:00:00.125789Z",
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"system:kube-controller-manager\" of ClusterRole \"system:kube-controller-manager\" to User \"system:kube-controller-manager\""}
    })
    .to_string()
}

fn pod_create(i: usize) -> String {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": format!("9a1b2c3d-0000-4000-8000-{i:012}"), "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
        "verb": "create",
        "user": {"username": "alice@example.com", "groups": ["devs", "system:authenticated"],
                 "extra": {"iam.gke.io/user-assertion": ["AKUJVp..."]}},
        "sourceIPs": ["203.0.113.10"], "userAgent": "kubectl/v1.30.1 (darwin/arm64) kubernetes/6911225",
        "objectRef": {"resource": "pods", "namespace": "shop", "name": "checkout-7d9f", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "checkout-7d9f", "namespace": "shop", "labels": {"app": "checkout", "tier": "web"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}"}},
            "spec": {"serviceAccountName": "checkout",
                "containers": [{"name": "app", "image": "registry.example.com/shop/checkout:1.4.2",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "MODE", "value": "prod"}, {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]},
                   {"name": "proxy", "image": "envoyproxy/envoy:v1.30.1", "args": ["-c", "/etc/envoy/envoy.yaml"]}],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}},
        "responseObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "checkout-7d9f", "uid": "c0ffee"},
                           "status": {"phase": "Pending", "qosClass": "Burstable"}},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.123456Z",
        "stageTimestamp": "2024-05-01T10:00:00.145678Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding \"devs/shop\"",
                        "pod-security.kubernetes.io/enforce-policy": "restricted:latest"}
    })
    .to_string()
}

/// Nanoseconds this thread has run on a CPU (Linux `/proc/thread-self/schedstat`): on a shared
/// machine, events per CPU-second is the figure that says what one core does.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Parses `docs` round-robin for about `n` events and prints events per CPU-second.
fn cpu_rate(label: &str, docs: &[String], n: usize) {
    let mut stats = ParseStats::default();
    let (Some(start), wall) = (thread_cpu_ns(), std::time::Instant::now()) else {
        return;
    };
    let mut events = 0u64;
    for k in 0..n {
        let _ = parse_document(
            docs[k % docs.len()].as_bytes(),
            InputFormat::Auto,
            &mut stats,
            &mut |e| {
                events += 1;
                black_box(e);
            },
        );
    }
    let Some(end) = thread_cpu_ns() else {
        return;
    };
    let cpu = (end - start) as f64 / 1e9;
    eprintln!(
        "{label}: {events} events in {cpu:.3} CPU-s ({:.0} events per CPU-second; wall {:.3} s)",
        events as f64 / cpu,
        wall.elapsed().as_secs_f64()
    );
}

/// Parses and evaluates `docs` with every built-in rule, printing events per CPU-second: the
/// figure the ≥ 300k events/s/core target is about.
fn cpu_rate_with_rules(label: &str, docs: &[String], n: usize) {
    let rules = match palisade_detect::builtin::audit_rules() {
        Ok(r) => std::sync::Arc::new(r),
        Err(e) => {
            eprintln!("built-in rules do not load: {e}");
            return;
        }
    };
    let mut engine = palisade_detect::engine::Engine::new(rules, Default::default());
    let mut matches = Vec::new();
    let mut stats = ParseStats::default();
    let Some(start) = thread_cpu_ns() else {
        return;
    };
    let mut fired = 0usize;
    for k in 0..n {
        let _ = parse_document(
            docs[k % docs.len()].as_bytes(),
            InputFormat::Auto,
            &mut stats,
            &mut |e| {
                engine.evaluate(e, &mut matches);
            },
        );
        fired += matches.len();
        matches.clear();
    }
    let Some(end) = thread_cpu_ns() else {
        return;
    };
    let cpu = (end - start) as f64 / 1e9;
    eprintln!(
        "{label}: {} events parsed + evaluated with all built-in rules in {cpu:.3} CPU-s ({:.0} events per CPU-second, {fired} matches)",
        stats.events,
        stats.events as f64 / cpu
    );
}

fn bench(c: &mut Criterion) {
    {
        let simple: Vec<String> = (0..1024).map(metadata_event).collect();
        let creates: Vec<String> = (0..64).map(pod_create).collect();
        let mixed: Vec<String> = (0..1000)
            .map(|n| {
                if n % 10 == 9 {
                    creates[n % 64].clone()
                } else {
                    simple[n % 1024].clone()
                }
            })
            .collect();
        if let Some(start) = thread_cpu_ns() {
            for k in 0..500_000 {
                let doc = simple[k % simple.len()].as_bytes();
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(doc).is_ok());
            }
            if let Some(end) = thread_cpu_ns() {
                eprintln!(
                    "baseline (serde_json validating metadata events): {:.0} per CPU-second",
                    500_000.0 / ((end - start) as f64 / 1e9)
                );
            }
        }
        cpu_rate("metadata events", &simple, 500_000);
        cpu_rate("pod creates (RequestResponse)", &creates, 100_000);
        cpu_rate("90/10 mix", &mixed, 500_000);
        cpu_rate_with_rules("90/10 mix", &mixed, 300_000);
    }
    let simple: Vec<String> = (0..1024).map(metadata_event).collect();
    let creates: Vec<String> = (0..64).map(pod_create).collect();
    let mut stats = ParseStats::default();
    let mut sink_count = 0u64;

    let mut g = c.benchmark_group("audit_parse");
    g.throughput(Throughput::Elements(1));
    // Reference point on a shared machine: serde_json only validating the same bytes.
    let mut i = 0;
    g.bench_function("baseline: serde_json validates a metadata event", |b| {
        b.iter(|| {
            i = (i + 1) % simple.len();
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(simple[i].as_bytes()).is_ok())
        })
    });
    let mut i = 0;
    g.bench_function("metadata get/list/watch event", |b| {
        b.iter(|| {
            i = (i + 1) % simple.len();
            parse_document(
                simple[i].as_bytes(),
                InputFormat::Auto,
                &mut stats,
                &mut |e| {
                    sink_count += black_box(e.time_nanos()) as u64 & 1;
                },
            )
        })
    });
    let mut i = 0;
    g.bench_function("RequestResponse pod create (objects left raw)", |b| {
        b.iter(|| {
            i = (i + 1) % creates.len();
            parse_document(
                creates[i].as_bytes(),
                InputFormat::Auto,
                &mut stats,
                &mut |e| {
                    sink_count += black_box(e.time_nanos()) as u64 & 1;
                },
            )
        })
    });
    let containers = AuditSchema::compile_field("pod.containers").expect("field");
    let mut i = 0;
    g.bench_function("RequestResponse pod create + read pod.containers", |b| {
        b.iter(|| {
            i = (i + 1) % creates.len();
            parse_document(
                creates[i].as_bytes(),
                InputFormat::Auto,
                &mut stats,
                &mut |e| {
                    black_box(e.get(&containers));
                },
            )
        })
    });
    let payload = json!({"messageType": "DATA_MESSAGE", "logGroup": "/aws/eks/prod/cluster",
        "logStream": "kube-apiserver-audit-1", "logEvents": simple[..100].iter().enumerate()
            .map(|(n, m)| json!({"id": n.to_string(), "timestamp": 1714557600000u64 + n as u64, "message": m}))
            .collect::<Vec<_>>()})
    .to_string();
    g.throughput(Throughput::Elements(100));
    g.bench_function("EKS CloudWatch payload of 100 events", |b| {
        b.iter(|| {
            parse_document(
                payload.as_bytes(),
                InputFormat::Auto,
                &mut stats,
                &mut |e| {
                    sink_count += black_box(e.time_nanos()) as u64 & 1;
                },
            )
        })
    });
    // A webhook batch as kube-apiserver sends it.
    let batch = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        simple[..100].join(",")
    );
    g.throughput(Throughput::Elements(100));
    g.bench_function("webhook EventList of 100 events", |b| {
        b.iter(|| {
            parse_document(batch.as_bytes(), InputFormat::Auto, &mut stats, &mut |e| {
                sink_count += black_box(e.time_nanos()) as u64 & 1;
            })
        })
    });
    // A JSON-lines stream: 90% metadata events, 10% pod creates.
    let mut stream = String::new();
    for n in 0..1000 {
        if n % 10 == 9 {
            stream.push_str(&creates[n % creates.len()]);
        } else {
            stream.push_str(&simple[n % simple.len()]);
        }
        stream.push('\n');
    }
    g.throughput(Throughput::Elements(1000));
    g.bench_function(
        "JSON-lines stream of 1000 (90% metadata, 10% creates)",
        |b| {
            b.iter(|| {
                parse_reader(stream.as_bytes(), InputFormat::Auto, &mut stats, &mut |e| {
                    sink_count += black_box(e.time_nanos()) as u64 & 1;
                })
            })
        },
    );
    g.finish();
    assert_eq!(stats.errors, 0);
    black_box(sink_count);
}

criterion_group!(benches, bench);
criterion_main!(benches);
