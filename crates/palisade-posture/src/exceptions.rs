//! Accepted risks: findings a team has decided to live with, each with a reason.
//!
//! Two ways to record one, both requiring a reason so an exception is never silent:
//! - the annotation `palisade.io/ignore` on the object itself (or on its Namespace, for every
//!   object in it): `pod.privileged,container.run-as-root: the CNI agent needs it`, several
//!   entries separated by `;` or new lines, `*` for every check, `check@container` for one container;
//! - an exceptions file (YAML) with resource patterns and an optional expiry date, after which the
//!   exception stops applying and a warning says so.

use crate::check::PostureFinding;
use palisade_kube::Inventory;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use time::Date;

/// The annotation key.
pub const IGNORE_ANNOTATION: &str = "palisade.io/ignore";

/// Why an exceptions file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionsError {
    #[error("cannot read exceptions file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid exceptions file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// An exceptions file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionsFile {
    #[serde(default)]
    pub exceptions: Vec<ExceptionRule>,
}

/// One accepted risk. Every pattern that is set must match (`*` wildcards allowed); unset
/// patterns match anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExceptionRule {
    /// Check ids (or patterns such as `rbac.*`); `check` is accepted for a single one.
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Why the risk is accepted; required.
    pub reason: String,
    /// Last day the exception applies (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl ExceptionsFile {
    pub fn load(path: &Path) -> Result<Self, ExceptionsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ExceptionsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ExceptionsError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and validates: every rule needs a check and a reason, and a valid expiry date.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(ExceptionsFile::default());
        }
        let file: ExceptionsFile = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
        for (i, rule) in file.exceptions.iter().enumerate() {
            if rule.check_patterns().next().is_none() {
                return Err(format!(
                    "exceptions[{i}]: name the check(s) with `checks` or `check` (`*` for all)"
                ));
            }
            if rule.reason.trim().is_empty() {
                return Err(format!("exceptions[{i}]: `reason` must not be empty"));
            }
            if let Some(e) = &rule.expires {
                parse_date(e).map_err(|m| format!("exceptions[{i}].expires: {m}"))?;
            }
        }
        Ok(file)
    }
}

impl ExceptionRule {
    fn check_patterns(&self) -> impl Iterator<Item = &str> {
        self.checks
            .iter()
            .map(String::as_str)
            .chain(self.check.as_deref())
    }

    fn matches(&self, f: &PostureFinding) -> bool {
        let r = &f.resource;
        self.check_patterns()
            .any(|p| wildcard_match(p, &f.check_id))
            && pattern_matches(self.cluster.as_deref(), r.cluster.as_deref())
            && pattern_matches(self.namespace.as_deref(), r.namespace.as_deref())
            && pattern_matches(self.kind.as_deref(), r.kind.as_deref())
            && pattern_matches(self.name.as_deref(), r.name.as_deref())
            && pattern_matches(self.container.as_deref(), r.container.as_deref())
    }
}

fn pattern_matches(pattern: Option<&str>, value: Option<&str>) -> bool {
    match pattern {
        None => true,
        Some(p) => wildcard_match(p, value.unwrap_or("")),
    }
}

fn parse_date(s: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &format).map_err(|e| format!("`{s}` is not a YYYY-MM-DD date ({e})"))
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A finding left out of the report, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    pub finding: PostureFinding,
    pub reason: String,
    /// `annotation on Deployment/prod/web` or `exceptions file rule 3`.
    pub source: String,
}

/// The result of applying exceptions.
#[derive(Debug, Default)]
pub struct Applied {
    pub kept: Vec<PostureFinding>,
    pub suppressed: Vec<Suppressed>,
    /// Malformed annotations, expired rules: worded for the person who wrote them.
    pub warnings: Vec<String>,
}

/// One parsed annotation entry.
#[derive(Debug, Clone, PartialEq)]
struct AnnotationEntry {
    check: String,
    container: Option<String>,
    reason: String,
}

/// Parses the annotation value; malformed entries become warnings and apply to nothing.
fn parse_annotation(value: &str, owner: &str, warnings: &mut Vec<String>) -> Vec<AnnotationEntry> {
    let mut entries = Vec::new();
    for raw in value.split(['\n', ';']) {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let Some((checks, reason)) = raw.split_once(':') else {
            warnings.push(format!(
                "{IGNORE_ANNOTATION} on {owner}: `{raw}` has no reason; write `CHECK[,CHECK…]: why` (not applied)"
            ));
            continue;
        };
        let reason = reason.trim();
        if reason.is_empty() {
            warnings.push(format!(
                "{IGNORE_ANNOTATION} on {owner}: the reason after `:` is empty for `{}` (not applied)",
                checks.trim()
            ));
            continue;
        }
        for check in checks.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (check, container) = match check.split_once('@') {
                Some((c, k)) => (c.trim(), Some(k.trim().to_string())),
                None => (check, None),
            };
            entries.push(AnnotationEntry {
                check: check.to_string(),
                container,
                reason: reason.to_string(),
            });
        }
    }
    entries
}

