//! `palisade policy test` (manifests, as `gator test`) and `palisade policy audit` (Gatekeeper's
//! audit: every object of the kinds the constraints match, from manifests or a live cluster):
//! the human table, `palisade.policy/v1` JSON and SARIF 2.1.0.

use super::{AuditArgs, EvalArgs, FailOn, PolicyFormat, TestArgs, load_objects};
use crate::output::sarif::rule_name;
use crate::posture::report::new_table;
use crate::scan::emit;
use crate::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use anyhow::{Context, Result};
use comfy_table::Cell;
use palisade_core::Severity;
use palisade_kube::KubeObject;
use palisade_policy::{
    EnforcementAction, EnforcementPoint, PolicySet, PolicySettings, ReviewRequest, Violation,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// JSON schema id of the test and audit reports.
pub const SCHEMA: &str = "palisade.policy/v1";
const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// One violation of one object.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `Kind namespace/name` of the object.
    pub object: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// `file:line` of a manifest object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(flatten)]
    pub violation: Violation,
}

/// Everything `test` or `audit` found.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub schema: &'static str,
    /// `test` or `audit`.
    pub command: &'static str,
    /// Manifest paths or the cluster.
    pub target: String,
    pub templates: usize,
    pub constraints: usize,
    pub objects: usize,
    /// Violations per constraint (`Kind/name`), as Gatekeeper's `status.totalViolations`.
    pub totals: BTreeMap<String, usize>,
    pub violations: Vec<Row>,
    /// Policy warnings, skipped kinds.
    pub warnings: Vec<String>,
    /// Unreadable manifests, policies that do not compile, evaluations that failed (exit 2).
    pub errors: Vec<String>,
}

impl PolicyReport {
    fn fails(&self, fail_on: FailOn) -> bool {
        self.violations.iter().any(|r| match fail_on {
            FailOn::Action(a) => r.violation.action >= a,
            FailOn::Severity(s) => r.violation.severity.is_some_and(|v| v >= s),
            FailOn::Never => false,
        })
    }
}

fn settings(args: &EvalArgs) -> Result<PolicySettings> {
    Ok(PolicySettings {
        exempt_namespaces: args.exempt_namespace.clone(),
        providers: super::providers(args.vulns.as_deref())?,
        ..PolicySettings::default()
    })
}

fn object_ref(o: &KubeObject) -> String {
    match &o.namespace {
        Some(ns) => format!("{} {ns}/{}", o.kind, o.name),
        None => format!("{} {}", o.kind, o.name),
    }
}

/// Reviews every object; evaluation errors are collected, the review goes on.
fn review_objects(
    set: &PolicySet,
    objects: &[KubeObject],
    point: EnforcementPoint,
    report: &mut PolicyReport,
) {
    let mut evaluator = set.evaluator();
    for c in set.constraints() {
        report
            .totals
            .entry(format!("{}/{}", c.kind, c.name))
            .or_insert(0);
    }
    for o in objects {
        let request = match ReviewRequest::from_object(o.value.clone()) {
            Ok(r) => r,
            Err(e) => {
                report.errors.push(format!("{}: {e}", object_ref(o)));
                continue;
            }
        };
        let outcome = evaluator.review_all(&request, point);
        for e in outcome.errors {
            report.errors.push(format!("{}: {e}", object_ref(o)));
        }
        for v in outcome.violations {
            *report
                .totals
                .entry(format!("{}/{}", v.constraint_kind, v.constraint_name))
                .or_insert(0) += 1;
            report.violations.push(Row {
                object: object_ref(o),
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                location: o.source.as_ref().map(|s| format!("{}:{}", s.file, s.line)),
                violation: v,
            });
        }
    }
}

/// Compiles; compile errors go to the report (and the caller stops).
fn compile(
    policies: &[KubeObject],
    inventory: &[KubeObject],
    args: &EvalArgs,
    report: &mut PolicyReport,
) -> Option<PolicySet> {
    let settings = match settings(args) {
        Ok(s) => s,
        Err(e) => {
            report.errors.push(format!("{e:#}"));
            return None;
        }
    };
    match PolicySet::compile(policies, inventory, &settings) {
        Ok((set, warnings)) => {
            report
                .warnings
                .extend(warnings.iter().map(ToString::to_string));
            report.templates = set.templates().count();
            report.constraints = set.constraints().len();
            Some(set)
        }
        Err(errors) => {
            report.errors.extend(errors.iter().map(ToString::to_string));
            None
        }
    }
}

fn is_policy_object(o: &KubeObject) -> bool {
    let group = o.group();
    group == "templates.gatekeeper.sh"
        || group == "constraints.gatekeeper.sh"
        || (group == "config.gatekeeper.sh" && o.kind == "Config")
}

