//! Every built-in audit rule against its real-shaped fixtures (tests/fixtures/rules/<RULE_ID>.yaml):
//! each `alert` case must make the rule fire, each `quiet` case must not. Cases run through a fresh
//! engine loaded with the built-in rules plus the override files of tests/fixtures/rules/overrides
//! (the lists a deployment would supply, e.g. `proxy_source_cidrs`), exactly as `palisade detect`
//! would load a user rules directory.

use palisade_detect::audit::{AuditSchema, InputFormat, ParseStats, parse_document};
use palisade_detect::builtin::{audit_rule_sources, audit_rules};
use palisade_detect::engine::{Engine, EngineConfig, Match};
use palisade_detect::mitre::{tactic_name, technique_name};
use palisade_detect::rule::{RuleSet, RuleSource};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `K8S_*` ids of ../shared/catalog/alerts.md whose data source is the audit log or the cluster
/// configuration: each must be a built-in rule.
const CATALOG_AUDIT_IDS: &[&str] = &[
    "K8S_ExposedPostgresTrustAuth",
    "K8S_ExposedPostgresBroadIPRange",
    "K8S_ServiceAccountRareOperation",
    "K8S_SensitiveMount",
    "K8S_CoreDnsModification",
    "K8S_AdmissionController",
    "K8S_MaliciousContainerImage",
    "K8S_ExposedKubeflow",
    "K8S_ExposedDashboard",
    "K8S_ExposedService",
    "K8S_ExposedRedis",
    "K8S_TI_Proxy",
    "K8S_DeleteEvents",
    "K8S_PenTestToolsKubeHunter",
    "K8S_KubeSystemContainer",
    "K8S_HighPrivilegesRole",
    "K8S_PrivilegedContainer",
    "K8S_ClusterAdminBinding",
    "K8S_AnomalousPodDeployment",
    "K8S_AnomalousSecretAccess",
    "K8S_ServiceAcountPermissionAnomaly",
];

/// Catalog `K8S_*` ids deliberately not covered, with the reason (checked against the catalog).
const NOT_COVERED: &[(&str, &str)] = &[(
    "K8S_AbnormalMiActivity",
    "needs Azure Resource Manager operations of the AKS add-on managed identity, not in the audit log",
)];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    rule: String,
    #[serde(default)]
    alert: Vec<Case>,
    #[serde(default)]
    quiet: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    event: Option<serde_json::Value>,
    events: Option<Vec<serde_json::Value>>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

fn load_fixtures() -> Vec<(PathBuf, Fixture)> {
    yaml_files(&fixture_dir())
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("fixture readable");
            let fixture: Fixture =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, fixture)
        })
        .collect()
}

/// Built-in rules plus the fixture overrides (a user rules directory).
fn rules_with_overrides() -> Arc<RuleSet<AuditSchema>> {
    let mut sources = audit_rule_sources();
    for path in yaml_files(&fixture_dir().join("overrides")) {
        let text = std::fs::read_to_string(&path).expect("override readable");
        sources.push(RuleSource {
            name: path.display().to_string(),
            text,
        });
    }
    Arc::new(RuleSet::load(&sources).unwrap_or_else(|e| panic!("rules with overrides: {e}")))
}

/// Runs the events of one case, in order, through a fresh engine; returns the ids of the rules that
/// fired (with repetitions) and the parse errors.
fn run_case(rules: &Arc<RuleSet<AuditSchema>>, events: &[serde_json::Value]) -> (Vec<String>, u64) {
    let mut engine = Engine::new(Arc::clone(rules), EngineConfig::default());
    let mut stats = ParseStats::default();
    let mut fired = Vec::new();
    let mut out: Vec<Match> = Vec::new();
    for event in events {
        let bytes = serde_json::to_vec(event).expect("serialisable");
        let result = parse_document(&bytes, InputFormat::Auto, &mut stats, &mut |ev| {
            engine.evaluate(ev, &mut out);
        });
        if result.is_err() {
            stats.errors += 1;
        }
        for m in out.drain(..) {
            fired.push(rules.rules()[m.rule].id.clone());
        }
    }
    (fired, stats.errors)
}

