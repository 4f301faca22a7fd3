//! Rule engine throughput with 60+ synthetic rules shaped like audit-log rules, on a realistic
//! mix (mostly get/list/watch by system components, some creates and patches with pod specs).
//!
//! Two schemas over the same JSON events: an indexed one (verb, resource, stage, as the audit
//! schema) and the index-free `JsonSchema` (every rule evaluated on every event: the worst case).
//! Events are parsed before measuring: this is the engine alone.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_detect::engine::{Engine, EngineConfig, Match};
use palisade_detect::event::{Event, EventSchema};
use palisade_detect::json_event::{JsonEvent, JsonSchema};
use palisade_detect::path::JsonPath;
use palisade_detect::rule::{RuleSet, RuleSource};
use palisade_detect::value::Val;
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;

/// Events shaped like the audit model: the common fields extracted once into typed slots
/// (as the audit parser does), request objects kept as JSON below them; indexed by verb,
/// resource and stage.
struct IndexedSchema;

#[derive(Debug, Clone)]
enum Field {
    Verb,
    Resource,
    Subresource,
    Namespace,
    Name,
    Stage,
    User,
    Groups,
    SourceIps,
    UserAgent,
    Code,
    RequestObject(JsonPath),
}

impl EventSchema for IndexedSchema {
    type Field = Field;
    const SOURCE: &'static str = "bench";
    const INDEX_DIMENSIONS: &'static [&'static str] = &["verb", "resource", "stage"];
    fn compile_field(path: &str) -> Result<Field, String> {
        Ok(match path {
            "verb" => Field::Verb,
            "objectRef.resource" => Field::Resource,
            "objectRef.subresource" => Field::Subresource,
            "objectRef.namespace" => Field::Namespace,
            "objectRef.name" => Field::Name,
            "stage" => Field::Stage,
            "user.username" => Field::User,
            "user.groups" => Field::Groups,
            "sourceIPs" => Field::SourceIps,
            "userAgent" => Field::UserAgent,
            "responseStatus.code" => Field::Code,
            "requestObject" => Field::RequestObject(JsonPath::default()),
            other => match other.strip_prefix("requestObject.") {
                Some(rest) => {
                    Field::RequestObject(JsonPath::parse(rest).map_err(|e| e.to_string())?)
                }
                None => return Err(format!("unknown field {other:?}")),
            },
        })
    }
    fn default_subject_field() -> &'static str {
        "user.username"
    }
    fn default_resource_field() -> &'static str {
        "objectRef.name"
    }
}

struct IndexedEvent {
    id: String,
    verb: String,
    resource: Option<String>,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    stage: String,
    user: String,
    groups: Value,
    source_ips: Value,
    user_agent: String,
    code: i64,
    request_object: Option<Value>,
    time: i64,
}

impl IndexedEvent {
    fn from_json(doc: &Value, time: i64) -> IndexedEvent {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let object_ref = doc.get("objectRef");
        IndexedEvent {
            id: s(doc.get("auditID")).unwrap_or_default(),
            verb: s(doc.get("verb")).unwrap_or_default(),
            resource: s(object_ref.and_then(|o| o.get("resource"))),
            subresource: s(object_ref.and_then(|o| o.get("subresource"))),
            namespace: s(object_ref.and_then(|o| o.get("namespace"))),
            name: s(object_ref.and_then(|o| o.get("name"))),
            stage: s(doc.get("stage")).unwrap_or_default(),
            user: s(doc.get("user").and_then(|u| u.get("username"))).unwrap_or_default(),
            groups: doc
                .get("user")
                .and_then(|u| u.get("groups"))
                .cloned()
                .unwrap_or(Value::Null),
            source_ips: doc.get("sourceIPs").cloned().unwrap_or(Value::Null),
            user_agent: s(doc.get("userAgent")).unwrap_or_default(),
            code: doc
                .get("responseStatus")
                .and_then(|r| r.get("code"))
                .and_then(Value::as_i64)
                .unwrap_or(0),
            request_object: doc.get("requestObject").cloned(),
            time,
        }
    }
}

fn opt(v: &Option<String>) -> Val<'_> {
    v.as_deref().map(Val::Str).unwrap_or(Val::Missing)
}

