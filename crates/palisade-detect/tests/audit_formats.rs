//! Every shape the audit parsers accept, checked against the raw JSON: all events of both
//! labelled Panther files (native, EKS, GKE, AKS and Azure Activity records), and hand-written
//! real-shaped cases for each export wrapper (CloudWatch subscription payloads, `aws logs`
//! output, Logs Insights rows, S3 export lines, Cloud Logging entries, AKS diagnostic records,
//! Event Hub `records` wrappers and `AKSAudit` table rows).

use palisade_detect::audit::{
    AuditEvent, AuditSchema, InputFormat, ParseStats, SourceFormat, parse_document, parse_reader,
};
use palisade_detect::event::{Event, EventSchema};
use palisade_detect::value::Val;
use serde_json::{Value, json};
use std::path::PathBuf;

/// What a test compares: the fields every rule relies on, read through the schema.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    verb: Option<String>,
    resource: Option<String>,
    user: Option<String>,
    namespace: Option<String>,
    format: String,
}

fn field(e: &AuditEvent<'_>, path: &str) -> Option<String> {
    let f = AuditSchema::compile_field(path).expect("known field");
    match e.get(&f) {
        Val::Str(s) => Some(s.to_string()),
        Val::Int(i) => Some(i.to_string()),
        Val::Missing => None,
        other => Some(format!("{other:?}")),
    }
}

fn seen(e: &AuditEvent<'_>) -> Seen {
    Seen {
        verb: field(e, "verb"),
        resource: field(e, "objectRef.resource"),
        user: field(e, "user.username"),
        namespace: field(e, "objectRef.namespace"),
        format: field(e, "source.format").expect("always set"),
    }
}

fn parse(bytes: &[u8]) -> (Vec<Seen>, ParseStats) {
    let mut stats = ParseStats::default();
    let mut out = Vec::new();
    let _ = parse_document(bytes, InputFormat::Auto, &mut stats, &mut |e| {
        out.push(seen(e))
    });
    (out, stats)
}