/// Splits findings into kept and suppressed. `today` decides expiry (pass the current UTC date).
pub fn apply(
    findings: Vec<PostureFinding>,
    inventory: &Inventory,
    file: Option<&ExceptionsFile>,
    today: Date,
) -> Applied {
    let mut out = Applied::default();
    // Annotations by object identity, and namespace-wide ones.
    let mut by_object: HashMap<(&str, Option<&str>, &str), Vec<AnnotationEntry>> = HashMap::new();
    let mut by_namespace: HashMap<&str, Vec<AnnotationEntry>> = HashMap::new();
    for o in &inventory.objects {
        let Some(value) = o.annotation(IGNORE_ANNOTATION) else {
            continue;
        };
        let entries = parse_annotation(value, &o.key(), &mut out.warnings);
        if entries.is_empty() {
            continue;
        }
        if o.kind == "Namespace" {
            by_namespace
                .entry(o.name.as_str())
                .or_default()
                .extend(entries.clone());
        }
        by_object
            .entry((o.kind.as_str(), o.namespace.as_deref(), o.name.as_str()))
            .or_default()
            .extend(entries);
    }
    // Rules still in force; expired ones are reported once.
    let mut active: Vec<(usize, &ExceptionRule)> = Vec::new();
    if let Some(file) = file {
        for (i, rule) in file.exceptions.iter().enumerate() {
            let expired = rule
                .expires
                .as_deref()
                .and_then(|e| parse_date(e).ok())
                .is_some_and(|d| d < today);
            if expired {
                out.warnings.push(format!(
                    "exception rule {} ({}) expired on {}: its findings are reported again",
                    i + 1,
                    rule.check_patterns().collect::<Vec<_>>().join(","),
                    rule.expires.as_deref().unwrap_or("")
                ));
            } else {
                active.push((i, rule));
            }
        }
    }

    for f in findings {
        let r = &f.resource;
        let kind = r.kind.as_deref().unwrap_or("");
        let name = r.name.as_deref().unwrap_or("");
        let entry_matches = |e: &&AnnotationEntry| {
            wildcard_match(&e.check, &f.check_id)
                && e.container
                    .as_deref()
                    .is_none_or(|c| r.container.as_deref() == Some(c))
        };
        let from_object = by_object
            .get(&(kind, r.namespace.as_deref(), name))
            .and_then(|es| es.iter().find(entry_matches))
            .map(|e| {
                (
                    e.reason.clone(),
                    format!("annotation on {}", object_label(&f)),
                )
            });
        let from_namespace = || {
            let ns = r.namespace.as_deref()?;
            by_namespace
                .get(ns)?
                .iter()
                .find(entry_matches)
                .map(|e| (e.reason.clone(), format!("annotation on Namespace/{ns}")))
        };
        let from_file = || {
            active
                .iter()
                .find(|(_, rule)| rule.matches(&f))
                .map(|(i, rule)| {
                    (
                        rule.reason.clone(),
                        format!("exceptions file rule {}", i + 1),
                    )
                })
        };
        match from_object.or_else(from_namespace).or_else(from_file) {
            Some((reason, source)) => out.suppressed.push(Suppressed {
                finding: f,
                reason,
                source,
            }),
            None => out.kept.push(f),
        }
    }
    out
}

