//! `palisade policy verify|test|audit|crds|bundle export`: Gatekeeper ConstraintTemplates and
//! Constraints run offline (gator-style suites, manifests) or against a live cluster (audit).

mod evaluate;
mod verify;

use crate::cli::ClusterArgs;
use crate::scan::emit;
use crate::{EXIT_ERROR, EXIT_OK};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use palisade_core::Severity;
use palisade_kube::KubeObject;
use palisade_kube::manifest::{ManifestLimits, load_manifests};
use palisade_policy::EnforcementAction;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run test suites in the format of Gatekeeper's `gator verify` (kind Suite): a suite file,
    /// a directory (its suites), or `DIR/...` (every suite below DIR).
    Verify(VerifyArgs),
    /// Evaluate ConstraintTemplates and Constraints on manifests (as `gator test`).
    Test(TestArgs),
    /// Gatekeeper audit: evaluate constraints on the objects they match, from manifests or a
    /// live cluster.
    Audit(AuditArgs),
    /// Write the constraint CustomResourceDefinitions of templates (for clusters without
    /// Gatekeeper; apply deploy/kubernetes/policy-crds.yaml first).
    Crds(CrdsArgs),
    /// Palisade's own policy bundle (a template per data-plane recommendation).
    #[command(subcommand)]
    Bundle(BundleCommand),
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write the bundle's templates (DIR/templates) and constraints (DIR/constraints).
    Export {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Posture config (YAML): the constraints take the check parameters, excluded namespaces
        /// and disabled checks from it, so audit and enforcement agree.
        #[arg(long, value_name = "FILE", env = "PALISADE_POSTURE_CONFIG")]
        config: Option<PathBuf>,
        /// `spec.enforcementAction` of every constraint.
        #[arg(long, value_name = "ACTION", default_value = "deny", value_parser = parse_action)]
        enforcement_action: EnforcementAction,
    },
}

fn parse_action(s: &str) -> Result<EnforcementAction, String> {
    match s {
        "deny" => Ok(EnforcementAction::Deny),
        "warn" => Ok(EnforcementAction::Warn),
        "dryrun" => Ok(EnforcementAction::Dryrun),
        other => Err(format!("`{other}`: use deny, warn or dryrun")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Suite files, directories, or `DIR/...` for a recursive search.
    #[arg(required = true, value_name = "SUITE")]
    pub suites: Vec<String>,
    /// Run only the tests or cases matching REGEX, or `TEST_REGEX//CASE_REGEX`.
    #[arg(long, value_name = "REGEX")]
    pub run: Option<String>,
    /// Scan results (`palisade scan image --format json` files) for the vulnerability gate's
    /// external data provider (`palisade-vulnerabilities`).
    #[arg(long, value_name = "DIR")]
    pub vulns: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = VerifyFormat::Table)]
    pub format: VerifyFormat,
    /// Write the report to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    Table,
    Json,
    Sarif,
}

/// When `test` and `audit` exit with status 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// A violation whose enforcement action is at least this (dryrun < warn < deny).
    Action(EnforcementAction),
    /// A violation at least this severe (`palisade.io/severity` on the constraint or template).
    Severity(Severity),
    Never,
}

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    match s {
        "deny" => Ok(FailOn::Action(EnforcementAction::Deny)),
        "warn" => Ok(FailOn::Action(EnforcementAction::Warn)),
        "dryrun" | "any" => Ok(FailOn::Action(EnforcementAction::Dryrun)),
        "never" | "none" => Ok(FailOn::Never),
        other => other.parse::<Severity>().map(FailOn::Severity).map_err(|_| {
            format!(
                "`{other}`: use deny, warn, dryrun, never, or a severity (critical, high, medium, low)"
            )
        }),
    }
}