fn parse_events(bytes: &[u8]) -> (Vec<AuditEvent<'static>>, ParseStats) {
    let mut stats = ParseStats::default();
    let mut out = Vec::new();
    let _ = parse_document(bytes, InputFormat::Auto, &mut stats, &mut |e| {
        out.push(e.clone().into_owned())
    });
    (out, stats)
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Expectation for a native-shaped event, straight from its JSON.
fn native_expect(ev: &Value, format: &str) -> Seen {
    Seen {
        verb: s(&ev["verb"]).map(|v| v.to_lowercase()),
        resource: s(&ev["objectRef"]["resource"]),
        user: s(&ev["user"]["username"]),
        namespace: s(&ev["objectRef"]["namespace"]),
        format: format.to_string(),
    }
}

/// Expectation for a GKE entry, from its methodName/resourceName (None: not a Kubernetes
/// entry, so no event).
fn gke_expect(entry: &Value) -> Option<Seen> {
    let p = &entry["protoPayload"];
    let method = p["methodName"].as_str()?;
    match p["serviceName"].as_str() {
        Some("k8s.io") => {}
        None if method.starts_with("io.k8s.") => {}
        _ => return None,
    }
    let segs: Vec<&str> = method.split('.').collect();
    let version_at = segs
        .iter()
        .position(|s| s.len() > 1 && s.starts_with('v') && s.as_bytes()[1].is_ascii_digit());
    let (verb, method_resource) = match version_at {
        Some(i) if segs.len() >= i + 3 => (segs[segs.len() - 1].to_string(), Some(segs[i + 1])),
        _ => ("get".to_string(), None),
    };
    let rn = p["resourceName"]
        .as_str()
        .or_else(|| p["authorizationInfo"][0]["resource"].as_str())
        .filter(|r| !r.starts_with('/'));
    let (mut resource, mut namespace) = (method_resource.map(str::to_string), None);
    if let Some(rn) = rn {
        let parts: Vec<&str> = rn.split('/').collect();
        if parts.len() >= 5 && parts[2] == "namespaces" && method_resource != Some("namespaces") {
            namespace = Some(parts[3].to_string());
            resource = Some(parts[4].to_string());
        } else if parts.len() >= 3 {
            resource = Some(parts[2].to_string());
        }
    }
    let user = s(&p["authenticationInfo"]["principalEmail"])
        .or_else(|| s(&p["authenticationInfo"]["principalSubject"]))
        .or_else(|| {
            s(&p["authenticationInfo"]["authoritySelector"]).filter(|a| a.starts_with("system:"))
        });
    Some(Seen {
        verb: Some(verb),
        resource,
        user,
        namespace,
        format: "gke".into(),
    })
}

/// Expectation for an Azure record: kube-audit diagnostics carry a native event as a string;
/// Activity records of cluster providers name group/resource/action in operationName.
fn azure_expect(rec: &Value) -> Option<Seen> {
    let category = rec["category"].as_str().unwrap_or("");
    if category == "kube-audit" || category == "kube-audit-admin" {
        let inner: Value = serde_json::from_str(rec["properties"]["log"].as_str()?).ok()?;
        return Some(native_expect(&inner, "aks"));
    }
    let op = rec["operationName"].as_str()?;
    let segs: Vec<String> = op.split('/').map(|s| s.to_lowercase()).collect();
    let provider_ok = segs.len() >= 4
        && ((segs[0] == "microsoft.kubernetes" && segs[1] == "connectedclusters")
            || (segs[0] == "microsoft.containerservice" && segs[1] == "managedclusters"));
    if !provider_ok {
        return None;
    }
    let action = segs.last()?.as_str();
    let resource = if segs[2].contains('.') {
        &segs[3]
    } else {
        &segs[2]
    };
    let verb = match action {
        "write" => "create",
        "delete" => "delete",
        "read" => "get",
        other => other,
    };
    Some(Seen {
        verb: Some(verb.to_string()),
        resource: Some(resource.clone()),
        user: s(&rec["caller"]),
        namespace: None,
        format: "azure-activity".into(),
    })
}

/// The labelled Panther events, read in place: `PALISADE_SHARED` (the shared data directory)
/// or `../shared` beside the repository.
fn panther_file(name: &str) -> PathBuf {
    std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data/audit/panther")
        .join(name)
}

fn panther_rows(name: &str) -> Vec<Value> {
    let path = panther_file(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} must be readable: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture rows are JSON"))
        .collect()
}

fn check_panther_file(name: &str) -> std::collections::BTreeMap<String, usize> {
    let mut per_format = std::collections::BTreeMap::new();
    for row in panther_rows(name) {
        let format = row["format"]
            .as_str()
            .or(row["panther_log_type"].as_str())
            .expect("every row names its format")
            .to_string();
        let ev = if row.get("log").is_some() {
            &row["log"]
        } else {
            &row["event"]
        };
        let test = row["test_name"].as_str().unwrap_or("?");
        let bytes = serde_json::to_vec(ev).expect("serialise");
        let expected: Option<Seen> = if ev.get("protoPayload").is_some() {
            gke_expect(ev)
        } else if ev.get("operationName").is_some() || ev.get("category").is_some() {
            azure_expect(ev)
        } else if ev.get("kind").is_some() || ev.get("verb").is_some() {
            let label = if ev["p_log_type"]
                .as_str()
                .is_some_and(|t| t.starts_with("Amazon.EKS"))
            {
                "eks"
            } else {
                "native"
            };
            Some(native_expect(ev, label))
        } else {
            None
        };
        let (events, stats) = parse(&bytes);
        match expected {
            Some(want) => {
                assert_eq!(events.len(), 1, "{name} {format} {test:?}: {stats:?}");
                assert_eq!(events[0], want, "{name} {format} {test:?}");
                assert_eq!(stats.errors, 0, "{name} {format} {test:?}");
                *per_format.entry(format).or_insert(0) += 1;
            }
            None => {
                assert!(events.is_empty(), "{name} {format} {test:?}: {events:?}");
                assert_eq!(stats.errors, 1, "{name} {format} {test:?}: {stats:?}");
                assert!(
                    stats.not_kubernetes + stats.unknown_shape == 1,
                    "{name} {format} {test:?}: {stats:?}"
                );
            }
        }
    }
    per_format
}

#[test]
fn every_panther_rule_test_event_parses_with_its_fields() {
    let per_format = check_panther_file("panther_k8s_rule_tests.jsonl");
    eprintln!("{per_format:?}");
    for format in [
        "k8s-audit-native",
        "Amazon.EKS.Audit",
        "GCP.AuditLog",
        "Azure.MonitorActivity",
        "other",
    ] {
        assert!(
            per_format.get(format).copied().unwrap_or(0) > 0,
            "{format}: {per_format:?}"
        );
    }
}

#[test]
fn every_labelled_native_event_parses_with_its_fields() {
    let per_format = check_panther_file("native_audit_events_labelled.jsonl");
    assert!(
        per_format.get("k8s-audit-native").copied().unwrap_or(0) > 50,
        "{per_format:?}"
    );
    assert!(
        per_format.get("Amazon.EKS.Audit").copied().unwrap_or(0) > 100,
        "{per_format:?}"
    );
}

/// A native event as kube-apiserver writes it, with a request object.
fn pod_create(audit_id: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": audit_id, "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/prod/pods?fieldManager=kubectl-client-side-apply",
        "verb": "create",
        "user": {"username": "system:serviceaccount:ci:deployer", "uid": "u-1",
                 "groups": ["system:serviceaccounts", "system:authenticated"],
                 "extra": {"authentication.kubernetes.io/pod-name": ["runner-0"]}},
        "sourceIPs": ["10.0.0.7", "172.16.0.1"], "userAgent": "kubectl/v1.30.1 (linux/amd64)",
        "objectRef": {"resource": "pods", "namespace": "prod", "name": "web", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"hostPID": true,
                "containers": [{"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": true}}],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
        "stageTimestamp": "2024-05-01T10:00:00.012345Z",
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"ci\""}
    })
}

fn get_field(e: &AuditEvent<'_>, path: &str) -> Value {
    let f = AuditSchema::compile_field(path).expect("known field");
    fn to_json(v: &Val<'_>) -> Value {
        match v {
            Val::Missing => Value::String("<missing>".into()),
            Val::Null => Value::Null,
            Val::Bool(b) => json!(b),
            Val::Int(i) => json!(i),
            Val::Float(f) => json!(f),
            Val::Str(s) => json!(s),
            Val::Json(j) => (*j).clone(),
            Val::List(items) => Value::Array(items.iter().map(to_json).collect()),
            Val::Strs(items) => json!(items),
        }
    }
    to_json(&e.get(&f))
}