fn object_label(f: &PostureFinding) -> String {
    let r = &f.resource;
    match &r.namespace {
        Some(ns) => format!(
            "{}/{}/{}",
            r.kind.as_deref().unwrap_or(""),
            ns,
            r.name.as_deref().unwrap_or("")
        ),
        None => format!(
            "{}/{}",
            r.kind.as_deref().unwrap_or(""),
            r.name.as_deref().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Category, Evidence};
    use palisade_core::{ResourceRef, Severity};
    use palisade_kube::KubeObject;
    use serde_json::json;

    fn finding(
        check: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        container: Option<&str>,
    ) -> PostureFinding {
        PostureFinding {
            check_id: check.to_string().into(),
            title: "t".into(),
            severity: Severity::High,
            category: Category::Workload,
            resource: ResourceRef {
                namespace: ns.map(Into::into),
                kind: Some(kind.into()),
                name: Some(name.into()),
                container: container.map(Into::into),
                ..Default::default()
            },
            message: "m".into(),
            evidence: vec![Evidence::new("spec", json!(null))],
            remediation: "r".into(),
            controls: vec![],
            source: None,
        }
    }

    fn inventory(objects: Vec<serde_json::Value>) -> Inventory {
        Inventory {
            objects: objects
                .into_iter()
                .map(|v| KubeObject::from_value(v, None).unwrap())
                .collect(),
            ..Default::default()
        }
    }

    fn today() -> Date {
        parse_date("2026-11-23").unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("rbac.*", "rbac.wildcard-verbs"));
        assert!(wildcard_match("web-*-x", "web-a-b-x"));
        assert!(!wildcard_match("web-*-x", "web-a-b-y"));
        assert!(wildcard_match("a*b*c", "abc"));
        assert!(!wildcard_match("pod.privileged", "pod.privileged2"));
    }

    #[test]
    fn annotation_needs_a_reason_and_scopes_to_containers() {
        let inv = inventory(vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "cni", "namespace": "net",
                     "annotations": {IGNORE_ANNOTATION: "pod.privileged, container.run-as-root@agent: the CNI agent needs it\ncontainer.read-only-root"}}})]);
        let applied = apply(
            vec![
                finding("pod.privileged", "Deployment", Some("net"), "cni", None),
                finding(
                    "container.run-as-root",
                    "Deployment",
                    Some("net"),
                    "cni",
                    Some("agent"),
                ),
                finding(
                    "container.run-as-root",
                    "Deployment",
                    Some("net"),
                    "cni",
                    Some("sidecar"),
                ),
                finding(
                    "container.read-only-root",
                    "Deployment",
                    Some("net"),
                    "cni",
                    Some("agent"),
                ),
                finding("pod.privileged", "Deployment", Some("other"), "cni", None),
            ],
            &inv,
            None,
            today(),
        );
        assert_eq!(applied.suppressed.len(), 2);
        assert_eq!(applied.suppressed[0].reason, "the CNI agent needs it");
        assert_eq!(applied.kept.len(), 3);
        assert_eq!(applied.warnings.len(), 1, "{:?}", applied.warnings);
        assert!(applied.warnings[0].contains("no reason"));
    }

    #[test]
    fn namespace_annotation_covers_its_objects() {
        let inv = inventory(vec![json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "lab", "annotations": {IGNORE_ANNOTATION: "*: throwaway lab"}}})]);
        let applied = apply(
            vec![
                finding("pod.privileged", "Pod", Some("lab"), "p", None),
                finding("pod.privileged", "Pod", Some("prod"), "p", None),
            ],
            &inv,
            None,
            today(),
        );
        assert_eq!(applied.suppressed.len(), 1);
        assert_eq!(applied.suppressed[0].source, "annotation on Namespace/lab");
        assert_eq!(applied.kept.len(), 1);
    }

    #[test]
    fn file_rules_match_patterns_and_expire() {
        let file = ExceptionsFile::parse(
            "exceptions:\n\
             - checks: [rbac.*]\n  kind: ServiceAccount\n  namespace: ci-*\n  reason: CI runners deploy\n\
             - check: pod.privileged\n  name: old\n  reason: legacy\n  expires: 2026-01-01\n",
        )
        .unwrap();
        let applied = apply(
            vec![
                finding(
                    "rbac.create-pods",
                    "ServiceAccount",
                    Some("ci-a"),
                    "runner",
                    None,
                ),
                finding(
                    "rbac.create-pods",
                    "ServiceAccount",
                    Some("prod"),
                    "runner",
                    None,
                ),
                finding("pod.privileged", "Pod", Some("x"), "old", None),
            ],
            &Inventory::default(),
            Some(&file),
            today(),
        );
        assert_eq!(applied.suppressed.len(), 1);
        assert_eq!(applied.suppressed[0].source, "exceptions file rule 1");
        assert_eq!(applied.kept.len(), 2);
        assert!(applied.warnings[0].contains("expired on 2026-01-01"));
    }

    #[test]
    fn invalid_files_are_rejected_with_a_reason() {
        assert!(
            ExceptionsFile::parse("exceptions:\n- check: x\n  reason: ''\n")
                .unwrap_err()
                .contains("reason")
        );
        assert!(
            ExceptionsFile::parse("exceptions:\n- reason: why\n")
                .unwrap_err()
                .contains("checks")
        );
        assert!(
            ExceptionsFile::parse("exceptions:\n- check: x\n  reason: y\n  expires: soon\n")
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
        assert!(
            ExceptionsFile::parse("exceptions:\n- check: x\n  reason: y\n  namespce: a\n").is_err()
        );
        assert!(ExceptionsFile::parse("").unwrap().exceptions.is_empty());
    }
}
