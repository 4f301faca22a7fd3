//! Semantics of every operator and node, judged end to end (YAML → compiled rule → engine) on
//! [`JsonEvent`]s.

use super::*;
use crate::json_event::{JsonEvent, JsonSchema};
use crate::rule::{RuleError, RuleSource};
use serde_json::{Value, json};

fn load(yaml: &str) -> Result<RuleSet<JsonSchema>, RuleError> {
    RuleSet::load(&[RuleSource::new("test.yaml", yaml)])
}

fn rule_doc(condition: Value) -> String {
    json!({"rules": [{"id": "R", "title": "t", "severity": "low", "source": "json",
                       "condition": condition}]})
    .to_string()
}

/// Whether a rule with `condition` fires on `doc`.
fn fires(condition: Value, doc: Value) -> bool {
    let set = match load(&rule_doc(condition.clone())) {
        Ok(set) => set,
        Err(e) => panic!("condition {condition} does not load: {e}"),
    };
    let mut engine = Engine::new(Arc::new(set), EngineConfig::default());
    let mut out = Vec::new();
    engine.evaluate(&JsonEvent::new(doc), &mut out);
    !out.is_empty()
}

fn load_err(condition: Value) -> String {
    match load(&rule_doc(condition)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn eq_and_ne_on_scalars_numbers_bools_and_null() {
    let doc = json!({"s": "abc", "n": 443, "f": 1.5, "b": true, "z": null, "ns": "443"});
    assert!(fires(json!({"field": "s", "eq": "abc"}), doc.clone()));
    assert!(!fires(json!({"field": "s", "eq": "ABC"}), doc.clone()));
    assert!(fires(json!({"field": "n", "eq": 443}), doc.clone()));
    assert!(
        fires(json!({"field": "n", "eq": "443"}), doc.clone()),
        "canonical integer string"
    );
    assert!(
        fires(json!({"field": "ns", "eq": 443}), doc.clone()),
        "numeric string field"
    );
    assert!(fires(json!({"field": "f", "eq": 1.5}), doc.clone()));
    assert!(fires(json!({"field": "b", "eq": true}), doc.clone()));
    assert!(!fires(json!({"field": "b", "eq": false}), doc.clone()));
    assert!(fires(json!({"field": "z", "eq": null}), doc.clone()));
    assert!(fires(json!({"field": "s", "ne": "x"}), doc.clone()));
    assert!(!fires(json!({"field": "s", "ne": "abc"}), doc.clone()));
    assert!(!fires(json!({"field": "b", "eq": "yes"}), doc.clone()));
    assert!(fires(json!({"field": "b", "ne": false}), doc));
}

#[test]
fn in_and_not_in_with_lists_and_named_lists() {
    let doc = json!({"verb": "create", "port": 22});
    assert!(fires(
        json!({"field": "verb", "in": ["create", "update"]}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "verb", "in": ["get", "list"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "verb", "not_in": ["get", "list"]}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "verb", "not_in": ["create"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "port", "in": [22, 2222]}),
        doc.clone()
    ));
    // A large list goes through the hashed set.
    let many: Vec<String> = (0..100)
        .map(|i| format!("v{i}"))
        .chain(["create".into()])
        .collect();
    assert!(fires(json!({"field": "verb", "in": many}), doc.clone()));
    let yaml = r#"
lists:
  writes: [create, update, patch]
rules:
  - id: R
    title: t
    severity: low
    source: json
    condition: {field: verb, in: {list: writes}}
  - id: R2
    title: t
    severity: low
    source: json
    condition: {field: verb, in: [delete, {list: writes}]}
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    let mut engine = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    engine.evaluate(&JsonEvent::new(doc), &mut out);
    assert_eq!(out.len(), 2);
    engine.evaluate(&JsonEvent::new(json!({"verb": "get"})), &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn string_operators() {
    let doc = json!({"image": "docker.io/evil/xmrig:latest", "user": "system:node:n1"});
    assert!(fires(
        json!({"field": "user", "prefix": "system:node:"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "user", "prefix": ["x", "system:"]}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "user", "prefix": "node"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "image", "suffix": ":latest"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "image", "contains": "xmrig"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "image", "contains": ["nope", "evil/"]}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "image", "contains": ["nope"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "image", "glob": "*/xmrig*"}),
        doc.clone()
    ));
    assert!(
        !fires(json!({"field": "image", "glob": "xmrig*"}), doc.clone()),
        "globs are anchored"
    );
    assert!(
        fires(json!({"field": "image", "regex": "xmr[a-z]g"}), doc.clone()),
        "regex unanchored"
    );
    assert!(!fires(
        json!({"field": "image", "regex": "^xmrig"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "image", "regex": ["^nope", "^docker\\.io/"]}),
        doc.clone()
    ));
    // Several operators in one node must all hold.
    assert!(fires(
        json!({"field": "image", "prefix": "docker.io", "suffix": "latest"}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "image", "prefix": "docker.io", "suffix": "v1"}),
        doc.clone()
    ));
    // String operators do not apply to numbers.
    assert!(!fires(
        json!({"field": "n", "prefix": "4"}),
        json!({"n": 443})
    ));
}

#[test]
fn icase_applies_to_string_operators() {
    let doc = json!({"ua": "Mozilla/5.0 KUBECTL", "v": "Create"});
    assert!(fires(
        json!({"field": "v", "eq": "create", "icase": true}),
        doc.clone()
    ));
    assert!(!fires(json!({"field": "v", "eq": "create"}), doc.clone()));
    assert!(fires(
        json!({"field": "v", "in": ["CREATE"], "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "v", "ne": "x", "icase": true}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "v", "ne": "CREATE", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "contains": "kubectl", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "prefix": "mozilla", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "suffix": "Kubectl", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "glob": "moz*", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "regex": "^MOZ", "icase": true}),
        doc.clone()
    ));
    assert!(!fires(json!({"field": "ua", "regex": "^moz"}), doc));
}

#[test]
fn numeric_comparisons() {
    let doc = json!({"code": 403, "s": "1.5", "text": "abc"});
    assert!(fires(
        json!({"field": "code", "gte": 400, "lt": 500}),
        doc.clone()
    ));
    assert!(!fires(json!({"field": "code", "gt": 403}), doc.clone()));
    assert!(fires(json!({"field": "code", "lte": 403}), doc.clone()));
    assert!(
        fires(json!({"field": "s", "gt": 1}), doc.clone()),
        "numeric strings compare numerically"
    );
    assert!(fires(json!({"field": "code", "gt": "400"}), doc.clone()));
    assert!(!fires(json!({"field": "text", "gt": 0}), doc.clone()));
    assert!(!fires(json!({"field": "missing", "lt": 1}), doc));
    assert!(load_err(json!({"field": "code", "gt": "many"})).contains("expected a number"));
}

#[test]
fn cidr_matches_addresses_in_ranges() {
    let doc = json!({"ip": "10.2.3.4", "ips": ["8.8.8.8", "192.168.1.10"], "v6": "fd00::1"});
    assert!(fires(
        json!({"field": "ip", "cidr": "10.0.0.0/8"}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "ip", "cidr": ["172.16.0.0/12"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ips", "cidr": ["192.168.0.0/16"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "v6", "cidr": "fd00::/8"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ip", "cidr": "10.2.3.4"}),
        doc.clone()
    ));
    assert!(!fires(json!({"field": "v6", "cidr": "10.0.0.0/8"}), doc));
    assert!(load_err(json!({"field": "ip", "cidr": "10.0.0.0/40"})).contains("bad CIDR"));
}

#[test]
fn arrays_match_any_element_and_negations_none() {
    let doc = json!({"groups": ["system:authenticated", "system:masters"], "empty": []});
    assert!(fires(
        json!({"field": "groups", "eq": "system:masters"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "groups", "in": ["x", "system:masters"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "groups", "prefix": "system:m"}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "groups", "ne": "system:masters"}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "groups", "ne": "admins"}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "groups", "not_in": ["system:masters"]}),
        doc.clone()
    ));
    assert!(fires(json!({"field": "empty", "ne": "x"}), doc.clone()));
    assert!(!fires(json!({"field": "empty", "eq": "x"}), doc.clone()));
    assert!(fires(json!({"field": "empty", "exists": true}), doc));
}

#[test]
fn missing_fields_fail_positive_ops_and_pass_negations() {
    let doc = json!({"a": 1, "n": null});
    for op in [
        json!({"field": "x", "eq": "v"}),
        json!({"field": "x", "in": ["v"]}),
        json!({"field": "x", "prefix": "v"}),
        json!({"field": "x", "contains": "v"}),
        json!({"field": "x", "glob": "*"}),
        json!({"field": "x", "regex": ".*"}),
        json!({"field": "x", "gt": 0}),
        json!({"field": "x", "cidr": "0.0.0.0/0"}),
        json!({"field": "x", "exists": true}),
    ] {
        assert!(!fires(op.clone(), doc.clone()), "{op}");
    }
    assert!(fires(json!({"field": "x", "ne": "v"}), doc.clone()));
    assert!(fires(json!({"field": "x", "not_in": ["v"]}), doc.clone()));
    assert!(fires(json!({"field": "x", "exists": false}), doc.clone()));
    assert!(fires(json!({"field": "a", "exists": true}), doc.clone()));
    assert!(
        fires(json!({"field": "n", "exists": false}), doc.clone()),
        "null is absent"
    );
    assert!(fires(json!({"not": {"field": "x", "eq": "v"}}), doc));
}

#[test]
fn boolean_nodes() {
    let doc = json!({"a": 1, "b": 2});
    assert!(fires(
        json!({"all": [{"field": "a", "eq": 1}, {"field": "b", "eq": 2}]}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"all": [{"field": "a", "eq": 1}, {"field": "b", "eq": 3}]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"any": [{"field": "a", "eq": 9}, {"field": "b", "eq": 2}]}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"any": [{"field": "a", "eq": 9}, {"field": "b", "eq": 9}]}),
        doc.clone()
    ));
    assert!(fires(json!({"not": {"field": "a", "eq": 9}}), doc.clone()));
    assert!(!fires(
        json!({"not": {"any": [{"field": "a", "eq": 1}]}}),
        doc
    ));
}

