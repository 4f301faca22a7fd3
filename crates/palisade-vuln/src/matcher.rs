//! Deciding which advisories affect installed packages.
//!
//! For each package: look up the advisories under its ecosystem key and (for OS packages) its
//! source package name, evaluate the OSV range semantics against the installed version, merge
//! advisories that name the same flaw under different ids (CVE, GHSA, PYSEC, DSA, …) so it is
//! reported once, then apply the user's filters (severity, unfixed, ignore file).

use crate::db::{AdvisoryDb, Candidate, DbError};
use crate::ignore::IgnoreList;
use crate::keys::{ecosystem_key, ecosystem_of_key, normalize_name};
use crate::record::{AdvisoryRecord, AffectedPackage, AffectedRange, RangeEvent, RangeKind};
use crate::version::{VersionError, VersionScheme, compare};
use palisade_core::{Advisory, CvssScore, Distro, Ecosystem, Package, Severity};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use thiserror::Error;

/// Where the matcher finds advisories for one package. Implemented by [`AdvisoryDb`]; tests plug
/// in an in-memory map.
pub trait AdvisoryLookup {
    /// Every (non-withdrawn) advisory naming the normalised `name` in `ecosystem_key`.
    fn lookup(&self, ecosystem_key: &str, name: &str) -> Result<Vec<Candidate>, DbError>;
}

impl AdvisoryLookup for AdvisoryDb {
    fn lookup(&self, ecosystem_key: &str, name: &str) -> Result<Vec<Candidate>, DbError> {
        AdvisoryDb::lookup(self, ecosystem_key, name)
    }
}

/// Matching failed as a whole (the DB could not be read). Per-package problems (unparseable
/// versions) are warnings in [`MatchReport`], not errors.
#[derive(Debug, Error)]
pub enum MatchError {
    #[error("looking up advisories for {package}: {source}")]
    Db {
        package: String,
        #[source]
        source: DbError,
    },
}

/// Filters applied to the matches.
#[derive(Debug, Clone, Default)]
pub struct MatchOptions {
    /// Keep only these severities (empty: keep all).
    pub severities: Vec<Severity>,
    /// Drop vulnerabilities without a fixed version.
    pub ignore_unfixed: bool,
    /// Accepted vulnerabilities.
    pub ignore: IgnoreList,
    /// The day ignore-file expiry is judged against (`None`: today, UTC).
    pub today: Option<time::Date>,
}

/// Whether a fix is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixStatus {
    Fixed,
    NotFixed,
}

/// One vulnerability affecting one installed package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnerabilityMatch {
    pub package: Package,
    /// Merged over every advisory naming the same flaw.
    pub advisory: Advisory,
    /// The version compared (the source version for OS packages when known).
    pub installed_version: String,
    /// The lowest version that fixes it, `None` for "no fix yet".
    pub fixed_version: Option<String>,
    pub status: FixStatus,
    pub severity: Severity,
}

/// An accepted (ignored) vulnerability, kept so outputs can say how many were suppressed.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoredMatch {
    pub matched: VulnerabilityMatch,
    pub reason: String,
}

/// Everything matching produced.
#[derive(Debug, Clone, Default)]
pub struct MatchReport {
    /// Sorted by package (input order), then severity (highest first), then id.
    pub matches: Vec<VulnerabilityMatch>,
    pub ignored: Vec<IgnoredMatch>,
    /// Dropped by `--severity` / `--ignore-unfixed`.
    pub filtered: usize,
    /// Unparseable versions, packages that could not be matched, expired ignore entries.
    pub warnings: Vec<String>,
}

/// Matches packages to advisories (the contract signature; warnings are logged).
pub fn match_packages(
    db: &AdvisoryDb,
    packages: &[Package],
    distro: Option<&Distro>,
    opts: &MatchOptions,
) -> Result<Vec<VulnerabilityMatch>, MatchError> {
    let report = match_packages_report(db, packages, distro, opts)?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    Ok(report.matches)
}

/// Matches packages to advisories, returning warnings and ignored matches too.
pub fn match_packages_report(
    db: &dyn AdvisoryLookup,
    packages: &[Package],
    distro: Option<&Distro>,
    opts: &MatchOptions,
) -> Result<MatchReport, MatchError> {
    let today = opts
        .today
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().date());
    let mut report = MatchReport {
        warnings: opts.ignore.expiry_warnings(today),
        ..MatchReport::default()
    };
    let mut os_without_distro = 0usize;
    // Binary packages of one source package (libc6, libc-bin, … of glibc) share one lookup.
    let mut cache = LookupCache::new();
    for (index, package) in packages.iter().enumerate() {
        let Some(key) = ecosystem_key(package, distro) else {
            os_without_distro += 1;
            continue;
        };
        let found = match_package(db, &mut cache, package, &key, &mut report.warnings)?;
        let mut found: Vec<(usize, VulnerabilityMatch)> =
            found.into_iter().map(|m| (index, m)).collect();
        found.sort_by(|a, b| {
            b.1.severity
                .cmp(&a.1.severity)
                .then_with(|| a.1.advisory.id.cmp(&b.1.advisory.id))
        });
        for (_, m) in found {
            let ids: Vec<&str> = std::iter::once(m.advisory.id.as_str())
                .chain(m.advisory.aliases.iter().map(String::as_str))
                .collect();
            if let Some(entry) = opts.ignore.find(&ids, &m.package, today) {
                report.ignored.push(IgnoredMatch {
                    reason: entry.reason.clone(),
                    matched: m,
                });
                continue;
            }
            if (!opts.severities.is_empty() && !opts.severities.contains(&m.severity))
                || (opts.ignore_unfixed && m.status == FixStatus::NotFixed)
            {
                report.filtered += 1;
                continue;
            }
            report.matches.push(m);
        }
    }
    if os_without_distro > 0 {
        report.warnings.push(format!(
            "{os_without_distro} OS packages were not matched: the distribution could not be \
             identified (no usable /etc/os-release)"
        ));
    }
    Ok(report)
}

