//! The Debian security tracker: its JSON export
//! (`security-tracker.debian.org/tracker/data/json`) and the DSA/DLA list files of its data
//! repository (`data/DSA/list`, `data/DLA/list`).
//!
//! Both name *source* packages per release codename, so the records use the ecosystem key
//! `debian:<codename>` and the source package name; the matcher looks installed binaries up by
//! their source package.

use super::{ImportStats, truncate};
use crate::record::{AdvisoryRecord, AffectedPackage, AffectedRange, RangeEvent, RangeKind};
use palisade_core::Severity;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// Longest description kept as a summary.
const MAX_SUMMARY: usize = 1024;
/// Most advisories read from one list file (DSA/list has ~5,400 entries).
const MAX_LIST_ENTRIES: usize = 1_000_000;

/// Why a whole tracker input was rejected.
#[derive(Debug, Error)]
pub enum DebianError {
    #[error("invalid Debian tracker JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Debian list is not UTF-8 text")]
    NotText,
    #[error("Debian list: {0}")]
    Limit(String),
}

/// Which list a DSA/DLA list file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Dsa,
    Dla,
}

impl ListKind {
    fn source(self) -> &'static str {
        match self {
            ListKind::Dsa => "debian-dsa",
            ListKind::Dla => "debian-dla",
        }
    }
}

// ---- JSON export ---------------------------------------------------------------------------

/// One issue, or anything else (counted as an error) — so one odd issue is skipped, not the
/// whole export, without buffering the whole export as a `Value`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MaybeIssue {
    Good(TrackerIssue),
    Bad(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct TrackerIssue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    releases: HashMap<String, TrackerRelease>,
}

#[derive(Deserialize)]
struct TrackerRelease {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
}

/// Maps a tracker urgency (`unimportant`, `low`, `medium**`, `high`, `not yet assigned`,
/// `end-of-life`) to a severity; the `**` suffix marks a guessed urgency and is ignored.
pub fn urgency_severity(urgency: &str) -> Option<Severity> {
    match urgency.trim().trim_end_matches('*') {
        "unimportant" => Some(Severity::Informational),
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        _ => None,
    }
}

