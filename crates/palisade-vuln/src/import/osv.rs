//! OSV (<https://ossf.github.io/osv-schema/>) in JSON or YAML: RustSec, PyPA, the Go vulnerability
//! database, GHSA and every per-ecosystem `all.zip` OSV publishes.
//!
//! Both encodings are read into a `serde_json::Value` first and converted field by field, so a
//! scalar of an unexpected type (a YAML number where a string was meant) is tolerated rather than
//! losing the advisory. `related` ids are not aliases and are not kept; `GIT` ranges name commits
//! and are skipped; affected entries in ecosystems we do not match are dropped.

use super::{score_cvss, truncate};
use crate::keys::{normalize_name, osv_ecosystem_key};
use crate::record::{AdvisoryRecord, AffectedPackage, AffectedRange, RangeEvent, RangeKind};
use palisade_core::Severity;
use serde_json::Value;
use thiserror::Error;

/// Longest summary kept (details of some advisories run to many kilobytes).
const MAX_SUMMARY: usize = 1024;
/// Caps on list lengths inside one advisory.
const MAX_AFFECTED: usize = 10_000;
const MAX_EVENTS: usize = 10_000;
const MAX_VERSIONS: usize = 100_000;

/// Why one OSV document was rejected.
#[derive(Debug, Error)]
pub enum OsvError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("not an OSV advisory: {0}")]
    Shape(String),
}

/// Parses an OSV JSON document: one advisory object, or an array of them.
pub fn parse_json(data: &[u8]) -> Result<Vec<AdvisoryRecord>, OsvError> {
    let v: Value = serde_json::from_slice(data)?;
    match v {
        Value::Array(items) => items.iter().map(from_value).collect(),
        other => Ok(vec![from_value(&other)?]),
    }
}

/// Parses one OSV YAML document (the PyPA advisory database's encoding).
pub fn parse_yaml(data: &[u8]) -> Result<AdvisoryRecord, OsvError> {
    check_yaml_nesting(data)?;
    let v: Value = yaml_serde::from_slice(data).map_err(|e| OsvError::Yaml(e.to_string()))?;
    from_value(&v)
}

/// Deepest flow nesting (`[`/`{`) and widest block-indentation prefix accepted in YAML.
const MAX_YAML_DEPTH: usize = 64;
const MAX_YAML_INDENT: usize = 256;