/// Candidates already looked up, by (ecosystem key, name).
type LookupCache = HashMap<(String, String), Arc<Vec<Candidate>>>;

/// The name advisories list a package under: the source package for OS packages.
pub fn lookup_name(package: &Package, ecosystem_key: &str) -> String {
    let name = if package.ecosystem.is_os() {
        package.source_name.as_deref().unwrap_or(&package.name)
    } else {
        &package.name
    };
    normalize_name(ecosystem_key, name)
}

/// The version compared against advisories: the source version for OS packages (a Debian binNMU
/// `1.2-3+b1` is built from source `1.2-3`, which is what the tracker names).
pub fn compared_version(package: &Package) -> &str {
    if package.ecosystem.is_os() {
        package
            .source_version
            .as_deref()
            .filter(|v| !v.is_empty())
            .unwrap_or(&package.version)
    } else {
        &package.version
    }
}

/// All merged vulnerabilities of one package, unfiltered.
fn match_package(
    db: &dyn AdvisoryLookup,
    cache: &mut LookupCache,
    package: &Package,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<VulnerabilityMatch>, MatchError> {
    let name = lookup_name(package, key);
    let cache_key = (key.to_string(), name);
    let candidates = match cache.get(&cache_key) {
        Some(c) => Arc::clone(c),
        None => {
            let c = Arc::new(
                db.lookup(key, &cache_key.1)
                    .map_err(|source| MatchError::Db {
                        package: package.purl.clone(),
                        source,
                    })?,
            );
            cache.insert(cache_key, Arc::clone(&c));
            c
        }
    };
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let installed = compared_version(package);
    let ecosystem = ecosystem_of_key(key).unwrap_or(package.ecosystem);
    let mut hits: Vec<Hit> = Vec::new();
    let mut warned = BTreeSet::new();
    for c in candidates.iter() {
        if c.advisory.withdrawn {
            continue;
        }
        match affected(&c.affected, ecosystem, installed) {
            Ok(Some(fixed)) => hits.push(Hit {
                record: &c.advisory,
                affected: &c.affected,
                fixed,
            }),
            Ok(None) => {}
            Err(e) => {
                if warned.insert(e.to_string()) {
                    warnings.push(format!(
                        "{} {}: advisory {} not evaluated: {e}",
                        package.name, package.version, c.advisory.id
                    ));
                }
            }
        }
    }
    Ok(merge_hits(package, installed, ecosystem, hits))
}

/// One advisory that affects the package, with the fix its affected ranges name.
struct Hit<'a> {
    record: &'a AdvisoryRecord,
    affected: &'a AffectedPackage,
    fixed: Option<String>,
}