#[test]
fn native_event_fields_read_like_the_audit_log() {
    let doc = pod_create("a-1");
    let (events, stats) = parse_events(doc.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0));
    let e = &events[0];
    for path in [
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "userAgent",
        "user.username",
        "user.uid",
        "user.groups",
        "sourceIPs",
        "objectRef.resource",
        "objectRef.namespace",
        "objectRef.name",
        "objectRef.apiVersion",
        "responseStatus.code",
        "requestReceivedTimestamp",
        "stageTimestamp",
        "requestObject.spec.hostPID",
        "requestObject.spec.containers[0].image",
        "requestObject.metadata",
    ] {
        let want = JsonPathLike(path).lookup(&doc);
        assert_eq!(get_field(e, path), want, "{path}");
    }
    assert_eq!(get_field(e, "kind"), json!("Event"));
    assert_eq!(
        get_field(e, r#"annotations["authorization.k8s.io/decision"]"#),
        json!("allow")
    );
    assert_eq!(get_field(e, "annotations"), doc["annotations"]);
    assert_eq!(
        get_field(e, r#"user.extra["authentication.kubernetes.io/pod-name"]"#),
        json!(["runner-0"])
    );
    assert_eq!(get_field(e, "user.serviceaccount.namespace"), json!("ci"));
    assert_eq!(get_field(e, "user.serviceaccount.name"), json!("deployer"));
    assert_eq!(get_field(e, "user.is_serviceaccount"), json!(true));
    assert_eq!(get_field(e, "object"), doc["requestObject"]);
    assert_eq!(get_field(e, "pod.spec"), doc["requestObject"]["spec"]);
    assert_eq!(get_field(e, "pod.hostPID"), json!(true));
    assert_eq!(get_field(e, "pod.volumes[0].hostPath.path"), json!("/"));
    assert_eq!(get_field(e, "pod.hostNetwork"), json!("<missing>"));
    assert_eq!(
        get_field(e, "pod.containers"),
        json!([
            doc["requestObject"]["spec"]["containers"][0],
            doc["requestObject"]["spec"]["initContainers"][0]
        ])
    );
    assert_eq!(
        get_field(e, "pod.containers.image"),
        json!(["nginx:1.27", "busybox"])
    );
    assert_eq!(get_field(e, "pod.containers[1].name"), json!("init"));
    assert_eq!(
        get_field(e, "pod.image_repositories"),
        json!(["nginx", "busybox"])
    );
    assert_eq!(get_field(e, "source.format"), json!("native"));
    assert_eq!(get_field(e, "cluster"), json!("<missing>"));
    assert_eq!(get_field(e, "responseObject"), json!("<missing>"));
    assert_eq!(e.index_value(0), Some("create"));
    assert_eq!(e.index_value(1), Some("pods"));
    assert_eq!(e.index_value(2), Some("ResponseComplete"));
    assert_eq!(e.event_id(), "a-1");
    assert_eq!(e.time_nanos(), 1_714_557_600_012_345_000);
}

/// A dotted path over plain JSON (test-side reference for the schema's answers).
struct JsonPathLike<'p>(&'p str);

impl JsonPathLike<'_> {
    fn lookup(&self, root: &Value) -> Value {
        let p = palisade_detect::path::JsonPath::parse(self.0).expect("path");
        match p.lookup_json(root) {
            Some(v) => v.clone(),
            None => Value::String("<missing>".into()),
        }
    }
}

#[test]
fn pod_spec_is_found_in_every_workload_kind() {
    let spec = json!({"containers": [{"name": "c", "image": "xmrig/xmrig"}], "hostNetwork": true});
    let objects = [
        ("pods", json!({"kind": "Pod", "spec": spec})),
        (
            "deployments",
            json!({"kind": "Deployment", "spec": {"template": {"spec": spec}}}),
        ),
        (
            "replicasets",
            json!({"kind": "ReplicaSet", "spec": {"template": {"spec": spec}}}),
        ),
        (
            "statefulsets",
            json!({"kind": "StatefulSet", "spec": {"template": {"spec": spec}}}),
        ),
        (
            "daemonsets",
            json!({"kind": "DaemonSet", "spec": {"template": {"spec": spec}}}),
        ),
        (
            "jobs",
            json!({"kind": "Job", "spec": {"template": {"spec": spec}}}),
        ),
        (
            "replicationcontrollers",
            json!({"kind": "ReplicationController", "spec": {"template": {"spec": spec}}}),
        ),
        (
            "cronjobs",
            json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
        ),
        // No kind in the object (some exports strip it): the resource decides.
        ("deployments", json!({"spec": {"template": {"spec": spec}}})),
    ];
    for (resource, object) in objects {
        let doc = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "create",
            "objectRef": {"resource": resource, "namespace": "default"}, "requestObject": object});
        let (events, _) = parse_events(doc.to_string().as_bytes());
        assert_eq!(get_field(&events[0], "pod.spec"), spec, "{resource}");
        assert_eq!(
            get_field(&events[0], "pod.hostNetwork"),
            json!(true),
            "{resource}"
        );
        assert_eq!(
            get_field(&events[0], "pod.containers.image"),
            json!(["xmrig/xmrig"]),
            "{resource}"
        );
    }
    // Not a workload: no pod spec; a response object is `object` when there is no request.
    let doc = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get",
        "objectRef": {"resource": "configmaps"}, "responseObject": {"kind": "ConfigMap", "spec": spec}});
    let (events, _) = parse_events(doc.to_string().as_bytes());
    assert_eq!(get_field(&events[0], "pod.spec"), json!("<missing>"));
    assert_eq!(get_field(&events[0], "pod.containers"), json!("<missing>"));
    assert_eq!(get_field(&events[0], "object.kind"), json!("ConfigMap"));
}