impl Event for IndexedEvent {
    type Schema = IndexedSchema;
    fn get(&self, field: &Field) -> Val<'_> {
        match field {
            Field::Verb => Val::Str(&self.verb),
            Field::Resource => opt(&self.resource),
            Field::Subresource => opt(&self.subresource),
            Field::Namespace => opt(&self.namespace),
            Field::Name => opt(&self.name),
            Field::Stage => Val::Str(&self.stage),
            Field::User => Val::Str(&self.user),
            Field::Groups => Val::from_json(&self.groups),
            Field::SourceIps => Val::from_json(&self.source_ips),
            Field::UserAgent => Val::Str(&self.user_agent),
            Field::Code => Val::Int(self.code),
            Field::RequestObject(path) => match &self.request_object {
                Some(obj) => path.lookup(obj),
                None => Val::Missing,
            },
        }
    }
    fn index_value(&self, dimension: usize) -> Option<&str> {
        match dimension {
            0 => Some(&self.verb),
            1 => self.resource.as_deref(),
            2 => Some(&self.stage),
            _ => None,
        }
    }
    fn time_nanos(&self) -> i64 {
        self.time
    }
    fn event_id(&self) -> &str {
        &self.id
    }
}

const WORKLOADS: &str =
    "[pods, deployments, replicasets, statefulsets, daemonsets, jobs, cronjobs]";

/// 64 rules: workload checks, secret access, RBAC, exec, every-event checks and stateful ones.
/// With `indexed` each carries a `match:` block; without, the same conditions run everywhere.
fn rules_yaml(indexed: bool, every_event: bool, source: &str) -> String {
    let mut y = String::from(
        "lists:\n  miners: [\"*xmrig*\", \"*minergate*\", \"*cryptonight*\", \"*nicehash*\"]\n  \
         sensitive_mounts: [/, /etc, /var/run/docker.sock, /var/run/containerd, /proc, /root]\n\
         macros:\n  not_system: {field: user.username, prefix: \"system:\", icase: false}\n\
         rules:\n",
    );
    let mut rule = |id: String, m: &str, condition: &str, extra: &str| {
        y.push_str(&format!(
            "  - id: {id}\n    title: {id}\n    severity: medium\n    source: {source}\n    \
             tactics: [TA0004]\n    techniques: [T1610]\n"
        ));
        if indexed && !m.is_empty() {
            y.push_str(&format!("    match: {m}\n"));
        }
        y.push_str(&format!(
            "    condition: {condition}\n    output: \"{{user.username}} {{verb}} {{objectRef.namespace}}/{{objectRef.name}}\"\n{extra}"
        ));
    };
    let write_workload = format!(
        "{{verb: [create, update, patch], resource: {WORKLOADS}, stage: [ResponseComplete]}}"
    );
    for i in 0..20 {
        let cond = match i % 5 {
            0 => "{any_of: requestObject.spec.containers, where: {field: securityContext.privileged, eq: true}}".to_string(),
            1 => "{any_of: requestObject.spec.containers, where: {field: image, glob: {list: miners}}}".to_string(),
            2 => "{any_of: requestObject.spec.volumes, where: {field: hostPath.path, in: {list: sensitive_mounts}}}".to_string(),
            3 => format!("{{all: [{{field: requestObject.spec.hostNetwork, eq: true}}, {{field: objectRef.namespace, ne: ns{i}}}]}}"),
            _ => format!("{{any_of: requestObject.spec.containers, where: {{field: securityContext.capabilities.add, in: [SYS_ADMIN, NET_ADMIN, SYS_PTRACE{i}]}}}}"),
        };
        rule(format!("BENCH_Workload{i}"), &write_workload, &cond, "");
    }
    for i in 0..10 {
        rule(
            format!("BENCH_Secrets{i}"),
            "{verb: [get, list, watch], resource: [secrets]}",
            &format!(
                "{{all: [{{not: {{macro: not_system}}}}, {{field: objectRef.namespace, in: [kube-system, ns{i}]}}]}}"
            ),
            "",
        );
    }
    for i in 0..10 {
        rule(
            format!("BENCH_Rbac{i}"),
            "{verb: [create, update, patch], resource: [clusterrolebindings, rolebindings]}",
            &format!(
                "{{any: [{{field: requestObject.roleRef.name, eq: cluster-admin}}, {{field: requestObject.roleRef.name, regex: \"^admin-{i}\"}}]}}"
            ),
            "",
        );
    }
    for i in 0..10 {
        rule(
            format!("BENCH_Exec{i}"),
            "{verb: [create], resource: [pods]}",
            &format!(
                "{{all: [{{field: objectRef.subresource, in: [exec, attach]}}, {{field: objectRef.namespace, ne: skip{i}}}]}}"
            ),
            "",
        );
    }
    for i in 0..if every_event { 6 } else { 0 } {
        let cond = match i % 3 {
            0 => "{field: user.username, in: [system:anonymous, system:unauthenticated]}",
            1 => "{field: sourceIPs, cidr: [198.51.100.0/24, 203.0.113.0/24]}",
            _ => "{field: userAgent, regex: \"(?i)(curl|python-requests|nmap|masscan)\"}",
        };
        rule(format!("BENCH_Every{i}"), "", cond, "");
    }
    for i in 0..4 {
        rule(
            format!("BENCH_Delete{i}"),
            "{verb: [delete, deletecollection]}",
            "{field: objectRef.resource, in: [events, secrets, configmaps]}",
            "",
        );
    }
    rule(
        "BENCH_Forbidden".into(),
        if every_event { "" } else { "{verb: [create]}" },
        "{field: responseStatus.code, eq: 403}",
        "    threshold: {count: 20, window: 10m, group_by: [sourceIPs]}\n",
    );
    rule(
        "BENCH_RareOp".into(),
        "{verb: [create, update, patch, delete]}",
        "{field: user.username, prefix: \"system:serviceaccount:\"}",
        "    rarity: {learning: 1h, key: [user.username], value: [verb, objectRef.resource]}\n",
    );
    rule(
        "BENCH_RareOp2".into(),
        "{verb: [get, list]}",
        "{field: objectRef.resource, eq: secrets}",
        "    rarity: {learning: 1h, key: [user.username], value: [objectRef.namespace]}\n",
    );
    rule(
        "BENCH_Nodes".into(),
        "{resource: [nodes]}",
        "{field: objectRef.subresource, eq: proxy}",
        "",
    );
    y
}