fn new_report(command: &'static str, target: String) -> PolicyReport {
    PolicyReport {
        schema: SCHEMA,
        command,
        target,
        templates: 0,
        constraints: 0,
        objects: 0,
        totals: BTreeMap::new(),
        violations: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    }
}

fn joined(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Policy objects from `-p` paths; other kinds there are passed over with a warning.
fn policies_from_paths(args: &EvalArgs, report: &mut PolicyReport) -> Result<Vec<KubeObject>> {
    if args.policies.is_empty() {
        return Ok(Vec::new());
    }
    let (objects, errors) = load_objects(&args.policies)?;
    report.errors.extend(errors);
    let (policies, others): (Vec<_>, Vec<_>) = objects.into_iter().partition(is_policy_object);
    for o in others {
        report.warnings.push(format!(
            "{}: {} is not a policy object; ignored",
            o.source
                .as_ref()
                .map(|s| format!("{}:{}", s.file, s.line))
                .unwrap_or_default(),
            object_ref(&o)
        ));
    }
    Ok(policies)
}

pub fn cmd_test(args: &TestArgs) -> Result<u8> {
    let mut report = new_report("test", joined(&args.manifests));
    let policies = policies_from_paths(&args.eval, &mut report)?;
    if policies.is_empty() && report.errors.is_empty() {
        report
            .errors
            .push("no ConstraintTemplate or Constraint given (-p PATH)".into());
    }
    let (objects, errors) = load_objects(&args.manifests)?;
    report.errors.extend(errors);
    // Manifests are the data.inventory of referential templates, as in `gator test`.
    if report.errors.is_empty()
        && let Some(set) = compile(&policies, &objects, &args.eval, &mut report)
    {
        report.objects = objects.len();
        review_objects(&set, &objects, EnforcementPoint::Gator, &mut report);
    }
    finish(&report, &args.eval)
}

pub fn cmd_audit(args: &AuditArgs) -> Result<u8> {
    let target = if args.cluster || args.from_cluster {
        args.cluster_args
            .context
            .clone()
            .map(|c| format!("cluster {c}"))
            .unwrap_or_else(|| "cluster".into())
    } else {
        joined(&args.manifests)
    };
    let mut report = new_report("audit", target);
    let mut policies = policies_from_paths(&args.eval, &mut report)?;
    if !args.cluster && args.manifests.is_empty() {
        anyhow::bail!("give manifests to audit, or --cluster");
    }
    if args.cluster && !args.manifests.is_empty() {
        anyhow::bail!("--cluster audits the cluster's objects: give no manifests with it");
    }
    let mut objects = Vec::new();
    if args.cluster || args.from_cluster {
        let options = palisade_kube::live::ClusterOptions {
            kubeconfig: args.cluster_args.kubeconfig.clone(),
            context: args.cluster_args.context.clone(),
            namespace: None,
            page_size: args.cluster_args.page_size,
            cluster_name: args.cluster_args.cluster_name.clone(),
        };
        let rt = crate::runtime()?;
        if args.from_cluster {
            let (cluster_policies, namespaces) = rt
                .block_on(palisade_policy::live::read_policies(&options))
                .context("reading policies from the cluster")?;
            policies.extend(cluster_policies);
            if !args.cluster {
                objects.extend(namespaces);
            }
        }
        if args.cluster {
            // Compile once without data to learn which kinds to list.
            let Some(probe) = compile(&policies, &[], &args.eval, &mut report) else {
                return finish(&report, &args.eval);
            };
            let inventory = rt
                .block_on(palisade_policy::live::read_matched_objects(
                    &options, &probe,
                ))
                .context("reading the cluster")?;
            report.warnings.extend(inventory.warnings);
            objects.extend(inventory.objects);
        }
    }
    if !args.manifests.is_empty() {
        let (manifest_objects, errors) = load_objects(&args.manifests)?;
        report.errors.extend(errors);
        objects.extend(manifest_objects);
    }
    if policies.is_empty() && report.errors.is_empty() {
        report
            .errors
            .push("no ConstraintTemplate or Constraint given (-p PATH or --from-cluster)".into());
    }
    if report.errors.is_empty()
        && let Some(set) = compile(&policies, &objects, &args.eval, &mut report)
    {
        report.objects = objects.len();
        review_objects(&set, &objects, EnforcementPoint::Audit, &mut report);
    }
    finish(&report, &args.eval)
}

fn finish(report: &PolicyReport, args: &EvalArgs) -> Result<u8> {
    let text = match args.format {
        PolicyFormat::Table => render_table(report),
        PolicyFormat::Json => pretty(&serde_json::to_value(report)?)?,
        PolicyFormat::Sarif => pretty(&render_sarif(report))?,
    };
    emit(args.output.as_deref(), &text)?;
    if !report.errors.is_empty() {
        if args.format != PolicyFormat::Table || args.output.is_some() {
            for e in &report.errors {
                eprintln!("error: {e}");
            }
        }
        return Ok(EXIT_ERROR);
    }
    Ok(if report.fails(args.fail_on) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

fn pretty(v: &Value) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s)
}

fn render_table(r: &PolicyReport) -> String {
    let mut out = String::new();
    outln!(
        out,
        "policy {} {} — {} template(s), {} constraint(s), {} object(s)",
        r.command,
        r.target,
        r.templates,
        r.constraints,
        r.objects
    );
    for e in &r.errors {
        outln!(out, "error: {e}");
    }
    for w in &r.warnings {
        outln!(out, "warning: {w}");
    }
    if r.violations.is_empty() {
        if r.errors.is_empty() {
            outln!(out, "no violations");
        }
        return out;
    }
    let mut t = new_table(["Action", "Constraint", "Object", "Message"]);
    for row in &r.violations {
        let object = match &row.location {
            Some(l) => format!("{}\n{l}", row.object),
            None => row.object.clone(),
        };
        t.add_row(vec![
            Cell::new(row.violation.action.as_str()),
            Cell::new(format!(
                "{}/{}",
                row.violation.constraint_kind, row.violation.constraint_name
            )),
            Cell::new(object),
            Cell::new(&row.violation.message),
        ]);
    }
    outln!(out, "{t}");
    let mut by_action: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &r.violations {
        *by_action.entry(row.violation.action.as_str()).or_default() += 1;
    }
    let summary = by_action
        .iter()
        .map(|(a, n)| format!("{n} {a}"))
        .collect::<Vec<_>>()
        .join(", ");
    outln!(out, "{} violation(s): {summary}", r.violations.len());
    out
}

/// SARIF level of a violation: deny → error, warn → warning, dryrun → note.
fn level(action: EnforcementAction) -> &'static str {
    match action {
        EnforcementAction::Deny => "error",
        EnforcementAction::Warn => "warning",
        EnforcementAction::Dryrun => "note",
    }
}