#[test]
fn unknown_fields_are_rejected_with_the_known_roots() {
    for bad in [
        "verbs",
        "objectref.resource",
        "user",
        "requestObject..x",
        "annotations[0]",
        "pod",
        "source",
    ] {
        let err = AuditSchema::compile_field(bad).expect_err(bad);
        assert!(err.contains(bad) || err.contains("invalid"), "{bad}: {err}");
    }
    let err = AuditSchema::compile_field("verbs").expect_err("unknown");
    assert!(
        err.contains("objectRef.resource") && err.contains("pod.containers"),
        "{err}"
    );
}

#[test]
fn v1beta1_events_and_event_lists_of_every_stage() {
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "metadata": {},
    "items": [
        {"kind": "Event", "apiVersion": "audit.k8s.io/v1beta1", "metadata": {"creationTimestamp": "2019-03-01T10:00:00Z"},
         "level": "Metadata", "timestamp": "2019-03-01T10:00:00Z", "auditID": "b-1", "stage": "RequestReceived",
         "requestURI": "/api/v1/namespaces/kube-system/secrets", "verb": "list",
         "user": {"username": "alice"}, "sourceIPs": ["1.2.3.4"],
         "objectRef": {"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"}},
        {"kind": "Event", "apiVersion": "audit.k8s.io/v1beta1", "level": "Metadata",
         "metadata": {"creationTimestamp": "2019-03-01T10:00:01Z"}, "auditID": "b-1", "stage": "ResponseStarted",
         "verb": "watch", "user": {"username": "alice"}, "objectRef": {"resource": "secrets"}},
        {"kind": "Event", "apiVersion": "audit.k8s.io/v1beta1", "level": "Metadata", "auditID": "b-2",
         "stage": "Panic", "verb": "get", "user": {"username": "bob"}}
    ]});
    let (events, stats) = parse_events(list.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors, stats.documents), (3, 0, 1));
    let items = list["items"].as_array().expect("items");
    for (e, item) in events.iter().zip(items) {
        assert_eq!(get_field(e, "stage"), item["stage"]);
        assert_eq!(get_field(e, "verb"), item["verb"]);
        assert_eq!(get_field(e, "user.username"), item["user"]["username"]);
        assert_eq!(get_field(e, "apiVersion"), json!("audit.k8s.io/v1beta1"));
    }
    // v1beta1 time comes from `timestamp`, else metadata.creationTimestamp.
    assert_eq!(events[0].time_nanos(), 1_551_434_400_000_000_000);
    assert_eq!(events[1].time_nanos(), 1_551_434_401_000_000_000);
    assert_eq!(events[2].time_nanos(), 0);
}

fn cloudwatch_payload(control: bool) -> Value {
    let e1 = pod_create("cw-1");
    let mut e2 = pod_create("cw-2");
    e2["verb"] = json!("delete");
    e2["user"] = json!({"username": "kubernetes-admin", "groups": ["system:masters"]});
    json!({
        "messageType": if control { "CONTROL_MESSAGE" } else { "DATA_MESSAGE" },
        "owner": "123456789012", "logGroup": "/aws/eks/prod-east/cluster",
        "logStream": "kube-apiserver-audit-0a1b2c3d4e5f", "subscriptionFilters": ["to-firehose"],
        "logEvents": [
            {"id": "3789", "timestamp": 1714557600123u64, "message": e1.to_string()},
            {"id": "3790", "timestamp": 1714557600456u64, "message": e2.to_string()}
        ]
    })
}

#[test]
fn eks_cloudwatch_subscription_payloads() {
    let (events, stats) = parse_events(cloudwatch_payload(false).to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (2, 0));
    assert_eq!(get_field(&events[0], "cluster"), json!("prod-east"));
    assert_eq!(get_field(&events[0], "source.format"), json!("eks"));
    assert_eq!(get_field(&events[1], "verb"), json!("delete"));
    assert_eq!(
        get_field(&events[1], "user.groups"),
        json!(["system:masters"])
    );
    assert_eq!(
        get_field(&events[0], "pod.containers[0].securityContext.privileged"),
        json!(true)
    );
    let (events, stats) = parse_events(cloudwatch_payload(true).to_string().as_bytes());
    assert_eq!(
        (events.len(), stats.errors, stats.control_messages),
        (0, 0, 1)
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

#[test]
fn eks_gzipped_payloads_as_firehose_and_lambda_deliver_them() {
    let payload = cloudwatch_payload(false).to_string();
    let (events, stats) = parse_events(&gzip(payload.as_bytes()));
    assert_eq!((events.len(), stats.errors), (2, 0));
    assert_eq!(get_field(&events[0], "cluster"), json!("prod-east"));
    use base64::Engine as _;
    let lambda = json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(gzip(payload.as_bytes()))}});
    let (events, stats) = parse_events(lambda.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (2, 0));
    assert_eq!(get_field(&events[1], "auditID"), json!("cw-2"));
    // A gzip bomb is refused, counted, not inflated without bound.
    let zeros = vec![b' '; 70 << 20];
    let (events, stats) = parse_events(&gzip(&zeros));
    assert_eq!((events.len(), stats.too_large), (0, 1));
}

