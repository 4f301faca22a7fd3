//! Runs every suite of Palisade's bundle (`bundle/<check-id>/suite.yaml`, the format of
//! Gatekeeper's `gator verify`) through the policy engine: each case's object is reviewed against
//! the test's template and constraint (with the case's inventory), and its assertions checked —
//! `violations: yes|no|<count>`, optionally only counting violations whose message matches
//! `message` (a regular expression).
//!
//! A suite directory with `samples/scan-results/` gets the vulnerability gate's external data
//! provider over it (gator would need the provider deployed; here it is in process).

use palisade_kube::KubeObject;
use palisade_policy::vulngate::VulnerabilityProvider;
use palisade_policy::{EnforcementPoint, PolicySet, PolicySettings, ReviewRequest};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bundle")
}

fn load(path: &Path) -> Vec<KubeObject> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).unwrap();
        if !v.is_null() {
            out.push(KubeObject::from_value(v, None).unwrap());
        }
    }
    out
}

fn load_one(path: &Path) -> KubeObject {
    let mut objects = load(path);
    assert_eq!(objects.len(), 1, "{}", path.display());
    objects.remove(0)
}

#[derive(Debug, Deserialize)]
struct Suite {
    kind: String,
    tests: Vec<Test>,
}

#[derive(Debug, Deserialize)]
struct Test {
    name: String,
    template: String,
    constraint: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    object: String,
    #[serde(default)]
    inventory: Vec<String>,
    assertions: Vec<Assertion>,
}

#[derive(Debug, Deserialize)]
struct Assertion {
    violations: Value,
    #[serde(default)]
    message: Option<String>,
}

/// Runs one suite; returns the number of cases and the failures.
fn run_suite(path: &Path) -> (usize, Vec<String>) {
    let dir = path.parent().unwrap();
    let suite: Suite = yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(suite.kind, "Suite");
    let mut settings = PolicySettings::default();
    let results = dir.join("samples/scan-results");
    if results.is_dir() {
        settings.providers = vec![Arc::new(
            VulnerabilityProvider::new(&results, Duration::from_secs(60)).unwrap(),
        )];
    }
    let mut cases = 0;
    let mut failures = Vec::new();
    for test in &suite.tests {
        let template = load_one(&dir.join(&test.template));
        let constraint = load_one(&dir.join(&test.constraint));
        for case in &test.cases {
            cases += 1;
            let label = format!("{} / {} / {}", path.display(), test.name, case.name);
            let object = load_one(&dir.join(&case.object));
            let inventory: Vec<KubeObject> = case
                .inventory
                .iter()
                .flat_map(|p| load(&dir.join(p)))
                .collect();
            let (set, _) = PolicySet::compile(
                &[template.clone(), constraint.clone()],
                &inventory,
                &settings,
            )
            .unwrap_or_else(|e| panic!("{label}: {e:#?}"));
            let review = ReviewRequest::from_object(object.value.clone()).unwrap();
            let violations = match set.evaluator().review(&review, EnforcementPoint::Gator) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{label}: evaluation failed: {e}"));
                    continue;
                }
            };
            for a in &case.assertions {
                let re = a.message.as_deref().map(|m| regex::Regex::new(m).unwrap());
                let n = violations
                    .iter()
                    .filter(|v| re.as_ref().is_none_or(|r| r.is_match(&v.message)))
                    .count();
                let ok = match &a.violations {
                    Value::String(s) if s == "yes" => n > 0,
                    Value::String(s) if s == "no" => n == 0,
                    Value::Number(c) => c.as_u64() == Some(n as u64),
                    other => panic!("{label}: bad assertion {other}"),
                };
                if !ok {
                    let messages: Vec<&str> =
                        violations.iter().map(|v| v.message.as_str()).collect();
                    failures.push(format!(
                        "{label}: expected violations {} (message {:?}), got {n}: {messages:#?}",
                        a.violations, a.message
                    ));
                }
            }
        }
    }
    (cases, failures)
}

#[test]
fn every_bundle_suite_passes() {
    let mut suites: Vec<PathBuf> = std::fs::read_dir(bundle_dir())
        .unwrap()
        .map(|e| e.unwrap().path().join("suite.yaml"))
        .filter(|p| p.exists())
        .collect();
    suites.sort();
    let templates = palisade_policy::bundle::check_ids().count();
    assert_eq!(suites.len(), templates, "every template has a suite");
    let mut total = 0;
    let mut failures = Vec::new();
    for s in &suites {
        let (n, mut f) = run_suite(s);
        // Every suite has allowed and disallowed cases.
        let suite: Suite = yaml_serde::from_str(&std::fs::read_to_string(s).unwrap()).unwrap();
        let expects: Vec<&Value> = suite
            .tests
            .iter()
            .flat_map(|t| &t.cases)
            .flat_map(|c| &c.assertions)
            .map(|a| &a.violations)
            .collect();
        let allowed = |v: &&Value| v.as_str() == Some("no") || v.as_u64() == Some(0);
        assert!(
            expects.iter().any(allowed),
            "{}: no allowed case",
            s.display()
        );
        assert!(
            !expects.iter().all(allowed),
            "{}: no disallowed case",
            s.display()
        );
        total += n;
        failures.append(&mut f);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 100, "{total} cases");
}
