//! Posture reports: the human table (by resource or by check), the `palisade.posture/v1` JSON
//! and SARIF 2.1.0 with file and line for manifests.

use crate::output::sarif::{level, rule_name};
use comfy_table::{Cell, ContentArrangement, Table, presets};
use palisade_core::Severity;
use palisade_posture::exceptions::Suppressed;
use palisade_posture::{Category, PostureFinding};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// JSON schema id of [`PostureReport`]; bumped on incompatible changes.
pub const SCHEMA: &str = "palisade.posture/v1";

/// What was scanned.
#[derive(Debug, Clone, Serialize)]
pub struct ReportTarget {
    /// `manifests` or `cluster`.
    pub kind: &'static str,
    /// Paths joined, or the cluster name.
    pub name: String,
}

/// Everything a posture scan produced.
#[derive(Debug, Clone, Serialize)]
pub struct PostureReport {
    pub schema: &'static str,
    pub target: ReportTarget,
    /// Objects in the inventory.
    pub objects: usize,
    pub summary: Summary,
    pub findings: Vec<PostureFinding>,
    pub suppressed: Vec<Suppressed>,
    /// Skipped documents, forbidden kinds, expired exceptions.
    pub warnings: Vec<String>,
    /// Documents that could not be parsed (the scan exits 2 when there are any).
    pub errors: Vec<String>,
}

/// Counts for dashboards and CI logs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub total: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    pub by_category: BTreeMap<&'static str, usize>,
    pub by_check: BTreeMap<String, usize>,
    pub resources: usize,
    pub suppressed: usize,
}

impl PostureReport {
    pub fn new(
        target: ReportTarget,
        objects: usize,
        findings: Vec<PostureFinding>,
        suppressed: Vec<Suppressed>,
        warnings: Vec<String>,
        errors: Vec<String>,
    ) -> Self {
        let mut summary = Summary {
            total: findings.len(),
            by_severity: Severity::ALL.iter().map(|s| (*s, 0)).collect(),
            suppressed: suppressed.len(),
            ..Default::default()
        };
        let mut resources = std::collections::BTreeSet::new();
        for f in &findings {
            *summary.by_severity.entry(f.severity).or_default() += 1;
            *summary.by_category.entry(f.category.as_str()).or_default() += 1;
            *summary.by_check.entry(f.check_id.to_string()).or_default() += 1;
            resources.insert(resource_label(f));
        }
        summary.resources = resources.len();
        PostureReport {
            schema: SCHEMA,
            target,
            objects,
            summary,
            findings,
            suppressed,
            warnings,
            errors,
        }
    }

    /// Whether a reported finding is at least `threshold` (`--fail-on`).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= threshold)
    }
}

/// `Deployment prod/web`, `ClusterRole admin`, `ServiceAccount ci/runner`.
pub fn resource_label(f: &PostureFinding) -> String {
    let r = &f.resource;
    let kind = r.kind.as_deref().unwrap_or("?");
    let name = r.name.as_deref().unwrap_or("?");
    match &r.namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn location(f: &PostureFinding) -> Option<String> {
    f.source.as_ref().map(|s| format!("{}:{}", s.file, s.line))
}

/// How the table groups findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    Resource,
    Check,
}

/// A borderless-enough table for terminals, wrapped at 160 columns.
pub(crate) fn new_table<S: AsRef<str>>(header: impl IntoIterator<Item = S>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_width(160);
    t.set_header(header.into_iter().map(|h| Cell::new(h.as_ref())));
    t
}

/// Renders the human report.
pub fn render_table(r: &PostureReport, group_by: GroupBy) -> String {
    let mut out = String::new();
    outln!(
        out,
        "{} {} — {} objects",
        r.target.kind,
        r.target.name,
        r.objects
    );
    if r.findings.is_empty() {
        outln!(out, "No findings.");
    } else {
        match group_by {
            GroupBy::Resource => by_resource(r, &mut out),
            GroupBy::Check => by_check(r, &mut out),
        }
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            let n = r.summary.by_severity.get(s).copied().unwrap_or(0);
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    outln!(
        out,
        "\n{} findings on {} resources{}{}",
        r.summary.total,
        r.summary.resources,
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        },
        if r.summary.suppressed > 0 {
            format!("; {} suppressed by exceptions", r.summary.suppressed)
        } else {
            String::new()
        }
    );
    for w in &r.warnings {
        outln!(out, "warning: {w}");
    }
    for e in &r.errors {
        outln!(out, "error: {e}");
    }
    out
}

