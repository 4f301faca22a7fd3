//! `palisade policy verify|test|audit|crds` end to end: the suites and policies of
//! crates/palisade-policy/tests/suites, every output format and the exit codes.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../palisade-policy/tests/suites")
}

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run palisade")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); status {:?}\nstdout: {}\nstderr: {}",
            o.status,
            stdout(o),
            stderr(o)
        )
    })
}

fn path(p: &str) -> String {
    suites().join(p).display().to_string()
}

#[test]
fn verify_passing_suites_exits_zero() {
    for suite in [
        "labels/suite.yaml",
        "repos",
        "updates/suite.yaml",
        "ingress",
    ] {
        let o = palisade(&["policy", "verify", &path(suite)]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{suite}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stdout(&o).starts_with("PASS "), "{}", stdout(&o));
    }
}

#[test]
fn verify_failures_exit_one_with_expected_and_actual() {
    let o = palisade(&["policy", "verify", &path("broken")]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL  expectations-that-do-not-hold/wrong-count"),
        "{out}"
    );
    assert!(out.contains("got 2 violation(s), want exactly 1"), "{out}");
    assert!(out.contains("- label owner is missing"), "{out}");
    assert!(
        out.contains("ERROR expectations-that-do-not-hold/no-assertions"),
        "{out}"
    );
    assert!(out.contains("missing `template`"), "{out}");
}

#[test]
fn verify_json_and_run_filter() {
    let dir = format!("{}/...", suites().display());
    let o = palisade(&[
        "policy",
        "verify",
        &dir,
        "--format",
        "json",
        "--run",
        "labels//owner",
    ]);
    let v = json(&o);
    assert_eq!(v["schema"], "palisade.policy-verify/v1");
    assert_eq!(v["summary"]["suites"], 5);
    // only labels' owner-format case ran: every other case is skipped
    assert_eq!(v["summary"]["cases"]["pass"], 1, "{v:#}");
    assert_eq!(v["summary"]["cases"]["fail"], 0);
    assert_eq!(o.status.code(), Some(0));
    let labels = v["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "labels")
        .unwrap();
    let case = &labels["tests"][0]["cases"][2];
    assert_eq!(case["name"], "owner-format");
    assert_eq!(case["outcome"], "pass");
    assert_eq!(
        case["violations"][0],
        "label owner=Bob does not match ^[a-z]+@example\\.com$"
    );
}

#[test]
fn verify_verbose_lists_every_case() {
    let o = palisade(&["-v", "policy", "verify", &path("repos")]);
    let out = stdout(&o);
    assert!(out.contains("PASS  trusted-registries/trusted"), "{out}");
    assert!(out.contains("SKIP") || out.contains("PASS  trusted-registries/excluded-namespace"));
}

#[test]
fn verify_input_errors_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("suite.yaml");
    std::fs::write(
        &bad,
        "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: t\n  cases:\n  - name: c\n    assertions:\n    - violations: maybe\n",
    )
    .unwrap();
    let o = palisade(&["policy", "verify", &bad.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("suite.yaml:8:"), "{}", stdout(&o));
    let o = palisade(&["policy", "verify", "/nonexistent/suites"]);
    assert_eq!(o.status.code(), Some(2));
    let o = palisade(&["policy", "verify", &path("labels"), "--run", "a//b//c"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn test_reports_violations_and_fail_on() {
    let policy = [path("repos/template.yaml"), path("repos/constraint.yaml")];
    let manifest = path("repos/untrusted.yaml");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "policy", "test", "-p", &policy[0], "-p", &policy[1], &manifest,
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        palisade(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // the constraint is `warn`: the default --fail-on deny passes
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("3 violation(s): 3 warn"),
        "{}",
        stdout(&o)
    );
    let o = run(&["--fail-on", "warn"]);
    assert_eq!(o.status.code(), Some(1));

    let o = run(&["--format", "json"]);
    let v = json(&o);
    assert_eq!(v["schema"], "palisade.policy/v1");
    assert_eq!(v["command"], "test");
    assert_eq!(v["totals"]["SuiteRepos/trusted-registries"], 3);
    let row = &v["violations"][0];
    assert_eq!(row["action"], "warn");
    assert_eq!(row["object"], "Pod shop/web");
    assert!(
        row["location"]
            .as_str()
            .unwrap()
            .ends_with("untrusted.yaml:1")
    );

    let o = run(&["--format", "sarif"]);
    let v = json(&o);
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["level"], "warning");
    assert_eq!(
        v["runs"][0]["tool"]["driver"]["rules"][0]["id"],
        "SuiteRepos/trusted-registries"
    );
}

#[test]
fn audit_manifests_counts_per_constraint() {
    let o = palisade(&[
        "policy",
        "audit",
        "-p",
        &path("labels/template.yaml"),
        "-p",
        &path("labels/constraint.yaml"),
        &path("labels/unlabelled.yaml"),
        &path("labels/labelled.yaml"),
        &path("labels/bad-owner.yaml"),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["command"], "audit");
    assert_eq!(v["objects"], 3);
    assert_eq!(v["totals"]["SuiteLabels/owner-and-team"], 3);
}

#[test]
fn policy_errors_exit_two() {
    // a constraint without its template
    let o = palisade(&[
        "policy",
        "test",
        "-p",
        &path("repos/constraint.yaml"),
        &path("repos/trusted.yaml"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("no ConstraintTemplate defines kind SuiteRepos"),
        "{}",
        stdout(&o)
    );
    // audit without objects to audit
    let o = palisade(&["policy", "audit", "-p", &path("repos")]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn crds_for_templates() {
    let o = palisade(&[
        "policy",
        "crds",
        "-p",
        &path("labels"),
        "-p",
        &path("repos/template.yaml"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let docs: Vec<Value> = stdout(&o)
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| yaml_serde::from_str(d).unwrap())
        .collect();
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "suitelabels.constraints.gatekeeper.sh",
            "suiterepos.constraints.gatekeeper.sh"
        ]
    );
    let params = &docs[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["parameters"];
    assert_eq!(params["properties"]["required"]["type"], "array");
}

#[test]
fn bundle_export_writes_templates_that_compile() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let o = palisade(&["policy", "bundle", "export", &out.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let templates = std::fs::read_dir(out.join("templates")).unwrap().count();
    let constraints = std::fs::read_dir(out.join("constraints")).unwrap().count();
    assert!(
        templates > 0 && constraints > 0,
        "{templates} {constraints}"
    );
    // the exported bundle compiles and its constraints have CRDs
    let o = palisade(&[
        "policy",
        "crds",
        "-p",
        &out.join("templates").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let labelled = path("labels/labelled.yaml");
    let o = palisade(&[
        "policy",
        "test",
        "-p",
        &out.display().to_string(),
        &labelled,
        "--fail-on",
        "never",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn verify_bundle_suites_with_scan_results() {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../palisade-policy/bundle");
    let gate = bundle.join("image.vulnerabilities");
    let o = palisade(&[
        "policy",
        "verify",
        &gate.join("suite.yaml").display().to_string(),
        "--vulns",
        &gate.join("samples/scan-results").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // every suite of the bundle, unchanged, with the provider over the gate's sample results
    let o = palisade(&[
        "policy",
        "verify",
        &format!("{}/...", bundle.display()),
        "--vulns",
        &gate.join("samples/scan-results").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(" 0 failed, 0 errors"), "{}", stdout(&o));
}