#[test]
fn any_of_and_all_of_iterate_arrays_with_relative_root_and_self_paths() {
    let doc = json!({
        "ns": "prod",
        "containers": [
            {"name": "app", "image": "nginx", "securityContext": {"privileged": false}},
            {"name": "side", "image": "xmrig", "securityContext": {"privileged": true}, "ns": "prod"}
        ],
        "labels": {"a": "x", "b": "y"},
        "tags": ["red", "blue"],
        "empty": []
    });
    let privileged = json!({"field": "securityContext.privileged", "eq": true});
    assert!(fires(
        json!({"any_of": "containers", "where": privileged}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"all_of": "containers", "where": privileged}),
        doc.clone()
    ));
    assert!(fires(
        json!({"all_of": "containers", "where": {"field": "image", "exists": true}}),
        doc.clone()
    ));
    // `@` is the element itself; object values are iterated too.
    assert!(fires(
        json!({"any_of": "tags", "where": {"field": "@", "eq": "blue"}}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"all_of": "tags", "where": {"field": "@", "eq": "blue"}}),
        doc.clone()
    ));
    assert!(fires(
        json!({"all_of": "labels", "where": {"field": "@", "in": ["x", "y"]}}),
        doc.clone()
    ));
    // `$.` reaches the event root from inside `where`; a plain path stays relative.
    assert!(fires(
        json!({"any_of": "containers", "where": {"all": [
            {"field": "$.ns", "eq": "prod"}, {"field": "image", "eq": "nginx"}]}}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"any_of": "containers", "where": {"all": [
            {"field": "ns", "eq": "prod"}, {"field": "image", "eq": "nginx"}]}}),
        doc.clone()
    ));
    // Empty and missing arrays: any_of false, all_of false.
    assert!(!fires(
        json!({"all_of": "empty", "where": {"field": "@", "eq": 1}}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"all_of": "nothing", "where": {"field": "@", "eq": 1}}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"any_of": "empty", "where": {"field": "@", "ne": 1}}),
        doc.clone()
    ));
    // Nested iteration: relative to the inner element.
    let nested = json!({"pods": [{"containers": [{"image": "a"}, {"image": "b"}]}]});
    assert!(fires(
        json!({"any_of": "pods", "where": {"any_of": "containers", "where": {"field": "image", "eq": "b"}}}),
        nested
    ));
    assert!(load_err(json!({"field": "@", "eq": 1})).contains("only valid inside `where`"));
}

