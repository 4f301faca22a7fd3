//! The vulnerability gate end to end through the policy engine: the bundle's
//! `PalisadeVulnerabilityGate` template, a constraint, and the `palisade-vulnerabilities`
//! provider reading a directory of `palisade.scan/v1` reports.

use palisade_kube::KubeObject;
use palisade_policy::bundle::{self, ExportOptions};
use palisade_policy::vulngate::VulnerabilityProvider;
use palisade_policy::{
    EnforcementAction, EnforcementPoint, PolicySet, PolicySettings, ReviewRequest, Violation,
};
use palisade_posture::PostureConfig;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn report(name: &str, digest: &str, vulns: &[(&str, &[&str], &str, Option<&str>)]) -> String {
    let vulnerabilities: Vec<Value> = vulns
        .iter()
        .map(|(id, aliases, severity, fixed)| {
            json!({"id": id, "aliases": aliases,
                "package": {"name": "openssl", "version": "3.0.11-1", "ecosystem": "Deb",
                    "purl": "pkg:deb/debian/openssl@3.0.11-1", "source_name": "openssl",
                    "location": {"layer_digest": "sha256:1f0e", "path": "/var/lib/dpkg/status"}},
                "installed_version": "3.0.11-1", "fixed_version": fixed,
                "status": if fixed.is_some() { "fixed" } else { "not_fixed" },
                "severity": severity,
                "cvss": [{"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "base_score": 9.8}],
                "summary": "memory corruption", "references": [], "sources": ["debian-tracker"],
                "published": "2024-03-01T00:00:00Z"})
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "schema": "palisade.scan/v1",
        "target": {"kind": "image", "name": name, "digest": digest, "platform": "linux/amd64",
            "layers": ["sha256:1f0e"]},
        "distro": {"id": "debian", "version_id": "12", "codename": "bookworm"},
        "db": {"built_at": "2026-11-20T06:00:00Z", "sources": []},
        "summary": {"packages": 1, "vulnerabilities": vulns.len(), "ignored": 0,
            "by_severity": {"critical": 0, "high": 0, "medium": 0, "low": 0, "informational": 0, "unknown": 0}},
        "packages": [], "vulnerabilities": vulnerabilities, "ignored": [], "warnings": []
    }))
    .unwrap()
}

fn results_dir(dir: &Path) {
    std::fs::write(
        dir.join("api.json"),
        report(
            "registry.example.com/shop/api:2.1.0",
            "sha256:aaaa",
            &[
                ("CVE-2024-1111", &[], "critical", Some("3.0.13-1")),
                ("CVE-2024-2222", &[], "medium", None),
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("web.json"),
        report(
            "registry.example.com/shop/web:1.4.2",
            "sha256:bbbb",
            &[(
                "GHSA-xxxx-yyyy-zzzz",
                &["CVE-2024-3333"],
                "low",
                Some("1.2.4"),
            )],
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("clean.json"),
        report("registry.example.com/shop/clean:1.0.0", "sha256:cccc", &[]),
    )
    .unwrap();
}

fn deployment(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": containers}}}})
}

struct Gate {
    set: PolicySet,
}

impl Gate {
    fn new(dir: &Path, parameters: Value) -> Gate {
        let provider = Arc::new(VulnerabilityProvider::new(dir, Duration::ZERO).unwrap());
        let config = PostureConfig::from_yaml("enabledChecks: [none]").unwrap();
        let options = ExportOptions {
            enforcement_action: EnforcementAction::Deny,
            vulnerability_gate: Some(parameters),
        };
        let mut objects = bundle::bundle_objects();
        let constraints = bundle::constraints(&config, &options).unwrap();
        assert_eq!(constraints.len(), 1, "only the gate's constraint");
        objects.extend(constraints);
        let settings = PolicySettings {
            providers: vec![provider],
            ..PolicySettings::default()
        };
        let (set, _) = PolicySet::compile(&objects, &[], &settings).unwrap();
        Gate { set }
    }

    fn review(&self, object: Value) -> Vec<Violation> {
        let object = KubeObject::from_value(object, None).unwrap();
        let review = ReviewRequest::from_object(object.value).unwrap();
        self.set
            .evaluator()
            .review(&review, EnforcementPoint::Webhook)
            .unwrap()
    }
}

#[test]
fn gates_on_severity_and_denied_cves() {
    let dir = tempfile::tempdir().unwrap();
    results_dir(dir.path());
    let gate = Gate::new(dir.path(), json!({"minSeverity": "high"}));
    let v = gate.review(deployment(&["registry.example.com/shop/api:2.1.0"]));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].check_id.as_deref(), Some("image.vulnerabilities"));
    assert_eq!(v[0].action, EnforcementAction::Deny);
    assert_eq!(v[0].details["container"], json!("c0"));
    assert!(
        v[0].message
            .contains("CVE-2024-1111 (critical, fixed in 3.0.13-1)"),
        "{}",
        v[0].message
    );
    assert!(!v[0].message.contains("CVE-2024-2222"), "{}", v[0].message);
    // Low findings pass at minSeverity high; a clean image passes.
    assert!(
        gate.review(deployment(&[
            "registry.example.com/shop/web:1.4.2",
            "registry.example.com/shop/clean:1.0.0"
        ]))
        .is_empty()
    );
    // A denied CVE gates whatever its severity, also when named as an alias.
    let gate = Gate::new(
        dir.path(),
        json!({"minSeverity": "critical", "deniedCves": ["CVE-2024-3333"]}),
    );
    let v = gate.review(deployment(&["registry.example.com/shop/web:1.4.2"]));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.contains("GHSA-xxxx-yyyy-zzzz"),
        "{}",
        v[0].message
    );
    // Digests are looked up by digest, whatever the name.
    let gate = Gate::new(dir.path(), json!({"minSeverity": "critical"}));
    assert_eq!(
        gate.review(deployment(&["mirror.example.net/api@sha256:aaaa"]))
            .len(),
        1
    );
}

#[test]
fn exemptions_apply_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    results_dir(dir.path());
    let image = "registry.example.com/shop/api:2.1.0";
    let live = json!({"minSeverity": "high", "exemptions": [
        {"cve": "CVE-2024-1111", "image": "registry.example.com/shop/*", "expires": "2099-01-01T00:00:00Z", "reason": "fix ships next sprint"}]});
    assert!(
        Gate::new(dir.path(), live)
            .review(deployment(&[image]))
            .is_empty()
    );
    let expired = json!({"minSeverity": "high", "exemptions": [
        {"cve": "CVE-2024-1111", "expires": "2020-01-01T00:00:00Z", "reason": "expired"}]});
    assert_eq!(
        Gate::new(dir.path(), expired)
            .review(deployment(&[image]))
            .len(),
        1
    );
    // An exemption for another image does not apply; an image-wide one does.
    let other = json!({"minSeverity": "high", "exemptions": [
        {"cve": "CVE-2024-1111", "image": "registry.example.com/other/*", "expires": "2099-01-01T00:00:00Z", "reason": "x"}]});
    assert_eq!(
        Gate::new(dir.path(), other)
            .review(deployment(&[image]))
            .len(),
        1
    );
    let whole = json!({"minSeverity": "low", "exemptions": [
        {"image": image, "expires": "2099-01-01T00:00:00Z", "reason": "vendor image, accepted risk"}]});
    assert!(
        Gate::new(dir.path(), whole)
            .review(deployment(&[image]))
            .is_empty()
    );
}