/// A deterministic mix: ~85% reads by system components, ~10% workload writes, ~5% other.
fn events(n: usize) -> Vec<Value> {
    let reads = [
        "pods",
        "nodes",
        "configmaps",
        "leases",
        "endpoints",
        "services",
        "secrets",
    ];
    let users = [
        "system:serviceaccount:kube-system:coredns",
        "system:kube-controller-manager",
        "system:node:ip-10-0-1-17",
        "system:kube-scheduler",
        "system:serviceaccount:kube-system:kube-proxy",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let r = rnd() % 100;
            let user = users[(rnd() % users.len() as u64) as usize];
            let base = json!({
                "auditID": format!("id-{i}"),
                "stage": "ResponseComplete",
                "user": {"username": user, "groups": ["system:authenticated"]},
                "sourceIPs": [format!("10.0.{}.{}", rnd() % 4, rnd() % 250)],
                "userAgent": "kube-controller-manager/v1.30.1 (linux/amd64) kubernetes/abcdef",
                "responseStatus": {"code": 200},
            });
            let mut doc = base;
            if r < 85 {
                let verb = ["get", "list", "watch"][(rnd() % 3) as usize];
                doc["verb"] = json!(verb);
                let resource = reads[(rnd() % reads.len() as u64) as usize];
                doc["objectRef"] = json!({"resource": resource,
                    "namespace": "kube-system", "name": format!("obj-{}", rnd() % 50)});
            } else if r < 95 {
                let verb = ["create", "patch"][(rnd() % 2) as usize];
                let resource = ["pods", "deployments"][(rnd() % 2) as usize];
                doc["verb"] = json!(verb);
                doc["objectRef"] = json!({"resource": resource,
                    "namespace": "shop", "name": format!("web-{}", rnd() % 20)});
                doc["requestObject"] = json!({"spec": {
                    "containers": [
                        {"name": "app", "image": "registry.example/shop/web:1.2.3",
                         "securityContext": {"privileged": false, "capabilities": {"add": ["NET_BIND_SERVICE"]}}},
                        {"name": "sidecar", "image": "registry.example/mesh/proxy:2.0"}
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "web"}}]
                }});
            } else {
                let (verb, resource, sub) = match rnd() % 4 {
                    0 => ("create", "pods", Some("exec")),
                    1 => ("delete", "configmaps", None),
                    2 => ("create", "rolebindings", None),
                    _ => ("update", "leases", None),
                };
                doc["verb"] = json!(verb);
                doc["objectRef"] = json!({"resource": resource, "namespace": "shop", "name": "x"});
                if let Some(s) = sub {
                    doc["objectRef"]["subresource"] = json!(s);
                }
                if resource == "rolebindings" {
                    doc["requestObject"] = json!({"roleRef": {"name": "view"}});
                }
                if rnd() % 5 == 0 {
                    doc["responseStatus"]["code"] = json!(403);
                }
            }
            doc
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let docs = events(20_000);
    let n = docs.len() as u64;
    let indexed: Arc<RuleSet<IndexedSchema>> = Arc::new(
        RuleSet::load(&[RuleSource::new(
            "bench.yaml",
            rules_yaml(true, true, "bench"),
        )])
        .expect("bench rules load"),
    );
    let flat: Arc<RuleSet<JsonSchema>> = Arc::new(
        RuleSet::load(&[RuleSource::new(
            "bench.yaml",
            rules_yaml(false, true, "json"),
        )])
        .expect("bench rules load"),
    );
    assert!(indexed.len() >= 60 && flat.len() == indexed.len());
    let indexed_events: Vec<IndexedEvent> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| IndexedEvent::from_json(d, i as i64 * 1_000_000))
        .collect();
    let flat_events: Vec<JsonEvent> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| JsonEvent::new(d.clone()).at(i as i64 * 1_000_000))
        .collect();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(n));
    group.bench_function("indexed_64_rules_mixed_events", |b| {
        let mut engine = Engine::new(indexed.clone(), EngineConfig::default());
        let mut out: Vec<Match> = Vec::new();
        b.iter(|| {
            for e in &indexed_events {
                engine.evaluate(e, &mut out);
            }
            black_box(out.len());
            out.clear();
        })
    });
    group.bench_function("unindexed_64_rules_mixed_events", |b| {
        let mut engine = Engine::new(flat.clone(), EngineConfig::default());
        let mut out: Vec<Match> = Vec::new();
        b.iter(|| {
            for e in &flat_events {
                engine.evaluate(e, &mut out);
            }
            black_box(out.len());
            out.clear();
        })
    });
    group.finish();

    // One read event no indexed rule admits beyond the every-event checks.
    let quiet = IndexedEvent::from_json(
        &json!({"verb": "watch", "stage": "ResponseComplete",
            "user": {"username": "system:kube-scheduler"}, "sourceIPs": ["10.0.0.5"],
            "userAgent": "kube-scheduler/v1.30.1", "responseStatus": {"code": 200},
            "objectRef": {"resource": "leases", "namespace": "kube-system", "name": "kube-scheduler"}}),
        0,
    );
    let mut single = c.benchmark_group("engine_single");
    single.throughput(Throughput::Elements(1));
    single.bench_function("indexed_quiet_watch_event", |b| {
        let mut engine = Engine::new(indexed.clone(), EngineConfig::default());
        let mut out: Vec<Match> = Vec::new();
        b.iter(|| {
            engine.evaluate(black_box(&quiet), &mut out);
            black_box(out.len());
        })
    });
    // The same watch event against 58 rules that all restrict the index: no candidate at all.
    let index_only: Arc<RuleSet<IndexedSchema>> = Arc::new(
        RuleSet::load(&[RuleSource::new(
            "bench.yaml",
            rules_yaml(true, false, "bench"),
        )])
        .expect("bench rules load"),
    );
    single.bench_function("indexed_no_candidate_watch_event", |b| {
        let mut engine = Engine::new(index_only.clone(), EngineConfig::default());
        let mut out: Vec<Match> = Vec::new();
        b.iter(|| {
            engine.evaluate(black_box(&quiet), &mut out);
            black_box(out.len());
        })
    });
    single.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
