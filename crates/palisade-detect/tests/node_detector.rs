//! The node detector end to end, on events shaped the way the sensor builds them for the
//! behaviours the sensor's e2e test performs with real processes: each must raise its catalog
//! alert, through aggregation, with the node, container, pod and process in the alert JSON.

use palisade_detect::alert::{AggregationMode, AlertFormat, DetectAlert, write_alert};
use palisade_detect::builtin::node_rules;
use palisade_detect::node::NodeEvent;
use palisade_detect::pipeline::{DetectorConfig, NodeDetector};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const CID: &str = "9d6a3c1f0e2b4a5c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c";
const T0: i64 = 1_780_000_000_000_000_000;

/// A sensor-shaped event: `kind`, process (exe, argv), in the test container unless `host`.
fn event(n: i64, kind: &str, exe: &str, args: &[&str], host: bool, extra: Value) -> NodeEvent {
    let mut doc = json!({
        "id": format!("node-e2e-5a1b-{n}"), "time_nanos": T0 + n * 1_000_000, "event.type": kind,
        "node": "node-e2e", "host": host,
        "process": {"pid": 1000 + n, "tid": 1000 + n, "ppid": 999, "comm": exe.rsplit('/').next(),
            "exe": exe, "args": args, "cmdline": args.join(" "), "stdio": ["pipe", "pipe", "pipe"],
            "parent": {"pid": 999, "comm": "sh", "exe": "/bin/sh", "cmdline": "sh /test/run.sh"}},
    });
    if !host {
        doc["container"] = json!({"id": CID, "runtime": "containerd", "name": "victim",
            "image": "docker.io/library/busybox:1.36", "pod_name": "victim-0",
            "pod_namespace": "e2e", "pod_uid": "6f1d"});
    }
    merge(&mut doc, extra);
    serde_json::from_value(doc).expect("sensor-shaped event")
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn detector() -> NodeDetector {
    NodeDetector::new(
        Arc::new(node_rules().expect("built-in node rules")),
        DetectorConfig::default(),
    )
}

fn ids(alerts: &[DetectAlert]) -> Vec<&str> {
    alerts.iter().map(|a| a.rule_id.as_str()).collect()
}

fn judge(events: &[NodeEvent]) -> Vec<DetectAlert> {
    let mut d = detector();
    let mut out = Vec::new();
    for e in events {
        d.process_event(e, &mut out);
    }
    out
}

#[test]
fn the_mandatory_behaviours_raise_their_alerts() {
    let cases: Vec<(&str, Vec<NodeEvent>, &[&str])> = vec![
        (
            "shell whose stdio is a socket to a local listener",
            vec![event(
                1,
                "exec",
                "/bin/sh",
                &["sh", "-i"],
                false,
                json!({"process": {"stdio": ["socket_inet", "socket_inet", "socket_inet"]}}),
            )],
            &["K8S.NODE_ReverseShell"],
        ),
        (
            "write + chmod + exec of a dropped binary (written by curl)",
            vec![
                event(
                    2,
                    "chmod",
                    "/bin/chmod",
                    &["chmod", "+x", "/tmp/dropper"],
                    false,
                    json!({"file": {"path": "/tmp/dropper", "access": "chmod", "mode": 493, "written_recently": true}}),
                ),
                event(
                    3,
                    "exec",
                    "/tmp/dropper",
                    &["/tmp/dropper"],
                    false,
                    json!({"process": {"exe_drift": true, "exe_upper_layer": true, "exe_written_by": "curl", "exe_written_ms_ago": 40}}),
                ),
            ],
            &[
                "K8S.NODE_ChmodAfterDownload",
                "K8S.NODE_BinaryDrift",
                "K8S.NODE_DownloadAndRunCombo",
                "K8S.NODE_SuspectExecutablePath",
            ],
        ),
        (
            "reading a kubeconfig",
            vec![event(
                4,
                "open",
                "/bin/cat",
                &["cat", "/etc/kubernetes/admin.conf"],
                true,
                json!({"file": {"path": "/etc/kubernetes/admin.conf", "access": "read"}}),
            )],
            &["K8S.NODE_KubeConfigAccess"],
        ),
        (
            "service-account token read by cat",
            vec![event(
                5,
                "open",
                "/bin/cat",
                &["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
                false,
                json!({"file": {"path": "/var/run/secrets/kubernetes.io/serviceaccount/token", "access": "read"}}),
            )],
            &["K8S.NODE_ServiceAccountTokenAccess"],
        ),
        (
            "unshare -n in a container",
            vec![event(
                6,
                "namespace",
                "/usr/bin/unshare",
                &["unshare", "-n", "true"],
                false,
                json!({"namespace": {"syscall": "unshare", "types": ["net"], "flags": 1_073_741_824_u64}}),
            )],
            &["K8S.NODE_NamespaceCreation"],
        ),
        (
            "connect to the metadata address (IPv4 and IPv6)",
            vec![
                event(
                    7,
                    "connect",
                    "/usr/bin/curl",
                    &["curl", "http://169.254.169.254/"],
                    false,
                    json!({"net": {"family": "ipv4", "protocol": "tcp", "dst_ip": "169.254.169.254", "dst_port": 80, "direction": "outbound"}}),
                ),
                event(
                    8,
                    "connect",
                    "/usr/bin/python3",
                    &["python3", "probe.py"],
                    true,
                    json!({"net": {"family": "ipv6", "protocol": "tcp", "dst_ip": "fd00:ec2::254", "dst_port": 80, "direction": "outbound"}}),
                ),
            ],
            &["K8S.NODE_ImdsCall"],
        ),
        (
            "a miner-named process",
            vec![event(
                9,
                "exec",
                "/tmp/xmrig",
                &["xmrig", "--version"],
                false,
                json!({}),
            )],
            &["K8S.NODE_CryptoCoinMinerExecution"],
        ),
        (
            "stratum DNS and port",
            vec![
                event(
                    10,
                    "dns",
                    "/tmp/sys",
                    &["sys"],
                    false,
                    json!({"dns": {"query": "pool.supportxmr.com", "qtype": "A"}}),
                ),
                event(
                    11,
                    "connect",
                    "/tmp/sys",
                    &["sys"],
                    false,
                    json!({"net": {"family": "ipv4", "protocol": "tcp", "dst_ip": "203.0.113.7", "dst_port": 3333, "direction": "outbound"}}),
                ),
            ],
            &["K8S.NODE_MiningPoolAccess"],
        ),
        (
            "memfd and deleted-file execution",
            vec![
                event(
                    12,
                    "exec",
                    "/memfd:payload (deleted)",
                    &["payload"],
                    false,
                    json!({"process": {"exe_memfd": true}}),
                ),
                event(
                    13,
                    "exec",
                    "/tmp/gone",
                    &["gone"],
                    true,
                    json!({"process": {"exe_deleted": true}}),
                ),
            ],
            &["K8S.NODE_FilelessExecution"],
        ),
        (
            "curl to the Kubernetes API from a container",
            vec![event(
                14,
                "connect",
                "/usr/bin/curl",
                &["curl", "-k", "https://10.96.0.1/api"],
                false,
                json!({"net": {"family": "ipv4", "protocol": "tcp", "dst_ip": "10.96.0.1", "dst_port": 443, "direction": "outbound"}}),
            )],
            &["K8S.NODE_KubernetesAPI"],
        ),
    ];
    for (name, events, expected) in cases {
        let alerts = judge(&events);
        let got = ids(&alerts);
        for want in expected {
            assert!(got.contains(want), "{name}: expected {want}, got {got:?}");
        }
    }
}

#[test]
fn benign_workloads_stay_quiet() {
    let events = vec![
        event(
            1,
            "exec",
            "/bin/sh",
            &["sh"],
            false,
            json!({"process": {"stdio": ["tty", "tty", "tty"]}}),
        ),
        event(2, "exec", "/usr/bin/kubelet", &["kubelet"], true, json!({})),
        event(
            3,
            "open",
            "/usr/bin/kubelet",
            &["kubelet"],
            true,
            json!({"file": {"path": "/etc/kubernetes/kubelet.conf", "access": "read"}}),
        ),
        event(
            4,
            "exec",
            "/bin/sh",
            &["sh", "-c", "curl -fsS http://127.0.0.1:8080/healthz"],
            false,
            json!({}),
        ),
        event(
            5,
            "connect",
            "/usr/bin/curl",
            &["curl", "http://127.0.0.1:8080/healthz"],
            false,
            json!({"net": {"family": "ipv4", "protocol": "tcp", "dst_ip": "127.0.0.1", "dst_port": 8080, "direction": "outbound"}}),
        ),
        event(
            6,
            "namespace",
            "/usr/bin/unshare",
            &["unshare", "-n", "true"],
            true,
            json!({"namespace": {"syscall": "unshare", "types": ["net"]}}),
        ),
        event(7, "exec", "/usr/bin/true", &["true"], true, json!({})),
    ];
    let alerts = judge(&events);
    assert!(
        alerts.is_empty(),
        "benign events alerted: {:?}",
        ids(&alerts)
    );
}

#[test]
fn alerts_carry_node_container_pod_and_process_in_their_json() {
    let e = event(
        1,
        "exec",
        "/bin/sh",
        &["sh", "-i"],
        false,
        json!({"process": {"stdio": ["socket_inet", "socket_inet", "pipe"]}}),
    );
    let alerts = judge(&[e]);
    let alert = alerts
        .iter()
        .find(|a| a.rule_id == "K8S.NODE_ReverseShell")
        .expect("reverse shell");
    assert_eq!(alert.source, "node");
    assert_eq!(alert.subject, CID, "subject is the container");
    assert_eq!(alert.resource, "/bin/sh");
    let mut line = Vec::new();
    write_alert(alert, AlertFormat::Json, &mut line).expect("write");
    let doc: Value = serde_json::from_slice(&line).expect("json");
    assert_eq!(doc["event.dataset"], "palisade.node");
    assert_eq!(doc["host.name"], "node-e2e");
    assert_eq!(doc["container.id"], CID);
    assert_eq!(doc["container.name"], "victim");
    assert_eq!(
        doc["container.image.name"],
        "docker.io/library/busybox:1.36"
    );
    assert_eq!(doc["orchestrator.namespace"], "e2e");
    assert_eq!(doc["orchestrator.resource.type"], "pod");
    assert_eq!(doc["orchestrator.resource.name"], "victim-0");
    assert_eq!(doc["process.pid"], 1001);
    assert_eq!(doc["process.executable"], "/bin/sh");
    assert_eq!(doc["process.command_line"], "sh -i");
    assert_eq!(doc["process.parent.executable"], "/bin/sh");
    assert_eq!(doc["threat.technique.id"][0], "T1059.004");
    assert!(
        doc["message"]
            .as_str()
            .is_some_and(|m| m.contains("e2e/victim-0")),
        "{doc}"
    );
    assert_eq!(alert.alert.resource.kind.as_deref(), Some("pods"));
    assert_eq!(alert.alert.resource.name.as_deref(), Some("victim-0"));

    // A host process: the subject is the node, no container keys.
    let e = event(
        2,
        "open",
        "/bin/cat",
        &["cat", "/etc/kubernetes/admin.conf"],
        true,
        json!({"file": {"path": "/etc/kubernetes/admin.conf", "access": "read"}}),
    );
    let alerts = judge(&[e]);
    let alert = alerts
        .iter()
        .find(|a| a.rule_id == "K8S.NODE_KubeConfigAccess")
        .expect("kubeconfig");
    assert_eq!(alert.subject, "node-e2e");
    let mut line = Vec::new();
    write_alert(alert, AlertFormat::Json, &mut line).expect("write");
    let doc: Value = serde_json::from_slice(&line).expect("json");
    assert_eq!(doc["host.name"], "node-e2e");
    assert!(doc.get("container.id").is_none(), "{doc}");
    assert!(doc.get("orchestrator.resource.name").is_none(), "{doc}");
}

#[test]
fn repeats_aggregate_and_stats_count_them() {
    let mut d = NodeDetector::new(
        Arc::new(node_rules().expect("rules")),
        DetectorConfig {
            window: Duration::from_secs(60),
            mode: AggregationMode::Immediate,
            ..DetectorConfig::default()
        },
    );
    let mut out = Vec::new();
    for n in 0..5 {
        d.process_event(
            &event(n, "exec", "/tmp/xmrig", &["xmrig"], false, json!({})),
            &mut out,
        );
    }
    let miners: Vec<_> = out
        .iter()
        .filter(|a| a.rule_id == "K8S.NODE_CryptoCoinMinerExecution")
        .collect();
    assert_eq!(miners.len(), 1, "immediate: one alert at once");
    // The window closes: one update with the count of all five.
    d.tick(T0 + 120_000_000_000, &mut out);
    let update = out
        .iter()
        .rfind(|a| a.rule_id == "K8S.NODE_CryptoCoinMinerExecution")
        .expect("update");
    assert!(update.update);
    assert_eq!(update.count, 5);
    assert_eq!(update.event_ids.len(), 5);
    let stats = d.stats();
    assert_eq!(stats.events, 5);
    assert_eq!(stats.events_evaluated, 5);
    assert!(stats.matches >= 5);
    assert_eq!(stats.alerts_total(), out.len() as u64);
    let engine = d.engine_stats();
    assert_eq!(engine.events, 5);
    // Only exec rules were evaluated: the index keeps connect/open/dns rules away.
    let dns_rule = engine
        .rules
        .iter()
        .find(|r| r.id == "K8S.NODE_OastDomain")
        .expect("rule");
    assert!(
        dns_rule.evaluations == 5,
        "OastDomain also matches exec: {}",
        dns_rule.evaluations
    );
    let open_rule = engine
        .rules
        .iter()
        .find(|r| r.id == "K8S.NODE_KubeConfigAccess")
        .expect("rule");
    assert_eq!(
        open_rule.evaluations, 0,
        "open-only rule evaluated on exec events"
    );
    let mut rest = Vec::new();
    d.finish(&mut rest);
    assert!(rest.is_empty());
}