/// Rejects deeply nested YAML before parsing: the YAML parser's own recursion limit fires only
/// after it has tokenised the whole nest, which takes minutes for a few hundred kilobytes of
/// brackets. The scan is conservative (it does not track quoting); real advisories nest a few
/// levels deep.
fn check_yaml_nesting(data: &[u8]) -> Result<(), OsvError> {
    let mut depth = 0usize;
    for line in data.split(|&b| b == b'\n') {
        let indent = line
            .iter()
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b'-'))
            .count();
        if indent > MAX_YAML_INDENT {
            return Err(OsvError::Yaml(format!(
                "indentation deeper than {MAX_YAML_INDENT} columns"
            )));
        }
        for &b in line {
            match b {
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_YAML_DEPTH {
                        return Err(OsvError::Yaml(format!(
                            "nesting deeper than {MAX_YAML_DEPTH} levels"
                        )));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The source name a record is listed under in the DB metadata: `osv:<ecosystem>` of its first
/// affected package (or `osv` when it names none we match).
pub fn source_name(record: &AdvisoryRecord) -> String {
    match record.affected.first() {
        Some(a) => {
            let base = a.ecosystem.split(':').next().unwrap_or(&a.ecosystem);
            format!("osv:{base}")
        }
        None => "osv".to_string(),
    }
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(str_of).collect(),
        _ => Vec::new(),
    }
}

/// Converts one parsed OSV object.
pub fn from_value(v: &Value) -> Result<AdvisoryRecord, OsvError> {
    let obj = v
        .as_object()
        .ok_or_else(|| OsvError::Shape("top level is not an object".into()))?;
    let id = obj
        .get("id")
        .and_then(str_of)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| OsvError::Shape("missing \"id\"".into()))?;
    let mut rec = AdvisoryRecord {
        id: id.trim().to_string(),
        source: "osv".into(),
        ..Default::default()
    };
    rec.aliases = str_list(obj.get("aliases"));
    rec.aliases.retain(|a| *a != rec.id);
    rec.aliases.sort();
    rec.aliases.dedup();

    let summary = obj
        .get("summary")
        .and_then(str_of)
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            obj.get("details").and_then(str_of).map(|d| {
                // First paragraph of the details.
                d.trim()
                    .split("\n\n")
                    .next()
                    .unwrap_or("")
                    .replace('\n', " ")
            })
        })
        .filter(|s| !s.trim().is_empty());
    rec.summary = summary.map(|s| truncate(s.trim().to_string(), MAX_SUMMARY));

    rec.published = obj.get("published").and_then(str_of);
    rec.modified = obj.get("modified").and_then(str_of);
    rec.withdrawn = obj.get("withdrawn").and_then(str_of).is_some();

    if let Some(Value::Array(refs)) = obj.get("references") {
        for r in refs {
            if let Some(url) = r.get("url").and_then(str_of)
                && !rec.references.contains(&url)
            {
                rec.references.push(url);
            }
        }
    }

    if let Some(Value::Array(sev)) = obj.get("severity") {
        add_severities(&mut rec, sev);
    }
    if let Some(s) = obj
        .get("database_specific")
        .and_then(|d| d.get("severity"))
        .and_then(str_of)
    {
        rec.severity = qualitative(&s);
    }

    let mut informational = false;
    if let Some(affected) = obj.get("affected") {
        let Value::Array(items) = affected else {
            return Err(OsvError::Shape("\"affected\" is not a list".into()));
        };
        if items.len() > MAX_AFFECTED {
            return Err(OsvError::Shape(format!(
                "{} affected entries (limit {MAX_AFFECTED})",
                items.len()
            )));
        }
        for a in items {
            if let Some(Value::Array(sev)) = a.get("severity") {
                add_severities(&mut rec, sev);
            }
            // RustSec: unmaintained / unsound / notice advisories are informational.
            if a.get("database_specific")
                .and_then(|d| d.get("informational"))
                .and_then(str_of)
                .is_some()
            {
                informational = true;
            }
            if let Some(p) = affected_package(a)? {
                rec.affected.push(p);
            }
        }
    }
    if informational && rec.cvss.is_empty() {
        rec.severity = Some(Severity::Informational);
    }
    Ok(rec)
}

/// Adds OSV `severity[]` entries: CVSS vectors are scored; `Ubuntu`-style qualitative entries set
/// the qualitative severity.
fn add_severities(rec: &mut AdvisoryRecord, sev: &[Value]) {
    for s in sev.iter().take(16) {
        let kind = s.get("type").and_then(str_of).unwrap_or_default();
        let Some(score) = s.get("score").and_then(str_of) else {
            continue;
        };
        if kind.starts_with("CVSS_") {
            if let Some(c) = score_cvss(&score)
                && !rec.cvss.iter().any(|x| x.vector == c.vector)
            {
                rec.cvss.push(c);
            }
        } else if rec.severity.is_none() {
            rec.severity = qualitative(&score);
        }
    }
}

/// GHSA `LOW/MODERATE/HIGH/CRITICAL` and similar words.
pub(crate) fn qualitative(s: &str) -> Option<Severity> {
    match s.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "high" | "important" => Some(Severity::High),
        "moderate" | "medium" => Some(Severity::Medium),
        "low" => Some(Severity::Low),
        "negligible" | "unimportant" | "informational" | "none" => Some(Severity::Informational),
        _ => None,
    }
}