#[test]
fn eks_aws_cli_output_single_records_insights_rows_and_s3_lines() {
    let e1 = pod_create("x-1");
    // `aws logs filter-log-events` / `get-log-events` output.
    let cli = json!({"events": [
        {"logStreamName": "kube-apiserver-audit-1", "timestamp": 1714557600123u64,
         "message": e1.to_string(), "ingestionTime": 1714557601000u64, "eventId": "1"}],
        "searchedLogStreams": [], "nextToken": "abc"});
    let (events, stats) = parse_events(cli.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0));
    assert_eq!(get_field(&events[0], "source.format"), json!("eks"));
    // One log record.
    let one = json!({"timestamp": 1714557600123u64, "message": e1.to_string(), "logGroup": "/aws/eks/dev/cluster"});
    let (events, _) = parse_events(one.to_string().as_bytes());
    assert_eq!(get_field(&events[0], "cluster"), json!("dev"));
    assert_eq!(get_field(&events[0], "auditID"), json!("x-1"));
    // Logs Insights JSON export: an array of rows with @message.
    let insights = json!([
        {"@timestamp": "2024-05-01 10:00:00.123", "@message": e1.to_string(),
         "@log": "123456789012:/aws/eks/insights-cluster/cluster", "@logStream": "kube-apiserver-audit-1"},
        {"@timestamp": "2024-05-01 10:00:01.000", "@message": "not json"}
    ]);
    let (events, stats) = parse_events(insights.to_string().as_bytes());
    assert_eq!(
        (events.len(), stats.errors, stats.malformed_json),
        (1, 1, 1)
    );
    assert_eq!(get_field(&events[0], "cluster"), json!("insights-cluster"));
    // S3 export-task line: timestamp, space, event.
    let line = format!("2024-05-01T10:00:00.000Z {}", e1);
    let (events, stats) = parse_events(line.as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0));
    // An event without time of its own takes the export's.
    let mut bare = e1.clone();
    bare.as_object_mut()
        .expect("object")
        .remove("stageTimestamp");
    bare.as_object_mut()
        .expect("object")
        .remove("requestReceivedTimestamp");
    let line = format!("2024-05-01T10:00:00.000Z {bare}");
    let (events, _) = parse_events(line.as_bytes());
    assert_eq!(events[0].time_nanos(), 1_714_557_600_000_000_000);
}

#[test]
fn panther_style_events_keep_their_fields_and_ignore_p_fields() {
    let mut e = pod_create("p-1");
    e["p_log_type"] = json!("Amazon.EKS.Audit");
    e["p_any_ip_addresses"] = json!(["10.0.0.7"]);
    e["p_event_time"] = json!("2024-05-01 10:00:00.012");
    e["stageTimestamp"] = json!("2024-05-01 10:00:00.012345");
    let (events, stats) = parse_events(e.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0));
    assert_eq!(get_field(&events[0], "source.format"), json!("eks"));
    assert_eq!(events[0].time_nanos(), 1_714_557_600_012_345_000);
    // Without times of its own, Panther's p_event_time is the event time.
    e.as_object_mut().expect("object").remove("stageTimestamp");
    e.as_object_mut()
        .expect("object")
        .remove("requestReceivedTimestamp");
    let (events, _) = parse_events(e.to_string().as_bytes());
    assert_eq!(events[0].time_nanos(), 1_714_557_600_012_000_000);
}

fn gke_entry(method: &str, resource_name: &str, code: Option<i64>) -> Value {
    let mut entry = json!({
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "dev@example.com"},
            "authorizationInfo": [{"granted": true, "permission": method, "resource": resource_name}],
            "methodName": method,
            "requestMetadata": {"callerIp": "203.0.113.9", "callerSuppliedUserAgent": "kubectl/v1.29.2 (darwin/arm64)"},
            "resourceName": resource_name,
            "serviceName": "k8s.io",
            "request": {"@type": "core.k8s.io/v1.Pod", "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "debug"}, "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "alpine"}]}}
        },
        "insertId": "7f2a-1",
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "gke-prod", "location": "europe-west1", "project_id": "acme"}},
        "timestamp": "2024-05-01T10:00:00.5Z",
        "severity": "NOTICE",
        "logName": "projects/acme/logs/cloudaudit.googleapis.com%2Factivity",
        "labels": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "access granted"},
        "operation": {"id": "op-1", "producer": "k8s.io", "first": true, "last": true},
        "receiveTimestamp": "2024-05-01T10:00:01.000Z"
    });
    if let Some(c) = code {
        entry["protoPayload"]["status"] = json!({"code": c, "message": "denied"});
    }
    entry
}