fn by_resource(r: &PostureReport, out: &mut String) {
    let mut groups: BTreeMap<(String, String), Vec<&PostureFinding>> = BTreeMap::new();
    for f in &r.findings {
        groups
            .entry((resource_label(f), location(f).unwrap_or_default()))
            .or_default()
            .push(f);
    }
    // Most severe resources first.
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| {
        let max = |v: &Vec<&PostureFinding>| v.iter().map(|f| f.severity).max();
        max(&b.1).cmp(&max(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    for ((label, loc), findings) in groups {
        outln!(out, "");
        if loc.is_empty() {
            outln!(out, "{label}");
        } else {
            outln!(out, "{label}  ({loc})");
        }
        let mut t = new_table(["SEVERITY", "CHECK", "CONTAINER", "FINDING"]);
        for f in findings {
            t.add_row(vec![
                f.severity.as_str().to_uppercase(),
                f.check_id.to_string(),
                f.resource.container.clone().unwrap_or_default(),
                f.message.clone(),
            ]);
        }
        outln!(out, "{t}");
    }
}

fn by_check(r: &PostureReport, out: &mut String) {
    let mut groups: BTreeMap<&str, Vec<&PostureFinding>> = BTreeMap::new();
    for f in &r.findings {
        groups.entry(f.check_id.as_ref()).or_default().push(f);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| {
        b.1[0]
            .severity
            .cmp(&a.1[0].severity)
            .then_with(|| a.0.cmp(b.0))
    });
    for (check, findings) in groups {
        let first = findings[0];
        outln!(
            out,
            "\n{} [{}] {} — {} resource(s)",
            first.severity.as_str().to_uppercase(),
            check,
            first.title,
            findings.len()
        );
        if !first.controls.is_empty() {
            outln!(out, "  controls: {}", first.controls.join("; "));
        }
        outln!(out, "  fix: {}", first.remediation);
        let mut t = new_table(["RESOURCE", "CONTAINER", "WHERE", "FINDING"]);
        for f in findings {
            t.add_row(vec![
                resource_label(f),
                f.resource.container.clone().unwrap_or_default(),
                location(f).unwrap_or_default(),
                f.message.clone(),
            ]);
        }
        outln!(out, "{t}");
    }
}

/// The `palisade.posture/v1` document.
/// The `palisade.posture/v1` document, serialised straight from the report (no intermediate
/// JSON tree: a large cluster has hundreds of thousands of findings).
pub fn render_json(r: &PostureReport) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(r)?;
    s.push('\n');
    Ok(s)
}

/// A representative CVSS-like score for SARIF `security-severity`.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Informational | Severity::Unknown => "0.0",
    }
}

/// SARIF 2.1.0: one rule per check, one result per finding, located at the manifest file and line
/// (or, for live objects, at a logical location `kind/namespace/name`). Results are serialised
/// straight from the findings, so memory stays proportional to the report, not to a JSON tree.
pub fn render_sarif(r: &PostureReport) -> Result<String, serde_json::Error> {
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules: Vec<Value> = Vec::new();
    for f in &r.findings {
        if index.contains_key(f.check_id.as_ref()) {
            continue;
        }
        index.insert(&f.check_id, rules.len());
        let mut help = format!("{}\n\nRemediation: {}", f.title, f.remediation);
        if !f.controls.is_empty() {
            help.push_str(&format!("\nControls: {}", f.controls.join("; ")));
        }
        rules.push(json!({
            "id": f.check_id,
            "name": rule_name(&f.check_id),
            "shortDescription": {"text": f.title},
            "fullDescription": {"text": f.title},
            "help": {"text": help},
            "defaultConfiguration": {"level": level(f.severity)},
            "properties": {
                "security-severity": security_severity(f.severity),
                "tags": ["security", "kubernetes", category_tag(f.category), f.severity.as_str()],
            },
        }));
    }
    let log = SarifLog {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [SarifRun {
            tool: json!({"driver": {
                "name": "palisade",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/palisade",
                "rules": rules,
            }}),
            results: SarifResults {
                findings: &r.findings,
                index: &index,
            },
            properties: json!({"target": r.target.name, "kind": r.target.kind}),
        }],
    };
    let mut s = serde_json::to_string_pretty(&log)?;
    s.push('\n');
    Ok(s)
}

#[derive(Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [SarifRun<'a>; 1],
}

#[derive(Serialize)]
struct SarifRun<'a> {
    tool: Value,
    results: SarifResults<'a>,
    properties: Value,
}

struct SarifResults<'a> {
    findings: &'a [PostureFinding],
    index: &'a BTreeMap<&'a str, usize>,
}

