//! `gator verify` suites run end to end on the engine: our own suites (labels, repositories,
//! AdmissionReview updates and deletes, inventory), failures and errors reported per case, and,
//! when `PALISADE_GKLIB` names a directory, every suite of a public gatekeeper-library checkout.

use palisade_policy::suite::{
    CaseReport, Expectation, Filter, Outcome, RunOptions, SuiteReport, Tally, discover, run_suite,
};
use std::path::{Path, PathBuf};

fn suites_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suites")
}

fn run(name: &str, filter: &str) -> SuiteReport {
    let path = suites_dir().join(name).join("suite.yaml");
    let suites = discover(&path.display().to_string()).unwrap();
    assert_eq!(suites.len(), 1);
    let options = RunOptions {
        filter: Filter::parse(filter).unwrap(),
        ..RunOptions::default()
    };
    run_suite(&suites[0], &options)
}

fn case<'a>(report: &'a SuiteReport, test: &str, case: &str) -> &'a CaseReport {
    report
        .tests
        .iter()
        .find(|t| t.name == test)
        .and_then(|t| t.cases.iter().find(|c| c.name == case))
        .unwrap_or_else(|| panic!("no case {test}/{case}"))
}

fn assert_all_pass(report: &SuiteReport) {
    for t in &report.tests {
        for c in &t.cases {
            assert!(
                matches!(c.outcome, Outcome::Pass | Outcome::Skip),
                "{}/{}: {:?} {:?} {:?} violations {:?}",
                t.name,
                c.name,
                c.outcome,
                c.reason,
                c.failures,
                c.violations
            );
        }
        assert!(
            matches!(t.outcome, Outcome::Pass | Outcome::Skip),
            "{}: {:?} {:?}",
            t.name,
            t.outcome,
            t.reason
        );
    }
    assert_eq!(report.outcome, Outcome::Pass);
}

#[test]
fn required_labels_suite_passes() {
    let r = run("labels", "");
    assert_all_pass(&r);
    let no_labels = case(&r, "required-labels", "no-labels");
    let mut got = no_labels.violations.clone();
    got.sort();
    assert_eq!(got, ["label owner is missing", "label team is missing"]);
    let skipped = case(&r, "required-labels", "not-written-yet");
    assert_eq!(skipped.outcome, Outcome::Skip);
    assert_eq!(skipped.reason.as_deref(), Some("skip: true"));
    // `invalid: true`: the parameters fail the template's schema, as expected
    let invalid = r
        .tests
        .iter()
        .find(|t| t.name == "parameters-checked")
        .unwrap();
    assert_eq!(invalid.outcome, Outcome::Pass, "{:?}", invalid.reason);
    assert_eq!(
        r.tally(),
        Tally {
            pass: 5,
            fail: 0,
            skip: 1,
            error: 0
        }
    );
}

#[test]
fn allowed_repositories_suite_passes_and_counts_by_message() {
    let r = run("repos", "");
    assert_all_pass(&r);
    // a warn constraint's violations count in gator
    assert_eq!(
        case(&r, "trusted-registries", "untrusted").violations.len(),
        3
    );
}

#[test]
fn admission_reviews_test_updates_and_deletes() {
    let r = run("updates", "");
    assert_all_pass(&r);
    assert_eq!(
        case(&r, "locked-objects", "delete-by-user").violations,
        ["ConfigMap settings is locked: bob may not delete it"]
    );
}

#[test]
fn inventory_feeds_referential_templates() {
    let r = run("ingress", "");
    assert_all_pass(&r);
    assert_eq!(
        case(&r, "unique-hosts", "host-taken").violations,
        ["host shop.example.com is already served by ingress legacy/legacy"]
    );
}

