//! `palisade scan manifests|cluster`, `who-can`, `explore` and `checks`: wires the Kubernetes
//! sources to the posture engine and the report renderers.

pub mod bench;
pub mod report;

use crate::cli::{
    ClusterArgs, ExploreArgs, ExploreFormat, KubeSourceArgs, PostureArgs, PostureFormat,
    StatusFormat, WhoCanArgs,
};
use crate::scan::emit;
use crate::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use anyhow::{Context, Result, bail};
use palisade_kube::Inventory;
use palisade_kube::manifest::{ManifestLimits, load_manifests};
use palisade_posture::exceptions::{self, ExceptionsFile};
use palisade_posture::graph::{self, SecurityGraph, VulnIndex};
use palisade_posture::net::ExposureIndex;
use palisade_posture::rbac::RbacIndex;
use palisade_posture::{Category, PostureConfig, PostureFinding};
use report::{PostureReport, ReportTarget};
use serde_json::json;
use std::path::PathBuf;

/// Reads manifests; parse errors are kept for the report (and make the exit status 2).
fn inventory_from_manifests(paths: &[PathBuf]) -> Result<(Inventory, Vec<String>)> {
    let loaded = load_manifests(paths, &ManifestLimits::default())?;
    let errors = loaded
        .errors
        .iter()
        .map(|e| match e.line {
            Some(line) => format!("{}:{}: {}", e.file, line, e.message),
            None => format!("{}: {}", e.file, e.message),
        })
        .collect();
    Ok((loaded.inventory, errors))
}

/// Reads a live cluster.
fn inventory_from_cluster(
    args: &ClusterArgs,
    namespace: Option<String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Inventory> {
    let options = palisade_kube::live::ClusterOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace,
        page_size: args.page_size,
        cluster_name: args.cluster_name.clone(),
    };
    let inventory = rt
        .block_on(palisade_kube::live::snapshot(&options))
        .context("reading the cluster")?;
    for w in &inventory.warnings {
        tracing::warn!("{w}");
    }
    Ok(inventory)
}

fn source_inventory(
    source: &KubeSourceArgs,
    rt: &tokio::runtime::Runtime,
) -> Result<(Inventory, Vec<String>)> {
    if source.manifests.is_empty() {
        Ok((
            inventory_from_cluster(&source.cluster, None, rt)?,
            Vec::new(),
        ))
    } else {
        inventory_from_manifests(&source.manifests)
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<PostureConfig> {
    match path {
        Some(p) => Ok(PostureConfig::load(p)?),
        None => Ok(PostureConfig::default()),
    }
}

fn load_vulns(paths: &[PathBuf]) -> Result<Option<VulnIndex>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut index = VulnIndex::new();
    for p in paths {
        index.load_into(p)?;
    }
    Ok(Some(index))
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// Runs the whole posture engine on an inventory and renders the report.
pub fn scan_inventory(
    inventory: &Inventory,
    target: ReportTarget,
    errors: Vec<String>,
    args: &PostureArgs,
) -> Result<u8> {
    let config = load_config(args.config.as_deref())?;
    let exceptions_file = match &args.exceptions {
        Some(p) => Some(ExceptionsFile::load(p)?),
        None => None,
    };
    let vulns = load_vulns(&args.vulns)?;
    let rbac = RbacIndex::build(inventory);
    let exposures = ExposureIndex::build(inventory);
    let mut findings = palisade_posture::analyze_with(inventory, &config, &rbac, &exposures);
    if !args.no_attack_paths {
        let graph = SecurityGraph::build_with_exposures(
            inventory,
            &rbac,
            &exposures,
            vulns.as_ref(),
            &config,
        );
        findings.extend(graph::path_findings(&graph, &config));
        findings.sort_by(PostureFinding::order);
    }
    let categories: Vec<Category> = args
        .category
        .iter()
        .map(|c| parse_category(c))
        .collect::<Result<_>>()?;
    findings.retain(|f| {
        (args.severity.is_empty() || args.severity.contains(&f.severity))
            && (categories.is_empty() || categories.contains(&f.category))
    });
    let applied = exceptions::apply(findings, inventory, exceptions_file.as_ref(), today());
    let mut warnings = inventory.warnings.clone();
    warnings.extend(applied.warnings);
    let report = PostureReport::new(
        target,
        inventory.objects.len(),
        applied.kept,
        applied.suppressed,
        warnings,
        errors,
    );
    let text = match args.format {
        PostureFormat::Table => report::render_table(&report, args.group_by),
        PostureFormat::Json => report::render_json(&report)?,
        PostureFormat::Sarif => report::render_sarif(&report)?,
    };
    emit(args.output.as_deref(), &text)?;
    if !report.errors.is_empty() {
        eprintln!(
            "error: {} manifest document(s) could not be read; see the report",
            report.errors.len()
        );
        return Ok(EXIT_ERROR);
    }
    Ok(match args.fail_on {
        Some(t) if report.fails(t) => EXIT_FINDINGS,
        _ => EXIT_OK,
    })
}

fn pretty(v: &serde_json::Value) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s)
}