fn affected_package(a: &Value) -> Result<Option<AffectedPackage>, OsvError> {
    let Some(pkg) = a.get("package") else {
        return Ok(None);
    };
    let (Some(eco), Some(name)) = (
        pkg.get("ecosystem").and_then(str_of),
        pkg.get("name").and_then(str_of),
    ) else {
        return Ok(None);
    };
    let Some(key) = osv_ecosystem_key(eco.trim()) else {
        return Ok(None);
    };
    let name = normalize_name(&key, name.trim());
    if name.is_empty() {
        return Ok(None);
    }
    let mut out = AffectedPackage {
        ecosystem: key,
        name,
        ..Default::default()
    };
    if let Some(Value::Array(ranges)) = a.get("ranges") {
        for r in ranges.iter().take(MAX_AFFECTED) {
            let kind = match r.get("type").and_then(str_of).as_deref() {
                Some("SEMVER") => RangeKind::Semver,
                Some("ECOSYSTEM") => RangeKind::Ecosystem,
                _ => continue,
            };
            let Some(Value::Array(events)) = r.get("events") else {
                continue;
            };
            if events.len() > MAX_EVENTS {
                return Err(OsvError::Shape(format!(
                    "range with {} events (limit {MAX_EVENTS})",
                    events.len()
                )));
            }
            let mut evs = Vec::with_capacity(events.len());
            for e in events {
                let Some(o) = e.as_object() else { continue };
                for (k, v) in o {
                    let Some(ver) = str_of(v) else { continue };
                    let ev = match k.as_str() {
                        "introduced" => RangeEvent::Introduced(ver),
                        "fixed" => RangeEvent::Fixed(ver),
                        "last_affected" => RangeEvent::LastAffected(ver),
                        "limit" => RangeEvent::Limit(ver),
                        _ => continue,
                    };
                    evs.push(ev);
                }
            }
            if !evs.is_empty() {
                out.ranges.push(AffectedRange { kind, events: evs });
            }
        }
    }
    if let Some(Value::Array(vs)) = a.get("versions") {
        if vs.len() > MAX_VERSIONS {
            return Err(OsvError::Shape(format!(
                "{} listed versions (limit {MAX_VERSIONS})",
                vs.len()
            )));
        }
        out.versions = vs.iter().filter_map(str_of).collect();
    }
    if let Some(s) = a
        .get("ecosystem_specific")
        .and_then(|d| d.get("severity"))
        .and_then(str_of)
    {
        out.severity = qualitative(&s);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_ranges() {
        let r = parse_json(
            br#"{"id":"GHSA-1","aliases":["CVE-1","GHSA-1"],"related":["CVE-9"],
            "summary":"s","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "database_specific":{"severity":"MODERATE"},
            "affected":[{"package":{"ecosystem":"PyPI","name":"Foo_Bar"},
              "ranges":[{"type":"GIT","repo":"x","events":[{"introduced":"0"}]},
                        {"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.2"}]}],
              "versions":["1.0", 1.1]},
              {"package":{"ecosystem":"Hackage","name":"x"}}]}"#,
        )
        .unwrap();
        let r = &r[0];
        assert_eq!(r.aliases, vec!["CVE-1"]);
        assert_eq!(r.severity, Some(Severity::Medium));
        assert_eq!(r.cvss.len(), 1);
        assert_eq!(r.affected.len(), 1);
        let a = &r.affected[0];
        assert_eq!(a.name, "foo-bar");
        assert_eq!(a.ranges.len(), 1);
        assert_eq!(a.ranges[0].kind, RangeKind::Ecosystem);
        assert_eq!(
            a.ranges[0].events,
            vec![
                RangeEvent::Introduced("0".into()),
                RangeEvent::Fixed("1.2".into())
            ]
        );
        assert_eq!(a.versions, vec!["1.0", "1.1"]);
    }

    #[test]
    fn rejects_non_advisories() {
        assert!(parse_json(b"[1]").is_err());
        assert!(parse_json(br#"{"summary":"no id"}"#).is_err());
        assert!(parse_json(br#"{"id":"X","affected":{}}"#).is_err());
        assert!(parse_json(b"{").is_err());
        assert!(parse_yaml(b"id: [").is_err());
        assert!(parse_yaml(b"- a\n- b\n").is_err());
    }

    #[test]
    fn yaml_numbers_tolerated() {
        let r = parse_yaml(
            b"id: PYSEC-1\naffected:\n- package: {name: x, ecosystem: PyPI}\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n    - fixed: 2.5\n",
        )
        .unwrap();
        assert_eq!(
            r.affected[0].ranges[0].events[1],
            RangeEvent::Fixed("2.5".into())
        );
    }
}