#[test]
fn macros_inline_and_report_cycles_and_unknown_names() {
    let yaml = r#"
macros:
  is_write: {field: verb, in: [create, update]}
  priv: {field: securityContext.privileged, eq: true}
  write_priv:
    all:
      - macro: is_write
      - any_of: containers
        where: {macro: priv}
rules:
  - id: R
    title: t
    severity: high
    source: json
    condition: {macro: write_priv}
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    let mut engine = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    engine.evaluate(
        &JsonEvent::new(
            json!({"verb": "create", "containers": [{"securityContext": {"privileged": true}}]}),
        ),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    engine.evaluate(
        &JsonEvent::new(
            json!({"verb": "get", "containers": [{"securityContext": {"privileged": true}}]}),
        ),
        &mut out,
    );
    assert_eq!(out.len(), 1);

    let cyclic = r#"
macros:
  a: {macro: b}
  b: {any: [{macro: a}]}
rules:
  - {id: R, title: t, severity: low, source: json, condition: {macro: a}}
"#;
    let err = load(cyclic)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("macro cycle a -> b -> a"), "{err}");
    assert!(err.contains("rule R"), "{err}");
    let err = load_err(json!({"macro": "nope"}));
    assert!(err.contains("unknown macro `nope`"), "{err}");
    let err = load_err(json!({"field": "v", "in": {"list": "nope"}}));
    assert!(err.contains("unknown list `nope`"), "{err}");
}