fn parse_category(s: &str) -> Result<Category> {
    Ok(match s.trim() {
        "workload" => Category::Workload,
        "exposure" => Category::Exposure,
        "rbac" => Category::Rbac,
        "control-plane" | "controlplane" => Category::ControlPlane,
        "attack-path" | "attack-paths" | "path" => Category::AttackPath,
        other => bail!(
            "unknown category `{other}`: use workload, exposure, rbac, control-plane or attack-path"
        ),
    })
}

/// `palisade scan manifests`.
pub fn cmd_scan_manifests(paths: &[PathBuf], args: &PostureArgs) -> Result<u8> {
    let (inventory, errors) = inventory_from_manifests(paths)?;
    let name = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    scan_inventory(
        &inventory,
        ReportTarget {
            kind: "manifests",
            name,
        },
        errors,
        args,
    )
}

/// `palisade scan cluster`.
pub fn cmd_scan_cluster(
    cluster: &ClusterArgs,
    namespace: Option<String>,
    save_inventory: Option<&std::path::Path>,
    args: &PostureArgs,
    rt: &tokio::runtime::Runtime,
) -> Result<u8> {
    let inventory = inventory_from_cluster(cluster, namespace, rt)?;
    if let Some(path) = save_inventory {
        let items: Vec<&serde_json::Value> = inventory.objects.iter().map(|o| &o.value).collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        std::fs::write(path, serde_json::to_vec_pretty(&list)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let name = inventory
        .cluster
        .clone()
        .unwrap_or_else(|| "cluster".to_string());
    scan_inventory(
        &inventory,
        ReportTarget {
            kind: "cluster",
            name,
        },
        Vec::new(),
        args,
    )
}

/// Splits `deployments.apps/scale` into (`apps`, `deployments/scale`).
fn split_resource(resource: &str) -> (String, String) {
    let (base, sub) = match resource.split_once('/') {
        Some((b, s)) => (b, Some(s)),
        None => (resource, None),
    };
    let (name, group) = match base.split_once('.') {
        Some((n, g)) => (n, g),
        None => (base, ""),
    };
    let resource = match sub {
        Some(s) => format!("{name}/{s}"),
        None => name.to_string(),
    };
    (group.to_string(), resource)
}

/// `palisade who-can VERB RESOURCE`.
pub fn cmd_who_can(args: &WhoCanArgs, rt: &tokio::runtime::Runtime) -> Result<u8> {
    let (inventory, errors) = source_inventory(&args.source, rt)?;
    for e in &errors {
        eprintln!("error: {e}");
    }
    let rbac = RbacIndex::build(&inventory);
    let (group, resource) = split_resource(&args.resource);
    let answers = rbac.who_can(&args.verb, &group, &resource, args.namespace.as_deref());
    let scope = match &args.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "cluster-wide".to_string(),
    };
    let text = match args.format {
        StatusFormat::Json => {
            let rows: Vec<serde_json::Value> = answers
                .iter()
                .map(|(subject, grants)| {
                    json!({
                        "subject": subject,
                        "via": grants.iter().map(|g| json!({
                            "role": g.role, "binding": g.binding, "namespace": g.namespace,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            pretty(&json!({
                "verb": args.verb, "group": group, "resource": resource,
                "namespace": args.namespace, "subjects": rows,
            }))?
        }
        StatusFormat::Table => {
            let mut out = String::new();
            outln!(
                out,
                "Who can {} {}{} {scope}: {} subject(s)",
                args.verb,
                resource,
                if group.is_empty() {
                    String::new()
                } else {
                    format!(" ({group})")
                },
                answers.len()
            );
            if !answers.is_empty() {
                let mut t = report::new_table(["SUBJECT", "ROLE", "BINDING", "SCOPE"]);
                for (subject, grants) in &answers {
                    for g in grants {
                        t.add_row(vec![
                            subject.to_string(),
                            g.role.clone(),
                            g.binding.clone(),
                            g.namespace.clone().unwrap_or_else(|| "cluster".into()),
                        ]);
                    }
                }
                outln!(out, "{t}");
            }
            out
        }
    };
    emit(None, &text)?;
    Ok(if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// `palisade checks`.
pub fn cmd_checks(format: StatusFormat) -> Result<u8> {
    let checks = palisade_posture::all_checks();
    let text = match format {
        StatusFormat::Json => pretty(&serde_json::to_value(&checks)?)?,
        StatusFormat::Table => {
            let mut t = report::new_table(["ID", "SEVERITY", "CATEGORY", "TITLE", "CONTROLS"]);
            for c in &checks {
                t.add_row(vec![
                    c.id.to_string(),
                    c.severity.as_str().to_string(),
                    c.category.as_str().to_string(),
                    c.title.to_string(),
                    c.controls.join("; "),
                ]);
            }
            format!("{t}\n{} checks\n", checks.len())
        }
    };
    emit(None, &text)?;
    Ok(EXIT_OK)
}

/// `palisade explore`.
pub fn cmd_explore(args: &ExploreArgs, rt: &tokio::runtime::Runtime) -> Result<u8> {
    if args.list || args.query.is_none() {
        let mut out = String::new();
        outln!(out, "Built-in queries (palisade explore NAME):");
        for q in graph::query::BUILTIN {
            outln!(out, "  {:<28} {}", q.name, q.description);
            outln!(out, "  {:<28}   {}", "", q.query);
        }
        emit(None, &out)?;
        return Ok(EXIT_OK);
    }
    let text = args.query.as_deref().unwrap_or_default();
    let query_text = graph::query::BUILTIN
        .iter()
        .find(|q| q.name == text)
        .map(|q| q.query)
        .unwrap_or(text);
    let query = graph::query::parse(query_text)
        .map_err(|e| anyhow::anyhow!("invalid query:\n{}", e.render(query_text)))?;
    let (inventory, errors) = source_inventory(&args.source, rt)?;
    for e in &errors {
        eprintln!("error: {e}");
    }
    let config = load_config(args.config.as_deref())?;
    let vulns = load_vulns(&args.vulns)?;
    let rbac = RbacIndex::build(&inventory);
    let graph = SecurityGraph::build(&inventory, &rbac, vulns.as_ref(), &config);
    let result = graph::query::run(&graph, &query);
    let out = match args.format {
        ExploreFormat::Json => pretty(&json!({
            "query": query_text,
            "columns": result.columns,
            "rows": result.to_json_rows(),
            "truncated": result.truncated,
        }))?,
        ExploreFormat::Dot => result.to_dot(&graph),
        ExploreFormat::Table => query_table(&result),
    };
    emit(args.output.as_deref(), &out)?;
    Ok(if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

fn query_table(result: &graph::QueryResult) -> String {
    let mut out = String::new();
    if result.rows.is_empty() {
        outln!(out, "No matches.");
        return out;
    }
    let mut t = report::new_table(result.columns.iter().map(|c| c.to_uppercase()));
    for row in &result.rows {
        t.add_row(row.iter().map(|c| c.to_string()));
    }
    outln!(out, "{t}");
    outln!(
        out,
        "{} match(es){}",
        result.rows.len(),
        if result.truncated {
            " (truncated at the result limit)"
        } else {
            ""
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_split_like_kubectl() {
        assert_eq!(split_resource("pods"), ("".into(), "pods".into()));
        assert_eq!(split_resource("pods/exec"), ("".into(), "pods/exec".into()));
        assert_eq!(
            split_resource("deployments.apps/scale"),
            ("apps".into(), "deployments/scale".into())
        );
        assert_eq!(
            split_resource("clusterroles.rbac.authorization.k8s.io"),
            ("rbac.authorization.k8s.io".into(), "clusterroles".into())
        );
    }
}
