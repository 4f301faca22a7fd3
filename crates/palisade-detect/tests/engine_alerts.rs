//! From events to written alerts through the public API: engine, aggregation in both modes, JSON
//! and CEF output.

use palisade_detect::alert::{AggregationMode, Aggregator, AlertFormat, DetectAlert, write_alert};
use palisade_detect::engine::{Engine, EngineConfig, Match};
use palisade_detect::json_event::{JsonEvent, JsonSchema};
use palisade_detect::rule::{RuleSet, RuleSource};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SEC: i64 = 1_000_000_000;

const RULES: &str = r#"
rules:
  - id: K8S_ExecIntoPod
    title: Exec into a pod | interactive
    description: Someone opened a shell in a running container.
    remediation: Check who needed a shell and why.
    severity: high
    source: json
    tactics: [TA0002]
    techniques: [T1609]
    condition:
      all:
        - {field: verb, eq: create}
        - {field: objectRef.subresource, eq: exec}
    output: "exec into {objectRef.namespace}/{objectRef.name} by {user.username}"
    subject: user.username
    resource: objectRef.name
    evidence: [requestURI]
    tags: [exec]
"#;

fn setup() -> (Arc<RuleSet<JsonSchema>>, Engine<JsonSchema>) {
    let set = Arc::new(
        RuleSet::load(&[RuleSource::new("builtin:exec.yaml", RULES)]).expect("rules load"),
    );
    let engine = Engine::new(set.clone(), EngineConfig::default());
    (set, engine)
}

fn exec_event(user: &str, pod: &str, id: &str, t: i64) -> JsonEvent {
    JsonEvent::new(json!({
        "id": id,
        "verb": "create",
        "user": {"username": user},
        "sourceIPs": ["203.0.113.7"],
        "userAgent": "kubectl/v1.30 (linux/amd64)",
        "cluster": "prod-eu",
        "requestURI": format!("/api/v1/namespaces/shop/pods/{pod}/exec?command=sh&command=-c&command=a%3Db"),
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "shop", "name": pod}
    }))
    .at(t * SEC)
}

fn matches(engine: &mut Engine<JsonSchema>, events: &[JsonEvent]) -> Vec<Match> {
    let mut out = Vec::new();
    for e in events {
        engine.evaluate(e, &mut out);
    }
    out
}

#[test]
fn immediate_mode_emits_first_then_one_update_per_window() {
    let (set, mut engine) = setup();
    let events: Vec<JsonEvent> = (0..5)
        .map(|i| exec_event("mallory", "web-1", &format!("a{i}"), i))
        .chain([exec_event("mallory", "db-0", "b0", 2)])
        .collect();
    let mut agg = Aggregator::new(Duration::from_secs(60), AggregationMode::Immediate);
    let mut alerts = Vec::new();
    for m in matches(&mut engine, &events) {
        agg.push(&set, m, &mut alerts);
    }
    // The first match of each (rule, subject, resource) is out at once.
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a.count == 1 && !a.update));
    agg.flush_due(30 * SEC, &mut alerts);
    assert_eq!(alerts.len(), 2, "window still open");
    agg.flush_due(60 * SEC, &mut alerts);
    assert_eq!(alerts.len(), 3, "one update for web-1; db-0 had no repeats");
    let update = &alerts[2];
    assert!(update.update);
    assert_eq!(update.count, 5);
    assert_eq!(update.resource, "web-1");
    assert_eq!(update.event_ids, vec!["a0", "a1", "a2", "a3", "a4"]);
    assert_eq!(update.first_seen, "1970-01-01T00:00:00Z");
    assert_eq!(update.last_seen, "1970-01-01T00:00:04Z");
    let stats = agg.stats();
    assert_eq!((stats.matches, stats.alerts, stats.open), (6, 3, 1));
    agg.flush_due(62 * SEC, &mut alerts);
    assert_eq!(alerts.len(), 3, "no repeats, no update");
    assert_eq!(agg.stats().open, 0);
}

#[test]
fn windowed_mode_emits_at_window_close_and_on_flush_all() {
    let (set, mut engine) = setup();
    let mut events: Vec<JsonEvent> = (0..30)
        .map(|i| exec_event("mallory", "web-1", &format!("a{i}"), i))
        .collect();
    // A later event of another pair moves event time past the first window.
    events.push(exec_event("eve", "web-2", "late", 100));
    let mut agg = Aggregator::new(Duration::from_secs(60), AggregationMode::Windowed);
    let mut alerts = Vec::new();
    for m in matches(&mut engine, &events) {
        agg.push(&set, m, &mut alerts);
    }
    assert_eq!(
        alerts.len(),
        1,
        "the first window closed when event time passed it"
    );
    assert_eq!(alerts[0].count, 30);
    assert_eq!(alerts[0].event_ids.len(), 20, "event ids are capped");
    assert!(!alerts[0].update);
    agg.flush_all(&mut alerts);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1].subject, "eve");
    agg.flush_all(&mut alerts);
    assert_eq!(alerts.len(), 2, "nothing left open");
}

