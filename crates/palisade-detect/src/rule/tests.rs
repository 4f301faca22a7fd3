//! Loading: errors with good messages, override semantics, source filtering, the index.

use super::*;
use crate::engine::test_schema::{TestEvent, TestSchema};
use crate::engine::{Engine, EngineConfig};
use crate::json_event::JsonSchema;
use std::sync::Arc;

fn src(name: &str, text: &str) -> RuleSource {
    RuleSource::new(name, text)
}

fn load(sources: &[RuleSource]) -> Result<RuleSet<TestSchema>, RuleError> {
    RuleSet::load(sources)
}

fn err_of(sources: &[RuleSource]) -> String {
    match load(sources) {
        Ok(_) => "loaded".to_string(),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = r#"
lists:
  admins: [alice]
macros:
  is_admin: {field: user, in: {list: admins}}
rules:
  - id: K8S_One
    title: One
    description: first
    remediation: fix it
    severity: high
    tactics: [TA0004]
    techniques: [T1611, T1610]
    source: test
    match: {verb: [create], resource: [pods]}
    condition: {macro: is_admin}
    tags: [workload]
  - id: K8S_Two
    title: Two
    severity: low
    source: test
    match: {verb: delete}
  - id: Audit_Only
    title: For another source
    severity: low
    condition: {field: objectRef.whatever, eq: 1}
"#;

fn fired(set: &Arc<RuleSet<TestSchema>>, event: &TestEvent) -> Vec<String> {
    let mut engine = Engine::new(set.clone(), EngineConfig::default());
    let mut out = Vec::new();
    engine.evaluate(event, &mut out);
    out.iter().map(|m| set.rules()[m.rule].id.clone()).collect()
}

#[test]
fn loads_metadata_and_skips_other_sources() {
    let set = load(&[src("builtin:base.yaml", BASE)]).expect("loads");
    let ids: Vec<&str> = set.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["K8S_One", "K8S_Two"],
        "Audit_Only has source audit"
    );
    let one = &set.rules()[0];
    assert_eq!(one.severity, Severity::High);
    assert_eq!(one.tactics[0].name, "Privilege Escalation");
    assert_eq!(one.techniques[1].id, "T1610");
    assert_eq!(one.techniques[1].name, "Deploy Container");
    assert_eq!(one.tags, vec!["workload"]);
    assert_eq!(
        (one.description.as_str(), one.remediation.as_str()),
        ("first", "fix it")
    );
    assert!(one.origin.starts_with("builtin:base.yaml:"));
    assert!(!one.stateful);
    assert_eq!(set.position("K8S_Two"), Some(1));
    // The same file for the JSON schema: no rule has source json.
    let json: RuleSet<JsonSchema> = RuleSet::load(&[src("b", BASE)]).expect("loads");
    assert!(json.is_empty());
}

#[test]
fn index_restricts_candidates() {
    let set = Arc::new(load(&[src("b", BASE)]).expect("loads"));
    assert_eq!(
        fired(&set, &TestEvent::new("create", Some("pods"), "alice")),
        vec!["K8S_One"]
    );
    assert!(fired(&set, &TestEvent::new("create", Some("secrets"), "alice")).is_empty());
    assert!(fired(&set, &TestEvent::new("create", None, "alice")).is_empty());
    assert!(fired(&set, &TestEvent::new("create", Some("pods"), "bob")).is_empty());
    assert_eq!(
        fired(&set, &TestEvent::new("delete", None, "x")),
        vec!["K8S_Two"]
    );
    let mut engine = Engine::new(set.clone(), EngineConfig::default());
    let mut out = Vec::new();
    for _ in 0..10 {
        engine.evaluate(&TestEvent::new("get", Some("pods"), "x"), &mut out);
    }
    let stats = engine.stats();
    assert_eq!(
        stats.evaluations, 0,
        "no rule admits get: nothing evaluated"
    );
    engine.evaluate(&TestEvent::new("create", Some("pods"), "alice"), &mut out);
    assert_eq!(engine.stats().evaluations, 1);
    // A tiny cache still gives the same answers.
    let config = EngineConfig {
        max_cached_tuples: 1,
        ..Default::default()
    };
    let mut engine = Engine::new(set, config);
    for verb in ["create", "delete", "create", "get", "delete"] {
        engine.evaluate(&TestEvent::new(verb, Some("pods"), "alice"), &mut out);
    }
    assert_eq!(out.len(), 1 + 4);
}

#[test]
fn user_rules_replace_disable_and_append() {
    let user = r#"
rules:
  - id: K8S_Two
    title: Two, stricter
    severity: critical
    source: test
    match: {verb: [delete, deletecollection]}
  - id: K8S_One
    append: true
    exceptions:
      - name: alice on Sundays
        condition: {field: user, eq: alice}
"#;
    let set = Arc::new(load(&[src("b", BASE), src("user.yaml", user)]).expect("loads"));
    assert_eq!(set.rules()[1].title, "Two, stricter");
    assert!(set.rules()[1].origin.starts_with("user.yaml:"));
    assert_eq!(set.rules()[1].severity, Severity::Critical);
    assert_eq!(
        fired(&set, &TestEvent::new("deletecollection", None, "x")),
        vec!["K8S_Two"]
    );
    assert!(fired(&set, &TestEvent::new("create", Some("pods"), "alice")).is_empty());

    let disable = "rules:\n  - {id: K8S_One, enabled: false}\n";
    let set = load(&[src("b", BASE), src("off.yaml", disable)]).expect("loads");
    assert_eq!(set.rules().len(), 1);
    assert_eq!(set.rules()[0].id, "K8S_Two");
    let enable = "rules:\n  - {id: K8S_One, enabled: true}\n";
    let set = load(&[
        src("b", BASE),
        src("off.yaml", disable),
        src("on.yaml", enable),
    ])
    .expect("loads");
    assert_eq!(set.rules().len(), 2);
    // Disabling a rule of another source is fine; an unknown id is an error.
    assert!(
        load(&[
            src("b", BASE),
            src("u", "rules: [{id: Audit_Only, enabled: false}]")
        ])
        .is_ok()
    );
    let err = err_of(&[
        src("b", BASE),
        src("u.yaml", "rules: [{id: Nope, enabled: false}]"),
    ]);
    assert!(
        err.contains("u.yaml:1: rule Nope") && err.contains("no rule has this id"),
        "{err}"
    );
    let err = err_of(&[
        src("b", BASE),
        src(
            "u.yaml",
            "rules: [{id: Nope, append: true, exceptions: []}]",
        ),
    ]);
    assert!(err.contains("not defined"), "{err}");
    let err = err_of(&[
        src("b", BASE),
        src("u.yaml", "rules: [{id: K8S_One, append: true, title: x}]"),
    ]);
    assert!(err.contains("`title` is not allowed"), "{err}");
}

#[test]
fn lists_and_macros_override_by_name() {
    let user = "lists:\n  admins: [bob]\n";
    let set = Arc::new(load(&[src("b", BASE), src("u", user)]).expect("loads"));
    assert!(fired(&set, &TestEvent::new("create", Some("pods"), "alice")).is_empty());
    assert_eq!(
        fired(&set, &TestEvent::new("create", Some("pods"), "bob")),
        vec!["K8S_One"]
    );
    let user = "macros:\n  is_admin: {field: user, prefix: c}\n";
    let set = Arc::new(load(&[src("b", BASE), src("u", user)]).expect("loads"));
    assert_eq!(
        fired(&set, &TestEvent::new("create", Some("pods"), "carol")),
        vec!["K8S_One"]
    );
    let err = err_of(&[src("b", "lists:\n  bad: {a: 1}\n")]);
    assert!(
        err.contains("rule bad") && err.contains("sequence of scalars"),
        "{err}"
    );
}

#[test]
fn load_errors_name_file_line_rule_and_problem() {
    let rule = |extra: &str| {
        format!("rules:\n  - id: K8S_X\n    title: X\n    severity: low\n    source: test\n{extra}")
    };
    let cases: &[(&str, &str)] = &[
        (
            "    conditon: {field: verb, eq: get}\n",
            "unknown field `conditon`",
        ),
        (
            "    condition: {field: nope, eq: get}\n",
            "unknown field \"nope\"",
        ),
        (
            "    tactics: [TA9999]\n",
            "unknown MITRE ATT&CK tactic id \"TA9999\"",
        ),
        (
            "    techniques: [T0000]\n",
            "unknown MITRE ATT&CK technique id \"T0000\"",
        ),
        (
            "    match: {stage: [ResponseComplete]}\n",
            "unknown index dimension `stage`",
        ),
        ("    match: {verb: []}\n", "empty list"),
        (
            "    threshold: {count: 2, window: 10 minutes}\n",
            "bad duration",
        ),
        ("    threshold: {count: 0, window: 10m}\n", "at least 1"),
        (
            "    threshold: {count: 2, window: 1m, mode: rolling}\n",
            "`sliding` or `fixed`",
        ),
        (
            "    rarity: {learning: 7d, value: []}\n",
            "at least one field",
        ),
        (
            "    threshold: {count: 2, window: 1m}\n    rarity: {learning: 7d, value: [verb]}\n",
            "at most one of",
        ),
        (
            "    threshold: {count: 2, window: 1m, group_by: [nope]}\n",
            "threshold.group_by",
        ),
        ("    output: \"{nope}\"\n", "output placeholder {nope}"),
        ("    evidence: [obj.a..b]\n", "evidence"),
        ("    subject: nope\n", "subject"),
    ];
    for (extra, expected) in cases {
        let err = err_of(&[src("rules/x.yaml", &rule(extra))]);
        assert!(
            err.starts_with("rules/x.yaml:")
                && err.contains(": rule K8S_X: ")
                && err.contains(expected),
            "{extra:?}: {err}"
        );
    }
    // Condition and exception errors point at the condition's or exception's line.
    let err = err_of(&[src(
        "rules/x.yaml",
        &rule("    tags: [a]\n    condition:\n      field: nope\n      eq: 1\n"),
    )]);
    assert!(
        err.starts_with("rules/x.yaml:8: rule K8S_X: condition.field"),
        "{err}"
    );
    let err = err_of(&[src(
        "rules/x.yaml",
        &rule(
            "    exceptions:\n      - condition: {field: verb, eq: a}\n      - condition: {field: nope, eq: a}\n",
        ),
    )]);
    assert!(
        err.starts_with("rules/x.yaml:8: rule K8S_X: exceptions[1]"),
        "{err}"
    );
    // Shape errors point at the offending key's own line.
    let err = err_of(&[src(
        "rules/x.yaml",
        &rule("    tags: [a]\n    conditon: {field: verb, eq: get}\n"),
    )]);
    assert!(
        err.starts_with("rules/x.yaml:7: rule K8S_X: unknown field `conditon`"),
        "{err}"
    );
    let err = err_of(&[src(
        "rules/x.yaml",
        &rule("    threshold:\n      count: 2\n      windw: 1m\n"),
    )]);
    assert!(
        err.starts_with("rules/x.yaml:8: rule K8S_X: unknown field `windw`"),
        "{err}"
    );
    let err = err_of(&[src(
        "x.yaml",
        "rules:\n  - {id: A, title: a, source: test}\n",
    )]);
    assert!(err.contains("missing `severity`"), "{err}");
    let err = err_of(&[src(
        "x.yaml",
        "rules:\n  - {id: A, severity: low, source: test}\n",
    )]);
    assert!(err.contains("missing `title`"), "{err}");
    let err = err_of(&[src(
        "x.yaml",
        "rules:\n  - {id: A, title: a, severity: urgent, source: test}\n",
    )]);
    assert!(err.contains("unknown severity"), "{err}");
    let err = err_of(&[src("x.yaml", "rules:\n  - {title: a}\n")]);
    assert!(err.contains("x.yaml:2: rule without an `id`"), "{err}");
    let dup = "rules:\n  - {id: A, title: a, severity: low, source: test}\n  - {id: A, title: b, severity: low, source: test}\n";
    let err = err_of(&[src("x.yaml", dup)]);
    assert!(err.contains("x.yaml:3: rule A: duplicate rule id"), "{err}");
    // The same id in two files is an override, not a duplicate.
    let one = "rules:\n  - {id: A, title: a, severity: low, source: test}\n";
    assert!(load(&[src("a.yaml", one), src("b.yaml", one)]).is_ok());
    let err = err_of(&[src("x.yaml", "rulez: []\n")]);
    assert!(
        err.starts_with("x.yaml:1: ") && err.contains("rulez"),
        "{err}"
    );
    let err = err_of(&[src("x.yaml", "rules: [\n")]);
    assert!(err.starts_with("x.yaml"), "{err}");
}

#[test]
fn multi_document_and_empty_sources() {
    let text = "---\nlists:\n  l: [a]\n---\nrules:\n  - {id: A, title: a, severity: low, source: test, condition: {field: verb, in: {list: l}}}\n";
    let set = load(&[
        src("m.yaml", text),
        src("empty.yaml", "# nothing\n"),
        src("e2", ""),
    ])
    .expect("loads");
    assert_eq!(set.len(), 1);
}

#[test]
fn from_dirs_reads_yaml_files_in_sorted_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "10-a.yaml",
        "rules:\n  - {id: K8S_Two, title: from 10, severity: low, source: test}\n",
    );
    write(
        "20-b.yml",
        "rules:\n  - {id: K8S_Two, title: from 20, severity: low, source: test}\n",
    );
    write("notes.txt", "not yaml: [");
    let set: RuleSet<TestSchema> =
        RuleSet::from_dirs(&[src("b", BASE)], &[dir.path().to_path_buf()]).expect("loads");
    assert_eq!(set.rules()[1].title, "from 20");
    write(
        "30-bad.yaml",
        "rules:\n  - {id: K8S_Two, title: bad, severity: nope, source: test}\n",
    );
    let err = RuleSet::<TestSchema>::from_dirs(&[src("b", BASE)], &[dir.path().to_path_buf()])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("30-bad.yaml:2: rule K8S_Two"), "{err}");
    let missing = RuleSet::<TestSchema>::from_dirs(&[], &[dir.path().join("absent")]);
    assert!(missing.is_err());
}

#[test]
fn yaml_1_1_booleans_stay_strings() {
    let text = "rules:\n  - {id: A, title: a, severity: low, source: test, condition: {field: verb, in: [on, off, yes, n]}}\n";
    let set = Arc::new(load(&[src("b.yaml", text)]).expect("loads"));
    assert_eq!(fired(&set, &TestEvent::new("on", None, "u")), vec!["A"]);
    assert_eq!(fired(&set, &TestEvent::new("n", None, "u")), vec!["A"]);
    assert!(fired(&set, &TestEvent::new("true", None, "u")).is_empty());
}