#[test]
fn unscanned_images_follow_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    results_dir(dir.path());
    let unknown = "registry.example.com/shop/new:0.1.0";
    assert!(
        Gate::new(dir.path(), json!({"unscannedImages": "allow"}))
            .review(deployment(&[unknown]))
            .is_empty()
    );
    let deny = Gate::new(dir.path(), json!({"unscannedImages": "deny"}));
    let v = deny.review(deployment(&[
        unknown,
        "registry.example.com/shop/clean:1.0.0",
    ]));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].message.contains("no scan result"), "{}", v[0].message);
    // Once a report for it lands in the directory, it is scanned (and clean).
    std::fs::write(
        dir.path().join("new.json"),
        report(unknown, "sha256:dddd", &[]),
    )
    .unwrap();
    assert!(deny.review(deployment(&[unknown])).is_empty());
    // Exempted unscanned images pass.
    let exempt = json!({"unscannedImages": "deny", "exemptions": [
        {"image": "registry.example.com/vendor/*", "expires": "2099-01-01T00:00:00Z", "reason": "vendor scans"}]});
    assert!(
        Gate::new(dir.path(), exempt)
            .review(deployment(&["registry.example.com/vendor/agent:3"]))
            .is_empty()
    );
}

#[test]
fn gates_pods_and_init_containers() {
    let dir = tempfile::tempdir().unwrap();
    results_dir(dir.path());
    let gate = Gate::new(dir.path(), json!({"minSeverity": "critical"}));
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"initContainers": [{"name": "migrate", "image": "registry.example.com/shop/api:2.1.0"}],
                 "containers": [{"name": "web", "image": "registry.example.com/shop/clean:1.0.0"}]}});
    let v = gate.review(pod);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].details["container"], json!("migrate"));
    assert!(v[0].message.contains("Pod shop/p"), "{}", v[0].message);
}