/// Options shared by `test` and `audit`.
#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// ConstraintTemplates, Constraints and Gatekeeper Configs: files or directories (repeatable).
    #[arg(short = 'p', long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = PolicyFormat::Table)]
    pub format: PolicyFormat,
    /// Write the report to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with status 1 on a violation whose action is at least `deny` (default), `warn` or
    /// `dryrun`; or at least a severity (`high`, …); `never` to always exit 0.
    #[arg(long, value_name = "ACTION|SEVERITY", default_value = "deny", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Namespaces no constraint applies to (exact, `prefix*`, `*suffix`; repeatable), in addition
    /// to Gatekeeper Config objects among the policies.
    #[arg(long, value_name = "PATTERN")]
    pub exempt_namespace: Vec<String>,
    /// Scan results (`palisade scan image --format json` files) for the vulnerability gate's
    /// external data provider (`palisade-vulnerabilities`).
    #[arg(long, value_name = "DIR")]
    pub vulns: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Manifests to evaluate (files, directories, `-` for stdin).
    #[arg(required = true, value_name = "MANIFEST")]
    pub manifests: Vec<PathBuf>,
    #[command(flatten)]
    pub eval: EvalArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Manifests to audit (without `--cluster`).
    #[arg(value_name = "MANIFEST")]
    pub manifests: Vec<PathBuf>,
    /// Audit the live cluster's objects of the kinds the constraints match.
    #[arg(long)]
    pub cluster: bool,
    /// Take ConstraintTemplates, Constraints and Configs from the cluster too.
    #[arg(long)]
    pub from_cluster: bool,
    #[command(flatten)]
    pub cluster_args: ClusterArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
}

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Files or directories holding ConstraintTemplates.
    #[arg(short = 'p', long = "policy", required = true, value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Write to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs a `policy` subcommand; `verbose` is the global `-v` count.
pub fn run(cmd: PolicyCommand, verbose: u8) -> Result<u8> {
    match cmd {
        PolicyCommand::Verify(args) => verify::cmd_verify(&args, verbose > 0),
        PolicyCommand::Test(args) => evaluate::cmd_test(&args),
        PolicyCommand::Audit(args) => evaluate::cmd_audit(&args),
        PolicyCommand::Crds(args) => cmd_crds(&args),
        PolicyCommand::Bundle(BundleCommand::Export {
            dir,
            config,
            enforcement_action,
        }) => cmd_bundle_export(&dir, config.as_deref(), enforcement_action),
    }
}

/// Policy objects (and others) from files and directories; unreadable documents are errors.
pub(crate) fn load_objects(paths: &[PathBuf]) -> Result<(Vec<KubeObject>, Vec<String>)> {
    let loaded = load_manifests(paths, &ManifestLimits::default())?;
    let errors = loaded
        .errors
        .iter()
        .map(|e| match e.line {
            Some(line) => format!("{}:{}: {}", e.file, line, e.message),
            None => format!("{}: {}", e.file, e.message),
        })
        .collect();
    for w in &loaded.inventory.warnings {
        tracing::warn!("{w}");
    }
    Ok((loaded.inventory.objects, errors))
}

/// The external data providers the options ask for.
pub(crate) fn providers(
    vulns: Option<&std::path::Path>,
) -> Result<Vec<std::sync::Arc<dyn palisade_policy::ExternalDataProvider>>> {
    let Some(dir) = vulns else {
        return Ok(Vec::new());
    };
    let provider = palisade_policy::vulngate::VulnerabilityProvider::new(
        dir,
        std::time::Duration::from_secs(60),
    )
    .with_context(|| format!("reading scan results from {}", dir.display()))?;
    Ok(vec![std::sync::Arc::new(provider)])
}

fn cmd_bundle_export(
    dir: &std::path::Path,
    config: Option<&std::path::Path>,
    enforcement_action: EnforcementAction,
) -> Result<u8> {
    let config = match config {
        Some(p) => palisade_posture::PostureConfig::load(p)?,
        None => palisade_posture::PostureConfig::default(),
    };
    let options = palisade_policy::bundle::ExportOptions {
        enforcement_action,
        ..Default::default()
    };
    let summary = palisade_policy::bundle::export(dir, &config, &options)
        .with_context(|| format!("writing the bundle to {}", dir.display()))?;
    eprintln!(
        "{} template(s) and {} constraint(s) written to {}",
        summary.templates.len(),
        summary.constraints.len(),
        dir.display()
    );
    Ok(EXIT_OK)
}

fn cmd_crds(args: &CrdsArgs) -> Result<u8> {
    let (objects, errors) = load_objects(&args.policies)?;
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Ok(EXIT_ERROR);
    }
    let crds = palisade_policy::crd::constraint_crds(&objects)?;
    if crds.is_empty() {
        bail!("no ConstraintTemplate found in the given paths");
    }
    let mut out = String::new();
    for crd in &crds {
        out.push_str("---\n");
        out.push_str(&yaml_serde::to_string(crd)?);
    }
    emit(args.output.as_deref(), &out)?;
    eprintln!("{} constraint CRD(s) written", crds.len());
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_accepts_actions_and_severities() {
        assert_eq!(
            parse_fail_on("warn"),
            Ok(FailOn::Action(EnforcementAction::Warn))
        );
        assert_eq!(parse_fail_on("never"), Ok(FailOn::Never));
        assert_eq!(parse_fail_on("high"), Ok(FailOn::Severity(Severity::High)));
        assert!(parse_fail_on("sometimes").is_err());
    }
}
