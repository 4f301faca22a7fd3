//! `palisade db update|import|status`, and opening the DB for scans (with the staleness warning).

use crate::cli::StatusFormat;
use crate::progress;
use anyhow::{Context, Result, anyhow};
use palisade_vuln::db::{AdvisoryDb, DbBuilder, DbMetadata, SourceInfo};
use palisade_vuln::import::import_path;
use palisade_vuln::update::{UpdateOptions, update};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How old a DB may be before scans warn.
pub const STALE_AFTER: time::Duration = time::Duration::hours(24);

/// The DB path: `--db` / `PALISADE_DB`, else the default in the user's cache directory.
pub fn resolve_path(flag: Option<&Path>) -> Result<PathBuf> {
    match flag {
        Some(p) => Ok(p.to_path_buf()),
        None => palisade_vuln::db::default_path()
            .ok_or_else(|| anyhow!("no user cache directory for the advisory database: pass --db PATH or set PALISADE_DB")),
    }
}

/// Opens the DB for a scan, explaining how to create it when it is missing.
pub fn open(path: &Path) -> Result<AdvisoryDb> {
    if !path.exists() {
        return Err(anyhow!(
            "no advisory database at {}: run `palisade db update` (online) or \
             `palisade db import PATH…` (offline), or point --db / PALISADE_DB at one",
            path.display()
        ));
    }
    AdvisoryDb::open(path).with_context(|| format!("opening advisory database {}", path.display()))
}

/// A warning when the DB was built more than a day before `now`.
pub fn staleness_warning(meta: &DbMetadata, now: OffsetDateTime) -> Option<String> {
    let built = match OffsetDateTime::parse(&meta.built_at, &Rfc3339) {
        Ok(b) => b,
        Err(_) => {
            return Some(format!(
                "advisory database build time {:?} is not a valid RFC 3339 time; it may be stale",
                meta.built_at
            ));
        }
    };
    let age = now - built;
    if age > STALE_AFTER {
        Some(format!(
            "the advisory database is {} old (built {}): run `palisade db update`, or pass \
             --offline-db for an air-gapped copy",
            human_age(age),
            meta.built_at
        ))
    } else {
        None
    }
}

fn human_age(d: time::Duration) -> String {
    let h = d.whole_hours();
    if h >= 48 {
        format!("{} days", h / 24)
    } else {
        format!("{h} hours")
    }
}

/// `palisade db update`.
pub fn cmd_update(path: &Path, show_progress: bool, rt: &tokio::runtime::Runtime) -> Result<()> {
    ensure_parent(path)?;
    let meta = rt
        .block_on(update(
            path,
            &UpdateOptions::default(),
            progress::update_progress(show_progress),
        ))
        .map_err(|e| {
            anyhow!(e).context(format!(
                "updating the advisory database at {} failed; without network access, build it \
                 offline with `palisade db import PATH…` from OSV / Debian tracker / Alpine secdb files",
                path.display()
            ))
        })?;
    print_status(path, &meta, StatusFormat::Table)
}

/// `palisade db import PATH…`: all paths into one new DB.
pub fn cmd_import(path: &Path, inputs: &[PathBuf], show_progress: bool) -> Result<()> {
    ensure_parent(path)?;
    let mut builder = DbBuilder::new();
    let spinner = show_progress.then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    });
    let now = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    for input in inputs {
        let mut per_source: BTreeMap<String, u64> = BTreeMap::new();
        let mut seen = 0u64;
        let stats = import_path(input, &mut |record| {
            *per_source.entry(record.source.clone()).or_default() += 1;
            builder.add(record);
            seen += 1;
            if let Some(s) = &spinner
                && seen.is_multiple_of(500)
            {
                s.set_message(format!("{}: {seen} advisories", input.display()));
            }
        })
        .with_context(|| format!("importing {}", input.display()))?;
        for (name, advisories) in per_source {
            builder.add_source(SourceInfo {
                name,
                location: input.display().to_string(),
                advisories,
                fetched_at: now.clone(),
            });
        }
        eprintln!(
            "imported {}: {} advisories from {} files ({} withdrawn skipped, {} errors)",
            input.display(),
            stats.advisories,
            stats.files,
            stats.skipped_withdrawn,
            stats.error_count
        );
        for e in &stats.errors {
            eprintln!("warning: {e}");
        }
    }
    if let Some(s) = &spinner {
        s.set_message(format!("writing {}", path.display()));
    }
    let meta = builder.write(path);
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let meta = meta.with_context(|| format!("writing advisory database {}", path.display()))?;
    print_status(path, &meta, StatusFormat::Table)
}

/// `palisade db status`.
pub fn cmd_status(path: &Path, format: StatusFormat) -> Result<()> {
    let db = open(path)?;
    print_status(path, db.metadata(), format)
}

fn print_status(path: &Path, meta: &DbMetadata, format: StatusFormat) -> Result<()> {
    let mut buf = String::new();
    match format {
        StatusFormat::Json => {
            let v = serde_json::json!({
                "path": path.display().to_string(),
                "schema_version": meta.schema_version,
                "built_at": meta.built_at,
                "advisories": meta.advisories,
                "affected_packages": meta.affected_packages,
                "sources": meta.sources,
                "stale": staleness_warning(meta, OffsetDateTime::now_utc()).is_some(),
            });
            outln!(buf, "{}", serde_json::to_string_pretty(&v)?);
        }
        StatusFormat::Table => {
            outln!(buf, "database:          {}", path.display());
            outln!(buf, "built:             {}", meta.built_at);
            outln!(buf, "schema version:    {}", meta.schema_version);
            outln!(buf, "advisories:        {}", meta.advisories);
            outln!(buf, "affected packages: {}", meta.affected_packages);
            if !meta.sources.is_empty() {
                let mut t = comfy_table::Table::new();
                t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
                t.set_header(vec!["source", "advisories", "fetched", "from"]);
                for s in &meta.sources {
                    t.add_row(vec![
                        s.name.clone(),
                        s.advisories.to_string(),
                        s.fetched_at.clone(),
                        s.location.clone(),
                    ]);
                }
                outln!(buf, "{t}");
            }
            if let Some(w) = staleness_warning(meta, OffsetDateTime::now_utc()) {
                eprintln!("warning: {w}");
            }
        }
    }
    crate::scan::emit(None, &buf)
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating directory {}", parent.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn meta(built_at: &str) -> DbMetadata {
        DbMetadata {
            schema_version: 1,
            built_at: built_at.into(),
            sources: vec![],
            advisories: 0,
            affected_packages: 0,
        }
    }

    #[test]
    fn staleness() {
        let now = datetime!(2025-03-02 12:00 UTC);
        assert!(staleness_warning(&meta("2025-03-02T00:00:00Z"), now).is_none());
        let w = staleness_warning(&meta("2025-02-27T00:00:00Z"), now).unwrap();
        assert!(w.contains("3 days"), "{w}");
        assert!(w.contains("db update"));
        assert!(staleness_warning(&meta("yesterday"), now).is_some());
    }
}