#[test]
fn gke_audit_log_entries_map_to_audit_fields() {
    let entry = gke_entry(
        "io.k8s.core.v1.pods.create",
        "core/v1/namespaces/team-a/pods/debug",
        None,
    );
    let (events, stats) = parse_events(entry.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0));
    let e = &events[0];
    assert_eq!(get_field(e, "verb"), json!("create"));
    assert_eq!(get_field(e, "objectRef.apiGroup"), json!(""));
    assert_eq!(get_field(e, "objectRef.apiVersion"), json!("v1"));
    assert_eq!(get_field(e, "objectRef.resource"), json!("pods"));
    assert_eq!(get_field(e, "objectRef.namespace"), json!("team-a"));
    assert_eq!(get_field(e, "objectRef.name"), json!("debug"));
    assert_eq!(
        get_field(e, "requestURI"),
        json!("/api/v1/namespaces/team-a/pods/debug")
    );
    assert_eq!(get_field(e, "user.username"), json!("dev@example.com"));
    assert_eq!(get_field(e, "sourceIPs"), json!(["203.0.113.9"]));
    assert_eq!(
        get_field(e, "userAgent"),
        json!("kubectl/v1.29.2 (darwin/arm64)")
    );
    assert_eq!(get_field(e, "responseStatus.code"), json!(201));
    assert_eq!(get_field(e, "pod.hostNetwork"), json!(true));
    assert_eq!(
        get_field(e, r#"annotations["authorization.k8s.io/decision"]"#),
        json!("allow")
    );
    assert_eq!(get_field(e, "cluster"), json!("gke-prod"));
    assert_eq!(get_field(e, "stage"), json!("ResponseComplete"));
    assert_eq!(get_field(e, "source.format"), json!("gke"));
    assert_eq!(e.event_id(), "7f2a-1");
    assert_eq!(e.time_nanos(), 1_714_557_600_500_000_000);

    let exec = gke_entry(
        "io.k8s.core.v1.pods.exec.create",
        "core/v1/namespaces/team-a/pods/web-0/exec",
        Some(7),
    );
    let (events, _) = parse_events(exec.to_string().as_bytes());
    let e = &events[0];
    assert_eq!(get_field(e, "objectRef.resource"), json!("pods"));
    assert_eq!(get_field(e, "objectRef.subresource"), json!("exec"));
    assert_eq!(get_field(e, "objectRef.name"), json!("web-0"));
    assert_eq!(get_field(e, "responseStatus.code"), json!(403));
    assert_eq!(get_field(e, "responseStatus.message"), json!("denied"));

    let crb = gke_entry(
        "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
        "rbac.authorization.k8s.io/v1/clusterrolebindings/ops-admin",
        Some(16),
    );
    let (events, _) = parse_events(crb.to_string().as_bytes());
    let e = &events[0];
    assert_eq!(
        get_field(e, "objectRef.apiGroup"),
        json!("rbac.authorization.k8s.io")
    );
    assert_eq!(
        get_field(e, "objectRef.resource"),
        json!("clusterrolebindings")
    );
    assert_eq!(get_field(e, "objectRef.namespace"), json!("<missing>"));
    assert_eq!(get_field(e, "objectRef.name"), json!("ops-admin"));
    assert_eq!(get_field(e, "responseStatus.code"), json!(401));
    assert_eq!(
        get_field(e, "requestURI"),
        json!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/ops-admin")
    );

    for (code, http) in [(5, 404), (6, 409), (3, 400), (13, 500)] {
        let entry = gke_entry(
            "io.k8s.core.v1.pods.get",
            "core/v1/namespaces/a/pods/b",
            Some(code),
        );
        let (events, _) = parse_events(entry.to_string().as_bytes());
        assert_eq!(
            get_field(&events[0], "responseStatus.code"),
            json!(http),
            "{code}"
        );
    }
    // Entries of other Google services in the same sink are counted, not events.
    let mut other = gke_entry(
        "compute.instances.insert",
        "projects/acme/zones/a/instances/b",
        None,
    );
    other["protoPayload"]["serviceName"] = json!("compute.googleapis.com");
    let (events, stats) = parse_events(other.to_string().as_bytes());
    assert_eq!((events.len(), stats.not_kubernetes), (0, 1));
}

fn aks_record(category: &str, event: &Value) -> Value {
    json!({
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "category": category,
        "ccpNamespace": "65f0e1d2c3b4a5",
        "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD",
        "properties": {"log": event.to_string(), "stream": "stdout", "pod": "kube-apiserver-7d9f"},
        "time": "2024-05-01T10:00:00.0000000Z",
        "Cloud": "AzureCloud", "Environment": "prod"
    })
}

#[test]
fn aks_diagnostic_records_and_event_hub_wrappers() {
    let admin = aks_record("kube-audit-admin", &pod_create("k-1"));
    let (events, stats) = parse_events(admin.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0));
    assert_eq!(get_field(&events[0], "cluster"), json!("AKS-PROD"));
    assert_eq!(get_field(&events[0], "source.format"), json!("aks"));
    assert_eq!(get_field(&events[0], "auditID"), json!("k-1"));
    // Event Hub / storage account: {"records": [...]}, other categories counted and skipped.
    let mut guard = aks_record("guard", &json!({}));
    guard["properties"] = json!({"log": "guard log line"});
    let hub = json!({"records": [aks_record("kube-audit", &pod_create("k-2")), guard, aks_record("kube-audit", &pod_create("k-3"))]});
    let (events, stats) = parse_events(hub.to_string().as_bytes());
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_id().to_string())
            .collect::<Vec<_>>(),
        ["k-2", "k-3"]
    );
    assert_eq!((stats.errors, stats.not_kubernetes), (1, 1));
}

