//! `palisade scan image|fs` and `palisade sbom`.

use crate::cli::{ImageArgs, SbomArgs, SbomFormat, ScanArgs, ScanCommand, ScanFormat};
use crate::output::{self, ScanReport};
use crate::target::{Loader, TargetSpec};
use crate::{EXIT_FINDINGS, EXIT_OK, db};
use anyhow::{Context, Result};
use palisade_image::Limits;
use palisade_vuln::ignore::IgnoreList;
use palisade_vuln::matcher::{MatchOptions, match_packages_report};
use std::io::Write;
use std::path::Path;
use time::OffsetDateTime;

/// Loads the ignore files named by `--ignore-file` into one list.
pub fn load_ignores(files: &[std::path::PathBuf]) -> Result<IgnoreList> {
    let mut list = IgnoreList::default();
    for f in files {
        list.extend(IgnoreList::load(f)?);
    }
    Ok(list)
}

/// Runs one scan end to end and returns the report (no output).
pub fn scan_to_report(
    db_path: &Path,
    spec: &TargetSpec,
    image: ImageArgs,
    args: &ScanArgs,
    show_progress: bool,
    rt: &tokio::runtime::Runtime,
) -> Result<ScanReport> {
    let ignore = load_ignores(&args.ignore_file)?;
    // Open the DB before pulling anything: a missing DB is the most common first-run error.
    let advisories = db::open(db_path)?;
    let meta = advisories.metadata().clone();
    let loader = Loader {
        image,
        limits: Limits::default(),
        show_progress,
    };
    let sbom = loader.load(spec, rt)?;
    let opts = MatchOptions {
        severities: args.severity.clone(),
        ignore_unfixed: args.ignore_unfixed,
        ignore,
        today: None,
    };
    let matched = match_packages_report(&advisories, &sbom.packages, sbom.distro.as_ref(), &opts)
        .context("matching packages to advisories")?;
    let mut warnings = sbom.warnings.clone();
    warnings.extend(matched.warnings);
    if !args.offline_db
        && let Some(w) = db::staleness_warning(&meta, OffsetDateTime::now_utc())
    {
        warnings.push(w);
    }
    Ok(ScanReport {
        sbom,
        db: Some(meta),
        matches: matched.matches,
        ignored: matched.ignored,
        warnings,
    })
}

/// `palisade scan …`: prints the report and returns the exit status.
pub fn cmd_scan(
    db_path: &Path,
    cmd: ScanCommand,
    show_progress: bool,
    rt: &tokio::runtime::Runtime,
) -> Result<u8> {
    let (spec, image, args) = match cmd {
        ScanCommand::Image {
            reference,
            image,
            scan,
        } => (TargetSpec::parse_image(&reference)?, image, scan),
        ScanCommand::Fs { path, scan } => (TargetSpec::Fs(path), ImageArgs::default(), scan),
        ScanCommand::Manifests { .. } | ScanCommand::Cluster { .. } => {
            anyhow::bail!("posture scans are dispatched in main")
        }
    };
    let report = scan_to_report(db_path, &spec, image, &args, show_progress, rt)?;
    let text = match args.format {
        ScanFormat::Table => {
            // Warnings go to stderr beside a human report; machine formats carry them inside.
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            let color = args.output.is_none() && output::table::color_wanted();
            output::table::render(&report, color)
        }
        ScanFormat::Json => output::json::to_string_pretty(&report)?,
        ScanFormat::Sarif => pretty(&output::sarif::render(&report))?,
        ScanFormat::Cyclonedx => pretty(&report.cyclonedx())?,
        ScanFormat::Spdx => pretty(&palisade_image::sbom::spdx::render(&report.sbom))?,
    };
    emit(args.output.as_deref(), &text)?;
    Ok(match args.fail_on {
        Some(t) if report.fails(t) => EXIT_FINDINGS,
        _ => EXIT_OK,
    })
}

/// `palisade sbom TARGET`.
pub fn cmd_sbom(args: SbomArgs, show_progress: bool, rt: &tokio::runtime::Runtime) -> Result<()> {
    let spec = TargetSpec::parse_any(&args.target)?;
    let loader = Loader {
        image: args.image,
        limits: Limits::default(),
        show_progress,
    };
    let sbom = loader.load(&spec, rt)?;
    for w in &sbom.warnings {
        eprintln!("warning: {w}");
    }
    let v = match args.format {
        SbomFormat::Cyclonedx => palisade_image::sbom::cyclonedx::render(&sbom, None),
        SbomFormat::Spdx => palisade_image::sbom::spdx::render(&sbom),
        SbomFormat::Json => serde_json::to_value(&sbom)?,
    };
    emit(args.output.as_deref(), &pretty(&v)?)
}

fn pretty(v: &serde_json::Value) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s)
}

/// Writes a report to a file, or to stdout (a closed pipe is not an error).
pub(crate) fn emit(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => r.context("writing to stdout"),
            }
        }
    }
}