impl Serialize for SarifResults<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.findings.len()))?;
        for f in self.findings {
            let physical = f
                .source
                .as_ref()
                .filter(|s| s.file != "-")
                .map(|src| Physical {
                    artifact_location: Uri {
                        uri: src.file.trim_start_matches("./"),
                    },
                    region: Region {
                        start_line: src.line.max(1),
                    },
                });
            seq.serialize_element(&SarifResult {
                rule_id: &f.check_id,
                rule_index: self.index.get(f.check_id.as_ref()).copied().unwrap_or(0),
                level: level(f.severity),
                message: Text {
                    text: format!("{}: {}", resource_label(f), f.message),
                },
                locations: [Location {
                    physical_location: physical,
                    logical_locations: [Logical {
                        fully_qualified_name: logical_name(f),
                        kind: "resource",
                    }],
                }],
                properties: ResultProperties {
                    evidence: &f.evidence,
                    container: f.resource.container.as_deref(),
                    controls: &f.controls,
                },
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: [Location<'a>; 1],
    properties: ResultProperties<'a>,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    physical_location: Option<Physical<'a>>,
    logical_locations: [Logical; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Physical<'a> {
    artifact_location: Uri<'a>,
    region: Region,
}

#[derive(Serialize)]
struct Uri<'a> {
    uri: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Logical {
    fully_qualified_name: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct ResultProperties<'a> {
    evidence: &'a [palisade_posture::Evidence],
    container: Option<&'a str>,
    controls: &'a [std::borrow::Cow<'static, str>],
}

fn category_tag(c: Category) -> &'static str {
    c.as_str()
}

fn logical_name(f: &PostureFinding) -> String {
    let r = &f.resource;
    let mut s = String::new();
    if let Some(c) = &r.cluster {
        s.push_str(c);
        s.push(':');
    }
    s.push_str(r.kind.as_deref().unwrap_or("?"));
    s.push('/');
    if let Some(ns) = &r.namespace {
        s.push_str(ns);
        s.push('/');
    }
    s.push_str(r.name.as_deref().unwrap_or("?"));
    if let Some(c) = &r.container {
        s.push('#');
        s.push_str(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::ResourceRef;
    use palisade_posture::{Evidence, SourceLocation};

    fn finding(check: &str, severity: Severity, file: Option<&str>) -> PostureFinding {
        PostureFinding {
            check_id: check.to_string().into(),
            title: format!("title of {check}").into(),
            severity,
            category: Category::Workload,
            resource: ResourceRef {
                namespace: Some("prod".into()),
                kind: Some("Deployment".into()),
                name: Some("web".into()),
                container: Some("app".into()),
                ..Default::default()
            },
            message: "runs privileged".into(),
            evidence: vec![Evidence::new(
                "spec.template.spec.containers[0].securityContext.privileged",
                true,
            )],
            remediation: "set privileged: false".into(),
            controls: vec!["CIS 5.2.2".into()],
            source: file.map(|f| SourceLocation::new(f, 12, 1)),
        }
    }

    fn report() -> PostureReport {
        PostureReport::new(
            ReportTarget {
                kind: "manifests",
                name: "deploy/".into(),
            },
            3,
            vec![
                finding("pod.privileged", Severity::High, Some("./deploy/web.yaml")),
                finding("container.latest-tag", Severity::Low, None),
            ],
            vec![],
            vec!["skipped values.yaml".into()],
            vec![],
        )
    }

    #[test]
    fn summary_counts_and_fail_on() {
        let r = report();
        assert_eq!(r.summary.total, 2);
        assert_eq!(r.summary.resources, 1);
        assert_eq!(r.summary.by_severity[&Severity::High], 1);
        assert!(r.fails(Severity::High));
        assert!(!r.fails(Severity::Critical));
    }

    #[test]
    fn sarif_points_at_file_and_line() {
        let s: Value = serde_json::from_str(&render_sarif(&report()).unwrap()).unwrap();
        let results = s["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        let loc = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "deploy/web.yaml");
        assert_eq!(loc["region"]["startLine"], 12);
        assert!(results[1]["locations"][0].get("physicalLocation").is_none());
        assert_eq!(
            results[1]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "Deployment/prod/web#app"
        );
        assert_eq!(
            s["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn tables_group_both_ways() {
        let r = report();
        let t = render_table(&r, GroupBy::Resource);
        assert!(
            t.contains("Deployment prod/web  (./deploy/web.yaml:12)"),
            "{t}"
        );
        assert!(
            t.contains("2 findings on 1 resources (1 high, 1 low)"),
            "{t}"
        );
        assert!(t.contains("warning: skipped values.yaml"));
        let t = render_table(&r, GroupBy::Check);
        assert!(
            t.contains("HIGH [pod.privileged] title of pod.privileged — 1 resource(s)"),
            "{t}"
        );
        assert!(t.contains("controls: CIS 5.2.2"));
        let j: Value = serde_json::from_str(&render_json(&r).unwrap()).unwrap();
        assert_eq!(j["schema"], SCHEMA);
        assert_eq!(j["findings"][0]["evidence"][0]["value"], true);
    }
}