#[test]
fn aks_azure_diagnostics_table_rows() {
    // Log Analytics' legacy AzureDiagnostics table flattens properties.log into `log_s`.
    let row = json!({
        "TenantId": "tenant", "TimeGenerated": "2024-05-01T10:00:00Z", "Category": "kube-audit",
        "ResourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-LEGACY",
        "log_s": pod_create("d-1").to_string(), "pod_s": "kube-apiserver-1", "stream_s": "stdout",
        "ResourceProvider": "MICROSOFT.CONTAINERSERVICE", "Type": "AzureDiagnostics"
    });
    let (events, stats) = parse_events(row.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0), "{stats:?}");
    assert_eq!(get_field(&events[0], "cluster"), json!("AKS-LEGACY"));
    assert_eq!(get_field(&events[0], "auditID"), json!("d-1"));
    assert_eq!(get_field(&events[0], "source.format"), json!("aks"));
    let mut other = row.clone();
    other["Category"] = json!("kube-apiserver");
    other["log_s"] = json!("I0501 10:00:00.000000 1 trace.go:205] Trace...");
    let (events, stats) = parse_events(other.to_string().as_bytes());
    assert_eq!((events.len(), stats.not_kubernetes), (0, 1));
}

#[test]
fn aks_resource_specific_table_rows() {
    let ev = pod_create("t-1");
    let row = json!({
        "TenantId": "tenant", "TimeGenerated": "2024-05-01T10:00:00.1Z", "Level": "RequestResponse",
        "AuditId": "t-1", "Stage": "ResponseComplete", "RequestUri": ev["requestURI"], "Verb": "create",
        "User": ev["user"], "SourceIps": ev["sourceIPs"], "UserAgent": ev["userAgent"],
        "ObjectRef": ev["objectRef"], "ResponseStatus": ev["responseStatus"],
        // Some exports serialise dynamic columns as strings.
        "RequestObject": ev["requestObject"].to_string(),
        "ResponseObject": "skipped-too-big-size-object",
        "Annotations": ev["annotations"],
        "RequestReceivedTime": "2024-05-01T10:00:00Z", "StageReceivedTime": "2024-05-01T10:00:00.01Z",
        "PodName": "kube-apiserver-1", "SourceSystem": "Azure", "Type": "AKSAuditAdmin",
        "_ResourceId": "/subscriptions/0000/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/aks-dev"
    });
    let (events, stats) = parse_events(row.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0), "{stats:?}");
    let e = &events[0];
    for path in [
        "verb",
        "user.username",
        "sourceIPs",
        "objectRef.resource",
        "objectRef.namespace",
        "responseStatus.code",
        "requestURI",
    ] {
        assert_eq!(get_field(e, path), JsonPathLike(path).lookup(&ev), "{path}");
    }
    assert_eq!(
        get_field(e, "pod.containers[0].securityContext.privileged"),
        json!(true)
    );
    assert_eq!(
        get_field(e, r#"annotations["authorization.k8s.io/decision"]"#),
        json!("allow")
    );
    assert_eq!(get_field(e, "responseObject"), json!("<missing>"));
    assert_eq!(get_field(e, "cluster"), json!("aks-dev"));
    // Annotations serialised into a string column read the same.
    let mut stringly = row.clone();
    stringly["Annotations"] = json!(ev["annotations"].to_string());
    let (owned_events, _) = parse_events(stringly.to_string().as_bytes());
    assert_eq!(
        get_field(&owned_events[0], "annotations"),
        ev["annotations"]
    );
    assert_eq!(get_field(e, "source.format"), json!("aks"));
    assert_eq!(e.time_nanos(), 1_714_557_600_010_000_000);
}

#[test]
fn azure_activity_records_for_arc_clusters() {
    let rec = json!({
        "time": "2025-01-10T08:00:00.0000000Z",
        "resourceId": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/arc-1/rbac.authorization.k8s.io/clusterrolebindings/everyone-admin",
        "operationName": "MICROSOFT.KUBERNETES/CONNECTEDCLUSTERS/RBAC.AUTHORIZATION.K8S.IO/CLUSTERROLEBINDINGS/WRITE",
        "category": "Administrative", "resultType": "Success", "resultSignature": "201",
        "callerIpAddress": "198.51.100.4", "correlationId": "corr-1", "caller": "ops@example.com",
        "level": "Informational"
    });
    let (events, stats) = parse_events(rec.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0));
    let e = &events[0];
    assert_eq!(get_field(e, "verb"), json!("create"));
    assert_eq!(
        get_field(e, "objectRef.apiGroup"),
        json!("rbac.authorization.k8s.io")
    );
    assert_eq!(
        get_field(e, "objectRef.resource"),
        json!("clusterrolebindings")
    );
    assert_eq!(get_field(e, "objectRef.name"), json!("everyone-admin"));
    assert_eq!(get_field(e, "user.username"), json!("ops@example.com"));
    assert_eq!(get_field(e, "sourceIPs"), json!(["198.51.100.4"]));
    assert_eq!(get_field(e, "responseStatus.code"), json!(201));
    assert_eq!(get_field(e, "cluster"), json!("arc-1"));
    assert_eq!(get_field(e, "source.format"), json!("azure-activity"));
    assert_eq!(e.event_id(), "corr-1");
    // The same operation as a row of Log Analytics' AzureActivity table.
    let row = json!({
        "TimeGenerated": "2025-01-10T08:00:00Z", "OperationNameValue": rec["operationName"],
        "OperationName": "Create or update cluster role binding", "Category": "Administrative",
        "ActivityStatusValue": "Success", "Caller": "ops@example.com", "CallerIpAddress": "198.51.100.4",
        "CorrelationId": "corr-2", "_ResourceId": rec["resourceId"], "Type": "AzureActivity"
    });
    let (events, stats) = parse_events(row.to_string().as_bytes());
    assert_eq!((events.len(), stats.errors), (1, 0), "{stats:?}");
    let e = &events[0];
    for path in [
        "verb",
        "objectRef.resource",
        "objectRef.name",
        "user.username",
        "sourceIPs",
        "cluster",
    ] {
        assert_eq!(
            get_field(e, path),
            get_field(&parse_events(rec.to_string().as_bytes()).0[0], path),
            "{path}"
        );
    }
    assert_eq!(e.event_id(), "corr-2");
    let mut vm = rec.clone();
    vm["operationName"] = json!("Microsoft.Compute/virtualMachines/write");
    let (events, stats) = parse_events(vm.to_string().as_bytes());
    assert_eq!((events.len(), stats.not_kubernetes), (0, 1));
}