/// Whether `installed` is affected; `Some(fixed)` if so, with the version closing the affected
/// range it falls in (`None` inside: no fix yet).
pub fn affected(
    entry: &AffectedPackage,
    ecosystem: Ecosystem,
    installed: &str,
) -> Result<Option<Option<String>>, VersionError> {
    let eco_scheme = VersionScheme::for_ecosystem(ecosystem);
    let mut hit = false;
    let mut fixes: Vec<(VersionScheme, String)> = Vec::new();
    let mut unfixed = false;
    let mut first_err = None;
    for range in &entry.ranges {
        let scheme = match range.kind {
            RangeKind::Semver => VersionScheme::Semver,
            RangeKind::Ecosystem => eco_scheme,
        };
        let v = normalize_for_scheme(scheme, ecosystem, installed);
        match range_affects(range, scheme, &v) {
            Ok(Some(fix)) => {
                hit = true;
                match fix {
                    Some(f) => fixes.push((scheme, f)),
                    None => unfixed = true,
                }
            }
            Ok(None) => {}
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    if !hit {
        if entry.versions.iter().any(|v| v == installed) {
            return Ok(Some(None));
        }
        return match first_err {
            Some(e) => Err(e),
            None => Ok(None),
        };
    }
    if unfixed || fixes.is_empty() {
        return Ok(Some(None));
    }
    // Overlapping ranges that each close: the user needs the highest fix to leave them all.
    let mut best = fixes.swap_remove(0);
    for (scheme, f) in fixes {
        if compare(scheme, &f, &best.1).is_ok_and(|o| o == Ordering::Greater) {
            best = (scheme, f);
        }
    }
    Ok(Some(Some(best.1)))
}

/// Makes an installed version comparable under a range's scheme: Go module versions carry a `v`
/// and the Go toolchain `go1.21rc2`, while OSV SEMVER ranges name `1.21.0-rc.2`.
pub fn normalize_for_scheme(scheme: VersionScheme, ecosystem: Ecosystem, version: &str) -> String {
    let v = version.trim();
    if scheme != VersionScheme::Semver || ecosystem != Ecosystem::Go {
        return v.to_string();
    }
    if let Some(rest) = v.strip_prefix("go") {
        return go_toolchain_semver(rest);
    }
    let rest = v.strip_prefix('v').unwrap_or(v);
    // `1.21` / `1.21.3` without prefix may also be a toolchain version.
    if !rest.contains('-') && rest.split('.').count() < 3 {
        return go_toolchain_semver(rest);
    }
    rest.to_string()
}

/// `1.21rc2` → `1.21.0-rc.2`, `1.20` → `1.20.0`, `1.21.3` unchanged.
fn go_toolchain_semver(v: &str) -> String {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, pre) = v.split_at(split);
    let mut parts: Vec<&str> = num.split('.').filter(|p| !p.is_empty()).collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    let mut out = parts.join(".");
    if !pre.is_empty() {
        let digits = pre.find(|c: char| c.is_ascii_digit()).unwrap_or(pre.len());
        let (word, n) = pre.split_at(digits);
        out.push('-');
        out.push_str(word);
        if !n.is_empty() {
            out.push('.');
            out.push_str(n);
        }
    }
    out
}

fn event_version(e: &RangeEvent) -> &str {
    match e {
        RangeEvent::Introduced(v)
        | RangeEvent::Fixed(v)
        | RangeEvent::LastAffected(v)
        | RangeEvent::Limit(v) => v,
    }
}

/// OSV evaluation of one range: `Some(fix)` if `v` is inside it.
fn range_affects(
    range: &AffectedRange,
    scheme: VersionScheme,
    v: &str,
) -> Result<Option<Option<String>>, VersionError> {
    // Compare every event with the installed version once; sort the events with the ones at or
    // below `v` first (in version order), which is all the OSV walk needs.
    let mut below: Vec<(usize, &RangeEvent)> = Vec::new();
    let mut above: Vec<(usize, &RangeEvent)> = Vec::new();
    for (i, e) in range.events.iter().enumerate() {
        let ev = event_version(e);
        if let RangeEvent::Limit(l) = e {
            if l == "*" {
                continue;
            }
            if compare(scheme, v, l)? != Ordering::Less {
                return Ok(None);
            }
            continue;
        }
        let ord = if matches!(e, RangeEvent::Introduced(_)) && ev == "0" {
            Ordering::Greater
        } else {
            compare(scheme, v, ev)?
        };
        let at_or_below = match e {
            RangeEvent::LastAffected(_) => ord == Ordering::Greater,
            _ => ord != Ordering::Less,
        };
        if at_or_below {
            below.push((i, e));
        } else {
            above.push((i, e));
        }
    }
    if below.is_empty() {
        return Ok(None);
    }
    // The state is decided by the greatest event at or below `v`.
    let last = greatest(scheme, &below)?;
    if !matches!(last, RangeEvent::Introduced(_)) {
        return Ok(None);
    }
    // Inside: the fix is the smallest closing event above `v`.
    let closing: Vec<(usize, &RangeEvent)> = above
        .into_iter()
        .filter(|(_, e)| matches!(e, RangeEvent::Fixed(_) | RangeEvent::LastAffected(_)))
        .collect();
    if closing.is_empty() {
        return Ok(Some(None));
    }
    let first = least(scheme, &closing)?;
    Ok(Some(match first {
        RangeEvent::Fixed(f) => Some(f.clone()),
        _ => None,
    }))
}

fn cmp_events(
    scheme: VersionScheme,
    a: &RangeEvent,
    b: &RangeEvent,
) -> Result<Ordering, VersionError> {
    let zero = |e: &RangeEvent| matches!(e, RangeEvent::Introduced(v) if v == "0");
    Ok(match (zero(a), zero(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => compare(scheme, event_version(a), event_version(b))?,
    })
}

/// The greatest event; among equal versions the one listed last wins (a later `fixed` closes an
/// `introduced` at the same version).
fn greatest<'a>(
    scheme: VersionScheme,
    events: &[(usize, &'a RangeEvent)],
) -> Result<&'a RangeEvent, VersionError> {
    let mut best = events[0];
    for &cur in &events[1..] {
        let o = cmp_events(scheme, cur.1, best.1)?;
        if o == Ordering::Greater || (o == Ordering::Equal && cur.0 > best.0) {
            best = cur;
        }
    }
    Ok(best.1)
}

fn least<'a>(
    scheme: VersionScheme,
    events: &[(usize, &'a RangeEvent)],
) -> Result<&'a RangeEvent, VersionError> {
    let mut best = events[0];
    for &cur in &events[1..] {
        let o = cmp_events(scheme, cur.1, best.1)?;
        if o == Ordering::Less || (o == Ordering::Equal && cur.0 < best.0) {
            best = cur;
        }
    }
    Ok(best.1)
}

/// Groups hits whose ids or aliases intersect (union-find) and merges each group into one match.
fn merge_hits(
    package: &Package,
    installed: &str,
    ecosystem: Ecosystem,
    mut hits: Vec<Hit<'_>>,
) -> Vec<VulnerabilityMatch> {
    hits.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    let n = hits.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (i, h) in hits.iter().enumerate() {
        for id in std::iter::once(&h.record.id).chain(h.record.aliases.iter()) {
            let id = id.trim().to_ascii_uppercase();
            if id.is_empty() {
                continue;
            }
            match owner.get(&id) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    owner.insert(id, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let scheme = VersionScheme::for_ecosystem(ecosystem);
    groups
        .into_values()
        .map(|members| {
            let group: Vec<&Hit<'_>> = members.iter().map(|&i| &hits[i]).collect();
            merge_group(package, installed, scheme, &group)
        })
        .collect()
}

fn merge_group(
    package: &Package,
    installed: &str,
    scheme: VersionScheme,
    group: &[&Hit<'_>],
) -> VulnerabilityMatch {
    // Every id, spelled as the sources spell them, deduplicated case-insensitively.
    let mut ids: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for h in group {
        for id in std::iter::once(&h.record.id).chain(h.record.aliases.iter()) {
            let id = id.trim();
            if !id.is_empty() && seen.insert(id.to_ascii_uppercase()) {
                ids.push(id.to_string());
            }
        }
    }
    let cves: Vec<&String> = ids.iter().filter(|i| is_cve(i)).collect();
    let primary = group[0];
    let id = if cves.len() == 1 {
        cves[0].clone()
    } else {
        primary.record.id.clone()
    };
    let mut aliases: Vec<String> = ids
        .iter()
        .filter(|i| !i.eq_ignore_ascii_case(&id))
        .cloned()
        .collect();
    aliases.sort();

    // The record named by the chosen id speaks first for the summary and dates.
    let lead = group
        .iter()
        .find(|h| h.record.id.eq_ignore_ascii_case(&id))
        .unwrap_or(&primary);
    let summary = lead
        .record
        .summary
        .clone()
        .or_else(|| group.iter().find_map(|h| h.record.summary.clone()));
    let published = lead
        .record
        .published
        .clone()
        .or_else(|| group.iter().find_map(|h| h.record.published.clone()));

    let mut cvss: Vec<CvssScore> = Vec::new();
    let mut references: Vec<String> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    for h in group {
        for c in &h.record.cvss {
            if !cvss.iter().any(|x| x.vector == c.vector) {
                cvss.push(c.clone());
            }
        }
        for r in &h.record.references {
            if !references.contains(r) {
                references.push(r.clone());
            }
        }
        if !h.record.source.is_empty() && !sources.contains(&h.record.source) {
            sources.push(h.record.source.clone());
        }
    }
    let severity = merged_severity(group, &cvss);

    // Sources may disagree on the fix; the highest named fix leaves every advisory behind.
    let mut fixed: Option<String> = None;
    for h in group {
        if let Some(f) = &h.fixed {
            fixed = match fixed {
                None => Some(f.clone()),
                Some(cur) => {
                    if compare(scheme, f, &cur).is_ok_and(|o| o == Ordering::Greater) {
                        Some(f.clone())
                    } else {
                        Some(cur)
                    }
                }
            };
        }
    }
    let status = if fixed.is_some() {
        FixStatus::Fixed
    } else {
        FixStatus::NotFixed
    };
    VulnerabilityMatch {
        package: package.clone(),
        advisory: Advisory {
            id,
            aliases,
            summary,
            severity,
            cvss,
            references,
            published,
            sources,
        },
        installed_version: installed.to_string(),
        fixed_version: fixed,
        status,
        severity,
    }
}

fn is_cve(id: &str) -> bool {
    id.len() > 4 && id[..4].eq_ignore_ascii_case("CVE-")
}

/// Severity: the highest computed CVSS v3/v4 base score, else v2, else the sources' own
/// severity, else the distro's urgency for the package, else unknown.
pub fn merged_severity_of(
    cvss: &[CvssScore],
    source: &[Severity],
    urgency: &[Severity],
) -> Severity {
    let modern = cvss
        .iter()
        .filter(|c| !c.version.starts_with('2'))
        .map(|c| c.base_score)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    if let Some(s) = modern {
        return Severity::from_cvss_score(s);
    }
    let v2 = cvss
        .iter()
        .filter(|c| c.version.starts_with('2'))
        .map(|c| c.base_score)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    if let Some(s) = v2 {
        // CVSS v2 has no "critical" band: 7.0–10.0 is high.
        return Severity::from_cvss_score(s).min(Severity::High);
    }
    let known = |v: &[Severity]| v.iter().copied().filter(|s| *s != Severity::Unknown).max();
    known(source)
        .or_else(|| known(urgency))
        .unwrap_or(Severity::Unknown)
}

fn merged_severity(group: &[&Hit<'_>], cvss: &[CvssScore]) -> Severity {
    let source: Vec<Severity> = group.iter().filter_map(|h| h.record.severity).collect();
    let urgency: Vec<Severity> = group.iter().filter_map(|h| h.affected.severity).collect();
    merged_severity_of(cvss, &source, &urgency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ignore::IgnoreEntry;
    use palisade_core::PackageLocation;
    use time::macros::date;

    /// In-memory advisories by (ecosystem key, name).
    #[derive(Default)]
    struct MemDb(Vec<AdvisoryRecord>);

    impl AdvisoryLookup for MemDb {
        fn lookup(&self, key: &str, name: &str) -> Result<Vec<Candidate>, DbError> {
            let mut out = Vec::new();
            for r in &self.0 {
                for a in &r.affected {
                    if a.ecosystem == key && a.name == name && !r.withdrawn {
                        out.push(Candidate {
                            advisory: Arc::new(r.clone()),
                            affected: a.clone(),
                        });
                    }
                }
            }
            Ok(out)
        }
    }

    fn intro(v: &str) -> RangeEvent {
        RangeEvent::Introduced(v.into())
    }
    fn fixed(v: &str) -> RangeEvent {
        RangeEvent::Fixed(v.into())
    }
    fn last(v: &str) -> RangeEvent {
        RangeEvent::LastAffected(v.into())
    }

    fn range(kind: RangeKind, events: Vec<RangeEvent>) -> AffectedRange {
        AffectedRange { kind, events }
    }

    fn record(
        id: &str,
        aliases: &[&str],
        eco: &str,
        name: &str,
        ranges: Vec<AffectedRange>,
    ) -> AdvisoryRecord {
        AdvisoryRecord {
            id: id.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            source: "osv".into(),
            affected: vec![AffectedPackage {
                ecosystem: eco.into(),
                name: name.into(),
                ranges,
                ..AffectedPackage::default()
            }],
            ..AdvisoryRecord::default()
        }
    }

    fn pypi(name: &str, version: &str) -> Package {
        Package::new(
            Ecosystem::PyPI,
            name,
            version,
            PackageLocation {
                layer_digest: None,
                path: format!("/usr/lib/python3/site-packages/{name}-{version}.dist-info/METADATA"),
            },
        )
    }

    fn entry(ranges: Vec<AffectedRange>, versions: &[&str]) -> AffectedPackage {
        AffectedPackage {
            ecosystem: "PyPI".into(),
            name: "x".into(),
            ranges,
            versions: versions.iter().map(|s| s.to_string()).collect(),
            severity: None,
        }
    }

    #[test]
    fn osv_range_semantics() {
        let e = entry(
            vec![range(
                RangeKind::Ecosystem,
                vec![intro("0"), fixed("2.0"), intro("3.0"), fixed("3.2")],
            )],
            &[],
        );
        let f = |v: &str| affected(&e, Ecosystem::PyPI, v).unwrap();
        assert_eq!(f("1.0"), Some(Some("2.0".into())));
        assert_eq!(f("2.0"), None);
        assert_eq!(f("2.5"), None);
        assert_eq!(f("3.0"), Some(Some("3.2".into())));
        assert_eq!(f("3.1.9"), Some(Some("3.2".into())));
        assert_eq!(f("3.2"), None);
        assert_eq!(f("10.0"), None);

        // Events listed out of order are sorted by version.
        let e = entry(
            vec![range(
                RangeKind::Ecosystem,
                vec![fixed("1.5"), intro("1.0")],
            )],
            &[],
        );
        assert_eq!(
            affected(&e, Ecosystem::PyPI, "1.2").unwrap(),
            Some(Some("1.5".into()))
        );
        assert_eq!(affected(&e, Ecosystem::PyPI, "0.9").unwrap(), None);

        // last_affected: inclusive, and no fix.
        let e = entry(
            vec![range(RangeKind::Ecosystem, vec![intro("1.0"), last("1.4")])],
            &[],
        );
        assert_eq!(affected(&e, Ecosystem::PyPI, "1.4").unwrap(), Some(None));
        assert_eq!(affected(&e, Ecosystem::PyPI, "1.4.1").unwrap(), None);

        // Open range: no fix yet.
        let e = entry(vec![range(RangeKind::Ecosystem, vec![intro("0")])], &[]);
        assert_eq!(affected(&e, Ecosystem::PyPI, "99").unwrap(), Some(None));

        // Limit caps the range.
        let e = entry(
            vec![range(
                RangeKind::Ecosystem,
                vec![intro("1.0"), RangeEvent::Limit("2.0".into())],
            )],
            &[],
        );
        assert_eq!(affected(&e, Ecosystem::PyPI, "1.5").unwrap(), Some(None));
        assert_eq!(affected(&e, Ecosystem::PyPI, "2.1").unwrap(), None);
    }

    #[test]
    fn ranges_are_ored_and_versions_listed_exactly() {
        let e = entry(
            vec![
                range(RangeKind::Ecosystem, vec![intro("1.0"), fixed("1.1")]),
                range(RangeKind::Ecosystem, vec![intro("2.0"), fixed("2.3")]),
            ],
            &["0.5rc1"],
        );
        assert_eq!(
            affected(&e, Ecosystem::PyPI, "1.0").unwrap(),
            Some(Some("1.1".into()))
        );
        assert_eq!(
            affected(&e, Ecosystem::PyPI, "2.2").unwrap(),
            Some(Some("2.3".into()))
        );
        assert_eq!(affected(&e, Ecosystem::PyPI, "1.5").unwrap(), None);
        // Listed versions match exactly even outside every range.
        assert_eq!(affected(&e, Ecosystem::PyPI, "0.5rc1").unwrap(), Some(None));
        // A versions-only entry.
        let e = entry(vec![], &["1.2.3"]);
        assert_eq!(affected(&e, Ecosystem::PyPI, "1.2.3").unwrap(), Some(None));
        assert_eq!(affected(&e, Ecosystem::PyPI, "1.2.4").unwrap(), None);
    }

    #[test]
    fn semver_ranges_and_go_versions() {
        // A SEMVER range in the Go ecosystem: module versions carry a `v`.
        let e = AffectedPackage {
            ecosystem: "Go".into(),
            name: "golang.org/x/net".into(),
            ranges: vec![range(RangeKind::Semver, vec![intro("0"), fixed("0.7.0")])],
            ..AffectedPackage::default()
        };
        assert_eq!(
            affected(&e, Ecosystem::Go, "v0.5.0").unwrap(),
            Some(Some("0.7.0".into()))
        );
        assert_eq!(affected(&e, Ecosystem::Go, "v0.7.0").unwrap(), None);
        assert_eq!(
            affected(&e, Ecosystem::Go, "v0.0.0-20220906165146-f3363e06e74c").unwrap(),
            Some(Some("0.7.0".into()))
        );
        // Standard library: toolchain versions.
        let e = AffectedPackage {
            ecosystem: "Go".into(),
            name: "stdlib".into(),
            ranges: vec![range(
                RangeKind::Semver,
                vec![
                    intro("0"),
                    fixed("1.20.12"),
                    intro("1.21.0-0"),
                    fixed("1.21.5"),
                ],
            )],
            ..AffectedPackage::default()
        };
        assert_eq!(
            affected(&e, Ecosystem::Go, "go1.21.3").unwrap(),
            Some(Some("1.21.5".into()))
        );
        assert_eq!(
            affected(&e, Ecosystem::Go, "go1.21rc2").unwrap(),
            Some(Some("1.21.5".into()))
        );
        assert_eq!(affected(&e, Ecosystem::Go, "go1.21.5").unwrap(), None);
        assert_eq!(
            affected(&e, Ecosystem::Go, "go1.20").unwrap(),
            Some(Some("1.20.12".into()))
        );
        assert_eq!(
            normalize_for_scheme(VersionScheme::Semver, Ecosystem::Go, "go1.21rc2"),
            "1.21.0-rc.2"
        );
        assert_eq!(
            normalize_for_scheme(VersionScheme::Semver, Ecosystem::Go, "v1.2.3"),
            "1.2.3"
        );
        assert_eq!(
            normalize_for_scheme(VersionScheme::Semver, Ecosystem::PyPI, "v1"),
            "v1"
        );
    }

    #[test]
    fn aliases_merge_into_one_match_per_package() {
        let mut ghsa = record(
            "GHSA-jf85-cpcp-j695",
            &["CVE-2019-10744"],
            "npm",
            "lodash",
            vec![range(RangeKind::Semver, vec![intro("0"), fixed("4.17.12")])],
        );
        ghsa.severity = Some(Severity::High);
        ghsa.references = vec!["https://github.com/advisories/GHSA-jf85-cpcp-j695".into()];
        ghsa.summary = Some("Prototype Pollution in lodash".into());
        ghsa.cvss = vec![CvssScore {
            version: "3.1".into(),
            vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H".into(),
            base_score: 9.1,
        }];
        let mut other = record(
            "SNYK-JS-LODASH-450202",
            &["CVE-2019-10744"],
            "npm",
            "lodash",
            vec![range(RangeKind::Semver, vec![intro("0"), fixed("4.17.13")])],
        );
        other.source = "other".into();
        other.references = vec!["https://nvd.nist.gov/vuln/detail/CVE-2019-10744".into()];
        let unrelated = record(
            "GHSA-p6mc-m468-83gw",
            &["CVE-2020-8203"],
            "npm",
            "lodash",
            vec![range(
                RangeKind::Semver,
                vec![intro("3.7.0"), fixed("4.17.19")],
            )],
        );
        let mut withdrawn = record(
            "GHSA-withdrawn",
            &[],
            "npm",
            "lodash",
            vec![range(RangeKind::Semver, vec![intro("0")])],
        );
        withdrawn.withdrawn = true;
        let db = MemDb(vec![ghsa, other, unrelated, withdrawn]);
        let pkg = Package::new(
            Ecosystem::Npm,
            "lodash",
            "4.17.4",
            PackageLocation::default(),
        );
        let r = match_packages_report(&db, &[pkg], None, &MatchOptions::default()).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.matches.len(), 2, "{:#?}", r.matches);
        let m = r
            .matches
            .iter()
            .find(|m| m.advisory.id == "CVE-2019-10744")
            .unwrap();
        assert_eq!(
            m.advisory.aliases,
            vec!["GHSA-jf85-cpcp-j695", "SNYK-JS-LODASH-450202"]
        );
        assert_eq!(m.severity, Severity::Critical);
        assert_eq!(m.fixed_version.as_deref(), Some("4.17.13"));
        assert_eq!(m.status, FixStatus::Fixed);
        assert_eq!(m.advisory.sources, vec!["osv", "other"]);
        assert_eq!(m.advisory.references.len(), 2);
        assert_eq!(
            m.advisory.summary.as_deref(),
            Some("Prototype Pollution in lodash")
        );
        assert_eq!(m.installed_version, "4.17.4");
        // Sorted: critical first.
        assert_eq!(r.matches[0].advisory.id, "CVE-2019-10744");
        assert_eq!(r.matches[1].advisory.id, "CVE-2020-8203");
    }

    #[test]
    fn transitive_aliases_and_no_single_cve() {
        // A ~ B via GHSA id, B ~ C via PYSEC: one group; two CVEs → the source id stays.
        let a = record(
            "GHSA-aaaa",
            &["CVE-2020-1"],
            "PyPI",
            "x",
            vec![range(RangeKind::Ecosystem, vec![intro("0")])],
        );
        let b = record(
            "PYSEC-2020-9",
            &["GHSA-aaaa", "CVE-2020-2"],
            "PyPI",
            "x",
            vec![range(RangeKind::Ecosystem, vec![intro("0")])],
        );
        let db = MemDb(vec![a, b]);
        let mut p = pypi("X", "1.0");
        p.name = "X".into();
        let r = match_packages_report(&db, &[p], None, &MatchOptions::default()).unwrap();
        assert_eq!(r.matches.len(), 1);
        assert_eq!(r.matches[0].advisory.id, "GHSA-aaaa");
        assert_eq!(
            r.matches[0].advisory.aliases,
            vec!["CVE-2020-1", "CVE-2020-2", "PYSEC-2020-9"]
        );
        assert_eq!(r.matches[0].status, FixStatus::NotFixed);
        assert_eq!(r.matches[0].severity, Severity::Unknown);
    }

    #[test]
    fn os_packages_use_source_name_and_version() {
        let mut rec = record(
            "CVE-2023-0286",
            &["DSA-5343-1"],
            "debian:bullseye",
            "openssl",
            vec![range(
                RangeKind::Ecosystem,
                vec![intro("0"), fixed("1.1.1n-0+deb11u4")],
            )],
        );
        rec.source = "debian-tracker".into();
        rec.affected[0].severity = Some(Severity::High);
        let db = MemDb(vec![rec]);
        let mut p = Package::new(
            Ecosystem::Deb,
            "libssl1.1",
            "1.1.1n-0+deb11u3+b1",
            PackageLocation::default(),
        );
        p.source_name = Some("openssl".into());
        p.source_version = Some("1.1.1n-0+deb11u3".into());
        let distro = Distro {
            id: "debian".into(),
            version_id: Some("11".into()),
            codename: Some("bullseye".into()),
            pretty_name: None,
        };
        let r = match_packages_report(
            &db,
            std::slice::from_ref(&p),
            Some(&distro),
            &MatchOptions::default(),
        )
        .unwrap();
        assert_eq!(r.matches.len(), 1);
        let m = &r.matches[0];
        assert_eq!(m.installed_version, "1.1.1n-0+deb11u3");
        assert_eq!(m.fixed_version.as_deref(), Some("1.1.1n-0+deb11u4"));
        assert_eq!(m.severity, Severity::High, "distro urgency when no CVSS");
        assert_eq!(m.package.name, "libssl1.1");
        // Another release of the distro does not match.
        let bookworm = Distro {
            codename: Some("bookworm".into()),
            version_id: Some("12".into()),
            ..distro.clone()
        };
        let r = match_packages_report(
            &db,
            std::slice::from_ref(&p),
            Some(&bookworm),
            &MatchOptions::default(),
        )
        .unwrap();
        assert!(r.matches.is_empty());
        // Without a distro: a warning, not a failure.
        let r = match_packages_report(&db, &[p], None, &MatchOptions::default()).unwrap();
        assert!(r.matches.is_empty());
        assert_eq!(r.warnings.len(), 1);
    }

    /// Counts lookups made through it.
    struct Counting<'a>(&'a MemDb, std::cell::Cell<usize>);

    impl AdvisoryLookup for Counting<'_> {
        fn lookup(&self, key: &str, name: &str) -> Result<Vec<Candidate>, DbError> {
            self.1.set(self.1.get() + 1);
            self.0.lookup(key, name)
        }
    }

    #[test]
    fn binary_packages_of_one_source_share_a_lookup() {
        let rec = record(
            "CVE-2023-0286",
            &[],
            "debian:bullseye",
            "openssl",
            vec![range(
                RangeKind::Ecosystem,
                vec![intro("0"), fixed("1.1.1n-0+deb11u4")],
            )],
        );
        let db = MemDb(vec![rec]);
        let counting = Counting(&db, std::cell::Cell::new(0));
        let mk = |name: &str| {
            let mut p = Package::new(
                Ecosystem::Deb,
                name,
                "1.1.1n-0+deb11u3",
                PackageLocation::default(),
            );
            p.source_name = Some("openssl".into());
            p
        };
        let distro = Distro {
            id: "debian".into(),
            version_id: Some("11".into()),
            codename: Some("bullseye".into()),
            pretty_name: None,
        };
        let r = match_packages_report(
            &counting,
            &[mk("libssl1.1"), mk("openssl")],
            Some(&distro),
            &MatchOptions::default(),
        )
        .unwrap();
        assert_eq!(counting.1.get(), 1);
        assert_eq!(r.matches.len(), 2, "reported for each binary package");
        assert_eq!(r.matches[0].package.name, "libssl1.1");
        assert_eq!(r.matches[1].package.name, "openssl");
    }

    #[test]
    fn filters_and_ignore_file_with_expiry() {
        let mut crit = record(
            "CVE-2021-1",
            &[],
            "PyPI",
            "x",
            vec![range(RangeKind::Ecosystem, vec![intro("0"), fixed("2.0")])],
        );
        crit.severity = Some(Severity::Critical);
        let mut low = record(
            "CVE-2021-2",
            &["GHSA-low"],
            "PyPI",
            "x",
            vec![range(RangeKind::Ecosystem, vec![intro("0")])],
        );
        low.severity = Some(Severity::Low);
        let db = MemDb(vec![crit, low]);
        let p = pypi("x", "1.0");

        let only_crit = MatchOptions {
            severities: vec![Severity::Critical],
            ..MatchOptions::default()
        };
        let r = match_packages_report(&db, std::slice::from_ref(&p), None, &only_crit).unwrap();
        assert_eq!(r.matches.len(), 1);
        assert_eq!(r.filtered, 1);

        let unfixed = MatchOptions {
            ignore_unfixed: true,
            ..MatchOptions::default()
        };
        let r = match_packages_report(&db, std::slice::from_ref(&p), None, &unfixed).unwrap();
        assert_eq!(
            r.matches
                .iter()
                .map(|m| m.advisory.id.as_str())
                .collect::<Vec<_>>(),
            vec!["CVE-2021-1"]
        );

        let ignore = IgnoreList {
            entries: vec![IgnoreEntry {
                id: "GHSA-low".into(),
                package: Some("x".into()),
                reason: "accepted".into(),
                expires: Some(date!(2026 - 01 - 01)),
            }],
        };
        let mut opts = MatchOptions {
            ignore,
            today: Some(date!(2025 - 06 - 01)),
            ..MatchOptions::default()
        };
        let r = match_packages_report(&db, std::slice::from_ref(&p), None, &opts).unwrap();
        assert_eq!(r.matches.len(), 1);
        assert_eq!(r.ignored.len(), 1);
        assert_eq!(r.ignored[0].reason, "accepted");
        assert!(r.warnings.is_empty());
        // After expiry: the entry stops applying and says so.
        opts.today = Some(date!(2026 - 01 - 02));
        let r = match_packages_report(&db, &[p], None, &opts).unwrap();
        assert_eq!(r.matches.len(), 2);
        assert!(r.ignored.is_empty());
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("expired"), "{:?}", r.warnings);
    }

    #[test]
    fn unparseable_versions_warn() {
        let rec = record(
            "CVE-2022-1",
            &[],
            "PyPI",
            "x",
            vec![range(RangeKind::Ecosystem, vec![intro("0"), fixed("2.0")])],
        );
        let db = MemDb(vec![rec]);
        let r = match_packages_report(
            &db,
            &[pypi("x", "not a version!!")],
            None,
            &MatchOptions::default(),
        )
        .unwrap();
        assert!(r.matches.is_empty());
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("CVE-2022-1"));
    }

    proptest::proptest! {
        /// OSV evaluation agrees with plain interval membership: disjoint `[introduced, fixed)`
        /// intervals (events shuffled), the fix being the end of the interval `v` is in.
        #[test]
        fn ranges_match_interval_membership(
            mut bounds in proptest::collection::btree_set(1u32..200, 2..12),
            v in 0u32..210,
            rotate in 0usize..24,
            open_end in proptest::bool::ANY,
        ) {
            let ver = |n: u32| format!("{}.{}.0", n / 10, n % 10);
            let mut b: Vec<u32> = std::mem::take(&mut bounds).into_iter().collect();
            if b.len() % 2 == 1 {
                b.pop();
            }
            let intervals: Vec<(u32, Option<u32>)> = b
                .chunks(2)
                .enumerate()
                .map(|(i, c)| {
                    let last = i == b.len() / 2 - 1;
                    (c[0], if last && open_end { None } else { Some(c[1]) })
                })
                .collect();
            let mut events = Vec::new();
            for (lo, hi) in &intervals {
                events.push(intro(&ver(*lo)));
                if let Some(h) = hi {
                    events.push(fixed(&ver(*h)));
                }
            }
            let k = rotate % events.len();
            events.rotate_left(k);
            let e = AffectedPackage {
                ecosystem: "npm".into(),
                name: "x".into(),
                ranges: vec![range(RangeKind::Semver, events)],
                ..AffectedPackage::default()
            };
            let expected = intervals
                .iter()
                .find(|(lo, hi)| v >= *lo && hi.is_none_or(|h| v < h))
                .map(|(_, hi)| hi.map(ver));
            proptest::prop_assert_eq!(affected(&e, Ecosystem::Npm, &ver(v)).unwrap(), expected);
        }
    }

    #[test]
    fn severity_order() {
        let v2 = CvssScore {
            version: "2.0".into(),
            vector: "AV:N/AC:L/Au:N/C:C/I:C/A:C".into(),
            base_score: 10.0,
        };
        let v31 = CvssScore {
            version: "3.1".into(),
            vector: "x".into(),
            base_score: 5.3,
        };
        assert_eq!(
            merged_severity_of(std::slice::from_ref(&v2), &[], &[]),
            Severity::High
        );
        assert_eq!(
            merged_severity_of(&[v2, v31], &[Severity::Critical], &[]),
            Severity::Medium
        );
        assert_eq!(
            merged_severity_of(&[], &[Severity::Low], &[Severity::High]),
            Severity::Low
        );
        assert_eq!(
            merged_severity_of(&[], &[Severity::Unknown], &[Severity::High]),
            Severity::High
        );
        assert_eq!(merged_severity_of(&[], &[], &[]), Severity::Unknown);
    }
}
