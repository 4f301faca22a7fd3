//! Alpine secdb JSON (`secdb.alpinelinux.org/<branch>/<repo>.json`): per package, the CVEs each
//! release fixed. One record per CVE and file, with one affected entry per package under the key
//! `alpine:<branch>`: introduced 0 → fixed in the secfix version. The version key `0` means the
//! branch was never affected and is skipped.

use super::ImportStats;
use crate::record::{AdvisoryRecord, AffectedPackage, AffectedRange, RangeEvent, RangeKind};
use crate::version::VersionScheme;
use serde::Deserialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a whole secdb file was rejected.
#[derive(Debug, Error)]
pub enum AlpineError {
    #[error("invalid Alpine secdb JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Alpine secdb: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct SecDb {
    distroversion: String,
    #[serde(default)]
    reponame: Option<String>,
    #[serde(default)]
    packages: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct PkgEntry {
    pkg: Pkg,
}

#[derive(Deserialize)]
struct Pkg {
    name: String,
    #[serde(default)]
    secfixes: BTreeMap<String, Option<Vec<String>>>,
}

/// Imports one secdb file. A malformed package entry is counted and skipped.
pub fn import_secdb(
    data: &[u8],
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<(), AlpineError> {
    let db: SecDb = serde_json::from_slice(data)?;
    let branch = db.distroversion.trim();
    if branch.is_empty() || branch.contains(char::is_whitespace) || branch.len() > 32 {
        return Err(AlpineError::Shape(format!(
            "bad distroversion {:?}",
            db.distroversion
        )));
    }
    let branch = if branch.starts_with('v') || branch == "edge" {
        branch.to_string()
    } else {
        format!("v{branch}")
    };
    let ecosystem = format!("alpine:{branch}");
    let repo = db.reponame.as_deref().unwrap_or("main").trim().to_string();
    let source = format!("alpine-secdb:{branch}/{repo}");
    let mut by_id: BTreeMap<String, AdvisoryRecord> = BTreeMap::new();
    for (i, raw) in db.packages.into_iter().enumerate() {
        let entry: PkgEntry = match serde_json::from_value(raw) {
            Ok(e) => e,
            Err(e) => {
                stats.error(format!("{source}: package entry {i}: {e}"));
                continue;
            }
        };
        let name = entry.pkg.name.trim().to_string();
        if name.is_empty() {
            stats.error(format!("{source}: package entry {i}: empty name"));
            continue;
        }
        for (version, ids) in entry.pkg.secfixes {
            let version = version.trim();
            if version == "0" || version.is_empty() {
                continue;
            }
            for item in ids.unwrap_or_default() {
                // "CVE-2023-44441 ZDI-CAN-22093": the first usable token is the id, the rest
                // aliases. Placeholders such as "CVE-????-?????" are not ids.
                let mut tokens = item
                    .split_whitespace()
                    .filter(|t| !t.contains('?') && t.len() <= 128);
                let Some(id) = tokens.next() else { continue };
                let rec = by_id
                    .entry(id.to_string())
                    .or_insert_with(|| AdvisoryRecord {
                        id: id.to_string(),
                        source: "alpine-secdb".into(),
                        ..Default::default()
                    });
                for alias in tokens {
                    if !rec.aliases.iter().any(|a| a == alias) {
                        rec.aliases.push(alias.to_string());
                    }
                }
                let fixed = RangeEvent::Fixed(version.to_string());
                if let Some(existing) = rec.affected.iter_mut().find(|a| a.name == name) {
                    // Rare: one CVE under two fixed versions of one package. The lowest version
                    // in apk order is the first fix on this branch.
                    for range in &mut existing.ranges {
                        for event in &mut range.events {
                            if let RangeEvent::Fixed(current) = event
                                && crate::version::compare(VersionScheme::Apk, version, current)
                                    == Ok(std::cmp::Ordering::Less)
                            {
                                *current = version.to_string();
                            }
                        }
                    }
                    continue;
                }
                rec.affected.push(AffectedPackage {
                    ecosystem: ecosystem.clone(),
                    name: name.clone(),
                    ranges: vec![AffectedRange {
                        kind: RangeKind::Ecosystem,
                        events: vec![RangeEvent::Introduced("0".into()), fixed],
                    }],
                    versions: Vec::new(),
                    severity: None,
                });
            }
        }
    }
    for (_, rec) in by_id {
        stats.emit(&source, rec, sink);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cve_under_two_fixes_keeps_the_lowest_in_apk_order() {
        let json = br#"{"distroversion":"v3.19","reponame":"main","packages":[
            {"pkg":{"name":"x","secfixes":{"1.10-r0":["CVE-2024-1"],"1.9-r1":["CVE-2024-1"]}}}]}"#;
        let mut out = Vec::new();
        let mut stats = ImportStats::default();
        import_secdb(json, &mut stats, &mut |r| out.push(r)).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].affected[0].ranges[0].events[1],
            RangeEvent::Fixed("1.9-r1".into())
        );
    }

    #[test]
    fn secfixes() {
        let json = br#"{"distroversion":"v3.19","reponame":"main","packages":[
            {"pkg":{"name":"gimp","secfixes":{"0":["CVE-2000-1"],
               "2.10.36-r0":["CVE-2023-44441 ZDI-CAN-22093","CVE-????-????? TS-1"]}}},
            {"pkg":{"name":"curl","secfixes":{"8.0-r0":["CVE-2023-44441"]}}},
            {"pkg":{"nome":"bad"}}]}"#;
        let mut out = Vec::new();
        let mut stats = ImportStats::default();
        import_secdb(json, &mut stats, &mut |r| out.push(r)).unwrap();
        assert_eq!(stats.error_count, 1);
        assert_eq!(out.len(), 2);
        let cve = out.iter().find(|r| r.id == "CVE-2023-44441").unwrap();
        assert_eq!(cve.aliases, vec!["ZDI-CAN-22093"]);
        assert_eq!(cve.affected.len(), 2);
        assert_eq!(cve.affected[0].ecosystem, "alpine:v3.19");
        assert!(out.iter().any(|r| r.id == "TS-1"));
        assert!(!out.iter().any(|r| r.id == "CVE-2000-1"));
        assert_eq!(stats.sources.get("alpine-secdb:v3.19/main"), Some(&2));
    }
}