#[test]
fn builtin_rules_load_and_are_well_formed() {
    let rules = audit_rules().unwrap_or_else(|e| panic!("built-in rules: {e}"));
    assert!(rules.len() >= 45, "only {} built-in rules", rules.len());
    let mut ids = BTreeSet::new();
    for meta in rules.rules() {
        assert!(ids.insert(meta.id.clone()), "duplicate id {}", meta.id);
        assert!(meta.id.starts_with("K8S_"), "{}: id style", meta.id);
        assert!(!meta.title.is_empty(), "{}: title", meta.id);
        assert!(
            meta.description.len() > 80,
            "{}: description too short",
            meta.id
        );
        assert!(!meta.remediation.is_empty(), "{}: remediation", meta.id);
        assert!(!meta.tactics.is_empty(), "{}: no MITRE tactic", meta.id);
        assert!(
            !meta.techniques.is_empty(),
            "{}: no MITRE technique",
            meta.id
        );
        assert_eq!(meta.source, "audit", "{}", meta.id);
        for t in &meta.tactics {
            assert_eq!(
                tactic_name(&t.id),
                Some(t.name.as_str()),
                "{}: tactic {}",
                meta.id,
                t.id
            );
        }
        for t in &meta.techniques {
            assert_eq!(
                technique_name(&t.id),
                Some(t.name.as_str()),
                "{}: technique {}",
                meta.id,
                t.id
            );
        }
    }
}

#[test]
fn every_catalog_audit_alert_is_a_builtin_rule() {
    let rules = audit_rules().unwrap_or_else(|e| panic!("built-in rules: {e}"));
    let ids: BTreeSet<&str> = rules.rules().iter().map(|m| m.id.as_str()).collect();
    for id in CATALOG_AUDIT_IDS {
        assert!(ids.contains(id), "catalog alert {id} has no built-in rule");
    }
    // Cross-check against the catalog itself when the shared directory is present.
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/catalog/alerts.md");
    let catalog = std::env::var_os("PALISADE_SHARED")
        .map(|d| PathBuf::from(d).join("catalog/alerts.md"))
        .unwrap_or(catalog);
    let Ok(text) = std::fs::read_to_string(&catalog) else {
        eprintln!(
            "catalog not found at {}: cross-check skipped",
            catalog.display()
        );
        return;
    };
    let mut seen = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("| `K8S_") else {
            continue;
        };
        let id = format!("K8S_{}", rest.split('`').next().unwrap_or_default());
        let source = line
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap_or_default();
        seen += 1;
        if let Some((_, why)) = NOT_COVERED.iter().find(|(n, _)| *n == id) {
            assert!(
                !ids.contains(id.as_str()),
                "{id} is documented as not covered ({why})"
            );
            continue;
        }
        assert!(
            source.contains("audit log") || source.contains("cluster config"),
            "{id}: catalog source {source:?} is neither audit log nor cluster config and not listed as not covered"
        );
        assert!(
            CATALOG_AUDIT_IDS.contains(&id.as_str()),
            "catalog id {id} missing from CATALOG_AUDIT_IDS"
        );
    }
    assert_eq!(
        seen,
        CATALOG_AUDIT_IDS.len() + NOT_COVERED.len(),
        "catalog K8S_ ids"
    );
}