/// Imports the tracker JSON export: one record per CVE (or `TEMP-` id), one affected entry per
/// (release, source package). `resolved` with a fixed version → fixed in that version;
/// `resolved` with fixed version `0` → never affected (no entry); `open` → affected with no fix
/// yet; `undetermined` → not imported (the tracker does not know whether the release is affected).
pub fn import_tracker_json(
    data: &[u8],
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<(), DebianError> {
    // Typed at the inner levels so one odd issue is skipped, not the whole file.
    let top: BTreeMap<String, BTreeMap<String, MaybeIssue>> = serde_json::from_slice(data)?;
    let mut by_cve: BTreeMap<String, AdvisoryRecord> = BTreeMap::new();
    for (srcpkg, issues) in top {
        let srcpkg = srcpkg.trim().to_string();
        if srcpkg.is_empty() {
            continue;
        }
        for (cve, raw) in issues {
            let issue = match raw {
                MaybeIssue::Good(i) => i,
                MaybeIssue::Bad(_) => {
                    stats.error(format!(
                        "{srcpkg}/{cve}: not a tracker issue (expected description and a \
                         releases table of status/fixed_version/urgency)"
                    ));
                    continue;
                }
            };
            let rec = by_cve.entry(cve.clone()).or_insert_with(|| AdvisoryRecord {
                id: cve.clone(),
                source: "debian-tracker".into(),
                references: vec![format!("https://security-tracker.debian.org/tracker/{cve}")],
                ..Default::default()
            });
            if rec.summary.is_none() {
                rec.summary = issue
                    .description
                    .filter(|d| !d.trim().is_empty())
                    .map(|d| truncate(d.trim().to_string(), MAX_SUMMARY));
            }
            let mut releases: Vec<_> = issue.releases.into_iter().collect();
            releases.sort_by(|a, b| a.0.cmp(&b.0));
            for (codename, rel) in releases {
                let fixed = rel.fixed_version.as_deref().map(str::trim);
                let events = match rel.status.as_deref() {
                    Some("resolved") => match fixed {
                        Some("0") => continue,
                        Some(v) if !v.is_empty() => vec![
                            RangeEvent::Introduced("0".into()),
                            RangeEvent::Fixed(v.to_string()),
                        ],
                        _ => continue,
                    },
                    Some("open") => vec![RangeEvent::Introduced("0".into())],
                    _ => continue,
                };
                rec.affected.push(AffectedPackage {
                    ecosystem: format!("debian:{}", codename.trim()),
                    name: srcpkg.clone(),
                    ranges: vec![AffectedRange {
                        kind: RangeKind::Ecosystem,
                        events,
                    }],
                    versions: Vec::new(),
                    severity: rel.urgency.as_deref().and_then(urgency_severity),
                });
            }
        }
    }
    for (_, mut rec) in by_cve {
        // The record-level severity is the highest release urgency.
        rec.severity = rec.affected.iter().filter_map(|a| a.severity).max();
        stats.emit("debian-tracker", rec, sink);
    }
    Ok(())
}

// ---- DSA/DLA list ----------------------------------------------------------------------------

/// True when `head` starts like a DSA/DLA list (`[29 Mar 2023] DSA-5380-1 …`).
pub fn looks_like_list(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    parse_header(first).is_some()
}

/// Whether a list file is the DSA or DLA list: from the ids inside, else the path.
pub fn list_kind(name: &str, data: &[u8]) -> ListKind {
    let head = String::from_utf8_lossy(&data[..data.len().min(4096)]);
    if let Some((id, _)) = head.lines().find_map(parse_header) {
        if id.starts_with("DLA-") {
            return ListKind::Dla;
        }
        if id.starts_with("DSA-") {
            return ListKind::Dsa;
        }
    }
    if name.contains("DLA") {
        ListKind::Dla
    } else {
        ListKind::Dsa
    }
}

/// Parses `[29 Mar 2023] DSA-5380-1 xorg-server - security update` into (id, rest).
fn parse_header(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('[')?;
    let (date, rest) = rest.split_once(']')?;
    if date.len() > 20 || !date.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start();
    let (id, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let valid_prefix = ["DSA-", "DLA-", "DTSA-"].iter().any(|p| id.starts_with(p));
    if !valid_prefix || id.len() < 5 {
        return None;
    }
    Some((id.to_string(), tail.trim().to_string()))
}

/// Parses a `dd Mon yyyy` date to `yyyy-mm-dd`.
fn parse_date(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?.split_once(']')?.0;
    let mut parts = inner.split_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u32 = parts.next()?.parse().ok()?;
    if !(1..=31).contains(&day) || !(1990..=9999).contains(&year) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"))
}

/// Severity words found in the parenthesised notes (`(bug #332524; medium)`).
fn note_severity(note: &str) -> Option<Severity> {
    note.split([';', ',', ' '])
        .filter_map(|w| urgency_severity(w.trim()))
        .max()
}

/// One `\t[release] - srcpkg version|<tag> (notes)` line, parsed.
struct PackageLine {
    release: String,
    package: String,
    /// `Some(version)` fixed in; `None` affected with no fix (`<unfixed>`, `<end-of-life>`).
    fixed: Option<String>,
    not_affected: bool,
    severity: Option<Severity>,
}

fn parse_package_line(line: &str) -> Option<PackageLine> {
    let rest = line.trim().strip_prefix('[')?;
    let (release, rest) = rest.split_once(']')?;
    let rest = rest.trim_start().strip_prefix('-')?.trim_start();
    let (main, note) = match rest.find('(') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut words = main.split_whitespace();
    let package = words.next()?.to_string();
    let version = words.next();
    let release = release.trim().to_string();
    if release.is_empty() || release.contains(char::is_whitespace) {
        return None;
    }
    let severity = note_severity(note.trim_matches(|c| c == '(' || c == ')'));
    let (fixed, not_affected) = match version {
        Some("<not-affected>") => (None, true),
        Some("<unfixed>") | Some("<end-of-life>") | Some("<ignored>") | Some("<postponed>") => {
            (None, false)
        }
        Some(v) if v.starts_with('<') => return None,
        Some(v) => (Some(v.to_string()), false),
        None => return None,
    };
    Some(PackageLine {
        release,
        package,
        fixed,
        not_affected,
        severity,
    })
}

/// Imports a DSA or DLA list: record id = the DSA/DLA id, aliases = its CVEs, one affected entry
/// per `[release] - srcpkg version` line (introduced 0 → fixed version; `<unfixed>` and
/// `<end-of-life>` → affected without a fix; `<not-affected>` → no entry). `NOTE:` lines are
/// skipped. A malformed package line is counted as an error and the rest of the entry kept.
pub fn import_list(
    data: &[u8],
    kind: ListKind,
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<(), DebianError> {
    let text = std::str::from_utf8(data).map_err(|_| DebianError::NotText)?;
    let mut current: Option<AdvisoryRecord> = None;
    let mut entries = 0usize;
    let source = kind.source();
    let mut flush = |rec: Option<AdvisoryRecord>, stats: &mut ImportStats| {
        if let Some(rec) = rec {
            stats.emit(source, rec, sink);
        }
    };
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let Some((id, title)) = parse_header(line) else {
                stats.error(format!("line {}: malformed header {line:?}", lineno + 1));
                flush(current.take(), stats);
                continue;
            };
            flush(current.take(), stats);
            entries += 1;
            if entries > MAX_LIST_ENTRIES {
                return Err(DebianError::Limit(format!(
                    "more than {MAX_LIST_ENTRIES} entries"
                )));
            }
            let base = id.rsplit_once('-').map(|(b, _)| b).unwrap_or(&id);
            current = Some(AdvisoryRecord {
                summary: if title.is_empty() { None } else { Some(title) },
                published: parse_date(line),
                source: source.into(),
                references: vec![format!(
                    "https://security-tracker.debian.org/tracker/{base}"
                )],
                id: id.clone(),
                ..Default::default()
            });
            continue;
        }
        let trimmed = line.trim();
        let Some(rec) = current.as_mut() else {
            stats.error(format!("line {}: text before the first entry", lineno + 1));
            continue;
        };
        if trimmed.starts_with("NOTE:") {
            continue;
        }
        if let Some(ids) = trimmed.strip_prefix('{') {
            let ids = ids.trim_end_matches('}');
            for id in ids.split_whitespace() {
                if !rec.aliases.iter().any(|a| a == id) && id != rec.id {
                    rec.aliases.push(id.to_string());
                }
            }
            continue;
        }
        if trimmed.starts_with('[') {
            match parse_package_line(trimmed) {
                Some(p) if p.not_affected => {}
                Some(p) => {
                    let mut events = vec![RangeEvent::Introduced("0".into())];
                    if let Some(v) = p.fixed {
                        events.push(RangeEvent::Fixed(v));
                    }
                    rec.affected.push(AffectedPackage {
                        ecosystem: format!("debian:{}", p.release),
                        name: p.package,
                        ranges: vec![AffectedRange {
                            kind: RangeKind::Ecosystem,
                            events,
                        }],
                        versions: Vec::new(),
                        severity: p.severity,
                    });
                    if rec.severity.is_none() || p.severity > rec.severity {
                        rec.severity = p.severity.or(rec.severity);
                    }
                }
                None => stats.error(format!(
                    "{}: line {}: malformed package line {trimmed:?}",
                    rec.id,
                    lineno + 1
                )),
            }
            continue;
        }
        stats.error(format!(
            "{}: line {}: unrecognised line {trimmed:?}",
            rec.id,
            lineno + 1
        ));
    }
    flush(current.take(), stats);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_list(text: &str) -> (Vec<AdvisoryRecord>, ImportStats) {
        let mut out = Vec::new();
        let mut stats = ImportStats::default();
        import_list(text.as_bytes(), ListKind::Dsa, &mut stats, &mut |r| {
            out.push(r)
        })
        .unwrap();
        (out, stats)
    }

    #[test]
    fn list_entries() {
        let (recs, stats) = collect_list(
            "[29 Mar 2023] DSA-5380-1 xorg-server - security update\n\
             \t{CVE-2023-1393 CVE-2023-1394}\n\
             \t[bullseye] - xorg-server 2:1.20.11-1+deb11u6\n\
             \t[buster] - xorg-server <not-affected> (Vulnerable code not present)\n\
             \t[stretch] - xorg-server <end-of-life>\n\
             [17 Mar 2023] DSA-5356-2 sox - regression update\n\
             \t[sarge] - awstats 6.4-1sarge1 (bug #322591; medium)\n\
             \tNOTE: [etch] - clamav <end-of-life> (x)\n\
             \tgarbage\n",
        );
        assert_eq!(stats.error_count, 1);
        assert_eq!(recs.len(), 2);
        let r = &recs[0];
        assert_eq!(r.id, "DSA-5380-1");
        assert_eq!(r.aliases, vec!["CVE-2023-1393", "CVE-2023-1394"]);
        assert_eq!(r.published.as_deref(), Some("2023-03-29T00:00:00Z"));
        assert_eq!(r.affected.len(), 2);
        assert_eq!(r.affected[0].ecosystem, "debian:bullseye");
        assert_eq!(
            r.affected[0].ranges[0].events[1],
            RangeEvent::Fixed("2:1.20.11-1+deb11u6".into())
        );
        assert_eq!(r.affected[1].ranges[0].events.len(), 1);
        assert_eq!(recs[1].affected[0].severity, Some(Severity::Medium));
        assert_eq!(recs[1].severity, Some(Severity::Medium));
    }

    #[test]
    fn urgencies() {
        assert_eq!(urgency_severity("medium**"), Some(Severity::Medium));
        assert_eq!(urgency_severity("not yet assigned"), None);
        assert_eq!(
            urgency_severity("unimportant"),
            Some(Severity::Informational)
        );
    }
}