#[test]
fn condition_errors_name_the_place_and_problem() {
    let err = load_err(json!({"all": [{"field": "a", "eq": 1}, {"field": "b", "equals": 2}]}));
    assert!(
        err.contains("condition.all[1]") && err.contains("unknown key `equals`"),
        "{err}"
    );
    assert!(err.starts_with("test.yaml:"), "{err}");
    let err = load_err(json!({"field": "a..b", "eq": 1}));
    assert!(
        err.contains("condition.field") && err.contains("a..b"),
        "{err}"
    );
    let err = load_err(json!({"field": "a", "regex": "(unclosed"}));
    assert!(err.contains("bad regex"), "{err}");
    let err = load_err(json!({"all": [], "any": []}));
    assert!(err.contains("exactly one of"), "{err}");
    let err = load_err(json!({"eq": 1}));
    assert!(err.contains("needs a `field:`"), "{err}");
    let err = load_err(json!({"field": "a"}));
    assert!(err.contains("no operator"), "{err}");
    let err = load_err(json!({"any_of": "a"}));
    assert!(err.contains("needs a `where:`"), "{err}");
    let err = load_err(json!("just text"));
    assert!(err.contains("a condition is a mapping"), "{err}");
}

#[test]
fn exceptions_suppress_and_are_counted() {
    let yaml = r#"
rules:
  - id: R
    title: t
    severity: low
    source: json
    condition: {field: verb, eq: delete}
    exceptions:
      - name: controllers
        condition: {field: user, prefix: "system:"}
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    let mut engine = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    engine.evaluate(
        &JsonEvent::new(json!({"verb": "delete", "user": "alice"})),
        &mut out,
    );
    engine.evaluate(
        &JsonEvent::new(json!({"verb": "delete", "user": "system:gc"})),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let stats = engine.stats();
    assert_eq!((stats.events, stats.matches, stats.suppressed), (2, 1, 1));
    assert_eq!(stats.rules[0].id, "R");
    assert_eq!(stats.rules[0].evaluations, 2);
}

#[test]
fn match_carries_output_subject_resource_evidence_and_context() {
    let yaml = r#"
rules:
  - id: R
    title: Pod created
    severity: medium
    source: json
    condition: {field: verb, eq: create}
    output: "{user.username} created {objectRef.namespace}/{objectRef.name} from {sourceIPs} ({missing})"
    subject: user.username
    resource: objectRef.name
    evidence: [objectRef.namespace, spec.containers, absent]
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    let mut engine = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    let doc = json!({"id": "ev-1", "time": 5, "verb": "create", "user": {"username": "bob"},
        "sourceIPs": ["10.0.0.1", "10.0.0.2"], "userAgent": "kubectl/1.30", "cluster": "c1",
        "objectRef": {"namespace": "prod", "name": "web", "resource": "pods"},
        "spec": {"containers": [{"name": "a"}]}});
    engine.evaluate(&JsonEvent::new(doc), &mut out);
    let m = &out[0];
    assert_eq!(
        m.output,
        "bob created prod/web from 10.0.0.1,10.0.0.2 (<none>)"
    );
    assert_eq!((m.subject.as_str(), m.resource.as_str()), ("bob", "web"));
    assert_eq!((m.event_id.as_str(), m.time_nanos), ("ev-1", 5));
    assert_eq!(m.fields.get("objectRef.namespace"), Some(&json!("prod")));
    assert_eq!(
        m.fields.get("spec.containers"),
        Some(&json!([{"name": "a"}]))
    );
    assert!(!m.fields.contains_key("absent"));
    let c = &m.context;
    assert_eq!(c.user_name.as_deref(), Some("bob"));
    assert_eq!(c.source_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(c.user_agent.as_deref(), Some("kubectl/1.30"));
    assert_eq!(c.cluster.as_deref(), Some("c1"));
    assert_eq!(c.namespace.as_deref(), Some("prod"));
    assert_eq!(c.resource_type.as_deref(), Some("pods"));
    assert_eq!(c.resource_name.as_deref(), Some("web"));
}

#[test]
fn threshold_rule_fires_per_group_once_per_window() {
    let yaml = r#"
rules:
  - id: Forbidden
    title: Repeated forbidden requests
    severity: medium
    source: json
    condition: {field: code, eq: 403}
    threshold: {count: 3, window: 1m, group_by: [ip]}
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    assert!(set.rules()[0].stateful);
    let mut engine = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    let s = 1_000_000_000i64;
    let ev =
        |ip: &str, code: i64, t: i64| JsonEvent::new(json!({"ip": ip, "code": code})).at(t * s);
    for t in 0..2 {
        engine.evaluate(&ev("1.1.1.1", 403, t), &mut out);
        engine.evaluate(&ev("2.2.2.2", 403, t), &mut out);
        engine.evaluate(&ev("1.1.1.1", 200, t), &mut out);
    }
    assert!(out.is_empty());
    engine.evaluate(&ev("1.1.1.1", 403, 2), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].fields["threshold"]["count"], json!(3));
    assert_eq!(out[0].fields["threshold"]["group"], json!(["1.1.1.1"]));
    // More within the minute: no new alert; the other group is still below the count.
    for t in 3..30 {
        engine.evaluate(&ev("1.1.1.1", 403, t), &mut out);
    }
    assert_eq!(out.len(), 1);
    // 2.2.2.2's events at 0 and 1 s have left the window by 70 s.
    engine.evaluate(&ev("2.2.2.2", 403, 70), &mut out);
    assert_eq!(out.len(), 1);
    // After the window, 1.1.1.1 re-arms.
    for t in 63..66 {
        engine.evaluate(&ev("1.1.1.1", 403, t), &mut out);
    }
    assert_eq!(out.len(), 2);
}

#[test]
fn rarity_learns_then_fires_once_per_new_value() {
    let yaml = r#"
rules:
  - id: Rare
    title: Rare operation
    severity: low
    source: json
    condition: {field: sa, exists: true}
    rarity: {learning: 1h, key: [sa], value: [verb, resource]}
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    let mut engine = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    let h = 3_600_000_000_000i64;
    let ev = |sa: &str, verb: &str, res: &str, t: i64| {
        JsonEvent::new(json!({"sa": sa, "verb": verb, "resource": res})).at(t)
    };
    // Learning for sa-a starts at its first event (t = 0).
    engine.evaluate(&ev("sa-a", "get", "pods", 0), &mut out);
    engine.evaluate(&ev("sa-a", "list", "pods", h / 2), &mut out);
    // sa-b's learning starts at 0.9 h.
    engine.evaluate(&ev("sa-b", "get", "pods", h * 9 / 10), &mut out);
    assert!(out.is_empty(), "values seen while learning are normal");
    engine.evaluate(&ev("sa-a", "get", "pods", 2 * h), &mut out);
    assert!(out.is_empty(), "learned value");
    engine.evaluate(&ev("sa-a", "get", "secrets", 2 * h), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].fields["rarity"]["value"], json!(["get", "secrets"]));
    engine.evaluate(&ev("sa-a", "get", "secrets", 3 * h), &mut out);
    assert_eq!(out.len(), 1, "a rare value fires once, then is remembered");
    // sa-b is still learning at 1.5 h.
    engine.evaluate(&ev("sa-b", "delete", "pods", h * 3 / 2), &mut out);
    assert_eq!(out.len(), 1);
    engine.evaluate(&ev("sa-b", "delete", "pods", 3 * h), &mut out);
    assert_eq!(out.len(), 1);
    engine.evaluate(&ev("sa-b", "patch", "nodes", 3 * h), &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn state_is_bounded_per_rule_and_globally_with_counted_evictions() {
    let yaml = r#"
rules:
  - id: T
    title: t
    severity: low
    source: json
    condition: {field: k, exists: true}
    threshold: {count: 1000, window: 1h, group_by: [k], max_keys: 50}
  - id: Rare
    title: r
    severity: low
    source: json
    condition: {field: k, exists: true}
    rarity: {learning: 1s, key: [k], value: [v], max_values_per_key: 3}
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    let config = EngineConfig {
        max_state_keys: 80,
        ..Default::default()
    };
    let mut engine = Engine::new(set, config);
    let mut out = Vec::new();
    for i in 0..1000 {
        engine.evaluate(
            &JsonEvent::new(json!({"k": format!("key{i}"), "v": "x"})),
            &mut out,
        );
    }
    let stats = engine.stats();
    assert!(stats.state_keys <= 80, "{stats:?}");
    assert!(stats.state_evictions >= 2000 - 80, "{stats:?}");
    // Values per key are bounded too.
    for v in 0..10 {
        engine.evaluate(
            &JsonEvent::new(json!({"k": "one", "v": format!("v{v}")})),
            &mut out,
        );
    }
    assert_eq!(engine.stats().value_evictions, 7);
}

#[test]
fn rarity_state_survives_save_and_load() {
    let yaml = r#"
rules:
  - {id: Rare, title: r, severity: low, source: json, condition: {field: k, exists: true},
     rarity: {learning: 1s, key: [k], value: [v]}}
"#;
    let set = Arc::new(load(yaml).expect("loads"));
    let mut engine = Engine::new(set.clone(), EngineConfig::default());
    let mut out = Vec::new();
    engine.evaluate(
        &JsonEvent::new(json!({"k": "a", "v": "known"})).at(0),
        &mut out,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    engine.save_state(&path).expect("saves");
    let mut fresh = Engine::new(set, EngineConfig::default());
    fresh.load_state(&path).expect("loads");
    let late = 10_000_000_000;
    fresh.evaluate(
        &JsonEvent::new(json!({"k": "a", "v": "known"})).at(late),
        &mut out,
    );
    assert!(out.is_empty(), "learned before the restart");
    fresh.evaluate(
        &JsonEvent::new(json!({"k": "a", "v": "new"})).at(late),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(fresh.load_state(&dir.path().join("absent.json")).is_err());
}

#[test]
fn engines_move_between_threads_and_share_rules() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<Engine<JsonSchema>>();
    sync::<RuleSet<JsonSchema>>();
    let set = Arc::new(load(&rule_doc(json!({"field": "a", "eq": 1}))).expect("loads"));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let set = set.clone();
            std::thread::spawn(move || {
                let mut engine = Engine::new(set, EngineConfig::default());
                let mut out = Vec::new();
                engine.evaluate(&JsonEvent::new(json!({"a": 1})), &mut out);
                out.len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().ok(), Some(1));
    }
}

#[test]
fn empty_lists_match_nothing_and_their_negations_everything() {
    let doc = json!({"ip": "203.0.113.9", "s": "abc"});
    for op in [
        "cidr", "in", "prefix", "suffix", "contains", "glob", "regex",
    ] {
        let field = if op == "cidr" { "ip" } else { "s" };
        assert!(
            !fires(json!({"field": field, op: []}), doc.clone()),
            "{op} over an empty list must not match"
        );
    }
    assert!(fires(json!({"field": "s", "not_in": []}), doc));
}

#[test]
fn literal_globs_and_ascii_icase_tests_agree_with_their_definitions() {
    let doc = json!({"ua": "Kube-Hunter/0.6 (Linux)", "img": "docker.io/XMRig/xmrig:6.21", "u": "Ünïcode"});
    // `*lit*`, `lit*`, `*lit` become literal tests; a real pattern stays a regex; mixed lists work.
    assert!(fires(
        json!({"field": "ua", "glob": ["*hunter*"], "icase": true}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "ua", "glob": ["*hunter*"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "glob": ["kube-*"], "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "glob": ["*(linux)"], "icase": true}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "ua", "glob": ["*(linux)"]}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "img", "glob": ["nope*", "*/xmrig/xm?ig:*"], "icase": true}),
        doc.clone()
    ));
    assert!(!fires(
        json!({"field": "img", "glob": ["xmrig*", "*:7*"]}),
        doc.clone()
    ));
    assert!(fires(json!({"field": "img", "glob": ["*"]}), doc.clone()));
    // ASCII patterns ignore case without folding; non-ASCII patterns fold the value.
    assert!(fires(
        json!({"field": "ua", "contains": ["HUNTER"], "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "prefix": "KUBE-", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "ua", "suffix": "(LINUX)", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "u", "prefix": "ünï", "icase": true}),
        doc.clone()
    ));
    assert!(fires(
        json!({"field": "u", "contains": ["NÏC"], "icase": true}),
        doc.clone()
    ));
    assert!(!fires(json!({"field": "u", "contains": ["NÏC"]}), doc));
}