#[test]
fn failures_and_errors_are_reported_per_case() {
    let r = run("broken", "");
    assert_eq!(r.outcome, Outcome::Error);

    let wrong = case(&r, "expectations-that-do-not-hold", "wrong-count");
    assert_eq!(wrong.outcome, Outcome::Fail);
    assert_eq!(wrong.failures.len(), 1, "{:?}", wrong.failures);
    let f = &wrong.failures[0];
    assert_eq!((f.index, f.expected, f.got), (0, Expectation::Count(1), 2));
    assert!(
        f.to_string().contains("got 2 violation(s), want exactly 1"),
        "{f}"
    );
    assert_eq!(wrong.violations.len(), 2);

    let missing = case(&r, "expectations-that-do-not-hold", "missing-object-file");
    assert_eq!(missing.outcome, Outcome::Error);
    assert!(missing.reason.as_deref().unwrap().contains("nowhere.yaml"));

    let no_assertions = case(&r, "expectations-that-do-not-hold", "no-assertions");
    assert_eq!(no_assertions.outcome, Outcome::Error);
    let reason = no_assertions.reason.as_deref().unwrap();
    assert!(reason.contains("suite.yaml:18:"), "{reason}");
    assert!(reason.contains("at least one assertion"), "{reason}");

    let two = case(&r, "expectations-that-do-not-hold", "two-objects");
    assert!(two.reason.as_deref().unwrap().contains("defines 2 objects"));

    let no_request = case(
        &r,
        "expectations-that-do-not-hold",
        "review-without-request",
    );
    assert!(
        no_request
            .reason
            .as_deref()
            .unwrap()
            .contains("no `request`")
    );

    let other = r
        .tests
        .iter()
        .find(|t| t.name == "constraint-of-another-template")
        .unwrap();
    assert_eq!(other.outcome, Outcome::Error);
    assert!(
        other.reason.as_deref().unwrap().contains("SuiteRepos"),
        "{:?}",
        other.reason
    );

    let no_template = r.tests.iter().find(|t| t.name == "no-template").unwrap();
    assert_eq!(no_template.outcome, Outcome::Error);
    assert!(
        no_template
            .reason
            .as_deref()
            .unwrap()
            .contains("missing `template`")
    );
    assert!(!r.tally().ok());
}

#[test]
fn run_filter_selects_tests_and_cases() {
    let r = run("labels", "required-labels//owner");
    let outcomes: Vec<(&str, Outcome)> = r.tests[0]
        .cases
        .iter()
        .map(|c| (c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("labelled-deployment", Outcome::Skip),
            ("no-labels", Outcome::Skip),
            ("owner-format", Outcome::Pass),
            ("other-kinds-not-matched", Outcome::Skip),
            ("not-written-yet", Outcome::Skip),
        ]
    );
    assert_eq!(r.tests[1].outcome, Outcome::Skip);
    assert_eq!(r.tests[1].reason.as_deref(), Some("not selected by --run"));
}

#[test]
fn recursive_discovery_finds_every_suite() {
    let suites = discover(&format!("{}/...", suites_dir().display())).unwrap();
    let names: Vec<String> = suites
        .iter()
        .map(|s| {
            s.path
                .parent()
                .and_then(|p| p.file_name())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["broken", "ingress", "labels", "repos", "updates"]);
}

/// Runs every suite below `$PALISADE_GKLIB` (a gatekeeper-library checkout or a partial copy)
/// and prints one line per case; fails only if a suite cannot be read. Opt-in: the library is not
/// part of this repository.
#[test]
fn gatekeeper_library_suites() {
    let Ok(root) = std::env::var("PALISADE_GKLIB") else {
        eprintln!("PALISADE_GKLIB not set; skipped");
        return;
    };
    let suites = discover(&format!("{root}/...")).unwrap();
    assert!(!suites.is_empty(), "no suites below {root}");
    let mut total = Tally::default();
    let mut passed_suites = 0;
    for s in &suites {
        let report = run_suite(s, &RunOptions::default());
        let tally = report.tally();
        if tally.ok() {
            passed_suites += 1;
        }
        total.merge(tally);
        println!("SUITE {} {}", report.outcome.as_str(), report.path);
        for t in &report.tests {
            if let Some(reason) = &t.reason {
                println!("  TEST {} {}: {reason}", t.outcome.as_str(), t.name);
            }
            for c in &t.cases {
                let detail = match (&c.reason, c.failures.is_empty()) {
                    (Some(r), _) => r.clone(),
                    (None, false) => format!(
                        "{}; violations {:?}",
                        c.failures
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                        c.violations
                    ),
                    (None, true) => String::new(),
                };
                println!("    {} {}/{} {detail}", c.outcome.as_str(), t.name, c.name);
            }
        }
    }
    println!(
        "gatekeeper-library: {passed_suites}/{} suites pass; cases: {} passed, {} failed, {} errors, {} skipped",
        suites.len(),
        total.pass,
        total.fail,
        total.error,
        total.skip
    );
}