#[test]
fn explicit_input_format_labels_native_events() {
    let doc = pod_create("f-1").to_string();
    for (format, label) in [
        (InputFormat::Native, SourceFormat::Native),
        (InputFormat::Eks, SourceFormat::Eks),
        (InputFormat::Gke, SourceFormat::Gke),
        (InputFormat::Aks, SourceFormat::Aks),
    ] {
        let mut stats = ParseStats::default();
        let mut got = Vec::new();
        parse_document(doc.as_bytes(), format, &mut stats, &mut |e| {
            got.push(e.format)
        })
        .expect("parses");
        assert_eq!(got, [label]);
    }
}

#[test]
fn reader_takes_json_lines_concatenated_and_pretty_documents() {
    let a = pod_create("r-1");
    let b = pod_create("r-2");
    let c = pod_create("r-3");
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [pod_create("r-4"), pod_create("r-5")]});
    let text = format!(
        "{a}\n\n{b}{c}\r\n{}\n  \n{}\n2024-05-01T10:00:00Z {}\n",
        serde_json::to_string_pretty(&list).expect("pretty"),
        serde_json::to_string_pretty(&pod_create("r-6")).expect("pretty"),
        pod_create("r-7"),
    );
    let mut stats = ParseStats::default();
    let mut ids = Vec::new();
    parse_reader(text.as_bytes(), InputFormat::Auto, &mut stats, &mut |e| {
        ids.push(e.event_id().to_string())
    })
    .expect("in-memory reader");
    assert_eq!(ids, ["r-1", "r-2", "r-3", "r-4", "r-5", "r-6", "r-7"]);
    assert_eq!((stats.documents, stats.events, stats.errors), (6, 7, 0));
    // A gzipped stream is inflated on the fly.
    let mut stats = ParseStats::default();
    let mut n = 0;
    parse_reader(
        &gzip(text.as_bytes())[..],
        InputFormat::Auto,
        &mut stats,
        &mut |_| n += 1,
    )
    .expect("in-memory reader");
    assert_eq!((n, stats.errors), (7, 0));
    // Through a tiny buffer, documents span reads and are reassembled.
    let mut stats = ParseStats::default();
    let mut n = 0;
    parse_reader(
        std::io::BufReader::with_capacity(7, text.as_bytes()),
        InputFormat::Auto,
        &mut stats,
        &mut |_| n += 1,
    )
    .expect("in-memory reader");
    assert_eq!((n, stats.errors), (7, 0));
}

#[test]
fn status_patches_and_other_resources_have_no_pod_spec() {
    for (resource, subresource, has_spec) in [
        ("pods", Some("status"), false),
        ("deployments", Some("scale"), false),
        ("configmaps", None, false),
        ("pods", Some("ephemeralcontainers"), true),
        ("pods", None, true),
    ] {
        let mut object_ref = json!({"resource": resource, "namespace": "a", "name": "b"});
        if let Some(sub) = subresource {
            object_ref["subresource"] = json!(sub);
        }
        let doc = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "patch",
            "objectRef": object_ref,
            "requestObject": {"kind": "Pod", "spec": {"containers": [{"name": "c", "image": "busybox"}],
                "ephemeralContainers": [{"name": "debugger", "image": "nicolaka/netshoot"}]}}});
        let (events, _) = parse_events(doc.to_string().as_bytes());
        let want = if has_spec {
            json!(["busybox", "nicolaka/netshoot"])
        } else {
            json!("<missing>")
        };
        assert_eq!(
            get_field(&events[0], "pod.containers.image"),
            want,
            "{resource} {subresource:?}"
        );
        // `object` itself is still there.
        assert_eq!(get_field(&events[0], "object.kind"), json!("Pod"));
    }
}

#[test]
fn gcloud_logging_read_json_output_is_a_pretty_array() {
    // `gcloud logging read --format=json` prints one pretty-printed array of entries.
    let entries = json!([
        gke_entry(
            "io.k8s.core.v1.pods.create",
            "core/v1/namespaces/a/pods/p1",
            None
        ),
        gke_entry(
            "io.k8s.core.v1.secrets.list",
            "core/v1/namespaces/a/secrets",
            None
        ),
    ]);
    let text = serde_json::to_string_pretty(&entries).expect("pretty");
    let mut stats = ParseStats::default();
    let mut got = Vec::new();
    parse_reader(text.as_bytes(), InputFormat::Auto, &mut stats, &mut |e| {
        got.push(seen(e))
    })
    .expect("in-memory reader");
    assert_eq!(stats.errors, 0, "{stats:?}");
    let want: Vec<Seen> = entries
        .as_array()
        .expect("array")
        .iter()
        .map(|e| gke_expect(e).expect("k8s entry"))
        .collect();
    assert_eq!(got, want);
}