#[test]
fn every_builtin_rule_has_alert_and_quiet_fixtures_that_hold() {
    let rules = rules_with_overrides();
    let builtin = audit_rules().unwrap_or_else(|e| panic!("built-in rules: {e}"));
    let fixtures = load_fixtures();
    let mut covered: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (path, fixture) in &fixtures {
        assert!(
            rules.position(&fixture.rule).is_some(),
            "{}: unknown rule {}",
            path.display(),
            fixture.rule
        );
        let entry = covered.entry(fixture.rule.clone()).or_default();
        entry.0 += fixture.alert.len();
        entry.1 += fixture.quiet.len();
        for (should_fire, case) in fixture
            .alert
            .iter()
            .map(|c| (true, c))
            .chain(fixture.quiet.iter().map(|c| (false, c)))
        {
            let events: Vec<serde_json::Value> = match (&case.event, &case.events) {
                (Some(e), None) => vec![e.clone()],
                (None, Some(es)) if !es.is_empty() => es.clone(),
                _ => panic!(
                    "{}: case {:?} needs exactly one of event/events",
                    path.display(),
                    case.name
                ),
            };
            let (fired, errors) = run_case(&rules, &events);
            if errors > 0 {
                failures.push(format!(
                    "{} / {}: {errors} parse errors",
                    fixture.rule, case.name
                ));
            }
            let hits = fired.iter().filter(|id| **id == fixture.rule).count();
            if should_fire && hits == 0 {
                failures.push(format!(
                    "{} should fire on {:?} (fired: {fired:?})",
                    fixture.rule, case.name
                ));
            }
            if !should_fire && hits > 0 {
                failures.push(format!(
                    "{} should stay quiet on {:?}",
                    fixture.rule, case.name
                ));
            }
        }
    }
    for meta in builtin.rules() {
        match covered.get(&meta.id) {
            Some((a, q)) if *a > 0 && *q > 0 => {}
            other => failures.push(format!(
                "{}: needs >=1 alert and >=1 quiet case, has {other:?}",
                meta.id
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn proxy_rule_is_silent_without_the_override_list() {
    // The list ships empty: without an override K8S_TI_Proxy can never fire.
    let rules = Arc::new(audit_rules().unwrap_or_else(|e| panic!("{e}")));
    let (_, fixture) = load_fixtures()
        .into_iter()
        .find(|(_, f)| f.rule == "K8S_TI_Proxy")
        .expect("K8S_TI_Proxy fixture");
    for case in &fixture.alert {
        let events = case.event.iter().cloned().collect::<Vec<_>>();
        let (fired, _) = run_case(&rules, &events);
        assert!(
            !fired.iter().any(|id| id == "K8S_TI_Proxy"),
            "{}",
            case.name
        );
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Background {
    events: Vec<serde_json::Value>,
}

#[test]
fn healthy_cluster_background_traffic_raises_nothing() {
    let rules = rules_with_overrides();
    let files = yaml_files(&fixture_dir().join("benign"));
    assert!(!files.is_empty(), "no benign background fixtures");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let background: Background =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            background.events.len() >= 50,
            "{}: too small",
            path.display()
        );
        let (fired, errors) = run_case(&rules, &background.events);
        assert_eq!(errors, 0, "{}: parse errors", path.display());
        assert!(
            fired.is_empty(),
            "{}: rules fired on benign traffic: {fired:?}",
            path.display()
        );
    }
}

/// Rules allowed to run on every verb and resource (they need every event) — each starts with a
/// cheap test on a model field.
const UNINDEXED: &[&str] = &[
    "K8S_AnonymousAccess",
    "K8S_Impersonation",
    "K8S_TI_Proxy",
    "K8S_PenTestToolsKubeHunter",
    "K8S_SystemPrincipalPublicIP",
    "K8S_RepeatedForbidden",
];

#[test]
fn rules_are_index_restricted_and_judge_response_stages_only() {
    for source in audit_rule_sources() {
        let docs: serde_json::Value =
            serde_saphyr::from_str(&source.text).unwrap_or_else(|e| panic!("{}: {e}", source.name));
        let Some(rules) = docs.get("rules").and_then(|r| r.as_array()) else {
            continue;
        };
        for rule in rules {
            let id = rule["id"].as_str().unwrap_or_default();
            let m = &rule["match"];
            let stages: Vec<&str> = m["stage"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            assert!(!stages.is_empty(), "{id}: no stage restriction");
            assert!(
                stages
                    .iter()
                    .all(|s| *s == "ResponseComplete" || *s == "ResponseStarted"),
                "{id}: judges {stages:?}"
            );
            let narrowed = m.get("verb").is_some() || m.get("resource").is_some();
            assert!(
                narrowed || UNINDEXED.contains(&id),
                "{id}: needs a verb or resource restriction (or a place in UNINDEXED)"
            );
            assert!(
                !(narrowed && UNINDEXED.contains(&id)),
                "{id}: is narrowed, remove it from UNINDEXED"
            );
        }
    }
}