#[test]
fn zero_window_and_open_cap() {
    let (set, mut engine) = setup();
    let events: Vec<JsonEvent> = (0..3).map(|i| exec_event("u", "p", "x", i)).collect();
    let mut agg = Aggregator::new(Duration::ZERO, AggregationMode::Windowed);
    let mut alerts = Vec::new();
    for m in matches(&mut engine, &events) {
        agg.push(&set, m, &mut alerts);
    }
    assert_eq!(alerts.len(), 3, "no aggregation with a zero window");

    let events: Vec<JsonEvent> = (0..10)
        .map(|i| exec_event(&format!("u{i}"), "p", "x", i))
        .collect();
    let mut agg =
        Aggregator::new(Duration::from_secs(3600), AggregationMode::Windowed).with_max_open(4);
    let mut alerts = Vec::new();
    for m in matches(&mut engine, &events) {
        agg.push(&set, m, &mut alerts);
    }
    assert_eq!(alerts.len(), 6, "the oldest aggregates close early");
    assert_eq!(agg.stats().closed_early, 6);
    assert_eq!(alerts[0].subject, "u0");
}

fn one_alert() -> DetectAlert {
    let (set, mut engine) = setup();
    let m = matches(
        &mut engine,
        &[exec_event("mallory", "web-1", "id-1", 1_700_000_000)],
    );
    let mut agg = Aggregator::new(Duration::from_secs(60), AggregationMode::Immediate);
    let mut alerts = Vec::new();
    for m in m {
        agg.push(&set, m, &mut alerts);
    }
    alerts.pop().expect("one alert")
}

#[test]
fn detect_alert_fills_the_shared_alert_model() {
    let a = one_alert();
    assert_eq!(a.alert.alert_id, "K8S_ExecIntoPod");
    assert_eq!(a.rule_id, "K8S_ExecIntoPod");
    assert_eq!(a.alert.tactics[0].name, "Execution");
    assert_eq!(
        a.alert.techniques[0].name,
        "Container Administration Command"
    );
    assert_eq!(a.alert.resource.namespace.as_deref(), Some("shop"));
    assert_eq!(a.alert.resource.name.as_deref(), Some("web-1"));
    assert_eq!(a.alert.resource.kind.as_deref(), Some("pods"));
    assert_eq!(a.alert.resource.cluster.as_deref(), Some("prod-eu"));
    assert_eq!(a.alert.time, "2023-11-14T22:13:20Z");
    assert_eq!(a.message, "exec into shop/web-1 by mallory");
    assert!(a.alert.evidence["requestURI"].as_str().is_some());
    assert_eq!(a.source, "json");
    assert_eq!(a.dataset, "palisade.json");
}

#[test]
fn json_output_uses_ecs_names_on_one_line() {
    let a = one_alert();
    let mut buf = Vec::new();
    write_alert(&a, AlertFormat::Json, &mut buf).expect("writes");
    let text = String::from_utf8(buf).expect("utf-8");
    assert_eq!(text.matches('\n').count(), 1);
    assert!(text.ends_with('\n'));
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["@timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(v["event.kind"], "alert");
    assert_eq!(v["event.module"], "palisade");
    assert_eq!(v["rule.id"], "K8S_ExecIntoPod");
    assert_eq!(v["rule.name"], "Exec into a pod | interactive");
    assert_eq!(v["event.severity"], 75);
    assert_eq!(v["palisade.severity"], "high");
    assert_eq!(v["threat.framework"], "MITRE ATT&CK");
    assert_eq!(v["threat.tactic.id"], json!(["TA0002"]));
    assert_eq!(
        v["threat.technique.name"],
        json!(["Container Administration Command"])
    );
    assert_eq!(v["user.name"], "mallory");
    assert_eq!(v["source.ip"], "203.0.113.7");
    assert_eq!(v["user_agent.original"], "kubectl/v1.30 (linux/amd64)");
    assert_eq!(v["orchestrator.cluster.name"], "prod-eu");
    assert_eq!(v["orchestrator.namespace"], "shop");
    assert_eq!(v["orchestrator.resource.type"], "pods");
    assert_eq!(v["orchestrator.resource.name"], "web-1");
    assert_eq!(v["event.count"], 1);
    assert_eq!(v["event.id"], json!(["id-1"]));
    assert_eq!(v["event.start"], v["event.end"]);
    assert!(v["palisade.evidence"]["requestURI"].is_string());
    assert_eq!(v["tags"], json!(["exec"]));
}

#[test]
fn cef_output_escapes_header_and_extensions() {
    let mut a = one_alert();
    a.message = "line one\nx=y \\ back".to_string();
    let mut buf = Vec::new();
    write_alert(&a, AlertFormat::Cef, &mut buf).expect("writes");
    let text = String::from_utf8(buf).expect("utf-8");
    assert_eq!(
        text.matches('\n').count(),
        1,
        "newlines in values are escaped"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.starts_with(&format!(
            "CEF:0|Palisade|Palisade|{version}|K8S_ExecIntoPod|Exec into a pod \\| interactive|8|"
        )),
        "{text}"
    );
    assert!(text.contains(r"msg=line one\nx\=y \\ back"), "{text}");
    assert!(text.contains("suser=mallory"), "{text}");
    assert!(text.contains("src=203.0.113.7"), "{text}");
    assert!(
        text.contains("requestClientApplication=kubectl/v1.30 (linux/amd64)"),
        "{text}"
    );
    assert!(text.contains("cnt=1 "), "{text}");
    assert!(text.contains("rt=1700000000000"), "{text}");
    assert!(text.contains("cs1Label=namespace cs1=shop"), "{text}");
    assert!(text.contains("cs2Label=resource cs2=pods/web-1"), "{text}");
    assert!(
        text.contains("cs3Label=mitreTactics cs3=TA0002 Execution"),
        "{text}"
    );
    assert!(
        text.contains("cs4Label=mitreTechniques cs4=T1609 Container Administration Command"),
        "{text}"
    );
    assert!(text.contains("cs5Label=cluster cs5=prod-eu"), "{text}");
}