fn security_severity(s: Option<Severity>, action: EnforcementAction) -> &'static str {
    match (s, action) {
        (Some(Severity::Critical), _) => "9.5",
        (Some(Severity::High), _) => "8.0",
        (Some(Severity::Medium), _) => "5.5",
        (Some(Severity::Low), _) => "3.0",
        (Some(_), _) => "1.0",
        (None, EnforcementAction::Deny) => "7.0",
        (None, EnforcementAction::Warn) => "5.0",
        (None, EnforcementAction::Dryrun) => "2.0",
    }
}

fn render_sarif(r: &PolicyReport) -> Value {
    // One rule per constraint (its check id when it has one), in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    let rule_id = |v: &Violation| {
        v.check_id
            .clone()
            .unwrap_or_else(|| format!("{}/{}", v.constraint_kind, v.constraint_name))
    };
    for row in &r.violations {
        let v = &row.violation;
        let id = rule_id(v);
        if rules.contains_key(&id) {
            continue;
        }
        let text = format!(
            "Constraint {} {} (template {})",
            v.constraint_kind, v.constraint_name, v.template
        );
        rules.insert(
            id.clone(),
            json!({
                "id": id,
                "name": rule_name(&id),
                "shortDescription": {"text": text},
                "defaultConfiguration": {"level": level(v.action)},
                "properties": {
                    "security-severity": security_severity(v.severity, v.action),
                    "tags": ["security", "policy", v.action.as_str()],
                },
            }),
        );
        order.push(id);
    }
    let index: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let results: Vec<Value> = r
        .violations
        .iter()
        .map(|row| {
            let v = &row.violation;
            let id = rule_id(v);
            let mut result = json!({
                "ruleId": id,
                "ruleIndex": index.get(id.as_str()).copied().unwrap_or(0),
                "level": level(v.action),
                "message": {"text": format!("{}: {}", row.object, v.message)},
                "properties": {
                    "constraint": format!("{}/{}", v.constraint_kind, v.constraint_name),
                    "enforcementAction": v.action.as_str(),
                    "object": row.object,
                },
            });
            let (uri, line) = match row.location.as_deref().and_then(|l| l.rsplit_once(':')) {
                Some((file, line)) => (file.to_string(), line.parse::<u64>().unwrap_or(1)),
                None => (format!("cluster/{}", row.object.replace(' ', "/")), 1),
            };
            result["locations"] = json!([{
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": line.max(1)},
                },
            }]);
            if !v.details.is_null() {
                result["properties"]["details"] = v.details.clone();
            }
            result
        })
        .collect();
    let rule_list: Vec<Value> = order.iter().filter_map(|id| rules.remove(id)).collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "informationUri": "https://example.invalid/palisade",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_list,
            }},
            "results": results,
        }],
    })
}
